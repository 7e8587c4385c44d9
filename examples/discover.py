"""Discover exp(sin(pi x) + y^2) from data: fit sparse -> prune -> refine -> auto_symbolic -> fit -> formula.

    PYTHONPATH=src python examples/discover.py [--seed 0] [--n-train 1000]

[2,5,1] is trained sparse (kanlab.sparse_fit.fit_sparse: lamb=1e-3, then 1e-2) and pruned
to [2,1,1]; the pruned KAN is trained, refined to a 10-interval grid,
its edges are snapped to library functions, the symbolic parameters are polished and
the formula printed (float64 throughout).
"""
import argparse
import math

import torch

import kanlab
from kanlab.datasets import from_function
from kanlab.sparse_fit import fit_sparse
from kanlab.symbolic import polish_symbolic, to_latex


def target(x):
    return torch.exp(torch.sin(math.pi * x[:, [0]]) + x[:, [1]] ** 2)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--n-train", type=int, default=1000)
    args = parser.parse_args()
    data = from_function(target, n_var=2, ranges=(-1, 1), n_train=args.n_train, n_test=1000,
                         seed=args.seed, dtype=torch.float64)
    x = data.train_input

    model = kanlab.KAN([2, 5, 1], grid_size=3, seed=args.seed, dtype=torch.float64)
    history = fit_sparse(model, data, steps=50, lamb=1e-3, sparse_lamb=1e-2, progress=False)
    print(f"sparse [2, 5, 1]: test RMSE {history.test_rmse[-1]:.2e}, "
          f"hidden node scores {[round(v, 3) for v in model.attribute(x).nodes[1].tolist()]}")
    model = model.prune(x)
    history = model.fit(data, steps=30, progress=False)
    print(f"pruned to {model.width}: test RMSE {history.test_rmse[-1]:.2e}")
    model = model.refine(10)
    history = model.fit(data, steps=30, progress=False)
    print(f"refined to G=10: test RMSE {history.test_rmse[-1]:.2e}")
    for choice in model.auto_symbolic(x):
        print(f"  edge (l={choice.l}, i={choice.i}, j={choice.j}) -> {choice.name:8s} r2 = {choice.r2:.10f}")
    model.fit(data, steps=20, update_grid=False, progress=False)
    rmse = polish_symbolic(model, x, data.train_label)
    print(f"symbolic KAN: train RMSE {rmse:.2e}")
    formula = model.symbolic_formula()[0]
    print("formula:", formula)
    print("LaTeX:  ", to_latex(formula))


if __name__ == "__main__":
    main()
