"""`kanlab discover data.csv --target y`: the formula behind a table (kanlab.discover)."""
from __future__ import annotations

__all__ = ["add_discover", "run_discover"]


def add_discover(sub) -> None:
    """Register the ``discover`` subcommand on the ``kanlab`` subparsers ``sub``."""
    from .cli import _names

    p = sub.add_parser("discover", help="find a closed-form formula for a column of a CSV / Parquet table")
    p.add_argument("data", help="CSV or Parquet file")
    p.add_argument("--target", required=True, help="the target column")
    p.add_argument("--features", type=_names, default=None, help="feature columns (default: all others)")
    p.add_argument("--time-budget", type=float, default=120.0, help="seconds (default 120)")
    p.add_argument("--test-size", type=float, default=0.2, help="held-out fraction of rows (default 0.2)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--latex", action="store_true", help="print the formula as LaTeX too")
    p.add_argument("--tree", action="store_true", help="print the structure tree")
    p.add_argument("--model", default=None, help="save the formula's KAN to this .kan file")
    p.set_defaults(func=run_discover)


def run_discover(args) -> int:
    from .datasets.tables import default_features, read_table, table_arrays
    from .discovery import discover

    frame = read_table(args.data)
    features = args.features or default_features(frame, [args.target])
    if not features:
        raise ValueError(f"{args.data!r}: no feature columns besides the target {args.target!r}")
    x = table_arrays(frame, features, name=args.data)
    y = table_arrays(frame, [args.target], name=args.data)[:, 0]
    result = discover(x, y, names=features, time_budget=args.time_budget, test_size=args.test_size, seed=args.seed)
    if args.tree:
        print(result.tree)
    print(result.summary())
    if args.latex:
        from .symbolic import to_latex

        print("LaTeX:", to_latex(result.formula))
    if args.model:
        if result.model is result.surrogate:
            print("note: the formula has no KAN form; saving the numeric surrogate")
        result.model.save(args.model)
    return 0
