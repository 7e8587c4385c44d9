"""Hypothesis tests for structure, from derivatives (AI Feynman; KAN 2.0's separability tests).

All tests take :class:`~kanlab.structure.derivatives.Derivatives` of ``f`` at sample points
and return a *residual ratio*: about 0 when the structure holds, about 1 when it clearly does
not (how far it is from 0 for a true structure tells how well the model knows ``f``).

* additive separability of ``g = T(f)`` between groups ``A`` and ``B``: ``g_ij = 0`` for
  ``i in A``, ``j in B``, with ``g_ij = T'(f) f_ij + T''(f) f_i f_j`` (chain rule), relative to
  ``rms(g_i) rms(g_j) / std(g)``, the size a coupling of that strength would have;
* multiplicative separability of ``g - c`` (``g - c = P(A) Q(B)``, the shift ``c`` fit by least
  squares or fixed to 0): ``(g - c) g_ij = g_i g_j``, relative to ``rms(g_i g_j)``;
* symmetries: ``f`` depends on ``x_i - x_j`` (``f_i + f_j = 0``), ``x_i + x_j``
  (``f_i = f_j``), ``x_i / x_j`` (``x_i f_i + x_j f_j = 0``) or ``x_i x_j`` (``x_i f_i = x_j f_j``).

Output transforms ``T`` (:data:`TRANSFORMS`) are tried only where they are defined on the data.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Callable

import torch
from torch import Tensor

from .derivatives import Derivatives

__all__ = ["OutputTransform", "TRANSFORMS", "get_transform", "additive_matrix", "multiplicative_matrix",
           "fit_shift", "additive_score", "multiplicative_score", "symmetry_score", "SYMMETRIES",
           "variable_importance", "swap_values", "swap_additive_matrix", "swap_fit_shift",
           "swap_multiplicative_matrix"]


@dataclass(frozen=True)
class OutputTransform:
    """``g = T(f)`` with its first two derivatives as functions of ``f``, where it applies,
    and its inverse as sympy (``f`` from ``g``, given the sign of ``f`` on the data)."""

    name: str
    fn: Callable[[Tensor], Tensor]
    d1: Callable[[Tensor], Tensor]
    d2: Callable[[Tensor], Tensor]
    applies: Callable[[Tensor], bool]
    inverse: Callable  # (sympy expression g, sign of f) -> sympy expression f


def _one_sign(f: Tensor) -> bool:
    return bool((f > 0).all() or (f < 0).all()) and bool(f.abs().min() > 1e-6 * f.abs().max())


def _sp():
    import sympy

    return sympy


TRANSFORMS: dict[str, OutputTransform] = {t.name: t for t in (
    OutputTransform("id", lambda f: f, torch.ones_like, torch.zeros_like, lambda f: True, lambda g, s: g),
    OutputTransform("log", lambda f: torch.log(f.abs()), lambda f: 1 / f, lambda f: -1 / f ** 2, _one_sign,
                    lambda g, s: s * _sp().exp(g)),
    OutputTransform("inv", lambda f: 1 / f, lambda f: -1 / f ** 2, lambda f: 2 / f ** 3, _one_sign,
                    lambda g, s: 1 / g),
    OutputTransform("square", lambda f: f ** 2, lambda f: 2 * f, lambda f: torch.full_like(f, 2.0), _one_sign,
                    lambda g, s: s * _sp().sqrt(g)),
    OutputTransform("sqrt", lambda f: f.abs().sqrt(), lambda f: 0.5 / f.abs().sqrt(),
                    lambda f: -0.25 / f.abs() ** 1.5, lambda f: bool((f > 0).all()) and _one_sign(f),
                    lambda g, s: g ** 2),
    OutputTransform("sin", torch.sin, torch.cos, lambda f: -torch.sin(f),
                    lambda f: bool(f.abs().max() < math.pi / 2 - 1e-3), lambda g, s: _sp().asin(g)),
    OutputTransform("exp", torch.exp, torch.exp, torch.exp, lambda f: bool(f.abs().max() < 20),
                    lambda g, s: _sp().log(g)),
)}


def get_transform(name: str) -> OutputTransform:
    """The transform called ``name`` (one of :data:`TRANSFORMS`)."""
    if name not in TRANSFORMS:
        raise ValueError(f"transform must be one of {list(TRANSFORMS)}, got {name!r}")
    return TRANSFORMS[name]


def _rms(t: Tensor) -> Tensor:
    return (t * t).mean().sqrt()


def _transformed(d: Derivatives, transform: OutputTransform) -> Derivatives:
    """Derivatives of ``g = T(f)`` by the chain rule: ``g_i = T' f_i``, ``g_ij = T' f_ij + T'' f_i f_j``."""
    f = d.value
    t1, t2 = transform.d1(f), transform.d2(f)
    grad = t1[:, None] * d.grad
    hess = t1[:, None, None] * d.hess + t2[:, None, None] * d.grad[:, :, None] * d.grad[:, None, :]
    return Derivatives(transform.fn(f), grad, hess)


def _check_groups(d: Derivatives, a: Sequence[int], b: Sequence[int]) -> None:
    n = d.grad.shape[1]
    if not a or not b or set(a) & set(b) or not all(0 <= k < n for k in (*a, *b)):
        raise ValueError(f"groups must be two non-empty, disjoint lists of variable indices in [0, {n}), "
                         f"got {list(a)} and {list(b)}")


def additive_matrix(d: Derivatives, transform: str = "id") -> Tensor:
    """Pairwise residual ratios of additive separability of ``T(f)``, ``(D, D)``, from the
    derivatives ``d`` of f and the name of ``transform`` T (inf where T does not apply; the
    diagonal is 0)."""
    t = get_transform(transform)
    n = d.grad.shape[1]
    if not t.applies(d.value):
        return torch.full((n, n), math.inf).fill_diagonal_(0.0)
    g = _transformed(d, t)
    rms_grad = (g.grad * g.grad).mean(dim=0).sqrt()  # (D,)
    scale = rms_grad[:, None] * rms_grad[None, :] / g.value.std().clamp(min=1e-300)
    ratio = (g.hess * g.hess).mean(dim=0).sqrt() / scale.clamp(min=1e-300)
    ratio = torch.where(torch.isfinite(ratio), ratio, math.inf).cpu().double()
    return ratio.fill_diagonal_(0.0)


def fit_shift(d: Derivatives, transform: str = "id", pairs: Sequence[tuple[int, int]] | None = None) -> float:
    """Least-squares ``c`` of ``(g - c) g_ij = g_i g_j`` over ``pairs`` (default all ``i < j``), ``g = T(f)``."""
    g = _transformed(d, get_transform(transform))
    n = d.grad.shape[1]
    pairs = [(i, j) for i in range(n) for j in range(i + 1, n)] if pairs is None else list(pairs)
    ii, jj = torch.tensor([p[0] for p in pairs]), torch.tensor([p[1] for p in pairs])
    mixed, prod = g.hess[:, ii, jj], g.grad[:, ii] * g.grad[:, jj]
    denom = float((mixed * mixed).sum())
    if not denom > 0 or not math.isfinite(denom):
        return 0.0
    c = float((mixed * (g.value[:, None] * mixed - prod)).sum() / denom)
    return c if math.isfinite(c) else 0.0


def multiplicative_matrix(d: Derivatives, transform: str = "id", shift: float = 0.0) -> Tensor:
    """Pairwise residual ratios of ``T(f) - shift = P(x_i, ...) Q(x_j, ...)``, ``(D, D)``."""
    t = get_transform(transform)
    n = d.grad.shape[1]
    if not t.applies(d.value):
        return torch.full((n, n), math.inf).fill_diagonal_(0.0)
    g = _transformed(d, t)
    prod = g.grad[:, :, None] * g.grad[:, None, :]  # (N, D, D)
    resid = (g.value[:, None, None] - shift) * g.hess - prod
    ratio = (resid * resid).mean(dim=0).sqrt() / (prod * prod).mean(dim=0).sqrt().clamp(min=1e-300)
    ratio = torch.where(torch.isfinite(ratio), ratio, math.inf).cpu().double()
    return ratio.fill_diagonal_(0.0)


def _cross_max(matrix: Tensor, a: Sequence[int], b: Sequence[int]) -> float:
    return float(matrix[list(a)][:, list(b)].max())


def additive_score(d: Derivatives, a: Sequence[int], b: Sequence[int], transform: str = "id") -> float:
    """Residual ratio of ``T(f) = P(x_a) + Q(x_b)`` (0: separable); inf where ``T`` does not apply.

    Args:
        d: derivatives of ``f`` (:func:`~kanlab.structure.function_derivatives`).
        a, b: disjoint groups of variable indices.
        transform: a name from :data:`TRANSFORMS` (``"log"`` gives multiplicative separability).

    Example:
        >>> x = torch.rand(200, 2, dtype=torch.float64)
        >>> d = function_derivatives(lambda x: x[:, 0] ** 2 + torch.sin(x[:, 1]), x)
        >>> additive_score(d, [0], [1]) < 1e-12
        True
    """
    _check_groups(d, a, b)
    return _cross_max(additive_matrix(d, transform), a, b)


def multiplicative_score(d: Derivatives, a: Sequence[int], b: Sequence[int], transform: str = "id",
                         shift: bool = True) -> tuple[float, float]:
    """Residual ratio of ``T(f) - c = P(x_a) Q(x_b)`` and the shift ``c`` (least squares over the
    cross pairs, or 0 when ``shift=False``). Returns ``(inf, 0)`` where ``T`` does not apply."""
    _check_groups(d, a, b)
    if not get_transform(transform).applies(d.value):
        return math.inf, 0.0
    c = fit_shift(d, transform, [(i, j) for i in a for j in b]) if shift else 0.0
    return _cross_max(multiplicative_matrix(d, transform, c), a, b), c


SYMMETRIES = ("minus", "divide", "times", "plus")


def symmetry_score(d: Derivatives, x: Tensor, i: int, j: int, kind: str) -> float:
    """Residual ratio of "``f`` depends on ``x_i`` and ``x_j`` only through ``x_i - x_j``" (``kind``
    ``"minus"``; ``"plus"``: ``x_i + x_j``; ``"divide"``: ``x_i / x_j``; ``"times"``: ``x_i x_j``).

    Shape: ``x`` ``(N, D)``, the points ``d`` was computed at.
    """
    if kind not in SYMMETRIES:
        raise ValueError(f"kind must be one of {SYMMETRIES}, got {kind!r}")
    n = d.grad.shape[1]
    if i == j or not (0 <= i < n and 0 <= j < n):
        raise ValueError(f"i and j must be two different variable indices in [0, {n}), got {i} and {j}")
    fi, fj = d.grad[:, i], d.grad[:, j]
    if kind in ("divide", "times"):
        fi, fj = x[:, i] * fi, x[:, j] * fj
    resid = fi + fj if kind in ("minus", "divide") else fi - fj
    ratio = float(_rms(resid) / (_rms(fi) + _rms(fj)).clamp(min=1e-300))
    return ratio if math.isfinite(ratio) else math.inf


def variable_importance(d: Derivatives, x: Tensor) -> Tensor:
    """``rms(f_i) * std(x_i) / std(f)`` per variable ``(D,)`` from the derivatives ``d`` of f at the
    inputs ``x`` ``(N, D)``: about 0 for a variable f ignores."""
    scale = d.value.std().clamp(min=1e-300)
    return (d.grad * d.grad).mean(dim=0).sqrt() * x.std(dim=0) / scale


# ---------------------------------------------------------------------- from values (swap tests)
def swap_values(fn: Callable[[Tensor], Tensor], x: Tensor, seed: int = 0) -> Tensor:
    """AI Feynman's swap test data: for rows ``r`` and partners ``s`` (a fixed shuffle), the values
    ``f`` takes with columns ``i`` and/or ``j`` taken from the partner, for every pair ``(i, j)``.

    Returns:
        ``(4, N, D, D)``: ``[f(x), f(x with x_i'), f(x with x_j'), f(x with x_i', x_j')]`` (the
        points stay rows of ``x`` with some coordinates from another row: inside a box-shaped
        data set).
    """
    n, d = x.shape
    partner = x[torch.randperm(n, generator=torch.Generator().manual_seed(seed))]
    with torch.no_grad():
        base = fn(x)
        single = []
        for i in range(d):
            xi = x.clone()
            xi[:, i] = partner[:, i]
            single.append(fn(xi))
        out = x.new_empty(4, n, d, d)
        for i in range(d):
            for j in range(d):
                out[0, :, i, j] = base
                out[1, :, i, j] = single[i]
                out[2, :, i, j] = single[j]
                if i == j:
                    out[3, :, i, j] = single[i]
                elif j > i:
                    xij = x.clone()
                    xij[:, [i, j]] = partner[:, [i, j]]
                    out[3, :, i, j] = fn(xij)
                else:
                    out[3, :, i, j] = out[3, :, j, i]
    return out


def swap_additive_matrix(values: Tensor, transform: str = "id") -> Tensor:
    """Pairwise residual ratios of additive separability of ``T(f)`` from :func:`swap_values`:
    ``rms(g + g'' - g_i' - g_j') / (rms(g - g_i') rms(g - g_j') / std(g))``, ``(D, D)``."""
    t = get_transform(transform)
    d = values.shape[-1]
    if not t.applies(values.flatten()):
        return torch.full((d, d), math.inf, dtype=torch.float64).fill_diagonal_(0.0)
    g = t.fn(values)
    resid = g[0] + g[3] - g[1] - g[2]  # (N, D, D)
    di, dj = g[0] - g[1], g[0] - g[2]
    scale = _rms_rows(di) * _rms_rows(dj) / g[0, :, 0, 0].std().clamp(min=1e-300)
    ratio = _rms_rows(resid) / scale.clamp(min=1e-300)
    return torch.where(torch.isfinite(ratio), ratio, math.inf).double().fill_diagonal_(0.0)


def swap_fit_shift(values: Tensor, transform: str = "id") -> float:
    """Least-squares ``c`` of ``(g - c)(g'' - c) = (g_i' - c)(g_j' - c)`` over all pairs (``g = T(f)``)."""
    t = get_transform(transform)
    if not t.applies(values.flatten()):
        return 0.0
    g = t.fn(values)
    off = ~torch.eye(values.shape[-1], dtype=torch.bool)
    a = (g[0] * g[3] - g[1] * g[2])[:, off]  # resid = a - c * b (the c^2 terms cancel)
    b = (g[0] + g[3] - g[1] - g[2])[:, off]
    denom = float((b * b).sum())
    c = float((a * b).sum()) / denom if denom > 0 else 0.0
    return c if math.isfinite(c) else 0.0


def swap_multiplicative_matrix(values: Tensor, transform: str = "id", shift: float = 0.0) -> Tensor:
    """Pairwise residual ratios of ``T(f) - shift = P Q`` from :func:`swap_values`, ``(D, D)``."""
    t = get_transform(transform)
    d = values.shape[-1]
    if not t.applies(values.flatten()):
        return torch.full((d, d), math.inf, dtype=torch.float64).fill_diagonal_(0.0)
    g = t.fn(values) - shift
    cross = g[1] * g[2]
    ratio = _rms_rows(g[0] * g[3] - cross) / _rms_rows(cross).clamp(min=1e-300)
    return torch.where(torch.isfinite(ratio), ratio, math.inf).double().fill_diagonal_(0.0)


def _rms_rows(t: Tensor) -> Tensor:
    """rms over the first (sample) dimension: ``(N, D, D)`` -> ``(D, D)``."""
    return (t * t).mean(dim=0).sqrt()
