"""Sparse regression on a library of simple features (the polynomial-fit step of AI Feynman,
widened to a feature library, as in SINDy / FFX): ``T(f) = sum_k c_k phi_k`` or the rational
``T(f) = (sum_k p_k phi_k) / (1 + sum_k q_k psi_k)`` (fit linearly as
``T(f) = sum p phi - T(f) sum q psi``), for output transforms ``T`` (identity, 1/f, f^2, log f).

The features are products of at most two *factors* of disjoint variables; a factor is a simple
function of one variable (``x, x^2, 1/x, sqrt(x), log x, exp(+-x), sin, cos, cos^2``, ...) or of a
pair (``x_i x_j``, ``cos(x_i - x_j)``, ...). Terms are chosen greedily (orthogonal matching
pursuit); the number of terms is chosen on held-out rows. The coefficients are rough where the
target is noisy or comes from a surrogate: :mod:`kanlab.discovery.finish` refits them on the data.
"""
from __future__ import annotations

import math
import time
from typing import Any, Callable

import torch
from torch import Tensor

from ..structure.problem import placeholder
from .leaf import relative_error

__all__ = ["feature_candidates", "feature_library"]

_Factor = tuple[frozenset, Tensor, Any]  # (variables used, values (N,), sympy expression)


def _positive(v: Tensor) -> bool:
    return bool((v > 0).all()) and float(v.min()) > 1e-3 * float(v.abs().max())


def _away_from_zero(v: Tensor) -> bool:
    return _positive(v) or _positive(-v)


def _unary(v: Tensor, u) -> list[tuple[Tensor, Any]]:
    """Simple functions of one column ``v`` (values, sympy in ``u``), where defined on the data."""
    import sympy as sp

    out = [(v, u), (v * v, u ** 2), (torch.exp(v), sp.exp(u)), (torch.exp(-v), sp.exp(-u)),
           (torch.sin(v), sp.sin(u)), (torch.cos(v), sp.cos(u)), (torch.cos(v) ** 2, sp.cos(u) ** 2),
           (torch.sin(math.pi * v), sp.sin(sp.pi * u)), (torch.cos(math.pi * v), sp.cos(sp.pi * u))]
    if _away_from_zero(v):
        out += [(1 / v, 1 / u), (1 / (v * v), u ** -2)]
    if _positive(v):
        out += [(v.sqrt(), sp.sqrt(u)), (v.log(), sp.log(u))]
    return out


def feature_library(points: Tensor) -> list[tuple[Tensor, Any]]:
    """Features ``[(values (N,), sympy in the placeholders)]`` for ``points`` ``(N, d)``, the
    constant first."""
    import sympy as sp

    d = points.shape[1]
    syms = [placeholder(k) for k in range(d)]
    factors: list[_Factor] = []
    for k in range(d):
        factors += [(frozenset([k]), v, e) for v, e in _unary(points[:, k], syms[k])]
    for i in range(d):
        for j in range(i + 1, d):
            xi, xj, si, sj = points[:, i], points[:, j], syms[i], syms[j]
            pair = frozenset([i, j])
            factors += [(pair, xi * xj, si * sj), (pair, (xi - xj) ** 2, (si - sj) ** 2),
                        (pair, torch.cos(xi - xj), sp.cos(si - sj)), (pair, torch.cos(xi + xj), sp.cos(si + sj))]
    ones = torch.ones(points.shape[0], dtype=points.dtype)
    feats = [(ones, sp.Integer(1))] + [(v, e) for _, v, e in factors]
    for a in range(len(factors)):
        for b in range(a + 1, len(factors)):
            if not factors[a][0] & factors[b][0]:
                feats.append((factors[a][1] * factors[b][1], factors[a][2] * factors[b][2]))
    return feats


def _omp(columns: Tensor, target: Tensor, max_terms: int, always: int = 0, beam: int = 16,
         memory: int = 10_000_000, rescore: Callable[[list[int]], float] | None = None,
         pair_limit: int = 1500) -> list[list[int]]:
    """Forward selection (order-recursive matching pursuit) with a beam: each step extends each
    kept active set by the columns that lower its least-squares residual most (measured on the
    part of each column orthogonal to the set), and keeps the ``beam`` best sets (fewer where
    ``beam * N * F`` would pass ``memory`` numbers). The second step also considers every pair
    of columns (where ``F <= pair_limit``): two terms that cancel each other in part, like
    ``a/b - a``, are each a poor first pick. Returns the best active set after each step
    (``always`` leading columns are in from the start; ``rescore`` replaces the residual by
    another error, inf to reject an active set). ``columns`` ``(N, F)`` normalised."""
    n, f = columns.shape
    beam = max(1, min(beam, memory // max(1, n * f)))
    ortho, resid = columns.clone(), target.clone()
    for k in range(always):
        ortho, resid = _project_out(ortho, resid, k)
    root = (list(range(always)), ortho, resid)
    states = [root]
    paths: list[list[int]] = []
    tiny = 1e-12 * float(target.norm())
    for step in range(max_terms):
        if float(states[0][2].norm()) <= tiny:
            break
        options: list = []
        for active, ortho, resid in states:
            size = ortho.norm(dim=0)
            score = (ortho.T @ resid).abs() / size.clamp(min=1e-300)
            score[size <= 1e-8] = -1
            score[active] = -1
            top = torch.topk(score, min(beam if rescore is None else 4 * beam, f))
            gone = float(resid @ resid)
            options += [(gone - float(v) ** 2, (active, ortho, resid), int(k))
                        for v, k in zip(top.values, top.indices) if float(v) > 0]
        if step == 1 and f <= pair_limit:
            options += _pair_options(root, 4 * beam if rescore is None else 64 * beam)
        options.sort(key=lambda o: o[0])
        if rescore is not None:
            options = [(rescore(parent[0] + [k]), parent, k) for _, parent, k in options[:16 * beam]]
            options = sorted((o for o in options if math.isfinite(o[0])), key=lambda o: o[0])
        seen, new = set(), []
        for _, parent, k in options:
            key = frozenset(parent[0] + [k])
            if key in seen:
                continue
            seen.add(key)
            if callable(parent):
                parent = parent()
            ortho, resid = _project_out(parent[1], parent[2], k)
            new.append((parent[0] + [k], ortho, resid))
            if len(new) == beam:
                break
        if not new:
            break
        states = new
        paths.append(list(states[0][0]))
    return paths


def _pair_options(root, count: int) -> list:
    """The ``count`` best pairs of columns added to the ``root`` state, as options
    ``(residual, parent, k)`` whose parent (root plus the pair's first column) is built lazily.
    From the Gram matrix: a pair's gain is ``b_k^2/g_kk + (b_j - g_kj b_k/g_kk)^2 / (g_jj - g_kj^2/g_kk)``."""
    active, ortho, resid = root
    g = ortho.T @ ortho
    b = ortho.T @ resid
    d = g.diagonal().clone()
    ok = d > 1e-12
    d = torch.where(ok, d, torch.ones_like(d))
    den = d[None, :] - g * g / d[:, None]
    gain = (b * b / d)[:, None] + (b[None, :] - g * (b / d)[:, None]) ** 2 / den.clamp(min=1e-300)
    bad = (den <= 1e-8 * d[None, :]) | ~ok[:, None] | ~ok[None, :]
    gain = torch.where(bad, torch.full_like(gain, -1.0), gain)
    gain.fill_diagonal_(-1.0)
    if active:
        gain[active, :] = -1.0
        gain[:, active] = -1.0
    top = torch.topk(gain.flatten(), min(count, gain.numel()))
    gone = float(resid @ resid)
    out = []
    f = g.shape[0]
    for v, idx in zip(top.values.tolist(), top.indices.tolist()):
        if v <= 0:
            break
        k, j = divmod(int(idx), f)

        def parent(k=k):
            return (active + [k], *_project_out(ortho, resid, k))

        out.append((gone - v, _Lazy(active + [k], parent), j))
    return out


class _Lazy:
    """A beam state built on first use; ``[0]`` (its active set) is known beforehand."""

    def __init__(self, active: list[int], build: Callable):
        self.active, self.build = active, build

    def __getitem__(self, i: int):
        return self.active if i == 0 else self.build()[i]

    def __call__(self):
        return self.build()


def _project_out(ortho: Tensor, resid: Tensor, k: int) -> tuple[Tensor, Tensor]:
    """Column ``k`` (already orthogonal to the active set) projected out of the columns and the residual."""
    q = ortho[:, k] / ortho[:, k].norm().clamp(min=1e-300)
    return ortho - q[:, None] * (q @ ortho)[None, :], resid - q * (q @ resid)


def _prepared(values: Tensor) -> tuple[Tensor, Tensor]:
    """Columns normalised to unit norm (non-finite or constant-zero ones zeroed), and the norms."""
    values = torch.where(torch.isfinite(values), values, torch.zeros_like(values))
    norms = values.norm(dim=0)
    ok = torch.isfinite(norms) & (norms > 1e-12 * norms.max().clamp(min=1e-300))
    norms = torch.where(ok, norms, torch.ones_like(norms))
    return values / norms * ok, norms


def _fit_terms(cols: Tensor, target: Tensor, active: list[int]) -> Tensor:
    return torch.linalg.lstsq(cols[:, active], target[:, None]).solution[:, 0]


def _expression(exprs: list, active: list[int], coef: Tensor, n_num: int, target_norm: float, cols: Tensor):
    """sympy ``P`` or ``P / (1 + Q)`` from the fitted active columns (negligible terms dropped)."""
    import sympy as sp

    num: list[tuple[int, float]] = []
    den: list[tuple[int, float]] = []
    for k, c in zip(active, coef.tolist()):
        if abs(c) * float(cols[:, k].norm()) <= 1e-10 * target_norm:
            continue
        (num if k < n_num else den).append((k, c))
    p = sp.Add(*[sp.Float(c) * exprs[k] for k, c in num])
    if not den:
        return p
    return p / (1 + sp.Add(*[sp.Float(c) * exprs[k - n_num + 1] for k, c in den]))


def _transforms(y: Tensor, noise: float) -> list[tuple[str, Tensor, Tensor, Tensor, Callable]]:
    """``(name, rows, T(y) on them, weights, inverse)`` for each output transform that applies.

    ``T`` other than the identity needs one sign: on noisy data (``noise``: the noise's standard
    deviation) the rows within 3 noise deviations of 0 are left out (there the sign is noise), if
    that keeps at least half of them. Weights ``1 / |T'(y)|`` make the fit in ``T``-space
    approximate least squares in ``y`` (log y and 1/y blow up the noise of small ``y``).
    """
    import sympy as sp

    everywhere = torch.ones_like(y, dtype=torch.bool)
    out: list[tuple[str, Tensor, Tensor, Tensor, Callable]] = [("id", everywhere, y, torch.ones_like(y), lambda g: g)]
    sign = 1.0 if float(y.median()) > 0 else -1.0
    rows = sign * y > 3 * noise
    if int(rows.sum()) < max(y.shape[0] // 2, 20) or bool((sign * y < -3 * noise).any()):
        return out
    v = y[rows]
    out.append(("square", rows, v * v, 1 / (2 * v.abs()), lambda g: sign * sp.sqrt(g)))
    if _away_from_zero(v):
        out += [("inv", rows, 1 / v, v * v, lambda g: 1 / g),
                ("log", rows, (v * sign).log(), v.abs(), lambda g: sign * sp.exp(g))]
    return out


def feature_candidates(points: Tensor, y: Tensor, deadline: float, noise: float = 0.0, max_terms: int = 8,
                       max_rational: int = 5, top: int = 4) -> list:
    """Formulas ``T^-1(sum c phi)`` and ``T^-1(P / (1 + Q))`` fit to ``(points, y)`` by sparse
    regression on :func:`feature_library`.

    Shape: ``points`` ``(N, d)``, ``y`` ``(N,)``. For each transform and form, the number of
    terms is the smallest whose held-out error (every fifth row) is within 10% of that path's
    best; the ``top`` most accurate of those, and of the one-term-shorter neighbours, return.
    ``noise``: the standard deviation of the noise in ``y`` (transforms skip rows near 0).

    Returns:
        ``[(expr in the placeholders, relative error on all rows, description)]``.
    """
    feats = feature_library(points)
    values_all = torch.stack([v for v, _ in feats], dim=1)
    exprs = [e for _, e in feats]
    held_all = torch.arange(points.shape[0]) % 5 == 0
    out: list = []
    for name, rows, target, weight, inverse in _transforms(y, noise):
        values, held = values_all[rows], held_all[rows]
        for rational in (False, True):
            if time.perf_counter() > deadline and out:
                break
            raw = torch.cat([values, -target[:, None] * values[:, 1:]], dim=1) if rational else values
            cols, norms = _prepared(raw * weight[:, None])
            wtarget = target * weight
            rescore = _rational_error(cols[~held], wtarget[~held], norms, values[~held], weight[~held]) \
                if rational else None
            paths = _omp(cols[~held], wtarget[~held], max_rational if rational else max_terms, always=1,
                         rescore=rescore)
            for active in _pick(paths, cols, wtarget, held):
                coef = _fit_terms(cols, wtarget, active) / norms[active]
                try:
                    inner = _expression(exprs, active, coef, values.shape[1], float(wtarget.norm()),
                                        raw * weight[:, None])
                    expr = inverse(inner)
                except (ValueError, TypeError, ZeroDivisionError):
                    continue
                err = relative_error(expr, points, y)
                if math.isfinite(err):
                    form = "rational" if rational else "linear"
                    out.append((expr, err, f"features {form}, T = {name}, {len(active)} terms"))
    return _ranked(out, top)


def _ranked(found: list, top: int) -> list:
    """The simplest of those within 20% of the best error first, then the rest by error."""
    import sympy

    if not found:
        return []
    best = min(c[1] for c in found)
    good = [c for c in found if c[1] <= 1.2 * best + 1e-12]
    good.sort(key=lambda c: (int(sympy.count_ops(c[0])), c[1]))
    rest = sorted((c for c in found if c not in good), key=lambda c: c[1])
    return (good + rest)[:top]


def _rational_error(cols: Tensor, target: Tensor, norms: Tensor, values: Tensor,
                    weight: Tensor) -> Callable[[list[int]], float]:
    """For the linearised rational fit ``T = P - T Q'``: the squared error of ``P / (1 + Q')``
    itself (inf where the denominator nearly vanishes or changes sign). The linear residual
    ``(1 + Q')(P / (1 + Q') - T)`` is small wherever ``1 + Q'`` is, so it cannot rank sets."""
    n_num = values.shape[1]

    def error(active: list[int]) -> float:
        coef = torch.linalg.lstsq(cols[:, active], target[:, None]).solution[:, 0]
        raw = coef / norms[active]
        num = [i for i, k in enumerate(active) if k < n_num]
        den = [i for i, k in enumerate(active) if k >= n_num]
        p = values[:, [active[i] for i in num]] @ raw[num]
        q = 1 + values[:, [active[i] - n_num + 1 for i in den]] @ raw[den] if den else torch.ones_like(p)
        if not bool((q > 0).all() or (q < 0).all()) or float(q.abs().min()) <= 1e-3 * float(q.abs().max()):
            return math.inf
        err = float(((p / q * weight - target) ** 2).sum())
        return err if math.isfinite(err) else math.inf

    return error


def _pick(paths: list[list[int]], cols: Tensor, target: Tensor, held: Tensor) -> list[list[int]]:
    """The shortest active set whose held-out RMSE is within 10% of the path's best (and the
    next longer one)."""
    if not paths:
        return []
    errs = []
    for active in paths:
        coef = _fit_terms(cols[~held], target[~held], active)
        pred = cols[held][:, active] @ coef
        errs.append(float(((pred - target[held]) ** 2).mean().sqrt()))
    best = min(errs)
    k = next(i for i, e in enumerate(errs) if e <= 1.1 * best + 1e-14 * float(target.abs().max()))
    return paths[k:k + 2]
