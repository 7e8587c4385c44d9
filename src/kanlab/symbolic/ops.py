"""Snapping a KAN's edges to closed forms: suggest, fix, unfix and auto_symbolic.

Everything takes the data explicitly: edge inputs and values are computed from ``x``
(the model's input) at call time, never from an earlier forward pass.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, NamedTuple, Sequence

import torch
from torch import Tensor

from ..validation import check_finite, check_float, check_input, check_int
from .domain import exact_on, fold_sign
from .edges import SymbolicEdges
from .fit import SingularFitError, fit_functions, is_constant, rank_candidates
from .library import canonical_params, get_function, library_names, resolve_library

if TYPE_CHECKING:
    from ..network import KAN

__all__ = ["Suggestion", "EdgeChoice", "suggest_symbolic", "fix_symbolic", "unfix_symbolic",
           "auto_symbolic", "default_library"]


class Suggestion(NamedTuple):
    """One candidate for an edge: ``c name(a x + b) + d`` with its ``r2`` and ranking ``score``."""

    name: str
    r2: float
    score: float
    params: tuple[float, float, float, float]


class EdgeChoice(NamedTuple):
    """What :func:`auto_symbolic` did to edge ``(l, i, j)``: ``fixed`` tells whether it was snapped,
    and ``reason`` why not when it was not."""

    l: int
    i: int
    j: int
    name: str
    r2: float
    fixed: bool
    reason: str = ""


def default_library() -> list[str]:
    """Every registered function except ``"0"`` (constant edges are detected separately)."""
    return [n for n in library_names() if n != "0"]


# ---------------------------------------------------------------------- helpers
def _check_edge(model, l: int, i: int, j: int) -> None:
    for name, v in (("l", l), ("i", i), ("j", j)):
        check_int(name, v)
    if not 0 <= l < model.depth:
        raise IndexError(f"layer index l={l!r} is out of range for a model with {model.depth} layers")
    layer = model.layers[l]
    if not 0 <= i < layer.in_features:
        raise IndexError(f"input node i={i!r} is out of range: layer {l} has {layer.in_features} inputs")
    if not 0 <= j < layer.out_features:
        raise IndexError(f"output j={j!r} is out of range: layer {l} has {layer.out_features} outputs")


def _check_ranking(weight_simple, max_cancellation) -> None:
    check_float("weight_simple", weight_simple, 0.0, 1.0)
    check_float("max_cancellation", max_cancellation, 0.0, min_open=True, finite=False)


def symbolic_layer(model, l: int) -> SymbolicEdges:
    """Layer ``l``'s :class:`SymbolicEdges`, created (all off) on first use."""
    key = str(l)
    if key not in model.symbolic:
        layer = model.layers[l]
        model.symbolic[key] = SymbolicEdges(layer.in_features, layer.out_features,
                                            dtype=layer.coef.dtype, device=layer.coef.device)
    return model.symbolic[key]


@torch.no_grad()
def layer_inputs(model, x: Tensor, l: int) -> Tensor:
    """The inputs ``(N, n_in)`` that layer ``l`` sees when the model is fed ``x``."""
    check_input(x, model.n_inputs, "x")
    check_finite(x, "x")
    h = x.reshape(-1, model.n_inputs).to(model.layers[0].coef.dtype)
    for k in range(l):
        h = model.layer_step(k, h)
    return h


def _fit_kwargs(kw: dict) -> dict:
    allowed = {"a_range", "b_range", "grid_number", "zoom_steps", "n_sub", "refine_steps", "max_elements",
               "taylor_tol", "taylor_gain"}
    unknown = set(kw) - allowed
    if unknown:
        raise TypeError(f"unexpected keyword argument(s) {sorted(unknown)}; fit options are {sorted(allowed)}")
    return kw


@torch.no_grad()
def _domain_mask(entries, xs: Tensor, params: Tensor) -> Tensor:
    """``(E, K)`` bool: candidate ``k`` of edge ``e`` prints as it computes on the edge's inputs
    ``xs`` ``(E, N)`` (its argument ``a x + b`` stays in the function's domain; a log's argument
    may also be negative everywhere, which :func:`fold_sign` folds)."""
    ok = torch.ones(params.shape[:2], dtype=torch.bool)
    for k, entry in enumerate(entries):
        u = params[:, k, 0:1].double() * xs.double() + params[:, k, 1:2].double()  # (E, N)
        if entry.name == "log":
            u = torch.where((u < 0).all(dim=1, keepdim=True), -u, u)
        ok[:, k] = exact_on(entry.name, u)
    return ok


def _snap_params(name: str, params, x: Tensor) -> tuple:
    a, b, c, d = (float(v) for v in params)
    a, b = fold_sign(name, a, b, x)
    return canonical_params(name, a, b, c, d)


# ---------------------------------------------------------------------- public
def suggest_symbolic(model: KAN, l: int, i: int, j: int, x: Tensor, library: Sequence[str] | None = None,
                     topk: int = 5, weight_simple: float = 0.8, max_cancellation: float = 10.0,
                     **fit_kw) -> list[Suggestion]:
    """Rank library functions for edge ``(l, i, j)`` (input node ``i`` -> output ``j`` of layer ``l``).

    Each candidate is fit as ``c f(a x + b) + d`` to the edge's values on the data ``x``
    (the model's input, ``(N, width[0])``) and scored by r^2 and complexity
    (see :func:`kanlab.symbolic.fit.rank_candidates`; fits that only use a nearly flat
    slice of a function, cancellation > ``max_cancellation``, and Taylor-regime fits no
    better than a quadratic, ``FitResult.degenerate``, rank last). Skipped
    candidates (non-finite values) are left out.

    Returns:
        Up to ``topk`` :class:`Suggestion`, best first.

    Raises:
        SingularFitError: the edge is constant on ``x``.
    """
    _check_edge(model, l, i, j)
    _check_ranking(weight_simple, max_cancellation)
    check_int("topk", topk, 1)
    entries = resolve_library(default_library() if library is None else library)
    h = layer_inputs(model, x, l)
    with torch.no_grad():
        y = model.layer_edges(l, h)[:, j, i]
    try:
        res = fit_functions(h[:, i], y, [e.torch_fn for e in entries], **_fit_kwargs(fit_kw))
    except SingularFitError as err:
        raise SingularFitError(f"edge (l={l}, i={i}, j={j}): {err}") from None
    r2 = torch.where(_domain_mask(entries, h[None, :, i], res.params[None])[0], res.r2, float("-inf"))
    scores = rank_candidates(r2, torch.tensor([e.complexity for e in entries]), weight_simple,
                             res.cancellation, max_cancellation, res.degenerate)
    order = [int(k) for k in torch.argsort(scores, stable=True) if torch.isfinite(scores[k])]
    return [Suggestion(entries[k].name, float(r2[k]), float(scores[k]),
                       _snap_params(entries[k].name, res.params[k], h[:, i])) for k in order[:topk]]


def fix_symbolic(model: KAN, l: int, i: int, j: int, name: str, x: Tensor | None = None,
                 params: Sequence[float] | None = None, **fit_kw) -> float | None:
    """Replace edge ``(l, i, j)`` by ``c name(a x + b) + d`` (numeric edge off, symbolic on).

    With data ``x`` the parameters are fit to the edge's current values and the r^2 is
    returned; otherwise ``params = (a, b, c, d)`` are used (default ``(1, 0, 1, 0)``) and
    None is returned. The parameters stay trainable.

    Raises:
        ValueError: unknown ``name``; the fit is singular or the function is not finite on the data.
    """
    _check_edge(model, l, i, j)
    fn = get_function(name)
    r2 = None
    if x is not None:
        if params is not None:
            raise ValueError("give either data x (to fit a, b, c, d) or params, not both")
        h = layer_inputs(model, x, l)
        with torch.no_grad():
            y = model.layer_edges(l, h)[:, j, i]
        if fn.name == "0" or bool(is_constant(y[None])[0]):
            if fn.name != "0":
                raise SingularFitError(f"edge (l={l}, i={i}, j={j}) is constant on x; a fit of {name!r} "
                                       "is singular (fix it to '0', which keeps the constant)")
            params, r2 = (1.0, 0.0, 0.0, float(y.mean())), 1.0 if bool(is_constant(y[None])[0]) else 0.0
        else:
            try:
                res = fit_functions(h[:, i], y, [fn.torch_fn], **_fit_kwargs(fit_kw))
            except SingularFitError as err:
                raise SingularFitError(f"edge (l={l}, i={i}, j={j}): {err}") from None
            if not torch.isfinite(res.r2[0]):
                raise ValueError(f"{name!r} gives non-finite values on the data of edge (l={l}, i={i}, j={j}); "
                                 "it cannot be fit there")
            params, r2 = _snap_params(fn.name, res.params[0], h[:, i]), float(res.r2[0])
    params = (1.0, 0.0, 1.0, 0.0) if params is None else tuple(float(v) for v in params)
    if len(params) != 4 or not all(torch.isfinite(torch.tensor(params))):
        raise ValueError(f"params must be four finite numbers (a, b, c, d), got {params!r}")
    _set(model, l, i, j, fn.name, params)
    return r2


@torch.no_grad()
def _set(model, l: int, i: int, j: int, name: str, params) -> None:
    symbolic_layer(model, l).set_edge(j, i, name, *params)
    model.layers[l].mask[j, i] = 0.0


@torch.no_grad()
def unfix_symbolic(model: KAN, l: int, i: int, j: int) -> None:
    """Make edge ``(l, i, j)`` numeric again (the spline it had before is switched back on)."""
    _check_edge(model, l, i, j)
    if str(l) in model.symbolic:
        model.symbolic[str(l)].clear_edge(j, i)
    model.layers[l].mask[j, i] = 1.0


def auto_symbolic(model: KAN, x: Tensor, library: Sequence[str] | None = None, weight_simple: float = 0.8,
                  r2_threshold: float = 0.0, max_cancellation: float = 10.0,
                  layers: Sequence[int] | None = None, **fit_kw) -> list[EdgeChoice]:
    """Snap every numeric edge (of ``layers``, default all) to its best library function, layer by layer.

    Layer ``l``'s edges are fit to the values they take when the model (with layers
    ``< l`` already snapped) is fed ``x``; all edges of a layer are fit in one batch.
    Edges constant on ``x`` become ``"0"`` plus their constant. Candidates are ranked as in
    :func:`suggest_symbolic` (``weight_simple``, ``max_cancellation``). An edge whose best
    r^2 is below ``r2_threshold`` stays numeric. Edges already symbolic or switched off are left.
    Snapping one layer at a time (``layers=[0]``, retrain, ``layers=[1]``, ...) lets the
    later layers adapt to the closed forms before they are fit in turn.

    Only candidates whose argument stays inside the function's domain on ``x`` are considered
    (there the printed formula equals what the model computes; a log of an argument negative
    everywhere is folded to a positive one). With the default ``r2_threshold`` every active edge
    of ``layers`` ends symbolic whenever the library holds ``"x"``; an edge left numeric says why
    in its :class:`EdgeChoice` ``reason``.

    Returns:
        One :class:`EdgeChoice` per edge considered.
    """
    _check_ranking(weight_simple, max_cancellation)
    check_float("r2_threshold", r2_threshold, finite=False)
    check_input(x, model.n_inputs, "x")
    check_finite(x, "x")
    entries = resolve_library(default_library() if library is None else library)
    complexity = torch.tensor([e.complexity for e in entries])
    fit_kw = _fit_kwargs(fit_kw)
    todo = range(model.depth) if layers is None else sorted(set(layers))
    if any(not isinstance(l, int) or isinstance(l, bool) or not 0 <= l < model.depth for l in todo):
        raise IndexError(f"layers={list(todo)!r} must be layer indices in [0, {model.depth})")
    choices = []
    for l in todo:
        layer = model.layers[l]
        edges = [(j, i) for j in range(layer.out_features) for i in range(layer.in_features)
                 if layer.mask[j, i] != 0]
        if not edges:
            continue
        h = layer_inputs(model, x, l)
        with torch.no_grad():
            vals = layer.edges(h)  # (N, out, in) numeric part only
        xs = torch.stack([h[:, i] for _, i in edges])  # (E, N)
        ys = torch.stack([vals[:, j, i] for j, i in edges])
        const = is_constant(ys) | is_constant(xs)
        for (j, i), y in zip([e for e, c in zip(edges, const) if c], ys[const]):
            _set(model, l, i, j, "0", (1.0, 0.0, 0.0, float(y.mean())))
            choices.append(EdgeChoice(l, i, j, "0", 1.0, True))
        live = [e for e, c in zip(edges, const) if not c]
        if live:
            res = fit_functions(xs[~const], ys[~const], [e.torch_fn for e in entries], **fit_kw)
            valid = _domain_mask(entries, xs[~const], res.params)
            r2_all = torch.where(valid, res.r2, float("-inf"))
            best = rank_candidates(r2_all, complexity, weight_simple, res.cancellation,
                                   max_cancellation, res.degenerate).argmin(dim=1)  # (E,)
            for n, (j, i) in enumerate(live):
                k = int(best[n])
                r2 = float(r2_all[n, k])
                fixed = r2 >= r2_threshold and r2 > float("-inf")
                if fixed:
                    params = _snap_params(entries[k].name, res.params[n, k], xs[~const][n])
                    _set(model, l, i, j, entries[k].name, params)
                    reason = ""
                elif r2 == float("-inf"):
                    reason = ("no library function fits it and stays inside its domain (where the printed "
                              "formula equals the computed one) on the data")
                else:
                    reason = f"best r2 {r2:.4g} is below r2_threshold {r2_threshold}"
                choices.append(EdgeChoice(l, i, j, entries[k].name, r2, fixed, reason))
    return choices
