"""The `kanlab` command: fit / predict / formula / plot / demo / build-kernels / discover.

Every failure a user can cause (a missing file or column, non-numeric columns, NaNs, an empty
table, bad options, training that diverges, a model too large for memory) prints one line
``kanlab: error: ...`` on stderr and exits with code 2. A closed pipe (``kanlab predict ... |
head``) ends quietly with code 141, as other Unix tools do. ``fit`` writes its outputs into a
temporary directory next to ``--out`` and moves them in at the end, so nothing half-written is
left in ``--out``.
"""
from __future__ import annotations

import argparse
import os
import sys

__all__ = ["main", "build_parser"]


def _demo(args) -> int:
    from .cli_commands import build_extension
    from .demo import grid_extension

    if not args.quiet:  # the one-time C++ build happens here, before anything is timed
        print("kanlab demo: loading the C++ kernels (built once per machine, ~2 min the first time)",
              file=sys.stderr, flush=True)
    build_extension()
    print("Grid extension on f(x, y) = exp(sin(pi x) + y^2): 1000 train / 1000 test points on [-1, 1]^2, "
          f"float64, {args.steps} steps per grid of fit's default optimizer, seed 0")
    print(f"{'width':<10} {'seed':>4} {'grid':>5} {'params':>7} {'train RMSE':>11} {'test RMSE':>11} {'seconds':>8}")
    for width in ([2, 1, 1], [2, 5, 1]):
        for row in grid_extension(width, steps=args.steps, progress=not args.quiet):
            print(f"{str(list(row.width)):<10} {row.seed:>4} {row.grid_size:>5} {row.n_params:>7} "
                  f"{row.train_rmse:>11.3e} {row.test_rmse:>11.3e} {row.seconds:>8.2f}", flush=True)
    return 0


def _command(module: str, name: str):
    """A subcommand that imports its implementation only when it runs (``kanlab --help`` stays fast)."""
    def run(args) -> int:
        import importlib

        return getattr(importlib.import_module(f"kanlab.{module}"), name)(args)

    return run


def _int_list(text: str) -> list[int]:
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers such as 5,3, got {text!r}") from None
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers >= 1, got {text!r}")
    return values


def _names(text: str) -> list[str]:
    return [v.strip() for v in text.split(",") if v.strip()]


def _add_fit(sub) -> None:
    p = sub.add_parser("fit", help="train a KAN on a CSV / Parquet table (regression or classification) and "
                                   "write model, metrics, formula and figure into --out")
    p.add_argument("data", help="CSV or Parquet file")
    p.add_argument("--target", type=_names, required=True, help="target column(s), comma-separated")
    p.add_argument("--features", type=_names, default=None, help="feature columns (default: all others)")
    p.add_argument("--task", type=str.lower, choices=["auto", "classification", "regression"], default="auto",
                   help="auto (default): classification for a text, boolean or category target, or integers "
                        "with at most 20 distinct values; regression otherwise")
    p.add_argument("--width", type=_int_list, default=[5], help="hidden layer widths, e.g. 5,3 (default 5)")
    p.add_argument("--grid", type=_int_list, default=None,
                   help="grid sizes: fit, refine, fit again (default 3,5,10; each at most the training rows)")
    p.add_argument("--k", type=int, default=3, help="spline order (default 3)")
    p.add_argument("--steps", type=int, default=50, help="optimizer steps per grid size (default 50)")
    p.add_argument("--optimizer", type=str.lower, choices=["auto", "lm", "lbfgs", "adam", "adamw"], default="auto",
                   help="auto (default): Levenberg-Marquardt for small full-batch regression, else L-BFGS")
    p.add_argument("--lr", type=float, default=None, help="learning rate (default 1 for lbfgs, 1e-3 for adam)")
    p.add_argument("--batch-size", type=int, default=None)
    p.add_argument("--lamb", type=float, default=None,
                   help="sparsity regularization (default 0; under --prune the first sparse phase uses 1e-3)")
    p.add_argument("--prune", action="store_true", help="sparse fit (fit_sparse: --lamb or 1e-3, then 1e-2) on "
                   "the first grid, prune, then fit the smaller model on every grid")
    p.add_argument("--symbolic", action="store_true",
                   help="snap edges to closed forms and write the formula, if that keeps the fit")
    p.add_argument("--symbolic-r2", type=float, default=0.99,
                   help="--symbolic: every edge needs a library function with at least this r^2 (default 0.99)")
    p.add_argument("--symbolic-tolerance", type=float, default=2.0,
                   help="--symbolic: keep the formula only if its test error is at most this factor times "
                        "the numeric model's (default 2)")
    p.add_argument("--test-size", type=float, default=0.2,
                   help="held-out fraction of rows (default 0.2; 0: no test set, no test metrics)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--float32", action="store_true", help="train in float32 (default float64)")
    p.add_argument("--out", required=True, help="output directory")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=_command("cli_fit", "run_fit"))


def _add_others(sub) -> None:
    pred = sub.add_parser("predict", help="predict with a saved model on a CSV / Parquet table")
    pred.add_argument("model", help="a .kan file")
    pred.add_argument("data", help="CSV or Parquet file with the model's input columns")
    pred.add_argument("--out", default=None,
                      help="output file, format by suffix: .csv, .tsv, .parquet, .json (default: CSV on stdout)")
    pred.add_argument("--proba", action="store_true", help="classifiers: add one probability column per class")
    pred.set_defaults(func=_command("cli_commands", "run_predict"))
    form = sub.add_parser("formula", help="print a saved model's symbolic formula")
    form.add_argument("model", help="a .kan file")
    form.add_argument("--latex", action="store_true", help="LaTeX instead of plain text")
    form.set_defaults(func=_command("cli_commands", "run_formula"))
    plot = sub.add_parser("plot", help="draw a saved model's network on data into an image file")
    plot.add_argument("model", help="a .kan file")
    plot.add_argument("data", help="CSV or Parquet file with the model's input columns")
    plot.add_argument("--out", default="network.png", help="image file (default network.png)")
    plot.set_defaults(func=_command("cli_commands", "run_plot"))
    build = sub.add_parser("build-kernels", help="build the optional C++ kernels now (once per machine, ~2 min) "
                                                 "instead of inside the first large fit")
    build.set_defaults(func=_command("cli_commands", "run_build_kernels"))


def build_parser() -> argparse.ArgumentParser:
    from . import __version__

    parser = argparse.ArgumentParser(prog="kanlab", description="Kolmogorov-Arnold Networks")
    parser.add_argument("--version", action="version", version=f"kanlab {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="grid extension on exp(sin(pi x) + y^2), one row per grid")
    demo.add_argument("--steps", type=int, default=50, help="LBFGS steps per grid size")
    demo.add_argument("--quiet", action="store_true", help="no progress bars")
    demo.set_defaults(func=_demo)
    _add_fit(sub)
    _add_others(sub)
    from .cli_discover import add_discover

    add_discover(sub)
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except BrokenPipeError:
        return _closed_pipe()
    except KeyboardInterrupt:
        print("kanlab: interrupted", file=sys.stderr)
        return 130
    except Exception as err:  # noqa: BLE001 - sorted into user errors (one line) and bugs (traceback)
        message = _user_error(err)
        if message is None:
            raise
        print(f"kanlab: error: {message}", file=sys.stderr)
        return 2


def _user_error(err: Exception) -> str | None:
    """The one-line message for a failure the user can cause, or None for a bug."""
    from .training import TrainingDiverged

    text = " ".join(str(err).split()) or type(err).__name__
    if isinstance(err, TrainingDiverged):
        return f"{text} (are the targets on a sane scale? values near 1e200 overflow the loss)"
    if isinstance(err, MemoryError) or (isinstance(err, RuntimeError) and "allocate" in text):
        return f"out of memory ({text[:200]}); try a smaller --grid, --width or --batch-size"
    if isinstance(err, (ValueError, TypeError, OSError, ImportError, NotImplementedError)):
        return text
    return None


def _closed_pipe() -> int:
    """The reader went away (``| head``): stop quietly, without the interpreter's flush error."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass
    return 141


if __name__ == "__main__":
    sys.exit(main())
