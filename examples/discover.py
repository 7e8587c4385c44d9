"""Discover exp(sin(pi x) + y^2) from data: fit sparse -> prune -> refine -> auto_symbolic -> fit -> formula.

    PYTHONPATH=src python examples/discover.py
"""
import importlib.util
import math

import torch

import kanlab
from kanlab.datasets import from_function
from kanlab.symbolic import polish_symbolic, to_latex


def target(x):
    return torch.exp(torch.sin(math.pi * x[:, [0]]) + x[:, [1]] ** 2)


def pruned_model(data):
    """Sparse [2, 5, 1] fit, then pruning; [2, 1, 1] trained directly when pruning is unavailable."""
    try:
        if importlib.util.find_spec("kanlab.pruning") is None:
            raise ImportError("kanlab.pruning is not installed")
        model = kanlab.KAN([2, 5, 1], grid_size=5, seed=1, dtype=torch.float64)
        model.fit(data, steps=50, lamb=1e-3, progress=False)
        model = model.prune(data.train_input)
        if model.width != [2, 1, 1]:
            raise RuntimeError(f"pruning left {model.width}")
    except (ImportError, AttributeError, RuntimeError) as err:
        print(f"(pruning not used: {err}; starting from the pruned shape [2, 1, 1])")
        model = kanlab.KAN([2, 1, 1], grid_size=5, seed=1, dtype=torch.float64)
    model.fit(data, steps=30, progress=False)
    return model


def main():
    data = from_function(target, n_var=2, ranges=(-1, 1), n_train=300, n_test=1000, seed=0, dtype=torch.float64)
    model = pruned_model(data)
    model = model.refine(10)
    history = model.fit(data, steps=30, progress=False)
    print(f"spline KAN {model.width}: test RMSE {history.test_rmse[-1]:.2e}")
    for choice in model.auto_symbolic(data.train_input):
        print(f"  edge (l={choice.l}, i={choice.i}, j={choice.j}) -> {choice.name:8s} r2 = {choice.r2:.10f}")
    model.fit(data, steps=20, update_grid=False, progress=False)
    rmse = polish_symbolic(model, data.train_input, data.train_label)
    print(f"symbolic KAN: train RMSE {rmse:.2e}")
    formula = model.symbolic_formula()[0]
    print("formula:", formula)
    print("LaTeX:  ", to_latex(formula))


if __name__ == "__main__":
    main()
