"""B-spline math as pure tensor functions.

Conventions (used everywhere in kanlab):

* A layer with ``n_in`` inputs keeps one knot vector per input. ``grid`` has shape
  ``(n_in, G + 2k + 1)``: the ``G + 1`` points of the grid proper (which span the
  grid range) extended by ``k`` knots on each side. It carries ``G + k`` basis
  functions of order (degree) ``k``.
* Basis functions are half-open: ``B_{m,0}(x) = 1`` on ``[t_m, t_{m+1})``. On the grid
  range ``[t_k, t_{G+k}]`` the bases sum to one; on the extension ``[t_0, t_k)`` and
  ``(t_{G+k}, t_{G+2k})`` only some of them are present, and beyond the extended grid
  every basis (so every spline) is exactly zero.
* Coefficients of the splines of a layer have shape ``(n_out, n_in, G + k)``.
"""
from __future__ import annotations

import math

import torch
from torch import Tensor

__all__ = [
    "uniform_grid",
    "extend_grid",
    "adaptive_grid",
    "continue_coefficients",
    "grid_is_uniform",
    "bspline_basis",
    "bspline_levels",
    "bspline_basis_derivative",
    "differentiate_basis",
    "coef_to_curve",
    "curve_to_coef",
    "refinement_grid",
    "fill_points",
]


def uniform_grid(n_in: int, grid_size: int, spline_order: int, grid_range=(-1.0, 1.0),
                 dtype=None, device=None) -> Tensor:
    """Extended uniform grid of ``grid_size`` intervals on ``grid_range``.

    Shape: returns ``(n_in, grid_size + 2 * spline_order + 1)``.
    ``grid_range`` is a pair of floats, or a tensor ``(n_in, 2)`` of per-input ranges.
    """
    lo_hi = torch.as_tensor(grid_range, dtype=dtype or torch.get_default_dtype(), device=device)
    if lo_hi.dim() == 1:
        lo_hi = lo_hi.expand(n_in, 2)
    steps = torch.linspace(0, 1, grid_size + 1, dtype=lo_hi.dtype, device=lo_hi.device)
    points = lo_hi[:, :1] + (lo_hi[:, 1:] - lo_hi[:, :1]) * steps  # (n_in, G+1)
    return extend_grid(points, spline_order)


def extend_grid(points: Tensor, spline_order: int) -> Tensor:
    """Add ``spline_order`` knots on each side, spaced like the mean interval.

    Shape: ``points`` ``(n_in, G + 1)`` -> ``(n_in, G + 2k + 1)``.
    """
    h = (points[:, -1:] - points[:, :1]) / (points.shape[1] - 1)  # (n_in, 1)
    steps = torch.arange(1, spline_order + 1, dtype=points.dtype, device=points.device)
    left = points[:, :1] - h * steps.flip(0)
    right = points[:, -1:] + h * steps
    return torch.cat([left, points, right], dim=1)


def adaptive_grid(x: Tensor, grid_size: int, spline_order: int, grid_eps: float,
                  margin: float = 0.02) -> Tensor:
    """Grid that follows the samples: ``grid_eps`` * uniform + (1 - grid_eps) * quantiles.

    ``grid_eps = 1`` gives a uniform grid over the samples' range, ``0`` puts the grid
    points at the samples' quantiles. The range moves out by ``margin`` times the samples'
    range on both sides (the uniform part and the outer quantiles alike), so that new points
    just beyond the samples (a test set) stay on the polynomial pieces the samples determined
    instead of on the barely constrained extension bases; ``grid_eps = 1`` stays exactly
    uniform, so the closed-form fast paths apply.

    Shape: ``x`` ``(N, n_in)`` -> ``(n_in, G + 2k + 1)``.
    """
    xs = torch.sort(x, dim=0).values  # (N, n_in)
    n = xs.shape[0]
    idx = torch.linspace(0, n - 1, grid_size + 1, device=x.device).round().long()
    quantiles = xs[idx].T  # (n_in, G+1)
    lo, hi = xs[0], xs[-1]
    flat = (hi - lo) <= 1e-6 * hi.abs().clamp_min(1.0)  # a constant input: widen its range
    pad = torch.where(flat, 1e-3 * hi.abs().clamp_min(1.0), torch.zeros_like(hi))
    lo, hi = lo - pad, hi + pad
    pad = margin * (hi - lo)
    lo, hi = lo - pad, hi + pad
    quantiles = torch.cat([lo[:, None], quantiles[:, 1:-1], hi[:, None]], dim=1)
    quantiles = torch.where(flat[:, None], torch.nan, quantiles)
    steps = torch.linspace(0, 1, grid_size + 1, dtype=x.dtype, device=x.device)
    uniform = lo[:, None] + (hi - lo)[:, None] * steps  # (n_in, G+1)
    if grid_eps == 1:
        return extend_grid(uniform, spline_order)
    points = grid_eps * uniform + (1 - grid_eps) * quantiles
    points = torch.where(points.isnan(), uniform, points)
    return extend_grid(points, spline_order)


def grid_is_uniform(grid: Tensor, rtol: float = 1e-9) -> bool:
    """True when every row of ``grid`` is equally spaced (to ``rtol`` of its width)."""
    d = grid.diff(dim=1)
    width = (grid[:, -1] - grid[:, 0]).abs().clamp_min(torch.finfo(grid.dtype).tiny)
    tol = max(rtol, 8 * torch.finfo(grid.dtype).eps)
    return bool(((d - d[:, :1]).abs().amax(dim=1) <= tol * width).all())


def bspline_basis(x: Tensor, grid: Tensor, spline_order: int) -> Tensor:
    """B-spline bases by the Cox-de Boor recursion, on any (non-uniform) grid.

    Shape: ``x`` ``(..., n_in)``, ``grid`` ``(n_in, n_knots)`` ->
    ``(..., n_in, n_knots - 1 - spline_order)``.
    """
    return bspline_levels(x, grid, spline_order)[-1]


def bspline_levels(x: Tensor, grid: Tensor, spline_order: int) -> list[Tensor]:
    """The bases of every order ``0 .. spline_order`` from one Cox-de Boor pass.

    Shape: ``x`` ``(..., n_in)``, ``grid`` ``(n_in, n_knots)`` -> entry ``p``
    ``(..., n_in, n_knots - 1 - p)``.
    """
    t = grid  # (n_in, n_knots)
    xe = x.unsqueeze(-1)  # (..., n_in, 1)
    levels = [((xe >= t[:, :-1]) & (xe < t[:, 1:])).to(x.dtype)]  # (..., n_in, n_knots-1)
    for p in range(1, spline_order + 1):
        basis = levels[-1]
        left_den = t[:, p:-1] - t[:, : -(p + 1)]
        right_den = t[:, p + 1:] - t[:, 1:-p]
        left = (xe - t[:, : -(p + 1)]) / _nonzero(left_den) * basis[..., :-1]
        right = (t[:, p + 1:] - xe) / _nonzero(right_den) * basis[..., 1:]
        levels.append(left + right)
    return levels


def bspline_basis_derivative(x: Tensor, grid: Tensor, spline_order: int, order: int = 1) -> Tensor:
    """Derivative ``d^order B_m / dx^order`` of each basis, on any grid.

    Uses ``B'_{m,k} = k (B_{m,k-1} / (t_{m+k} - t_m) - B_{m+1,k-1} / (t_{m+k+1} - t_{m+1}))``.

    Shape: as :func:`bspline_basis`.
    """
    if order == 0:
        return bspline_basis(x, grid, spline_order)
    if order > spline_order:
        n_basis = grid.shape[1] - 1 - spline_order
        return x.new_zeros(*x.shape, n_basis)
    lower = bspline_basis_derivative(x, grid, spline_order - 1, order - 1)  # (..., n_in, n_basis + 1)
    return differentiate_basis(lower, grid, spline_order)


def differentiate_basis(lower: Tensor, grid: Tensor, spline_order: int) -> Tensor:
    """``d/dx`` of the order-``spline_order`` bases from ``lower``: the order ``spline_order - 1``
    bases (or any derivative of them, giving the next derivative).

    Shape: ``lower`` ``(..., n_in, nb + 1)`` -> ``(..., n_in, nb)``.
    """
    k, t = spline_order, grid
    left = lower[..., :-1] / _nonzero(t[:, k:-1] - t[:, : -(k + 1)])
    right = lower[..., 1:] / _nonzero(t[:, k + 1:] - t[:, 1:-k])
    return k * (left - right)


def coef_to_curve(x: Tensor, grid: Tensor, coef: Tensor, spline_order: int) -> Tensor:
    """Spline values of every edge.

    Shape: ``x`` ``(..., n_in)``, ``grid`` ``(n_in, n_knots)``, ``coef``
    ``(n_out, n_in, n_basis)`` -> ``(..., n_out, n_in)``.
    """
    basis = bspline_basis(x, grid, spline_order)  # (..., n_in, n_basis)
    return torch.einsum("...im,oim->...oi", basis, coef)


def curve_to_coef(x: Tensor, y: Tensor, grid: Tensor, spline_order: int, ridge: float = 1e-12,
                  dtype: torch.dtype | None = torch.float64) -> Tensor:
    """Least-squares spline coefficients, batched over edges.

    Solves ``min_c ||B(x_i) c_{o,i} - y_{o,i}||^2 + ridge * s_i ||c_{o,i}||^2`` for every
    edge, where ``s_i`` is the mean diagonal of ``B^T B`` for input ``i`` (so ``ridge``
    is relative and bases without samples get a small, well-defined value). The
    solve runs in ``dtype`` (float64 by default; ``None`` keeps the input dtype) by
    QR on the ridge-augmented system, which is well conditioned and works on any
    device.

    Shape: ``x`` ``(N, n_in)``, ``y`` ``(N, n_out, n_in)``, ``grid`` ``(n_in, n_knots)``
    -> ``(n_out, n_in, n_basis)`` in the dtype of ``y``.
    """
    work = dtype or y.dtype
    basis = bspline_basis(x.to(work), grid.to(work), spline_order)  # (N, n_in, nb)
    a = basis.permute(1, 0, 2)  # (n_in, N, nb)
    n_basis = a.shape[-1]
    scale = (a * a).sum(dim=1).mean(dim=1).clamp_min(1.0)  # (n_in,)
    reg = torch.sqrt(ridge * scale)[:, None, None] * torch.eye(n_basis, dtype=work, device=a.device)
    a_aug = torch.cat([a, reg], dim=1)  # (n_in, N + nb, nb)
    b = y.to(work).permute(2, 0, 1)  # (n_in, N, n_out)
    b_aug = torch.cat([b, b.new_zeros(b.shape[0], n_basis, b.shape[2])], dim=1)
    q, r = torch.linalg.qr(a_aug)  # q (n_in, N+nb, nb), r (n_in, nb, nb)
    coef = torch.linalg.solve_triangular(r, q.transpose(1, 2) @ b_aug, upper=True)  # (n_in, nb, n_out)
    return coef.permute(2, 0, 1).to(y.dtype)


def refinement_grid(grid: Tensor, spline_order: int, grid_size: int) -> Tensor:
    """A grid of ``grid_size`` intervals with the same range and the same local density.

    The new grid points interpolate the old grid points linearly in their index, so a
    uniform grid stays uniform and an adapted grid keeps its shape. Going from G to
    m * G on a uniform grid nests the knots, so the old splines are represented exactly.

    Shape: ``(n_in, G + 2k + 1)`` -> ``(n_in, grid_size + 2k + 1)``.
    """
    k = spline_order
    points = grid[:, k: grid.shape[1] - k]  # (n_in, G+1)
    return extend_grid(interp_rows(points, grid_size + 1), k)


def fill_points(grid: Tensor, spline_order: int, per_interval: int) -> Tensor:
    """Sample points filling every interval of the grid proper (for least squares).

    Shape: ``(n_in, G + 2k + 1)`` -> ``(G * per_interval + 1, n_in)``.
    """
    k = spline_order
    points = grid[:, k: grid.shape[1] - k]  # (n_in, G+1)
    n_int = points.shape[1] - 1
    return interp_rows(points, n_int * per_interval + 1).T


def interp_rows(points: Tensor, n: int) -> Tensor:
    """Piecewise-linear resampling of each row at ``n`` equally spaced fractional indices.

    Shape: ``(n_in, P)`` -> ``(n_in, n)``.
    """
    p = points.shape[1]
    pos = torch.linspace(0, p - 1, n, dtype=points.dtype, device=points.device)
    lo = pos.floor().long().clamp(max=p - 2)
    frac = pos - lo.to(points.dtype)
    return points[:, lo] * (1 - frac) + points[:, lo + 1] * frac


def continue_coefficients(coef: Tensor, grid: Tensor, lo: Tensor, hi: Tensor, spline_order: int) -> Tensor:
    """Coefficients whose bases no sample in ``[lo_i, hi_i]`` reaches, set to continue the spline
    past the samples: the ``(k + 1)``-th differences of every edge's coefficients vanish there,
    so on a uniform grid the polynomial piece of the outermost sampled interval carries on
    unchanged through the unsampled intervals (on other grids it is the same recurrence, a
    smooth continuation). The samples cannot tell what those coefficients should be, so
    otherwise they keep whatever earlier grids left, and points just beyond the samples (a test
    set) meet a different polynomial. Coefficients any sample reaches are kept, so the function
    at the samples does not change. Inputs with fewer than ``k + 1`` sampled coefficients are
    left as they are.

    Shape: ``coef`` ``(n_out, n_in, nb)``, ``grid`` ``(n_in, nb + k + 1)``, ``lo``, ``hi``
    ``(n_in,)`` -> ``(n_out, n_in, nb)``.
    """
    k, nb = spline_order, coef.shape[-1]
    weights = [(-1) ** (r + 1) * math.comb(k + 1, r) for r in range(1, k + 2)]  # c_m from c_{m-1..m-k-1}
    below = (grid[:, k + 1:] <= lo[:, None]).sum(dim=1).tolist()  # bases ending at or before lo
    above = (grid[:, :nb] > hi[:, None]).sum(dim=1).tolist()  # bases starting after hi
    out = coef.clone()
    for i, (n_lo, n_hi) in enumerate(zip(below, above)):
        if (n_lo == 0 and n_hi == 0) or nb - n_lo - n_hi < k + 1:
            continue
        c = out[:, i]  # (n_out, nb), a view
        for m in range(nb - n_hi, nb):
            c[:, m] = sum(w * c[:, m - r] for r, w in enumerate(weights, start=1))
        for m in range(n_lo - 1, -1, -1):
            c[:, m] = sum(w * c[:, m + r] for r, w in enumerate(weights, start=1))
    return out


def _nonzero(d: Tensor) -> Tensor:
    """Denominators of the recursion: repeated knots give 0/0 terms, defined as 0."""
    return torch.where(d == 0, torch.ones_like(d), d)
