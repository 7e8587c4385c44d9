"""`python -m benchmarks.paper [--full] [--only a,c] [--out reports]` -> reports/paper.md + PNGs."""
from __future__ import annotations

import argparse
import datetime
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
    parser.add_argument("--full", action="store_true", help="the paper's sizes (hours); default: quick mode")
    parser.add_argument("--only", default="abcde", help="experiments to run, e.g. 'ad' (default: abcde)")
    parser.add_argument("--out", default="reports", help="output folder (default: reports)")
    args = parser.parse_args(argv)
    s = settings or (FULL if args.full else QUICK)
    bad = set(args.only) - set(EXPERIMENTS)
    if bad:
        parser.error(f"--only takes letters from 'abcde', got {sorted(bad)}")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    sections, timings, start = [], [], time.perf_counter()
    for key in sorted(set(args.only)):
        t0 = time.perf_counter()
        print(f"[paper] ({key}) {EXPERIMENTS[key].__doc__.splitlines()[0]}", flush=True)
        sections.append(EXPERIMENTS[key].run(s, out))
        timings.append((key, time.perf_counter() - t0))
        print(f"[paper] ({key}) done in {timings[-1][1]:.0f} s", flush=True)
    total = time.perf_counter() - start
    path = out / "paper.md"
    summary = [line for sec in sections for line in sec.splitlines()
               if line.startswith(("**Acceptance", "**Summary"))]
    summary_md = "## Summary\n\n" + "\n".join(f"- {line}" for line in summary) + "\n\n" if summary else ""
    path.write_text(_header(s, args, timings, total) + summary_md + "\n".join(sections))
    print(f"[paper] wrote {path} in {total:.0f} s", flush=True)
    return path


def _header(s, args, timings, total) -> str:
    when = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    times = ", ".join(f"({k}) {t:.0f} s" for k, t in timings)
    return "\n".join([
        "# Reproducing the KAN paper with kanlab\n",
        f"Mode: **{s.name}** (`python -m benchmarks.paper{' --full' if args.full else ''}`), {when}, "
        f"torch {torch.__version__}, {torch.get_num_threads()} thread(s), {platform.machine()}, "
        f"Python {sys.version.split()[0]}. Total {total:.0f} s: {times}.\n",
        "Everything in float64. Paper numbers from Liu et al., \"KAN: Kolmogorov-Arnold Networks\" "
        "(arXiv 2404.19756) and pykan's tutorials (see `/work/shared/reference/paper-results.md`). "
        "Quick mode trains far less than the paper (fewer steps per grid, smaller grids and data), so "
        "its numbers are a smoke-level reproduction; `--full` runs the paper's sizes.\n",
        "" if s.name == "full" else "The full mode has not been run for these numbers: it needs several hours "
        "on 2 cores (41 special-function/Feynman rows at 1000 LBFGS steps each, scaling laws up to G = 100 "
        "with MLPs up to 5 x 100, a PINN with 10000 collocation points).\n", ""])


if __name__ == "__main__":
    main()
