"""`kanlab fit`: train a KAN on a table (regression or classification) and write its outputs.

The task comes from the target column (``--task auto``): strings, booleans, categories and
integer columns with at most :data:`MAX_INTEGER_CLASSES` distinct values are classification
(cross-entropy, one logit per class, the labels kept as names), everything else regression (MSE).
Outputs go to a temporary directory next to ``--out`` and are moved in at the end.
"""
from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from .cli_commands import format_formulas, write_png
from .cli_symbolic import scores, snap_if_it_keeps_the_fit
from .datasets.core import Dataset
from .datasets.tables import default_features, read_table, table_arrays
from .network import KAN
from .sparse_fit import fit_sparse

__all__ = ["run_fit", "FIT_OUTPUTS", "MAX_INTEGER_CLASSES", "DEFAULT_GRIDS", "PRUNE_LAMB", "PRUNE_SPARSE_LAMB"]

FIT_OUTPUTS = ("model.kan", "metrics.json", "formula.txt", "formula.tex", "network.png")
MAX_INTEGER_CLASSES = 20  # an integer target with more distinct values is read as a number
DEFAULT_GRIDS = (3, 5, 10)
PRUNE_LAMB, PRUNE_SPARSE_LAMB = 1e-3, 1e-2  # fit_sparse's two phases under --prune (--lamb replaces the first)


def run_fit(args) -> int:
    """Train and write ``--out``; under ``torchrun`` every rank trains and rank 0 writes."""
    from .distributed import init_from_env

    owned = init_from_env()
    try:
        return _run_fit(args)
    finally:
        if owned:
            import torch.distributed as dist

            dist.destroy_process_group()


def _run_fit(args) -> int:
    from .distributed import is_rank_zero

    out = Path(args.out)
    _check_out_dir(out)
    _check_fit_args(args)
    frame = read_table(args.data)
    features, targets = _columns(frame, args)
    notes: list[str] = []
    task = _task(frame, targets, args.task, notes)
    x = table_arrays(frame, features, args.data)
    y, classes = _targets(frame, targets, task, args.data)
    dtype = torch.float32 if args.float32 else torch.float64
    data, has_test = _split(x, y, dtype, args.test_size, args.seed, args.data)
    grids = _grids(args, data.train_input.shape[0], notes)
    kind = "cross_entropy" if task == "classification" else "mse"
    start = time.perf_counter()
    model, fit_kw = _train(args, data, features, targets if classes is None else classes, dtype, grids, kind, notes)
    report = snap_if_it_keeps_the_fit(model, data, has_test, kind, fit_kw, args) if args.symbolic else None
    if report is not None:
        model = report.pop("model")
        notes.append(report["message"])
    seconds = time.perf_counter() - start
    metrics = _metrics(model, data, has_test, kind, args, features, targets, classes, grids, seconds)
    metrics["symbolic"] = bool(report and report["kept"])
    if report is not None:
        metrics["symbolic_report"] = report
    formula_txt, formula_tex = _formulas(model, args, report, notes)
    if not is_rank_zero():
        return 0
    metrics["notes"] = notes
    meta = {"task": task, "targets": list(targets), "classes": classes}
    _write_outputs(out, model, data, metrics, formula_txt, formula_tex, meta)
    print(summary(metrics, out), flush=True)
    return 0


def _check_out_dir(out: Path) -> None:
    if not out.parent.is_dir():
        raise ValueError(f"--out {str(out)!r}: parent directory {str(out.parent)!r} does not exist")
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out {str(out)!r} exists and is not a directory")


def _check_fit_args(args) -> None:
    if args.steps < 0:
        raise ValueError(f"--steps must be >= 0, got {args.steps}")
    if not 0.0 <= args.test_size < 1.0:
        raise ValueError(f"--test-size must be in [0, 1), got {args.test_size}")
    if args.lamb is not None and not args.lamb >= 0:
        raise ValueError(f"--lamb must be >= 0, got {args.lamb}")
    if args.k < 1:
        raise ValueError(f"--k must be >= 1, got {args.k}")
    if args.lr is not None and not args.lr > 0:
        raise ValueError(f"--lr must be > 0, got {args.lr}")
    if args.batch_size is not None and args.batch_size < 1:
        raise ValueError(f"--batch-size must be >= 1, got {args.batch_size}")
    if not 0.0 <= args.symbolic_r2 <= 1.0:
        raise ValueError(f"--symbolic-r2 must be in [0, 1], got {args.symbolic_r2}")
    if not args.symbolic_tolerance >= 1.0:
        raise ValueError(f"--symbolic-tolerance must be >= 1 (a factor on the numeric model's error), "
                         f"got {args.symbolic_tolerance}")


def _columns(frame, args) -> tuple[list[str], list[str]]:
    targets = args.target
    features = args.features if args.features is not None else default_features(frame, targets)
    if not features:
        raise ValueError(f"{args.data}: no feature columns left besides the target(s) {targets}")
    overlap = sorted(set(features) & set(targets))
    if overlap:
        raise ValueError(f"column(s) {overlap} are both features and targets")
    missing = [c for c in targets if c not in frame.columns]
    if missing:
        raise ValueError(f"{args.data}: no column(s) {missing}; the table has {list(frame.columns)}")
    return features, targets


def _task(frame, targets, requested: str, notes: list) -> str:
    """``"classification"`` or ``"regression"`` from ``--task`` or the target column's type."""
    import pandas as pd

    if requested != "auto":
        task = requested
    else:
        series = frame[targets[0]]
        task = "regression"
        if not pd.api.types.is_numeric_dtype(series) or pd.api.types.is_bool_dtype(series):
            task = "classification"
        elif pd.api.types.is_integer_dtype(series):
            n = series.nunique()
            task = "classification" if n <= MAX_INTEGER_CLASSES else "regression"
            if task == "regression":
                notes.append(f"target {targets[0]!r} holds {n} distinct integers (> {MAX_INTEGER_CLASSES}): "
                             "fitted as regression; pass --task classification for classes")
    if task == "classification" and len(targets) != 1:
        raise ValueError(f"classification takes one target column, got {len(targets)}: {targets}")
    return task


def _targets(frame, targets, task: str, name: str):
    """Regression: float array ``(N, n_targets)``, None. Classification: class indices ``(N,)``
    and the class labels (JSON-friendly Python values, sorted)."""
    import pandas as pd

    if task == "regression":
        return table_arrays(frame, targets, name), None
    series = frame[targets[0]]
    if series.isna().any():
        raise ValueError(f"{name}: target column {targets[0]!r} has {int(series.isna().sum())} missing "
                         "value(s); drop or fill those rows first")
    try:
        codes, labels = pd.factorize(series, sort=True)
    except TypeError:  # mixed types (e.g. 1 and "a"): order them as text
        codes, labels = pd.factorize(series.astype(str), sort=True)
    if len(labels) < 2:
        raise ValueError(f"{name}: target column {targets[0]!r} has a single class "
                         f"({labels[0]!r}); classification needs at least 2")
    return codes.astype(np.int64), [_plain(v) for v in labels]


def _plain(value):
    """A class label as a plain Python value (for JSON): numpy scalars unwrapped."""
    return value.item() if hasattr(value, "item") else value


def _split(x: np.ndarray, y: np.ndarray, dtype, test_size: float, seed: int, name: str):
    """``(Dataset, has_test)``; without a test split the test tensors are one training row."""
    n = x.shape[0]
    n_test = int(round(n * test_size))
    if n - n_test < 2:
        raise ValueError(f"{name}: {n} row(s) is too few to train on (need at least 2 training rows)")
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed)).numpy()
    train, test = order[n_test:], order[:n_test] if n_test else order[n_test:][:1]
    xt = torch.tensor(x, dtype=dtype)
    yt = torch.tensor(y, dtype=dtype) if y.dtype.kind == "f" else torch.tensor(y)
    return Dataset(xt[train], yt[train], xt[test], yt[test]), n_test > 0


def _grids(args, n_train: int, notes: list) -> list[int]:
    """Grid sizes, each at most the number of training rows (finer grids are undetermined)."""
    if args.grid is None:
        grids = [g for g in DEFAULT_GRIDS if g <= n_train] or [1]
        if len(grids) < len(DEFAULT_GRIDS):
            notes.append(f"grid sizes above {n_train} (the training rows) left out of the default schedule")
        return grids
    too_fine = [g for g in args.grid if g > n_train]
    if too_fine:
        raise ValueError(f"--grid {','.join(map(str, args.grid))}: grid size(s) {too_fine} exceed the "
                         f"{n_train} training rows (a spline with more intervals than rows is undetermined); "
                         f"use sizes <= {n_train}")
    return list(args.grid)


def _train(args, data: Dataset, features, outputs, dtype, grids, kind: str, notes: list):
    """The numeric model: coarse grid first (sparse fit + prune under ``--prune``), then finer grids."""
    model = KAN(width=[len(features), *args.width, len(outputs)], grid_size=grids[0], spline_order=args.k,
                seed=args.seed, dtype=dtype, input_names=features, output_names=[str(o) for o in outputs])
    fit_kw = dict(steps=args.steps, optimizer=args.optimizer, lr=args.lr, batch_size=args.batch_size,
                  lamb=_plain_lamb(args), loss=kind, progress=not args.quiet, seed=args.seed)
    for i, grid in enumerate(grids):
        if i > 0:  # finer grids placed on the training activations (as `kanlab demo`)
            model = model.refine(grid, data.train_input)
        if i == 0 and args.prune:  # the pruning recipe: sparse fit on the coarse grid, prune, go on smaller
            fit_sparse(model, data, **dict(fit_kw, lamb=_prune_lamb(args), sparse_lamb=PRUNE_SPARSE_LAMB))
            model = model.prune(data.train_input)
            notes.append(f"pruned to width {model.width}")
        model.fit(data, **fit_kw)
    return model, fit_kw


def _prune_lamb(args) -> float:
    """The first sparse phase's penalty under --prune (--lamb replaces the default)."""
    return args.lamb if args.lamb else PRUNE_LAMB


def _plain_lamb(args) -> float:
    """The penalty of the plain fits: --lamb, or 0 after pruning (the sparse phases used it)."""
    return 0.0 if args.prune else (args.lamb or 0.0)


def _metrics(model: KAN, data: Dataset, has_test: bool, kind: str, args, features, targets, classes,
             grids, seconds: float) -> dict:
    task = "classification" if classes is not None else "regression"
    metrics: dict[str, object] = {"task": task, "data": str(args.data), "features": list(features),
                                  "targets": list(targets)}
    if classes is not None:
        metrics["classes"] = classes
    n_test = int(data.test_input.shape[0]) if has_test else 0
    metrics.update({"n_train": int(data.train_input.shape[0]), "n_test": n_test,
                    "width": model.width, "grid_sizes": grids, "grid_size": model.config.grid_size,
                    "n_params": model.n_params(), "pruned": bool(args.prune),
                    "dtype": str(next(model.parameters()).dtype).removeprefix("torch."),
                    "options": _options(args, grids)})
    metrics.update({f"train_{k}": v for k, v in scores(model, kind, data.train_input, data.train_label).items()})
    if has_test:
        metrics.update({f"test_{k}": v for k, v in scores(model, kind, data.test_input, data.test_label).items()})
    metrics["seconds"] = round(seconds, 3)
    return metrics


def _options(args, grids) -> dict:
    """The options training actually used (defaults filled in)."""
    opts = {"steps_per_grid": args.steps, "optimizer": args.optimizer,
            "lr": args.lr if args.lr is not None else {"lbfgs": 1.0, "adam": 1e-3, "adamw": 1e-3}.get(args.optimizer),
            "batch_size": args.batch_size, "lamb": _plain_lamb(args), "k": args.k, "grid_sizes": grids,
            "hidden": list(args.width), "test_size": args.test_size, "seed": args.seed, "task": args.task}
    if args.prune:
        opts["prune"] = {"lamb": _prune_lamb(args), "sparse_lamb": PRUNE_SPARSE_LAMB,
                         "steps": args.steps, "sparse_steps": args.steps}
    if args.symbolic:
        opts["symbolic"] = {"r2_threshold": args.symbolic_r2, "tolerance": args.symbolic_tolerance}
    return opts


def _formulas(model: KAN, args, report, notes: list) -> tuple[str, str]:
    if not args.symbolic:
        notes.append("formula.txt/.tex: no symbolic formula (run with --symbolic)")
        return ("# no symbolic formula: run `kanlab fit ... --symbolic`\n",
                "% no symbolic formula: run `kanlab fit ... --symbolic`\n")
    if not report["kept"]:
        line = " ".join(report["message"].split())
        return f"# no formula: {line}\n", f"% no formula: {line}\n"
    return format_formulas(model)


def _write_outputs(out: Path, model, data, metrics, formula_txt, formula_tex, meta) -> None:
    tmp = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.tmp-"))
    tmp.chmod(0o755)  # mkdtemp makes it private; it becomes the output directory
    try:
        model.save(tmp / "model.kan", metadata=meta)
        (tmp / "formula.txt").write_text(formula_txt)
        (tmp / "formula.tex").write_text(formula_tex)
        write_png(model, data.train_input, tmp / "network.png", metrics["notes"])
        (tmp / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
        _commit_dir(tmp, out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _commit_dir(tmp: Path, out: Path) -> None:
    """Move the finished outputs into ``out``: one rename when ``out`` is new or empty, else file
    by file (each an atomic replace), removing stale outputs of an earlier run."""
    if out.is_dir() and not any(out.iterdir()):
        out.rmdir()
    if not out.exists():
        os.replace(tmp, out)
        return
    for name in FIT_OUTPUTS:
        if not (tmp / name).exists() and (out / name).exists():
            (out / name).unlink()
    for item in tmp.iterdir():
        os.replace(item, out / item.name)


def summary(metrics: dict, out: Path) -> str:
    """What ``fit`` prints when it is done: the task, the scores, the model and where the files are."""
    what = (f"{len(metrics['classes'])}-class classification" if metrics["task"] == "classification"
            else "regression")
    lines = [f"kanlab fit: {what} of {', '.join(metrics['targets'])} from {len(metrics['features'])} "
             f"feature(s), {metrics['n_train']} train / {metrics['n_test']} test rows, {metrics['seconds']:.1f} s"]
    keys = ("accuracy", "log_loss") if metrics["task"] == "classification" else ("rmse", "r2")
    for split in ("train", "test"):
        if f"{split}_{keys[0]}" in metrics:
            lines.append(f"  {split:<5} " + ", ".join(f"{k.replace('_', '-')} {metrics[f'{split}_{k}']:.4g}"
                                                       for k in keys))
    if metrics["n_test"] == 0:
        lines.append("  test  none (--test-size 0)")
    lines.append(f"  model width {metrics['width']}, grid {metrics['grid_size']}, {metrics['n_params']} parameters")
    for note in metrics["notes"]:
        if not note.startswith("formula.txt"):
            lines.append(f"  note: {note}")
    files = " ".join(name for name in FIT_OUTPUTS if (out / name).exists())
    lines.append(f"  wrote {out}{os.sep}: {files}")
    return "\n".join(lines)
