"""The ``k + 1`` live B-spline bases at each input, and their derivatives.

Both fast paths consume the same triple ``(shifted, w, dw)``:

* ``shifted`` ``(N, n_in)`` long: ``span + 1`` in ``[0, n_intervals + 2)``, where ``span``
  is the knot interval holding the input (-1 below, ``n_intervals`` above the knots);
* ``w`` ``(N, n_in, k + 1)``: ``w[..., j]`` is the value of basis ``span - k + j`` at the
  input, ``dw`` ``(N, n_in, k + 1)`` its derivative with respect to the input.

Entries of bases that do not exist (``span - k + j`` outside ``[0, n_basis)``, inputs beyond
the knots) are not zeroed here: the fast paths send them to zero rows of a padded table
(sparse) or to a dump column (dense); :func:`span_tables` says which entries are live.

Non-finite inputs: a NaN or infinite ``x`` gets a valid ``shifted`` (so nothing indexes out of
range) and NaN weights, so the layer's output row is NaN, as the reference's is.
"""
from __future__ import annotations

import functools

import numpy as np
import torch
from torch import Tensor

__all__ = ["local_basis", "local_basis_uniform", "local_basis_general", "uniform_basis_matrices", "span_tables",
           "lookup"]


def local_basis(x: Tensor, grid: Tensor, spline_order: int, uniform: bool,
                derivative: bool = True) -> tuple[Tensor, Tensor, Tensor | None]:
    """``(shifted, w, dw)`` for ``x`` ``(N, n_in)`` on ``grid`` ``(n_in, n_knots)``.

    Closed form if ``uniform``; ``dw`` is None unless ``derivative``.
    """
    if uniform:
        return local_basis_uniform(x, grid, spline_order, derivative)
    return local_basis_general(x, grid, spline_order, derivative)


@functools.lru_cache(maxsize=16)
def _uniform_matrix_np(spline_order: int) -> np.ndarray:
    """Polynomial coefficients (in ``f``) of the uniform blending weights and their derivatives.

    Returns ``(k + 1, 2 (k + 1))``: ``[f^0 .. f^k] @ M[:, :k+1]`` are the weights,
    ``[f^0 .. f^k] @ M[:, k+1:]`` their derivatives in ``f``.
    """
    k = spline_order
    w = [np.array([1.0])]  # polynomials in f, lowest power first
    for p in range(1, k + 1):
        nxt = []
        for j in range(p + 1):
            term = np.zeros(p + 1)
            if j >= 1:  # (f + p - j) * w[j-1]
                term[1:len(w[j - 1]) + 1] += w[j - 1]
                term[:len(w[j - 1])] += (p - j) * w[j - 1]
            if j < p:  # (j + 1 - f) * w[j]
                term[:len(w[j])] += (j + 1) * w[j]
                term[1:len(w[j]) + 1] -= w[j]
            nxt.append(term / p)
        w = nxt
    vals = np.stack(w, axis=1)  # (k+1 powers, k+1 weights)
    ders = np.zeros_like(vals)
    ders[:-1] = vals[1:] * np.arange(1, k + 1)[:, None]
    return np.concatenate([vals, ders], axis=1)


@functools.lru_cache(maxsize=64)
def uniform_basis_matrices(spline_order: int, dtype: torch.dtype,
                           device: torch.device) -> tuple[Tensor, Tensor]:
    """The value and derivative halves of :func:`_uniform_matrix_np`, ``(k + 1, k + 1)`` each."""
    m = torch.as_tensor(_uniform_matrix_np(spline_order), dtype=dtype, device=device)
    return m[:, : spline_order + 1].contiguous(), m[:, spline_order + 1:].contiguous()


@functools.lru_cache(maxsize=64)
def span_tables(n_intervals: int, spline_order: int, device: torch.device) -> tuple[Tensor, Tensor]:
    """Per shifted span ``s = span + 1`` in ``[0, n_intervals + 2)``: live columns and their mask.

    The one place that decides which of the ``k + 1`` local entries are live (the basis
    ``span - k + j`` exists and the input lies inside the knot vector).

    Returns ``cols`` ``(n_intervals + 2, k + 1)`` long: ``clamp(span - k + j, 0, nb - 1) + 1``
    (column in a packed row whose column 0 is the base branch), and ``live``
    ``(n_intervals + 2, k + 1)`` bool.
    """
    k = spline_order
    n_basis = n_intervals - k
    span = torch.arange(-1, n_intervals + 1).unsqueeze(-1)  # (S, 1)
    pos = span - k + torch.arange(k + 1)  # (S, k+1)
    live = (pos >= 0) & (pos < n_basis) & (span >= 0) & (span < n_intervals)
    return (pos.clamp(0, n_basis - 1) + 1).to(device), live.to(device)


def lookup(table: Tensor, index: Tensor) -> Tensor:
    """``table[index]`` for a 2-D table, as one ``index_select`` (faster than advanced indexing).

    Shape: ``table`` ``(S, C)``, ``index`` ``(...)`` -> ``(..., C)``.
    """
    return table.index_select(0, index.reshape(-1)).view(*index.shape, table.shape[1])


def local_basis_uniform(x: Tensor, grid: Tensor, spline_order: int,
                        derivative: bool = True) -> tuple[Tensor, Tensor, Tensor | None]:
    """Closed form on uniform grids: a power table times two small constant matrices."""
    k = spline_order
    n, n_in = x.shape
    n_intervals = grid.shape[1] - 1
    inv_h = 1.0 / (grid[:, 1] - grid[:, 0])  # (n_in,)
    u = torch.addcmul(-grid[:, 0] * inv_h, x, inv_h)  # (N, n_in) in units of intervals
    span = torch.floor(u)
    f = u - span
    powers = [torch.ones_like(f), f]
    for _ in range(k - 1):
        powers.append(powers[-1] * f)
    planes = torch.stack(powers[: k + 1])  # (k+1, N, n_in): contiguous planes are cheap to build
    m_w, m_d = uniform_basis_matrices(k, x.dtype, x.device)  # (k+1, k+1) each
    # (N n_in, k+1) results straight from a transposed operand; 1/h folded into the planes
    w = (planes.view(k + 1, -1).T @ m_w).view(n, n_in, k + 1)
    dw = None
    if derivative:  # d/dx = d/df / h
        dw = ((planes * inv_h).view(k + 1, -1).T @ m_d).view(n, n_in, k + 1)
    # NaN / inf inputs: a valid span (their weights are NaN, so their rows stay NaN)
    shifted = span.nan_to_num_(nan=-1.0).clamp_(-1, n_intervals).add_(1).long()
    return shifted, w, dw


def _padded_knots(grid: Tensor, pad: int) -> Tensor:
    """Grid extended by ``pad`` strictly increasing knots each side (keeps denominators non-zero)."""
    width = grid[:, -1:] - grid[:, :1]
    h = torch.where(width > 0, width / (grid.shape[1] - 1), torch.ones_like(width))  # (n_in, 1)
    steps = torch.arange(1, pad + 1, dtype=grid.dtype, device=grid.device)
    return torch.cat([grid[:, :1] - h * steps.flip(0), grid, grid[:, -1:] + h * steps], dim=1)


def _reciprocal(d: Tensor, scale: float = 1.0) -> Tensor:
    """``scale / d``; repeated knots give 0/0 terms in the recursion, defined as 0."""
    return torch.where(d == 0, torch.zeros_like(d), scale / torch.where(d == 0, torch.ones_like(d), d))


def knot_windows(grid: Tensor, spline_order: int, derivative: bool) -> Tensor:
    """Per (input, shifted span): the knots and reciprocal knot differences the de Boor
    triangle needs, so the per-sample work has no divisions and no tests.

    Columns: knots ``span - k + 1 .. span + k`` (``2k``), then ``1 / (t[span+r+1] -
    t[span+1-j+r])`` for ``j = 1..k``, ``r < j``, then (if ``derivative``)
    ``k / (t[m+k] - t[m])`` for the ``k`` lower and the ``k`` upper terms of the derivative.

    Shape: ``(n_in, n_knots)`` -> ``(C, n_in (n_knots + 1))`` (one row per quantity).
    """
    k = spline_order
    n_in, n_knots = grid.shape
    padded = _padded_knots(grid, k)  # (n_in, n_knots + 2k); padded index of knot q is q + k
    span = (torch.arange(n_knots + 1, device=grid.device) - 1).clamp(0, n_knots - 2)  # (S,)
    idx = span.unsqueeze(-1) + torch.arange(2 * k + 2, device=grid.device)  # (S, 2k+2)
    t = padded[:, idx].reshape(-1, 2 * k + 2).unbind(1)  # t[k + d] = knot span + d
    cols = list(t[1: 2 * k + 1])
    cols += [_reciprocal(t[k + r + 1] - t[k + 1 - j + r]) for j in range(1, k + 1) for r in range(j)]
    if derivative:
        cols += [_reciprocal(t[k + r] - t[r], k) for r in range(1, k + 1)]
        cols += [_reciprocal(t[k + r + 1] - t[r + 1], k) for r in range(k)]
    return torch.stack(cols)


def local_basis_general(x: Tensor, grid: Tensor, spline_order: int,
                        derivative: bool = True) -> tuple[Tensor, Tensor, Tensor | None]:
    """Any non-decreasing grid: span by ``searchsorted``, then the local de Boor triangle."""
    k = spline_order
    n_in, n_knots = grid.shape
    shifted = torch.searchsorted(grid.contiguous(), x.T.contiguous(), right=True).T  # span + 1
    key = shifted + torch.arange(0, n_in * (n_knots + 1), n_knots + 1, device=x.device)
    table = knot_windows(grid, k, derivative)  # (C, n_in S)
    planes = table.index_select(1, key.reshape(-1)).view(-1, *x.shape)  # (C, N, n_in), planar
    knots, rest = planes[: 2 * k], iter(planes[2 * k:])  # knots[d + k - 1] = knot span + d
    left = [None] + [x - knots[k - j] for j in range(1, k + 1)]
    right = [None] + [knots[k - 1 + j] - x for j in range(1, k + 1)]
    basis = [torch.ones_like(x)]
    prev = basis
    for j in range(1, k + 1):
        prev = basis
        saved = torch.zeros_like(x)
        basis = []
        for r in range(j):
            temp = prev[r] * next(rest)
            basis.append(saved + right[r + 1] * temp)
            saved = left[j - r] * temp
        basis.append(saved)
    if not derivative:
        return shifted, torch.stack(basis, dim=-1), None
    # derivative from the degree k-1 bases:
    # B'_m = k (B_{m,k-1} / (t_{m+k} - t_m) - B_{m+1,k-1} / (t_{m+k+1} - t_{m+1}))
    lower, upper = [next(rest) for _ in range(k)], [next(rest) for _ in range(k)]
    dw = [-prev[0] * upper[0]]
    dw += [prev[r - 1] * lower[r - 1] - prev[r] * upper[r] for r in range(1, k)]
    dw.append(prev[k - 1] * lower[k - 1])
    return shifted, torch.stack(basis, dim=-1), torch.stack(dw, dim=-1)  # (N, n_in, k+1) each
