"""The KAN paper's toy functions, Poisson problem and continual-learning task (Liu et al. 2024)."""
from __future__ import annotations

import math
from typing import NamedTuple

import torch
from torch import Tensor

from .core import Dataset
from .registry import PaperFunction, sample_function

__all__ = ["TOY", "toy_dataset", "PoissonProblem", "poisson_solution", "poisson_source",
           "poisson_problem", "PEAK_CENTERS", "peaks", "continual_peaks"]

PI = math.pi


def _bessel_j0_20x(x: Tensor) -> Tensor:
    return torch.special.bessel_j0(20 * x[:, 0])


def _exp_sin_sq(x: Tensor) -> Tensor:
    return torch.exp(torch.sin(PI * x[:, 0]) + x[:, 1] ** 2)


def _mean_sin_sq(x: Tensor) -> Tensor:
    return torch.exp(torch.sin(PI * x / 2).pow(2).mean(dim=1))


def _four_dim(x: Tensor) -> Tensor:
    r12, r34 = x[:, 0] ** 2 + x[:, 1] ** 2, x[:, 2] ** 2 + x[:, 3] ** 2
    return torch.exp(0.5 * (torch.sin(PI * r12) + torch.sin(PI * r34)))


_PM1 = (-1.0, 1.0)
TOY: dict[str, PaperFunction] = {f.name: f for f in [
    PaperFunction("bessel_j0", _bessel_j0_20x, (_PM1,), ("x",), "J0(20 x)"),
    PaperFunction("exp_sin_sq", _exp_sin_sq, (_PM1, _PM1), ("x", "y"), "exp(sin(pi x) + y^2)"),
    PaperFunction("product", lambda x: x[:, 0] * x[:, 1], (_PM1, _PM1), ("x", "y"), "x y"),
    PaperFunction("exp_mean_sin_100d", _mean_sin_sq, (_PM1,) * 100, tuple(f"x{i}" for i in range(1, 101)),
                  "exp((1/100) sum_i sin^2(pi x_i / 2))"),
    PaperFunction("exp_sin_4d", _four_dim, (_PM1,) * 4, ("x1", "x2", "x3", "x4"),
                  "exp(0.5 (sin(pi (x1^2 + x2^2)) + sin(pi (x3^2 + x4^2))))"),
]}


def toy_dataset(name: str, n_train: int = 1000, n_test: int = 1000, seed: int = 0,
                dtype=torch.float64) -> Dataset:
    """Data for the toy function ``name`` (a key of :data:`TOY`), inputs uniform on [-1, 1].

    Example:
        >>> toy_dataset("exp_sin_sq", n_train=8, n_test=4).train_input.shape
        torch.Size([8, 2])
    """
    if name not in TOY:
        raise ValueError(f"name must be one of {list(TOY)}, got {name!r}")
    return sample_function(TOY[name], n_train, n_test, seed, dtype)


# ---------------------------------------------------------------------- Poisson (Sec. 3.4)
class PoissonProblem(NamedTuple):
    """u_xx + u_yy = f on [-1, 1]^2 with u = 0 on the boundary.

    ``interior`` ``(n_interior, 2)`` with ``source`` f there ``(n_interior, 1)``;
    ``boundary`` ``(n_boundary, 2)`` with ``boundary_value`` u there ``(n_boundary, 1)``;
    ``test_input`` ``(n_test, 2)`` with the exact ``test_solution`` u ``(n_test, 1)``.
    """

    interior: Tensor
    source: Tensor
    boundary: Tensor
    boundary_value: Tensor
    test_input: Tensor
    test_solution: Tensor


def poisson_solution(x: Tensor) -> Tensor:
    """Exact u = sin(pi x) sin(pi y^2). Shape ``(N, 2)`` -> ``(N, 1)``."""
    return (torch.sin(PI * x[:, 0]) * torch.sin(PI * x[:, 1] ** 2))[:, None]


def poisson_source(x: Tensor) -> Tensor:
    """f = Laplacian of u = -pi^2 (1 + 4 y^2) sin(pi x) sin(pi y^2) + 2 pi sin(pi x) cos(pi y^2).
    Shape ``(N, 2)`` -> ``(N, 1)``."""
    px, y = x[:, 0], x[:, 1]
    s = torch.sin(PI * px)
    f = -PI ** 2 * (1 + 4 * y ** 2) * s * torch.sin(PI * y ** 2) + 2 * PI * s * torch.cos(PI * y ** 2)
    return f[:, None]


def _square_boundary(n: int, gen: torch.Generator, dtype) -> Tensor:
    """``n`` points uniformly on the square's perimeter, ``(n, 2)``."""
    t = torch.rand(n, generator=gen, dtype=dtype) * 2 - 1  # position along a side
    side = torch.randint(0, 4, (n,), generator=gen)
    fixed = torch.where(side % 2 == 0, -1.0, 1.0).to(dtype)
    horizontal = side < 2  # y fixed
    return torch.stack([torch.where(horizontal, t, fixed), torch.where(horizontal, fixed, t)], dim=1)


def poisson_problem(n_interior: int = 10000, n_boundary: int = 800, n_test: int = 2500, seed: int = 0,
                    dtype=torch.float64) -> PoissonProblem:
    """Random collocation points (the paper: 10000 interior, 800 boundary) and test points.

    Example:
        >>> p = poisson_problem(n_interior=16, n_boundary=8, n_test=4)
        >>> p.interior.shape, p.boundary.shape, p.source.shape
        (torch.Size([16, 2]), torch.Size([8, 2]), torch.Size([16, 1]))
    """
    for name, n in (("n_interior", n_interior), ("n_boundary", n_boundary), ("n_test", n_test)):
        if not isinstance(n, int) or n < 1:
            raise ValueError(f"{name} must be an integer >= 1, got {n!r}")
    gen = torch.Generator().manual_seed(seed)
    interior = torch.rand(n_interior, 2, generator=gen, dtype=dtype) * 2 - 1
    boundary = _square_boundary(n_boundary, gen, dtype)
    test = torch.rand(n_test, 2, generator=gen, dtype=dtype) * 2 - 1
    return PoissonProblem(interior, poisson_source(interior), boundary, poisson_solution(boundary),
                          test, poisson_solution(test))


# ---------------------------------------------------------------------- continual learning (Sec. 3.5)
PEAK_CENTERS = (-0.8, -0.4, 0.0, 0.4, 0.8)
PEAK_WIDTH = 300.0


def peaks(x: Tensor) -> Tensor:
    """y = sum_c exp(-300 (x - c)^2) over the five centres. Shape ``(N, 1)`` -> ``(N, 1)``."""
    c = torch.tensor(PEAK_CENTERS, dtype=x.dtype, device=x.device)
    return torch.exp(-PEAK_WIDTH * (x - c) ** 2).sum(dim=1, keepdim=True)


def continual_peaks(n_per_phase: int = 200, n_test: int = 200, seed: int = 0,
                    dtype=torch.float64) -> list[Dataset]:
    """The five phases: phase i sees only x in [-1 + 0.4 i, -0.6 + 0.4 i] (around peak i).

    Returns:
        five :class:`~kanlab.Dataset`, each with inputs ``(N, 1)`` inside its region and labels
        ``(N, 1)`` of the full five-peak function; test points are an even grid of the region.

    Example:
        >>> [tuple(d.train_input.shape) for d in continual_peaks(n_per_phase=4, n_test=2)][:2]
        [(4, 1), (4, 1)]
    """
    for name, n in (("n_per_phase", n_per_phase), ("n_test", n_test)):
        if not isinstance(n, int) or n < 1:
            raise ValueError(f"{name} must be an integer >= 1, got {n!r}")
    gen = torch.Generator().manual_seed(seed)
    phases = []
    for i in range(len(PEAK_CENTERS)):
        lo = -1.0 + 0.4 * i
        x = lo + 0.4 * torch.rand(n_per_phase, 1, generator=gen, dtype=dtype)
        xt = torch.linspace(lo, lo + 0.4, n_test, dtype=dtype)[:, None]
        phases.append(Dataset(x, peaks(x), xt, peaks(xt)))
    return phases
