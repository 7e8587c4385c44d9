"""The `kanlab` command."""
from __future__ import annotations

import argparse
import sys

__all__ = ["main"]


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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="kanlab", description="Kolmogorov-Arnold Networks")
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="grid extension on exp(sin(pi x) + y^2), one row per grid")
    demo.add_argument("--steps", type=int, default=50, help="LBFGS steps per grid size")
    demo.add_argument("--quiet", action="store_true", help="no progress bars")
    demo.set_defaults(func=_demo)
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
