"""The `kanlab` command: fit / predict / formula / plot / demo.

Errors the user can fix (a missing file or column, non-numeric columns, NaNs, an empty table,
bad options) print one line ``kanlab: error: ...`` on stderr and exit with code 2; ``fit``
writes its outputs into a temporary directory next to ``--out`` and moves them in at the end,
so nothing half-written is left in ``--out``.
"""
from __future__ import annotations

import argparse
import sys

__all__ = ["main", "build_parser"]


def _demo(args) -> int:
    from .demo import grid_extension

    print("Grid extension on f(x, y) = exp(sin(pi x) + y^2): 1000 train / 1000 test points on [-1, 1]^2, "
          f"float64, LBFGS {args.steps} steps per grid, best of 3 seeds on the first grid")
    print(f"{'width':<10} {'seed':>4} {'grid':>5} {'params':>7} {'train RMSE':>11} {'test RMSE':>11} {'seconds':>8}")
    for width in ([2, 1, 1], [2, 5, 1]):
        for row in grid_extension(width, steps=args.steps, progress=not args.quiet):
            print(f"{str(list(row.width)):<10} {row.seed:>4} {row.grid_size:>5} {row.n_params:>7} "
                  f"{row.train_rmse:>11.3e} {row.test_rmse:>11.3e} {row.seconds:>8.2f}", flush=True)
    return 0


def _fit(args) -> int:
    from .cli_commands import run_fit

    return run_fit(args)


def _predict(args) -> int:
    from .cli_commands import run_predict

    return run_predict(args)


def _formula(args) -> int:
    from .cli_commands import run_formula

    return run_formula(args)


def _plot(args) -> int:
    from .cli_commands import run_plot

    return run_plot(args)


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
    p = sub.add_parser("fit", help="train a KAN on a CSV / Parquet table and write model, metrics, "
                                   "formula and figure into --out")
    p.add_argument("data", help="CSV or Parquet file")
    p.add_argument("--target", type=_names, required=True, help="target column(s), comma-separated")
    p.add_argument("--features", type=_names, default=None, help="feature columns (default: all others)")
    p.add_argument("--width", type=_int_list, default=[5], help="hidden layer widths, e.g. 5,3 (default 5)")
    p.add_argument("--grid", type=_int_list, default=[3, 5, 10],
                   help="grid sizes: fit, refine, fit again (default 3,5,10)")
    p.add_argument("--k", type=int, default=3, help="spline order (default 3)")
    p.add_argument("--steps", type=int, default=50, help="optimizer steps per grid size (default 50)")
    p.add_argument("--optimizer", choices=["lbfgs", "adam", "adamw"], default="lbfgs")
    p.add_argument("--lr", type=float, default=None)
    p.add_argument("--batch-size", type=int, default=None)
    p.add_argument("--lamb", type=float, default=0.0, help="sparsity regularization (default 0)")
    p.add_argument("--prune", action="store_true", help="sparse fit (fit_sparse, --lamb or 1e-3) on the first grid, prune, "
                   "then fit the smaller model on every grid")
    p.add_argument("--symbolic", action="store_true", help="snap edges to closed forms; write the formula")
    p.add_argument("--test-size", type=float, default=0.2, help="held-out fraction of rows (default 0.2)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--float32", action="store_true", help="train in float32 (default float64)")
    p.add_argument("--out", required=True, help="output directory")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=_fit)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="kanlab", description="Kolmogorov-Arnold Networks")
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="grid extension on exp(sin(pi x) + y^2), one row per grid")
    demo.add_argument("--steps", type=int, default=50, help="LBFGS steps per grid size")
    demo.add_argument("--quiet", action="store_true", help="no progress bars")
    demo.set_defaults(func=_demo)
    _add_fit(sub)
    pred = sub.add_parser("predict", help="predict with a saved model on a CSV / Parquet table")
    pred.add_argument("model", help="a .kan file")
    pred.add_argument("data", help="CSV or Parquet file with the model's input columns")
    pred.add_argument("--out", default=None, help="CSV file for the predictions (default: stdout)")
    pred.set_defaults(func=_predict)
    form = sub.add_parser("formula", help="print a saved model's symbolic formula")
    form.add_argument("model", help="a .kan file")
    form.add_argument("--latex", action="store_true", help="LaTeX instead of plain text")
    form.set_defaults(func=_formula)
    plot = sub.add_parser("plot", help="draw a saved model's network on data into an image file")
    plot.add_argument("model", help="a .kan file")
    plot.add_argument("data", help="CSV or Parquet file with the model's input columns")
    plot.add_argument("--out", default="network.png", help="image file (default network.png)")
    plot.set_defaults(func=_plot)
    from .cli_discover import add_discover

    add_discover(sub)
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (ValueError, TypeError, OSError, ImportError, NotImplementedError) as err:
        message = " ".join(str(err).split()) or type(err).__name__
        print(f"kanlab: error: {message}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
