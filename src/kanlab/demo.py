"""The main job: grid extension on f(x, y) = exp(sin(pi x) + y^2) (the KAN paper's first example)."""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Iterator

import torch

from .datasets import from_function
from .network import KAN

__all__ = ["DemoRow", "grid_extension", "paper_function"]


@dataclass(frozen=True)
class DemoRow:
    width: tuple
    seed: int
    grid_size: int
    n_params: int
    train_rmse: float
    test_rmse: float
    seconds: float


def paper_function(x: torch.Tensor) -> torch.Tensor:
    """f(x, y) = exp(sin(pi x) + y^2). Shape: ``(N, 2)`` -> ``(N, 1)``."""
    return torch.exp(torch.sin(torch.pi * x[:, [0]]) + x[:, [1]] ** 2)


def grid_extension(width=(2, 1, 1), grids=(3, 5, 10, 20, 50), steps: int = 50, n_train: int = 1000,
                   n_test: int = 1000, seed: int = 0, restarts: int = 3, data_seed: int = 0,
                   grid_eps: float = 1.0, dtype=torch.float64, progress: bool = False) -> Iterator[DemoRow]:
    """Fit with LBFGS at each grid size, refining between them; yields one row per grid.

    Tiny KANs such as [2, 1, 1] have local minima on the coarsest grid (an edge that
    stays half-rectified like its SiLU base), so the first grid is fitted from
    ``restarts`` seeds (``seed``, ``seed + 1``, ...) and the best training fit goes on.
    Grid updates use uniform grids over the activations' range (``grid_eps=1``): with
    uniformly spread inputs that approximates better than quantile grids (test RMSE at
    G=50: 4.8e-6 against 7.4e-6 with the paper's 0.02).
    """
    data = from_function(paper_function, n_var=2, n_train=n_train, n_test=n_test, seed=data_seed, dtype=dtype)
    best = None
    for s in range(seed, seed + max(1, restarts)):
        model = KAN(list(width), grid_size=grids[0], seed=s, grid_eps=grid_eps, dtype=dtype)
        start = time.perf_counter()
        hist = model.fit(data, steps=steps, optimizer="lbfgs", progress=progress, seed=s)
        row = DemoRow(tuple(width), s, grids[0], model.n_params(), hist.train_rmse[-1], hist.test_rmse[-1],
                      time.perf_counter() - start)
        if best is None or row.train_rmse < best[1].train_rmse:
            best = (model, row)
    model, row = best
    yield row
    for g in grids[1:]:
        model = model.refine(g, data.train_input)
        start = time.perf_counter()
        hist = model.fit(data, steps=steps, optimizer="lbfgs", progress=progress, seed=row.seed)
        yield DemoRow(tuple(width), row.seed, g, model.n_params(), hist.train_rmse[-1], hist.test_rmse[-1],
                      time.perf_counter() - start)
