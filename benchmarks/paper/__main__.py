"""`python -m benchmarks.paper [--full] [--only a,c] [--jobs N] [--out DIR]` -> DIR/paper.md + PNGs.

Each experiment writes its own section file (``DIR/section_<key>.md`` with its timing in
``section_<key>.json``); ``paper.md`` is assembled from every section file of the same mode in
DIR, so experiments can be run (or re-run) one at a time: ``--only c`` refreshes section (c) and
keeps the others. Default DIR: ``reports`` in quick mode, ``reports/full`` with ``--full``.
"""
from __future__ import annotations

import argparse
import dataclasses
import datetime
import json
import platform
import sys
import time
from pathlib import Path

import torch

from . import continual, grid_extension, pinn, scaling, tables
from .common import FULL, QUICK

EXPERIMENTS = {"a": grid_extension, "b": scaling, "c": tables, "d": pinn, "e": continual}


def main(argv=None, settings=None) -> Path:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.paper", description=__doc__)
    parser.add_argument("--full", action="store_true", help="the paper's recipe (about 3 core-hours); default: quick")
    parser.add_argument("--only", default="abcde", help="experiments to run, e.g. 'ad' (default: abcde)")
    parser.add_argument("--out", default=None, help="output folder (default: reports, or reports/full)")
    parser.add_argument("--jobs", type=int, default=None,
                        help="processes for (c)'s rows and (d)'s models (default 1; each gets its share of threads)")
    args = parser.parse_args(argv)
    s = settings or (FULL if args.full else QUICK)
    if args.jobs is not None:
        if args.jobs < 1:
            parser.error(f"--jobs must be a positive integer, got {args.jobs}")
        s = dataclasses.replace(s, jobs=args.jobs)
    bad = set(args.only) - set(EXPERIMENTS)
    if bad:
        parser.error(f"--only takes letters from 'abcde', got {sorted(bad)}")
    out = Path(args.out or ("reports/full" if args.full else "reports"))
    out.mkdir(parents=True, exist_ok=True)
    for key in sorted(set(args.only)):
        print(f"[paper] ({key}) {EXPERIMENTS[key].__doc__.splitlines()[0]}", flush=True)
        seconds = run_section(key, s, out)
        print(f"[paper] ({key}) done in {seconds:.0f} s", flush=True)
    path = assemble(out, s.name, full=args.full)
    print(f"[paper] wrote {path}", flush=True)
    return path


def run_section(key: str, s, out: Path) -> float:
    """Run experiment ``key``; write ``section_<key>.md`` and its ``.json`` record. Returns seconds."""
    start = time.perf_counter()
    text = EXPERIMENTS[key].run(s, out)
    seconds = time.perf_counter() - start
    meta = dict(mode=s.name, seconds=seconds, threads=torch.get_num_threads(),
                when=datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"))
    _write(out / f"section_{key}.md", text)
    _write(out / f"section_{key}.json", json.dumps(meta, indent=1))
    return seconds


def assemble(out: Path, mode: str, full: bool = False) -> Path:
    """``paper.md`` from the section files of ``mode`` in ``out`` (other modes' files are ignored)."""
    sections, metas = [], []
    for key in EXPERIMENTS:
        md, meta_path = out / f"section_{key}.md", out / f"section_{key}.json"
        if not (md.exists() and meta_path.exists()):
            continue
        meta = json.loads(meta_path.read_text())
        if meta.get("mode") == mode:
            sections.append(md.read_text())
            metas.append((key, meta))
    summary = [line for sec in sections for line in sec.splitlines()
               if line.startswith(("**Acceptance", "**Summary"))]
    summary_md = "## Summary\n\n" + "\n".join(f"- {line}" for line in summary) + "\n\n" if summary else ""
    path = out / "paper.md"
    _write(path, _header(mode, full, metas) + summary_md + "\n".join(sections))
    return path


def _write(path: Path, text: str) -> None:
    """Atomic: a crash never leaves a half-written report."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    tmp.replace(path)


def _header(mode, full, metas) -> str:
    runs = "; ".join(f"({k}) {m['when']}, {m['seconds']:.0f} s, {m['threads']} thread(s)" for k, m in metas)
    return "\n".join([
        "# Reproducing the KAN paper with kanlab\n",
        f"Mode: **{mode}** (`python -m benchmarks.paper{' --full' if full else ''}`), torch {torch.__version__}, "
        f"{platform.machine()}, Python {sys.version.split()[0]}. Sections run: {runs or 'none'}.\n",
        "Everything in float64. Paper numbers from Liu et al., \"KAN: Kolmogorov-Arnold Networks\" "
        "(arXiv 2404.19756) and pykan's tutorials (see `/work/shared/reference/paper-results.md`). "
        + ("Full mode: the paper's recipe (LBFGS, 100-200 steps per grid, grids up to G = 50-100, 1000-3000 "
           "points) with sizes cut where noted so that it runs in about 3 core-hours."
           if mode == "full" else
           "Quick mode trains far less than the paper (fewer steps per grid, smaller grids and data), so its "
           "numbers are a smoke-level reproduction; `--full` (reports/full/paper.md) runs the paper's recipe.")
        + "\n", ""])


if __name__ == "__main__":
    main()
