"""Formulas for the leaves of a structure tree: one variable by library fits (of the target and of
simple transforms of it), several variables by the KAN workflow (fit with lamb, prune, refine, snap
layer by layer with retraining between, polish)."""
from __future__ import annotations

import math
import time
from collections.abc import Sequence

import numpy as np
import torch
from torch import Tensor

from ..datasets.core import Dataset
from ..network import KAN
from ..structure.hypotheses import TRANSFORMS
from ..structure.problem import placeholder
from ..symbolic import auto_symbolic, polish_symbolic, symbolic_formula
from ..symbolic.fit import fit_functions, rank_candidates
from ..symbolic.formula import edge_expression, to_numpy
from ..symbolic.library import resolve_library
from ..symbolic.ops import default_library

__all__ = ["relative_error", "one_variable_candidates", "kan_candidates", "LEAF_TRANSFORMS"]

LEAF_TRANSFORMS = ("id", "inv", "square", "sqrt", "log")


def evaluate(expr, points: Tensor) -> np.ndarray:
    """``expr`` (in the placeholders ``_c0, _c1, ...``) at ``points`` ``(N, d)`` with numpy."""
    d = points.shape[1]
    with np.errstate(all="ignore"):
        return to_numpy(expr, [placeholder(k) for k in range(d)])(points.detach().cpu().numpy())


def relative_error(expr, points: Tensor, y: Tensor) -> float:
    """RMSE of ``expr`` against ``y`` over ``std(y)``; inf where the formula is not finite (or complex)."""
    try:
        pred = evaluate(expr, points)
    except Exception:  # noqa: BLE001 - a formula numpy cannot evaluate is simply not a candidate
        return math.inf
    target = y.detach().cpu().numpy().reshape(-1)
    if not np.isfinite(pred).all():
        return math.inf
    scale = max(float(target.std()), 1e-300)
    return float(np.sqrt(np.mean((pred - target) ** 2)) / scale)


def _edge(name: str, params, u, x: Tensor):
    """sympy ``c f(a u + b) + d``, with the sign of a logarithm's argument folded so that it is
    positive on ``x`` (the library's log works on |u|)."""
    a, b, c, d = params
    if name == "log" and bool(((a * x + b) < 0).all()):
        a, b = -a, -b
    return edge_expression(name, a, b, c, d, u)


def one_variable_candidates(x: Tensor, y: Tensor, top: int = 3) -> list:
    """Candidates ``T^-1(c f(a x + b) + d)`` for every library function ``f`` and output transform
    ``T`` in :data:`LEAF_TRANSFORMS` that applies to ``y``; the ``top`` best fits of each transform.

    Shape: ``x``, ``y`` ``(N,)``. Returns ``[(expr in _c0, relative error, cost)]`` (cost: the
    library complexity, +1 for a transform).
    """
    entries = resolve_library(default_library())
    fns = [e.torch_fn for e in entries]
    u = placeholder(0)
    sign = 1.0 if bool((y > 0).all()) else -1.0
    out = []
    for tname in LEAF_TRANSFORMS:
        t = TRANSFORMS[tname]
        if not t.applies(y):
            continue
        ty = t.fn(y)
        if not bool(torch.isfinite(ty).all()) or float(ty.std()) <= 1e-12 * float(ty.abs().max()):
            continue
        res = fit_functions(x, ty, fns)
        complexity = torch.tensor([e.complexity for e in entries])
        score = rank_candidates(res.r2, complexity, 0.8, res.cancellation, 10.0, res.degenerate)
        by_score = torch.argsort(score, stable=True)[:top].tolist()
        by_r2 = [k for k in torch.argsort(res.r2, descending=True)[:top].tolist() if not bool(res.degenerate[k])]
        for k in dict.fromkeys(by_score + by_r2):
            if not math.isfinite(float(res.r2[k])):
                continue
            inner = _edge(entries[k].name, [float(v) for v in res.params[k]], u, x)
            expr = t.inverse(inner, sign)
            cost = entries[k].complexity + (tname != "id")
            out.append((expr, relative_error(expr, x[:, None], y), cost))
    return [c for c in out if math.isfinite(c[1])]


def _trained(width, data: Dataset, seed: int, steps: int):
    """The numeric half of the KAN workflow on one starting shape, on the standardised target (the
    sparsity penalty and the pruning thresholds are relative to unit scale): fit with ``lamb``,
    prune, fit, refine to G = 10, fit. Returns the model, the standardised data, mean and std."""
    x, raw = data.train_input, data.train_label
    mean, std = float(raw.mean()), float(raw.std())
    y = (raw - mean) / std
    data = Dataset(x, y, x, y)
    model = KAN(width, grid_size=3, seed=seed, dtype=torch.float64)
    # the plain sparse fit then prune reaches minimal shapes (fit probes a warm start and regularises
    # in float64 edge variances), so no second, stronger sparse phase is needed
    model.fit(data, steps=steps, lamb=1e-3, progress=False)
    try:
        model = model.prune(x)
    except ValueError:  # everything scored low: keep the whole start
        pass
    model.fit(data, steps=steps, progress=False)
    model = model.refine(10, x)
    model.fit(data, steps=steps, progress=False)
    return model, data, mean, std


def _snapped(model: KAN, data: Dataset, mean: float, std: float, weight_simple: float, steps: int):
    """The symbolic half on a copy of a trained model: snap a layer, let the layers above adapt,
    snap the next; polish. Returns the formula in the placeholders, on the original target scale."""
    model = model.copy()
    x, y = data.train_input, data.train_label
    for l in range(model.depth):
        auto_symbolic(model, x, weight_simple=weight_simple, layers=[l])
        model.fit(data, steps=max(5, steps // 2), progress=False, update_grid=l < model.depth - 1)
    polish_symbolic(model, x, y)
    names = [placeholder(k) for k in range(x.shape[1])]
    expr = symbolic_formula(model, var_names=names, simplify=True)[0]
    return expr * sympy_float(std) + sympy_float(mean)


def sympy_float(v: float):
    import sympy

    return sympy.Float(v)


_FAILED = (ValueError, RuntimeError, FloatingPointError)  # a failed start is just no candidate


def kan_candidates(points: Tensor, y: Tensor, seed: int, deadline: float, steps: int = 30,
                   shapes: Sequence | None = None, weights: Sequence[float] = (0.8, 0.2),
                   required: bool = True, start_cost: float = 0.0) -> list:
    """Formulas from the KAN workflow on ``(points, y)`` for each starting shape (default
    ``[d, 5, 1]`` and a MultKAN ``[d, [2, 2], 1]``), each trained once and snapped with each
    ``weight_simple``, while time lasts. With ``required`` the first start runs even past the
    deadline, so there is always a candidate; otherwise no start begins later than ``start_cost``
    seconds (about what one start takes) before the deadline.

    Returns ``[(expr in the placeholders, relative error, description)]``.
    """
    d = points.shape[1]
    shapes = [[d, 5, 1], [d, [2, 2], 1]] if shapes is None else shapes
    data = Dataset(points, y[:, None], points, y[:, None])
    out: list = []
    for width in shapes:
        if (out or not required) and time.perf_counter() + start_cost > deadline:
            return out
        try:
            trained = _trained(width, data, seed, steps)
        except _FAILED:
            continue
        for w in weights:
            if w != weights[0] and time.perf_counter() > deadline:
                break
            try:
                expr = _snapped(trained[0], trained[1], trained[2], trained[3], w, steps)
            except _FAILED:
                continue
            err = relative_error(expr, points, y)
            if math.isfinite(err):
                out.append((expr, err, f"kan {width} -> {trained[0].width}, weight_simple {w}"))
    return out
