"""Does training depend on the seed? The plain calls from seeds 0-9, grid by grid.

Run ``python benchmarks/seed_sweep.py [--jobs 2] [--seeds 10] [--first-seed 0] [--only expsin]``
(``--first-seed 10`` runs seeds 10-19, a check that a change did not just suit seeds 0-9). For each
problem: 1000 training / 1000 test points on [-1, 1]^d (float64), ``KAN(width,
grid_size=3, seed=s)``, ``fit(data, steps=50)``, then ``model.refine(G)`` and ``fit(data,
steps=50)`` for G = 5, 10, 20, 50: nothing but the defaults. It prints, per problem and
grid, the best seed's test RMSE and the worst seed's as a multiple of it (the target: every
seed within 3x of the best), then every seed's final RMSE.
"""
from __future__ import annotations

import argparse
import math
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "src"))
import kanlab  # noqa: E402

GRIDS = (3, 5, 10, 20, 50)


def _expsin(x):
    return torch.exp(torch.sin(math.pi * x[:, [0]]) + x[:, [1]] ** 2)


def _gauss(x):
    return torch.exp(-2 * ((x[:, [0]] - 0.2) ** 2 + x[:, [1]] ** 2))


def _sqrt(x):
    return torch.sqrt(1 + x[:, [0]] ** 2 + x[:, [1]] ** 2)


def _sum3(x):
    return torch.exp(0.5 * torch.sin(math.pi * x[:, [0]]) + 0.5 * x[:, [1]] ** 2 + torch.tanh(x[:, [2]]))


def _wave(x):
    return torch.sin(3 * x[:, [0]]) * torch.exp(x[:, [0]])


def _product(x):
    return x[:, [0]] * x[:, [1]]


def _deep(x):
    return torch.tanh(2 * torch.sqrt(1 + x[:, [0]] ** 2 + x[:, [1]] ** 2) - 2)


def _four(x):
    return torch.exp(0.5 * (torch.sin(math.pi * (x[:, [0]] ** 2 + x[:, [1]] ** 2))
                            + torch.sin(math.pi * (x[:, [2]] ** 2 + x[:, [3]] ** 2))))


# name -> (function, number of inputs, width); [n, 1, 1] widths represent the function exactly
PROBLEMS = {
    "exp(sin(pi x) + y^2)": (_expsin, 2, [2, 1, 1]),
    "exp(sin(pi x) + y^2), wide": (_expsin, 2, [2, 5, 1]),
    "exp(-2((x-0.2)^2 + y^2))": (_gauss, 2, [2, 1, 1]),
    "sqrt(1 + x^2 + y^2)": (_sqrt, 2, [2, 1, 1]),
    "exp(sin(pi x)/2 + y^2/2 + tanh z)": (_sum3, 3, [3, 1, 1]),
    "sin(3x) exp(x)": (_wave, 1, [1, 3, 1]),
    "x y": (_product, 2, [2, 2, 1]),
    "exp((sin(pi(x1^2+x2^2)) + sin(pi(x3^2+x4^2)))/2)": (_four, 4, [4, 2, 1, 1]),
    "tanh(2 sqrt(1 + x^2 + y^2) - 2)": (_deep, 2, [2, 1, 1, 1]),
}


def chain(name: str, seed: int, grids=GRIDS, steps: int = 50, n: int = 1000, threads: int = 1,
          optimizer: str = "auto") -> list[float]:
    """Test RMSE after each grid of the plain calls from ``seed``."""
    torch.set_num_threads(threads)
    fn, n_var, width = PROBLEMS[name]
    data = kanlab.datasets.from_function(fn, n_var=n_var, n_train=n, n_test=n, seed=0, dtype=torch.float64)
    model = kanlab.KAN(width, grid_size=grids[0], seed=seed, dtype=torch.float64)
    out = []
    for i, g in enumerate(grids):
        if i:
            model = model.refine(g)
        out.append(model.fit(data, steps=steps, optimizer=optimizer, progress=False).test_rmse[-1])
    return out


def _chain_job(args):
    return args, chain(*args)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--first-seed", type=int, default=0, help="seeds run from this one")
    parser.add_argument("--jobs", type=int, default=1, help="processes (one thread each)")
    parser.add_argument("--only", help="problems whose name contains this")
    parser.add_argument("--optimizer", default="auto", help="fit's optimizer (default: fit's default, auto)")
    args = parser.parse_args(argv)
    if args.seeds < 1 or args.first_seed < 0:
        parser.error("--seeds must be at least 1 and --first-seed at least 0")
    seeds = range(args.first_seed, args.first_seed + args.seeds)
    names = [n for n in PROBLEMS if args.only is None or args.only in n]
    jobs = [(name, s, GRIDS, 50, 1000, 1, args.optimizer) for name in names for s in seeds]
    start = time.perf_counter()
    with ProcessPoolExecutor(args.jobs, mp_context=get_context("spawn")) as pool:
        results = {job[:2]: ends for job, ends in pool.map(_chain_job, jobs)}
    print(f"seeds {seeds[0]}-{seeds[-1]}, 1000/1000 points, float64, 50 steps per grid, optimizer={args.optimizer!r} "
          f"({time.perf_counter() - start:.0f} s)\n")
    print("| problem | width | " + " | ".join(f"G={g} best, worst/best" for g in GRIDS) + " |")
    print("|---|---|" + "---|" * len(GRIDS))
    for name in names:
        rows = [results[(name, s)] for s in seeds]
        cells = []
        for j in range(len(GRIDS)):
            col = [r[j] for r in rows]
            cells.append(f"{min(col):.2e}, {max(col) / min(col):.2f}x")
        print(f"| {name} | {PROBLEMS[name][2]} | " + " | ".join(cells) + " |")
    print("\nfinal test RMSE per seed:")
    for name in names:
        print(f"- {name}: " + ", ".join(f"{results[(name, s)][-1]:.2e}" for s in seeds))


if __name__ == "__main__":
    main()
