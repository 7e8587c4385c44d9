"""Sparse regression on a library of simple features (the polynomial-fit step of AI Feynman,
widened to a feature library, as in SINDy / FFX): ``T(f) = sum_k c_k phi_k`` or the rational
``T(f) = (sum_k p_k phi_k) / (1 + sum_k q_k psi_k)`` (fit linearly as
``T(f) = sum p phi - T(f) sum q psi``), for output transforms ``T`` (identity, 1/f, f^2, log f),
of ``f`` itself or of ``f / x_k`` (a law linear in one variable).

The features are products of at most two *factors* of disjoint variables; a factor is a simple
function of one variable (``x, x^2, 1/x, sqrt(x), log x, exp(+-x), sin, cos, cos^2``, ...) or of a
pair (``x_i x_j``, ``cos(x_i - x_j)``, ``cos(x_i x_j)``, ...). Terms are chosen by forward
selection (:mod:`kanlab.discovery.selection`), among the factors alone and then among all
features; the number of terms is chosen on held-out rows. The coefficients are rough where the
target is noisy or comes from a surrogate: :mod:`kanlab.discovery.finish` refits them on the data.
"""
from __future__ import annotations

import math
import time
from typing import Any, Callable, NamedTuple

import torch
from torch import Tensor

from ..structure.problem import placeholder
from .leaf import relative_error
from .selection import forward_selection, least_squares, normalised_columns, pick_size

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


def _factors(points: Tensor) -> list[_Factor]:
    """The factors for ``points`` ``(N, d)``: simple functions of one column (where defined on
    the data) and of each pair of columns."""
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
                        (pair, torch.cos(xi - xj), sp.cos(si - sj)), (pair, torch.cos(xi + xj), sp.cos(si + sj)),
                        (pair, torch.cos(xi * xj), sp.cos(si * sj)), (pair, torch.sin(xi * xj), sp.sin(si * sj))]
    return factors


def feature_library(points: Tensor, products: bool = True) -> list[tuple[Tensor, Any]]:
    """Features ``[(values (N,), sympy in the placeholders)]`` for ``points`` ``(N, d)``: the
    constant, the factors, then (``products``) the products of two factors of disjoint variables."""
    return _library(_factors(points), points, products)


def _library(factors: list[_Factor], points: Tensor, products: bool) -> list[tuple[Tensor, Any]]:
    import sympy as sp

    ones = torch.ones(points.shape[0], dtype=points.dtype)
    feats = [(ones, sp.Integer(1))] + [(v, e) for _, v, e in factors]
    for a in range(len(factors) if products else 0):
        for b in range(a + 1, len(factors)):
            if not factors[a][0] & factors[b][0]:
                feats.append((factors[a][1] * factors[b][1], factors[a][2] * factors[b][2]))
    return feats


def _expression(exprs: list, active: list[int], coef: Tensor, n_num: int, target_norm: float, cols: Tensor):
    """``(s, g)``: the fitted ``P`` or ``P / (1 + Q)`` as ``s g`` (sympy ``g``, float ``s``), where
    ``s`` is the coefficient of ``P``'s largest term: the inverse transforms put ``s`` outside
    (``sqrt(s) sqrt(g)``, ``1 / (s g)``), where rounding finds a law's prefactor. Negligible
    terms are dropped."""
    import sympy as sp

    num: list[tuple[int, float]] = []
    den: list[tuple[int, float]] = []
    size: list[float] = []
    for k, c in zip(active, coef.tolist()):
        weight = abs(c) * float(cols[:, k].norm())
        if weight <= 1e-10 * target_norm:
            continue
        (num if k < n_num else den).append((k, c))
        if k < n_num:
            size.append(weight)
    if not num:
        return 1.0, sp.Integer(0)
    scale = num[max(range(len(num)), key=lambda i: size[i])][1]
    p = sp.Add(*[sp.Float(c / scale) * exprs[k] for k, c in num])
    if not den:
        return scale, p
    return scale, p / (1 + sp.Add(*[sp.Float(c) * exprs[k - n_num + 1] for k, c in den]))


def _inverse_square(sign: float) -> Callable:
    def inverse(scale: float, g):
        import sympy as sp

        root = sp.sqrt(g) if scale > 0 else sp.sqrt(-g)
        return sp.Float(sign * math.sqrt(abs(scale))) * root

    return inverse


def _inverse_log(sign: float) -> Callable:
    def inverse(scale: float, g):
        import sympy as sp

        const, rest = sp.expand(sp.Float(scale) * g).as_coeff_Add()
        return sp.Float(sign) * sp.exp(sp.Float(const)) * sp.exp(rest)  # sympy's exp: no overflow

    return inverse


def _transforms(y: Tensor, noise: float) -> list[tuple[str, Tensor, Tensor, Tensor, Callable]]:
    """``(name, rows, T(y) on them, weights, inverse)`` for each output transform that applies
    (``inverse(s, g)``: ``T^-1(s g)``, see :func:`_expression`).

    ``T`` other than the identity needs one sign: where ``y`` has both signs but the wrong one
    only within 3 noise deviations of 0 (``noise``: the noise's standard deviation), the rows
    within 3 deviations of 0 are left out (there the sign is noise), if that keeps at least half.
    Weights ``1 / |T'(y)|`` make the fit in ``T``-space approximate least squares in ``y`` (log y
    and 1/y blow up the noise of small ``y``).
    """
    import sympy as sp

    everywhere = torch.ones_like(y, dtype=torch.bool)
    out: list[tuple[str, Tensor, Tensor, Tensor, Callable]] = [
        ("id", everywhere, y, torch.ones_like(y), lambda s, g: sp.Float(s) * g)]
    sign = 1.0 if float(y.median()) > 0 else -1.0
    rows = sign * y > (0.0 if bool((sign * y > 0).all()) else 3 * noise)
    if int(rows.sum()) < max(y.shape[0] // 2, 20) or bool((sign * y < -3 * noise).any()):
        return out
    v = y[rows]
    out.append(("square", rows, v * v, 1 / (2 * v.abs()), _inverse_square(sign)))
    if _away_from_zero(v):
        out += [("inv", rows, 1 / v, v * v, lambda s, g: sp.Float(1 / s) / g),
                ("log", rows, (v * sign).log(), v.abs(), _inverse_log(sign))]
    return out


def feature_candidates(points: Tensor, y: Tensor, deadline: float, noise: float = 0.0, max_terms: int = 8,
                       max_rational: int = 5, top: int = 4, factor_out: bool = False) -> list:
    """Formulas ``T^-1(sum c phi)`` and ``T^-1(P / (1 + Q))`` fit to ``(points, y)`` by sparse
    regression on :func:`feature_library`.

    Shape: ``points`` ``(N, d)``, ``y`` ``(N,)``. For each transform and form, the number of
    terms is the smallest whose held-out error (every fifth row) is within 10% of that path's
    best; the ``top`` most accurate of those, and of the one-term-shorter neighbours, return.
    ``noise``: the standard deviation of the noise in ``y`` (transforms skip rows near 0).
    ``deadline`` (a ``time.perf_counter()`` value) stops the ``y / x_k`` fits; ``y``'s own
    fits always run in full (seconds at most: the library is bounded).
    ``factor_out``: where no formula fits to 1e-10, also fit ``y / x_k`` for each variable
    ``x_k`` (a law linear in one variable, ``y = x_k g``, whose ``g`` has a transform that
    ``y`` lacks: ``g`` keeps one sign where ``y`` changes sign with ``x_k``), on the rows where
    ``|x_k|`` is at least a tenth of its largest value.

    Returns:
        ``[(expr in the placeholders, relative error on all rows, description)]``.
    """
    factors = _factors(points)
    feats = _library(factors, points, products=True)
    lib = _Library(torch.stack([v for v, _ in feats], dim=1), [e for _, e in feats], 1 + len(factors))
    held_all = torch.arange(points.shape[0]) % 5 == 0
    everywhere = torch.ones_like(y, dtype=torch.bool)
    plain = _Target(everywhere, y, torch.ones_like(y), lambda e: e, "")
    out = _fitted(plain, lib, held_all, points, y, noise, math.inf, max_terms, max_rational)
    for k in range(points.shape[1] if factor_out else 0):
        if time.perf_counter() > deadline or min((c[1] for c in out), default=math.inf) <= 1e-10:
            break
        x = points[:, k]
        rows = x.abs() >= 0.1 * float(x.abs().max())
        if int(rows.sum()) < max(y.shape[0] // 2, 20):
            continue
        sym = placeholder(k)
        part = _Target(rows, y[rows] / x[rows], x[rows].abs(), lambda e, sym=sym: sym * e, f", y / x{k}")
        scale = float(x[rows].abs().median())
        out += _fitted(part, lib, held_all, points, y, noise / scale, deadline, max_terms, max_rational)
    return _ranked(out, top)


class _Target(NamedTuple):
    """What the regression fits: ``value`` on ``rows``, weighted by ``weight`` (to keep the fit
    least squares in ``y``); ``wrap`` turns a formula for ``value`` into one for ``y``."""

    rows: Tensor
    value: Tensor
    weight: Tensor
    wrap: Callable
    label: str


class _Library(NamedTuple):
    """Feature values ``(N, F)``, their sympy expressions, and how many of them (the first) are
    the constant and single factors."""

    values: Tensor
    exprs: list
    n_factors: int

    def subsets(self, rational: bool) -> list[Tensor | None]:
        """Column subsets to search: the factors alone first (a short formula of factors is
        found there even where the products make the full search greedy), then everything."""
        n, f = self.n_factors, self.values.shape[1]
        if n >= f:
            return [None]
        small = torch.arange(n)
        return [torch.cat([small, f + small[1:] - 1]) if rational else small, None]


def _fitted(base: _Target, lib: _Library, held_all: Tensor, points: Tensor, y: Tensor, noise: float,
            deadline: float, max_terms: int, max_rational: int) -> list:
    """Linear and rational sparse fits of every output transform of ``base.value``."""
    out: list = []
    values_base, held_base = lib.values[base.rows], held_all[base.rows]
    for name, rows, target, weight, inverse in _transforms(base.value, noise):
        values, held = values_base[rows], held_base[rows]
        weight = weight * base.weight[rows]
        for rational in (False, True):
            if time.perf_counter() > deadline and out:
                break
            raw = torch.cat([values, -target[:, None] * values[:, 1:]], dim=1) if rational else values
            design = raw * weight[:, None]
            cols, norms = normalised_columns(design)
            wtarget = target * weight
            fit_cols, fit_target = cols[~held], wtarget[~held]
            rescore_all = _rational_error(fit_cols, fit_target, norms, values[~held], weight[~held]) \
                if rational else None
            picked: list[list[int]] = []
            for subset in lib.subsets(rational):
                rescore = rescore_all if subset is None or rescore_all is None else _on_subset(rescore_all, subset)
                paths = forward_selection(fit_cols if subset is None else fit_cols[:, subset], fit_target,
                                          max_rational if rational else max_terms, always=1, rescore=rescore)
                if subset is not None:
                    paths = [[int(subset[k]) for k in path] for path in paths]
                picked += [a for a in pick_size(paths, cols, wtarget, held) if a not in picked]
            for active in picked:
                coef = least_squares(cols, wtarget, active) / norms[active]
                try:
                    scale, inner = _expression(lib.exprs, active, coef, values.shape[1], float(wtarget.norm()),
                                               design)
                    expr = base.wrap(inverse(scale, inner))
                except (ValueError, TypeError, ZeroDivisionError, OverflowError):
                    continue
                err = relative_error(expr, points, y)
                if math.isfinite(err):
                    form = "rational" if rational else "linear"
                    out.append((expr, err, f"features {form}, T = {name}{base.label}, {len(active)} terms"))
    return out


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


def _on_subset(error: Callable[[list[int]], float], subset: Tensor) -> Callable[[list[int]], float]:
    """``error`` of a set of all columns, for a set given as positions in ``subset``."""
    return lambda chosen: error([int(subset[k]) for k in chosen])


def _rational_error(cols: Tensor, target: Tensor, norms: Tensor, values: Tensor,
                    weight: Tensor) -> Callable[[list[int]], float]:
    """For the linearised rational fit ``T = P - T Q'``: the squared error of ``P / (1 + Q')``
    itself (inf where the denominator nearly vanishes or changes sign). The linear residual
    ``(1 + Q')(P / (1 + Q') - T)`` is small wherever ``1 + Q'`` is, so it cannot rank sets."""
    n_num = values.shape[1]

    def error(active: list[int]) -> float:
        coef = least_squares(cols, target, active)
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
