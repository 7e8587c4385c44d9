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
         memory: int = 10_000_000, rescore: Callable[[list[int]], float] | None = None) -> list[list[int]]:
    """Forward selection (order-recursive matching pursuit) with a beam: each step extends each
    kept active set by the columns that lower its least-squares residual most (measured on the
    part of each column orthogonal to the set), and keeps the ``beam`` best sets (fewer where
    ``beam * N * F`` would pass ``memory`` numbers). Returns the best active set after each step
    (``always`` leading columns are in from the start; ``rescore`` replaces the residual by
    another error, inf to reject an active set).
    ``columns`` ``(N, F)`` normalised."""
    n, f = columns.shape
    beam = max(1, min(beam, memory // max(1, n * f)))
    ortho, resid = columns.clone(), target.clone()
    for k in range(always):
        ortho, resid = _project_out(ortho, resid, k)
    states = [(list(range(always)), ortho, resid)]
    paths: list[list[int]] = []
    tiny = 1e-12 * float(target.norm())
    for _ in range(max_terms):
        if float(states[0][2].norm()) <= tiny:
            break
        options = []
        for s, (active, ortho, resid) in enumerate(states):
            size = ortho.norm(dim=0)
            score = (ortho.T @ resid).abs() / size.clamp(min=1e-300)
            score[size <= 1e-8] = -1
            score[active] = -1
            top = torch.topk(score, min(beam if rescore is None else 4 * beam, f))
            gone = float(resid @ resid)
            options += [(gone - float(v) ** 2, s, int(k)) for v, k in zip(top.values, top.indices) if float(v) > 0]
        options.sort(key=lambda o: o[0])
        if rescore is not None:
            options = [(rescore(states[s][0] + [k]), s, k) for _, s, k in options[:16 * beam]]
            options = sorted((o for o in options if math.isfinite(o[0])), key=lambda o: o[0])
        seen, new = set(), []
        for _, s, k in options:
            key = frozenset(states[s][0] + [k])
            if key in seen:
                continue
            seen.add(key)
            ortho, resid = _project_out(states[s][1], states[s][2], k)
            new.append((states[s][0] + [k], ortho, resid))
            if len(new) == beam:
                break
        if not new:
            break
        states = new
        paths.append(list(states[0][0]))
    return paths


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


def _transforms(y: Tensor) -> list[tuple[str, Tensor, Callable]]:
    import sympy as sp

    sign = 1.0 if bool((y > 0).all()) else -1.0
    out: list[tuple[str, Tensor, Callable]] = [("id", y, lambda g: g)]
    if bool((y > 0).all() or (y < 0).all()):
        out.append(("square", y * y, lambda g: sign * sp.sqrt(g)))
    if _away_from_zero(y):
        out += [("inv", 1 / y, lambda g: 1 / g), ("log", (y * sign).log(), lambda g: sign * sp.exp(g))]
    return out


def feature_candidates(points: Tensor, y: Tensor, deadline: float, max_terms: int = 8,
                       max_rational: int = 5, top: int = 4) -> list:
    """Formulas ``T^-1(sum c phi)`` and ``T^-1(P / (1 + Q))`` fit to ``(points, y)`` by sparse
    regression on :func:`feature_library`.

    Shape: ``points`` ``(N, d)``, ``y`` ``(N,)``. For each transform and form, the number of
    terms is the smallest whose held-out error (every fifth row) is within 10% of that path's
    best; the ``top`` most accurate of those, and of the one-term-shorter neighbours, return.

    Returns:
        ``[(expr in the placeholders, relative error on all rows, description)]``.
    """
    feats = feature_library(points)
    values = torch.stack([v for v, _ in feats], dim=1)
    exprs = [e for _, e in feats]
    n = points.shape[0]
    held = torch.arange(n) % 5 == 0
    out: list = []
    for name, target, inverse in _transforms(y):
        for rational in (False, True):
            if time.perf_counter() > deadline and out:
                break
            raw = torch.cat([values, -target[:, None] * values[:, 1:]], dim=1) if rational else values
            cols, norms = _prepared(raw)
            rescore = _rational_error(cols[~held], target[~held], norms, values[~held]) if rational else None
            paths = _omp(cols[~held], target[~held], max_rational if rational else max_terms, always=1,
                         rescore=rescore)
            picked = _pick(paths, cols, target, held)
            for active in picked:
                coef = _fit_terms(cols, target, active) / norms[active]
                try:
                    inner = _expression(exprs, active, coef, values.shape[1], float(target.norm()), raw)
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


def _rational_error(cols: Tensor, target: Tensor, norms: Tensor, values: Tensor) -> Callable[[list[int]], float]:
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
        err = float(((p / q - target) ** 2).sum())
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
