"""Affine fits of library functions to edge data: ``y ~ c f(a x + b) + d``.

Vectorised over edges (a batch dimension ``E``) and bounded in memory: the (a, b) grid
search runs on a fixed-size subsample of each edge's points (spread over its range) in
chunks of at most ``max_elements`` values, c and d come in closed form (least squares),
then a Levenberg-Marquardt refinement of (a, b, c, d) runs on all points. All in float64.

pykan's version allocated ``batch x 101 x 101`` per candidate; here memory is
``O(max_elements + E * N)`` whatever the grid.
"""
from __future__ import annotations

import math
from typing import Callable, NamedTuple, Sequence

import torch
from torch import Tensor

__all__ = ["FitResult", "SingularFitError", "fit_functions", "rank_candidates", "is_constant"]


class SingularFitError(ValueError):
    """The data cannot determine a fit (constant edge input or output)."""


class FitResult(NamedTuple):
    """Best affine parameters and score of each candidate on each edge.

    ``params`` ``(E, K, 4)`` holds (a, b, c, d) in the data's own coordinates;
    ``r2`` ``(E, K)`` is the coefficient of determination on all points, ``-inf`` for a
    skipped candidate (non-finite values, or a fit the data cannot determine).
    ``cancellation`` ``(E, K)`` is ``max |c f(a x + b)| / (max y - min y)``: large values
    (>> 1) mean the fit only uses a nearly flat slice of ``f`` and cancels it with ``d``,
    a Taylor approximation (cos(eps x) ~ 1 - eps^2 x^2 / 2) rather than a real match.
    ``degenerate`` ``(E, K)`` bool marks the other face of that regime: ``f`` is used over an
    argument range so narrow that ``f(a x + b)`` is nearly a line or a quadratic in ``x``
    (all but a fraction ``< taylor_tol`` of its variance), and it does not fit the data
    clearly better than the best line / quadratic does (its unexplained variance is more
    than ``taylor_gain`` times theirs). Its r^2 edge over ``x`` / ``x^2`` is then fitted
    noise, not shape: e.g. the sum-of-cosines a pruned KAN offers for ``x y``, or
    ``(x + 300)^2`` for a nearly straight edge. Exact polynomials (``x``; ``x^2`` against
    quadratics) are never degenerate.
    """

    params: Tensor
    r2: Tensor
    cancellation: Tensor
    degenerate: Tensor


def is_constant(y: Tensor, rtol: float = 1e-9) -> Tensor:
    """Which rows of ``y`` ``(E, N)`` are constant up to ``rtol`` of their magnitude -> ``(E,)`` bool."""
    y = y.to(torch.float64)
    scale = y.abs().amax(dim=-1).clamp(min=1.0)
    return (y.amax(dim=-1) - y.amin(dim=-1)) <= rtol * scale


def fit_functions(x: Tensor, y: Tensor, functions: Sequence[Callable[[Tensor], Tensor]],
                  a_range=(-10.0, 10.0), b_range=(-10.0, 10.0), grid_number: int = 21,
                  zoom_steps: int = 2, n_sub: int = 64, n_refine: int = 256, refine_top: int = 6,
                  refine_steps: int = 50, max_elements: int = 2 ** 18, taylor_tol: float = 1e-3,
                  taylor_gain: float = 0.1) -> FitResult:
    """Fit ``y ~ c f(a x + b) + d`` for every function ``f`` and every edge.

    The search is scale-free: ``x`` is first mapped to [-1, 1] (per edge), and ``a_range``,
    ``b_range`` are the ranges of the slope and offset in those coordinates. Three stages:
    a zooming (a, b) grid search on ``n_sub`` points (float32, closed-form c, d), a
    Levenberg-Marquardt refinement on ``n_refine`` points (float64) of each edge's
    ``refine_top`` best candidates, and the r^2 of every candidate on all points.

    Args:
        x, y: edge inputs and outputs, ``(E, N)`` (or ``(N,)`` for one edge).
        functions: K elementwise torch functions (e.g. ``SymbolicFunction.torch_fn``).
        a_range, b_range: initial grid ranges; grid_number: grid points per axis.
        zoom_steps: times the grid is re-centred on the best point and narrowed.
        n_sub, n_refine: points (spread over x's range) used by the grid search and the refinement.
        refine_top: candidates refined per edge; refine_steps: Levenberg-Marquardt steps.
        max_elements: cap on the function values held at once during the grid search.
        taylor_tol, taylor_gain: thresholds of the ``degenerate`` flag (see :class:`FitResult`).

    Returns:
        :class:`FitResult` with ``params`` ``(E, K, 4)``, ``r2``, ``cancellation`` and
        ``degenerate`` ``(E, K)`` (squeezed to ``(K, 4)`` / ``(K,)`` for 1-D input).

    Raises:
        SingularFitError: an edge's input or output is constant (nothing to fit).
    """
    squeeze = x.dim() == 1
    x, y = _check(x, y, grid_number, n_sub)
    dtype = x.dtype
    xn, yn, (mu, s, ym, ys) = _normalize(x.to(torch.float64), y.to(torch.float64))
    xs, ysub = (t.float() for t in _subsample(xn, yn, n_sub))
    xr, yr = _subsample(xn, yn, max(n_refine, 2))
    p = xn.new_empty(xn.shape[0], len(functions), 4)  # (E, K, 4) in normalised coordinates
    for k, fn in enumerate(functions):
        a, b = _grid_search(fn, xs, ysub, a_range, b_range, grid_number, zoom_steps, max_elements)
        a, b = a.double(), b.double()
        p[:, k] = torch.stack([a, b, *_closed_form_cd(fn(a[:, None] * xr + b[:, None]), yr)], -1)
    if refine_steps > 0:
        r2_sub = torch.stack([_r2(fn, xr, yr, p[:, k]) for k, fn in enumerate(functions)], dim=1)
        top = r2_sub.argsort(dim=1, descending=True)[:, :refine_top]  # (E, top)
        chosen = torch.zeros_like(r2_sub, dtype=torch.bool).scatter_(1, top, True)
        for k, fn in enumerate(functions):
            sel = chosen[:, k]
            if sel.any():
                p[sel, k] = _refine(fn, xr[sel], yr[sel], p[sel, k], refine_steps)
    for k, fn in enumerate(functions):
        if _is_identity(fn):  # c (a x + b) + d: the offset b belongs in d
            p[:, k] = torch.stack([torch.ones_like(p[:, k, 0]), torch.zeros_like(p[:, k, 0]),
                                   p[:, k, 2] * p[:, k, 0], p[:, k, 3] + p[:, k, 2] * p[:, k, 1]], dim=-1)
    r2, cancel = (torch.stack(v, dim=1) for v in zip(*(_r2(fn, xn, yn, p[:, k], True)
                                                         for k, fn in enumerate(functions))))  # (E, K)
    degenerate = _degenerate(functions, xn, yn, p, r2, taylor_tol, taylor_gain)
    out = _denormalize(p, mu, s, ym, ys)
    bad = ~torch.isfinite(out).all(dim=-1) | ~torch.isfinite(r2)
    r2 = torch.where(bad, float("-inf"), r2)
    out = torch.where(bad[..., None], torch.tensor([1.0, 0.0, 0.0, 0.0], dtype=out.dtype), out)
    cancel = torch.where(bad | ~torch.isfinite(cancel), float("inf"), cancel)
    degenerate = degenerate & ~bad
    out, r2, cancel = out.to(dtype), r2.to(dtype), cancel.to(dtype)
    if squeeze:
        return FitResult(out[0], r2[0], cancel[0], degenerate[0])
    return FitResult(out, r2, cancel, degenerate)


def _poly_residual(q: Tensor, z: Tensor) -> Tensor:
    """Fraction of the variance of each row of ``z`` ``(E, N)`` that no polynomial of the
    basis ``q`` ``(E, N, m)`` (orthonormal, constants included) explains -> ``(E,)``; 0 for
    constant rows."""
    zc = z - z.mean(dim=-1, keepdim=True)
    resid = zc - torch.einsum("ek,enk->en", torch.einsum("en,enk->ek", zc, q), q)
    var = (zc * zc).sum(dim=-1)
    return torch.where(var > 0, (resid * resid).sum(dim=-1) / var, 0.0)


def _degenerate(functions, xn: Tensor, yn: Tensor, p: Tensor, r2: Tensor, tol: float,
                gain: float) -> Tensor:
    """The ``degenerate`` flag of :class:`FitResult`, ``(E, K)`` bool (normalised coordinates,
    one function at a time: memory ``O(E N)``). Checked against lines and quadratics."""
    with torch.no_grad():
        q2, _ = torch.linalg.qr(torch.stack([torch.ones_like(xn), xn, xn * xn], dim=-1))  # (E, N, 3)
        bases = (q2[..., :2], q2)  # degree <= 1, degree <= 2 (Gram-Schmidt keeps the prefix)
        best = [_poly_residual(q, yn) for q in bases]  # (E,) each: 1 - r^2 of the best polynomial
        flags = torch.zeros(r2.shape, dtype=torch.bool)
        for k, fn in enumerate(functions):
            z = fn(p[:, k, 0:1] * xn + p[:, k, 1:2])
            z = torch.where(torch.isfinite(z), z, 0.0)
            for q, best_q in zip(bases, best):
                shape = _poly_residual(q, z)  # (E,)
                near = (shape > 1e-20) & (shape < tol)  # <= 1e-20: an exact polynomial (x, x^2)
                flags[:, k] |= near & ((1 - r2[:, k]) > gain * best_q)
    return flags


def _is_identity(fn) -> bool:
    probe = torch.linspace(-3.0, 3.0, 7, dtype=torch.float64)
    try:
        return bool(torch.equal(fn(probe), probe))
    except Exception:  # noqa: BLE001 - any failure just means "not the identity"
        return False


def _denormalize(p: Tensor, mu: Tensor, s: Tensor, ym: Tensor, ys: Tensor) -> Tensor:
    """(a, b, c, d) for normalised x, y -> for the original ones. Shape ``(E, K, 4)``."""
    a = p[..., 0] / s[:, None]
    b = p[..., 1] - p[..., 0] * mu[:, None] / s[:, None]
    c = p[..., 2] * ys[:, None]
    d = p[..., 3] * ys[:, None] + ym[:, None]
    return torch.stack([a, b, c, d], dim=-1)


def rank_candidates(r2: Tensor, complexity: Tensor, weight_simple: float = 0.8,
                    cancellation: Tensor | None = None, max_cancellation: float = 10.0,
                    degenerate: Tensor | None = None) -> Tensor:
    """pykan's score, lower is better: ``(1 - w) log2(1 + 1e-5 - r2) + w complexity``.

    Candidates whose ``cancellation`` exceeds ``max_cancellation`` or that are marked
    ``degenerate`` (Taylor-regime fits, see :class:`FitResult`) are ranked after all
    others, unless that leaves nothing.

    Shape: ``r2`` ``(..., K)``, ``complexity`` ``(K,)`` -> ``(..., K)``; skipped
    candidates (``r2 = -inf``) score ``+inf``.
    """
    if not 0.0 <= weight_simple <= 1.0:
        raise ValueError(f"weight_simple must be in [0, 1], got {weight_simple!r}")
    r2 = r2.to(torch.float64)
    fit_loss = torch.log2(1 + 1e-5 - r2.clamp(max=1.0).clamp(min=-1e30))
    score = (1 - weight_simple) * fit_loss + weight_simple * complexity.to(torch.float64)
    score = torch.where(torch.isfinite(r2), score, float("inf"))
    flat = torch.zeros_like(score, dtype=torch.bool)
    if cancellation is not None:
        flat = flat | (cancellation.to(torch.float64) > max_cancellation)
    if degenerate is not None:
        flat = flat | degenerate.to(torch.bool)
    if cancellation is not None or degenerate is not None:
        some_left = (torch.isfinite(score) & ~flat).any(dim=-1, keepdim=True)
        score = torch.where(flat & some_left & torch.isfinite(score), score + 1e6, score)
    return score


# ---------------------------------------------------------------------- steps
def _check(x: Tensor, y: Tensor, grid_number: int, n_sub: int) -> tuple[Tensor, Tensor]:
    if not isinstance(x, Tensor) or not isinstance(y, Tensor):
        raise TypeError("x and y must be tensors")
    x, y = (x[None], y[None]) if x.dim() == 1 else (x, y)
    if x.dim() != 2 or x.shape != y.shape:
        raise ValueError(f"x and y must both have shape (E, N) or (N,), got {tuple(x.shape)} and {tuple(y.shape)}")
    if x.shape[1] < 2:
        raise ValueError(f"at least 2 samples are needed to fit, got {x.shape[1]}")
    if not (torch.isfinite(x).all() and torch.isfinite(y).all()):
        raise ValueError("x and y must be finite (the edge data contains NaN or inf)")
    if grid_number < 2 or n_sub < 2:
        raise ValueError(f"grid_number and n_sub must be >= 2, got {grid_number} and {n_sub}")
    if is_constant(x).any() or is_constant(y).any():
        raise SingularFitError("singular fit: an edge's input or output is constant on the data, "
                               "so c f(a x + b) + d is undetermined (fix it to '0' or use more varied data)")
    return x, y


def _normalize(x: Tensor, y: Tensor):
    """Map each edge's x to [-1, 1] and y to zero mean, unit deviation."""
    lo, hi = x.amin(dim=1), x.amax(dim=1)
    mu, s = (hi + lo) / 2, (hi - lo) / 2
    ym, ys = y.mean(dim=1), y.std(dim=1, unbiased=False)
    return (x - mu[:, None]) / s[:, None], (y - ym[:, None]) / ys[:, None], (mu, s, ym, ys)


def _subsample(x: Tensor, y: Tensor, m: int) -> tuple[Tensor, Tensor]:
    """``m`` points per edge, evenly spaced in the sorted order of x. Shape ``(E, m)``."""
    n = x.shape[1]
    if n <= m:
        return x, y
    order = x.argsort(dim=1)
    pick = order[:, torch.linspace(0, n - 1, m, dtype=torch.float64).round().long()]
    return x.gather(1, pick), y.gather(1, pick)


_A_SCALE = 0.3  # slopes are searched on a sinh scale: dense near 0, geometric beyond ~0.3


def _grid_search(fn, x: Tensor, y: Tensor, a_range, b_range, g: int, zoom_steps: int,
                 max_elements: int) -> tuple[Tensor, Tensor]:
    """Best (a, b) per edge by the correlation of f(a x + b) with y on the subsample. ``(E,)`` each.

    The slope axis is uniform in ``t = asinh(a / 0.3)`` (fine steps for small slopes, where
    domain limits such as arctanh's make the fit sensitive, geometric steps for large ones);
    each zoom re-centres a smaller grid on the best point, one old step either side.
    """
    e, m = x.shape
    yc = y - y.mean(dim=1, keepdim=True)
    syy = (yc * yc).sum(dim=1)  # (E,)
    t_lo, t_hi = (math.asinh(float(v) / _A_SCALE) for v in a_range)
    lo_t, hi_t = x.new_full((e,), t_lo), x.new_full((e,), t_hi)
    lo_b, hi_b = x.new_full((e,), float(b_range[0])), x.new_full((e,), float(b_range[1]))
    best_r2 = x.new_full((e,), -2.0)
    best_t, best_b = (lo_t + hi_t) / 2, (lo_b + hi_b) / 2
    chunk = max(1, max_elements // max(1, e * m))
    for level in range(zoom_steps + 1):
        n = g if level == 0 else max(5, g // 2 + 1)
        steps = torch.linspace(0, 1, n, dtype=x.dtype)
        tv = lo_t[:, None] + (hi_t - lo_t)[:, None] * steps  # (E, n)
        bv = lo_b[:, None] + (hi_b - lo_b)[:, None] * steps
        tt = tv[:, :, None].expand(e, n, n).reshape(e, n * n)  # (E, P)
        bb = bv[:, None, :].expand(e, n, n).reshape(e, n * n)
        aa = _A_SCALE * torch.sinh(tt)
        for start in range(0, n * n, chunk):
            a, b = aa[:, start:start + chunk], bb[:, start:start + chunk]
            z = fn(a[:, :, None] * x[:, None, :] + b[:, :, None])  # (E, Pc, M)
            val, idx = _corr2(z, yc, syy).max(dim=1)  # (E,)
            better = val > best_r2
            best_r2 = torch.where(better, val, best_r2)
            best_t = torch.where(better, tt[:, start:start + chunk].gather(1, idx[:, None])[:, 0], best_t)
            best_b = torch.where(better, b.gather(1, idx[:, None])[:, 0], best_b)
        dt, db = (hi_t - lo_t) / (n - 1), (hi_b - lo_b) / (n - 1)
        lo_t, hi_t, lo_b, hi_b = best_t - dt, best_t + dt, best_b - db, best_b + db
    return _A_SCALE * torch.sinh(best_t), best_b


def _corr2(z: Tensor, yc: Tensor, syy: Tensor) -> Tensor:
    """Squared correlation of each row of z ``(E, P, M)`` with the centred yc ``(E, M)``;
    -1 where undefined. z is centred first: in float32, ``sum z^2 - (sum z)^2 / M`` would
    cancel badly exactly for the nearly flat slices that must not look like good fits."""
    zm = z.mean(dim=-1, keepdim=True)
    zc = z - zm
    cov = torch.einsum("epm,em->ep", zc, yc)
    vz = torch.einsum("epm,epm->ep", zc, zc)
    r2 = cov * cov / (vz * syy[:, None])
    ok = torch.isfinite(r2) & (vz > 1e-10 * z.shape[-1] * (zm[..., 0] * zm[..., 0] + 1e-10))
    return torch.where(ok, r2.clamp(max=1.0), -1.0)


def _closed_form_cd(z: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
    """Least-squares c, d of ``y ~ c z + d`` per row; c = 0 where z is constant or not finite."""
    zm, ym = z.mean(dim=1), y.mean(dim=1)
    zc, yc = z - zm[:, None], y - ym[:, None]
    vz = (zc * zc).sum(dim=1)
    c = (zc * yc).sum(dim=1) / vz
    ok = torch.isfinite(c) & (vz > 1e-20 * z.shape[1])
    c = torch.where(ok, c, 0.0)
    d = torch.where(ok, ym - c * zm, ym)
    return c, d


def _sse(fn, x: Tensor, y: Tensor, p: Tensor) -> Tensor:
    pred = p[:, 2:3] * fn(p[:, 0:1] * x + p[:, 1:2]) + p[:, 3:4]
    sse = ((pred - y) ** 2).sum(dim=1)
    return torch.where(torch.isfinite(sse), sse, float("inf"))


def _r2(fn, x: Tensor, y: Tensor, p: Tensor, cancellation: bool = False):
    """r^2 of each row ``(E,)`` (and, if asked, the cancellation ratio ``(E,)``)."""
    with torch.no_grad():
        cf = p[:, 2:3] * fn(p[:, 0:1] * x + p[:, 1:2])  # (E, N)
        sse = ((cf + p[:, 3:4] - y) ** 2).sum(dim=1)
        sst = ((y - y.mean(dim=1, keepdim=True)) ** 2).sum(dim=1)
        r2 = 1 - sse / sst
        r2 = torch.where(torch.isfinite(r2), r2, float("-inf"))
        if not cancellation:
            return r2
        return r2, cf.abs().amax(dim=1) / (y.amax(dim=1) - y.amin(dim=1))


def _refine(fn, x: Tensor, y: Tensor, p: Tensor, steps: int) -> Tensor:
    """Levenberg-Marquardt on (a, b, c, d) ``(E, 4)``; a step is kept only if it lowers the error.

    Rows stop one by one as they converge (or get stuck), so the cost follows the slow rows only.
    """
    p = p.clone()
    sse = _sse(fn, x, y, p)
    lam = torch.full_like(sse, 1e-3)
    exact = 1e-26 * x.shape[1]
    active = torch.nonzero(sse > exact).flatten()
    for _ in range(steps):
        if active.numel() == 0:
            break
        xa, ya, pa, sa, la = x[active], y[active], p[active], sse[active], lam[active]
        jac, resid = _jacobian(fn, xa, ya, pa)
        if jac is None:
            break
        jtj = jac.transpose(1, 2) @ jac  # (A, 4, 4)
        g = (jac.transpose(1, 2) @ resid[..., None])[..., 0]
        diag = torch.diagonal(jtj, dim1=1, dim2=2)
        damp = la[:, None] * (diag + 1e-12 * diag.amax(dim=1, keepdim=True) + 1e-30)
        delta, info = torch.linalg.solve_ex(jtj + torch.diag_embed(damp), g)
        delta = torch.where((info == 0)[:, None] & torch.isfinite(delta), delta, 0.0)
        new = pa + delta
        new_sse = _sse(fn, xa, ya, new)
        better = new_sse < sa
        gain = torch.where(better, (sa - new_sse) / sa.clamp(min=1e-300), 0.0)
        sa = torch.where(better, new_sse, sa)
        la = torch.where(better, la / 3, la * 4).clamp(1e-12, 1e12)
        p[active] = torch.where(better[:, None], new, pa)
        sse[active], lam[active] = sa, la
        done = (better & (gain < 1e-10)) | (~better & (la >= 1e6)) | (sa <= exact)
        active = active[~done]
    return p


def _jacobian(fn, x: Tensor, y: Tensor, p: Tensor):
    """Residual ``y - pred`` ``(E, N)`` and its Jacobian w.r.t. (a, b, c, d) ``(E, N, 4)``."""
    with torch.enable_grad():
        u = (p[:, 0:1] * x + p[:, 1:2]).detach().requires_grad_(True)
        z = fn(u)
        if not z.requires_grad:  # constant function ('0'): only c, d matter
            dz = torch.zeros_like(u)
        else:
            try:
                (dz,) = torch.autograd.grad(z.sum(), u)
            except RuntimeError:
                return None, None
    z, dz = z.detach(), dz.detach()
    c = p[:, 2:3]
    jac = torch.stack([c * dz * x, c * dz, z, torch.ones_like(z)], dim=-1)
    jac = torch.where(torch.isfinite(jac), jac, 0.0)
    return jac, y - (c * z + p[:, 3:4])
