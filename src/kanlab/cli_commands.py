"""What the `kanlab` subcommands do (argument parsing lives in :mod:`kanlab.cli`)."""
from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from .datasets.core import Dataset
from .datasets.tables import default_features, read_table, table_arrays
from .losses import evaluate, resolve_loss
from .network import KAN
from .sparse import fit_sparse

__all__ = ["run_fit", "run_predict", "run_formula", "run_plot", "FIT_OUTPUTS"]

FIT_OUTPUTS = ("model.kan", "metrics.json", "formula.txt", "formula.tex", "network.png")


# ---------------------------------------------------------------------- fit
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
    targets = args.target
    features = args.features if args.features is not None else default_features(frame, targets)
    if not features:
        raise ValueError(f"{args.data}: no feature columns left besides the target(s) {targets}")
    overlap = sorted(set(features) & set(targets))
    if overlap:
        raise ValueError(f"column(s) {overlap} are both features and targets")
    x = table_arrays(frame, features, args.data)
    y = table_arrays(frame, targets, args.data)
    dtype = torch.float32 if args.float32 else torch.float64
    data = _split(torch.tensor(x, dtype=dtype), torch.tensor(y, dtype=dtype), args.test_size, args.seed, args.data)
    start = time.perf_counter()
    model, notes = _train(args, data, features, targets, dtype)
    metrics = _metrics(model, data, args, features, targets, time.perf_counter() - start)
    formula_txt, formula_tex = _formulas(model, args, features, notes)
    if not is_rank_zero():
        return 0
    tmp = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.tmp-"))
    tmp.chmod(0o755)  # mkdtemp makes it private; it becomes the output directory
    try:
        model.save(tmp / "model.kan")
        (tmp / "formula.txt").write_text(formula_txt)
        (tmp / "formula.tex").write_text(formula_tex)
        _write_png(model, data.train_input, tmp / "network.png", notes)
        metrics["notes"] = notes
        (tmp / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
        _commit_dir(tmp, out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
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
    if args.lamb < 0:
        raise ValueError(f"--lamb must be >= 0, got {args.lamb}")
    if args.k < 1:
        raise ValueError(f"--k must be >= 1, got {args.k}")


def _split(x, y, test_size: float, seed: int, name: str) -> Dataset:
    n = x.shape[0]
    n_test = int(round(n * test_size)) if test_size > 0 else 0
    if n - n_test < 2:
        raise ValueError(f"{name}: {n} row(s) is too few to train on (need at least 2 training rows)")
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    train, test = order[n_test:], order[:n_test] if n_test else order[n_test:]
    return Dataset(x[train], y[train], x[test], y[test])


def _train(args, data: Dataset, features, targets, dtype):
    notes = []
    model = KAN(width=[len(features), *args.width, len(targets)], grid_size=args.grid[0], spline_order=args.k,
                seed=args.seed, dtype=dtype, input_names=features, output_names=targets)
    fit_kw = dict(steps=args.steps, optimizer=args.optimizer, lr=args.lr, batch_size=args.batch_size,
                  lamb=args.lamb, progress=not args.quiet, seed=args.seed)
    for i, grid in enumerate(args.grid):
        if i > 0:  # finer grids placed on the training activations (as `kanlab demo`)
            model = model.refine(grid, data.train_input)
        if i == 0 and args.prune:  # the pruning recipe: sparse fit on the coarse grid, prune, go on smaller
            fit_sparse(model, data, **dict(fit_kw, lamb=args.lamb or 1e-3))
            model = model.prune(data.train_input)
            notes.append(f"pruned to width {model.width}")
            fit_kw["lamb"] = 0.0
        model.fit(data, **fit_kw)
    if args.symbolic:  # snap to closed forms, then polish their affine parameters
        model.auto_symbolic(data.train_input)
        model.fit(data, **dict(fit_kw, update_grid=False))
    return model, notes


def _metrics(model: KAN, data: Dataset, args, features, targets, seconds: float) -> dict:
    kind, loss_fn = resolve_loss("mse")
    train = evaluate(model, kind, loss_fn, data.train_input, data.train_label)
    test = evaluate(model, kind, loss_fn, data.test_input, data.test_label)
    return {"data": str(args.data), "features": list(features), "targets": list(targets),
            "n_train": int(data.train_input.shape[0]), "n_test": int(data.test_input.shape[0]),
            "width": model.width, "grid_sizes": list(args.grid), "grid_size": model.config.grid_size,
            "steps_per_grid": args.steps, "optimizer": args.optimizer, "lamb": args.lamb,
            "pruned": bool(args.prune), "symbolic": bool(args.symbolic), "n_params": model.n_params(),
            "dtype": str(next(model.parameters()).dtype).removeprefix("torch."),
            "train_rmse": train["rmse"], "test_rmse": test["rmse"], "seconds": round(seconds, 3)}


def _formulas(model: KAN, args, features, notes: list) -> tuple[str, str]:
    if not args.symbolic:
        notes.append("formula.txt/.tex: no symbolic formula (run with --symbolic)")
        return ("# no symbolic formula: run `kanlab fit ... --symbolic`\n",
                "% no symbolic formula: run `kanlab fit ... --symbolic`\n")
    return _format_formulas(model, features)


def _format_formulas(model: KAN, features=None) -> tuple[str, str]:
    import sympy

    names = list(features or model.config.input_names or [f"x{i}" for i in range(model.n_inputs)])
    exprs = model.symbolic_formula(var_names=names)
    exprs = list(exprs) if isinstance(exprs, (list, tuple)) else [exprs]
    outputs = model.config.output_names or [f"y{j}" for j in range(len(exprs))]
    text = "".join(f"{o} = {sympy.sstr(e)}\n" for o, e in zip(outputs, exprs))
    tex = "".join(f"{sympy.latex(sympy.Symbol(o))} = {sympy.latex(e)}\n" for o, e in zip(outputs, exprs))
    return text, tex


def _write_png(model: KAN, x, path: Path, notes: list) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        fig = model.plot(x)
    except (ImportError, NotImplementedError) as err:
        notes.append(f"network.png not written: plotting unavailable ({err})")
        return
    fig.savefig(path, dpi=120, bbox_inches="tight")
    import matplotlib.pyplot as plt

    plt.close(fig)


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


# ---------------------------------------------------------------------- predict / formula / plot
def _model_inputs(model: KAN, data_path):
    frame = read_table(data_path)
    names = model.config.input_names
    if names is None:
        names = [c for c in frame.columns if c not in (model.config.output_names or ())][: model.n_inputs]
        if len(names) != model.n_inputs:
            raise ValueError(f"{data_path}: the model needs {model.n_inputs} input columns, the table has "
                             f"{len(names)}")
    dtype = next(model.parameters()).dtype
    return torch.tensor(table_arrays(frame, list(names), str(data_path)), dtype=dtype), frame


def run_predict(args) -> int:
    import pandas as pd

    from .io import load

    model = load(args.model)
    x, _ = _model_inputs(model, args.data)
    with torch.no_grad():
        pred = model(x).numpy()
    names = list(model.config.output_names or [f"y{j}" for j in range(model.n_outputs)])
    frame = pd.DataFrame(pred.astype(np.float64), columns=names)
    if args.out is None:
        frame.to_csv(sys.stdout, index=False, float_format="%.17g")
        return 0
    out = Path(args.out)
    if not out.parent.is_dir():
        raise ValueError(f"--out {str(out)!r}: directory {str(out.parent)!r} does not exist")
    fd, tmp = tempfile.mkstemp(dir=out.parent, prefix=f".{out.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", newline="") as f:
            frame.to_csv(f, index=False, float_format="%.17g")
        os.replace(tmp, out)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return 0


def run_formula(args) -> int:
    from .io import load

    model = load(args.model)
    text, tex = _format_formulas(model)
    sys.stdout.write(tex if args.latex else text)
    return 0


def run_plot(args) -> int:
    from .io import load

    model = load(args.model)
    x, _ = _model_inputs(model, args.data)
    out = Path(args.out)
    if not out.parent.is_dir():
        raise ValueError(f"--out {str(out)!r}: directory {str(out.parent)!r} does not exist")
    notes: list = []
    _write_png(model, x, out, notes)
    if notes:
        raise ImportError(notes[0])
    return 0
