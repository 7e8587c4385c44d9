"""Warm start: a fresh KAN's first training steps with a linear read-out layer.

A freshly initialised KAN has near-zero splines, so its output layer adapts much faster
than the layers below it: within a few L-BFGS iterations the output edges bend to fit the
target as a function of whatever random features the hidden layer holds, often folding
(a U-shape over the hidden range, so that one hidden value stands for two inputs). The
gradients that reach the hidden layer through a fold cancel, and training stalls in that
local minimum. Measured on exp(sin(pi x) + y^2) with [2,1,1], G=3, 50 L-BFGS steps,
1000 points, float64: 3 of seeds 0-9 stalled at test RMSE 0.6 (the good basin: 1.9e-2);
on exp(-2((x-0.2)^2 + y^2)) 7 of 10 stalled at 0.13 (good: 1e-3).

The warm start removes the fold's cause: for the first steps the last layer is a *linear*
map (its edges ``w * h``: identity base, splines frozen at zero), so the layers below
learn the best features for a linear read-out first (for one hidden node: the best
additive model of the target). The linear edges are then written into the splines
(``w * h`` is a spline of any order on the hidden grid, which is first placed on the
hidden activations) and training continues with every edge free. The same problems then
land in the good basin from every seed 0-9.

A product target (x*y) has no additive part for a linear read-out to learn and trains better
from the plain start, so :func:`choose_start` probes both starts from the same initial
parameters (for :func:`probe_steps` steps), plus the warm start from a second draw of the
initialisation (:func:`redraw_initialisation`), and keeps the one with the lower training
objective. The second draw matters where the plain start folds and the first warm start
lands in a slightly worse basin: on exp(sin(pi x) + y^2), [2,1,1], 2 of seeds 0-19 ended the
first grid at test RMSE 2.3e-2 and 7.7e-2 (the others 1.4e-2) with two candidates, none with
three.
"""
from __future__ import annotations

import math
from typing import TYPE_CHECKING, Protocol

import torch
from torch import Tensor

from . import splines
from .history import History
from .network import snapshot

if TYPE_CHECKING:
    from .network import KAN

__all__ = ["LinearReadout", "choose_start", "probe_steps", "redraw_initialisation", "PROBE_STEPS"]

# Steps each start is tried for before fit keeps the better one (at most half of a fit's steps).
PROBE_STEPS = 20
# With ``long`` probes (the seven candidates of small unpenalised fits) every start runs all but
# this share of the fit's steps, so the candidates are compared near where their fits converge.
LONG_PROBE_TAIL = 0.2
# Mixed into the model's seed for the second draw of the warm start's initialisation.
REDRAW_SALT = 0x5DEECE66D


def probe_steps(model, mode, steps: int, comparable: bool, long: bool = False) -> int:
    """How many steps the start of a fit is probed for (0: no warm start).

    ``mode`` True: a warm start (on any KAN with a hidden layer; other modules never); ``"auto"``: on a model
    that has never been trained (:meth:`KAN.is_fresh`), when starts can be compared
    (``comparable``: full-batch data, one process). The warm probe spends half of its steps
    with the linear read-out. A probe runs ``min(PROBE_STEPS, steps // 2)`` steps, or with
    ``long`` (and ``mode == "auto"``) all but ``LONG_PROBE_TAIL`` of ``steps``.
    """
    if mode is False or not hasattr(model, "symbolic") or model.depth < 2 or str(model.depth - 1) in model.symbolic:
        return 0
    if mode == "auto" and not (comparable and model.is_fresh()):
        return 0
    if long and mode == "auto":
        probe = steps - max(1, math.ceil(LONG_PROBE_TAIL * steps))
    else:
        probe = min(PROBE_STEPS, steps // 2)
    return probe if probe >= 2 else 0


class LinearReadout:
    """Holds a model's last layer linear (``phi(h) = w_b * h``) until :meth:`finish`.

    While active, the layer's base activation is the identity and its spline coefficients
    and spline scales are zero and frozen, so only ``scale_base`` (the read-out weights)
    trains in that layer. :meth:`finish` writes ``w_b * h`` into the splines on a grid
    placed on the hidden activations, restores the base activation with a zero weight,
    and unfreezes everything: the model's function is unchanged wherever the hidden
    activations lie.
    """

    def __init__(self, model: KAN):
        """Make the last layer of ``model`` linear: identity base, splines zeroed and frozen (the
        values they had are kept for :meth:`cancel`)."""
        self.layer = model.layers[-1]
        self.model = model
        layer = self.layer
        self._base, self._grads = layer.base_activation, (layer.coef.requires_grad,
                                                          layer.scale_spline.requires_grad)
        self._saved = (layer.coef.detach().clone(), layer.scale_spline.detach().clone())
        with torch.no_grad():
            layer.coef.zero_()
            layer.scale_spline.zero_()
        layer.coef.requires_grad_(False)
        layer.scale_spline.requires_grad_(False)
        layer.base_activation = "identity"
        self.active = True

    @torch.no_grad()
    def cancel(self) -> None:
        """Undo: the layer as it was before the warm start (when no step was taken)."""
        layer = self.layer
        layer.coef.copy_(self._saved[0])
        layer.scale_spline.copy_(self._saved[1])
        self._restore()

    def _restore(self) -> None:
        layer = self.layer
        layer.base_activation = self._base
        layer.coef.requires_grad_(self._grads[0])
        layer.scale_spline.requires_grad_(self._grads[1])
        self.active = False

    @torch.no_grad()
    def finish(self, x: Tensor | None) -> None:
        """Turn the linear edges into splines, on a grid placed on the hidden activations of
        ``x`` (on the layer's current grid when ``x`` is None).

        Shape: ``x`` ``(N, width[0])`` (the model's inputs).
        """
        model, layer = self.model, self.layer
        if x is not None:
            h = x.reshape(-1, model.n_inputs)
            for l in range(model.depth - 1):
                h = model.layer_step(l, h)  # (N, n_hidden)
            layer.update_grid(h)
        k = layer.spline_order
        pts = splines.fill_points(layer.grid, k, 2 * (k + 1))  # (M, n_in)
        linear = pts[:, None, :] * layer.scale_base * layer.mask  # (M, n_out, n_in)
        layer.coef.copy_(splines.curve_to_coef(pts, linear, layer.grid, k))
        layer.scale_spline.fill_(1.0)
        layer.scale_base.zero_()
        self._restore()


class ProbeRun(Protocol):
    """What :func:`choose_start` needs of a fit in progress (``kanlab.training``'s run)."""

    model: KAN
    lamb: float

    def optimizer(self) -> torch.optim.Optimizer:
        """A fresh optimizer over the model's trainable parameters."""
        ...

    def loop(self, first: int, last: int, opt: torch.optim.Optimizer, history: History, *,
             readout: LinearReadout | None = None) -> torch.optim.Optimizer:
        """Steps ``first .. last - 1`` recorded in ``history``; returns the optimizer."""
        ...


def choose_start(run: ProbeRun, probe: int, both: bool, redraws: int = 1) -> tuple[int, object, History]:
    """Probe a fresh model's start for ``probe`` steps and keep the best one.

    The warm start (linear read-out for ``probe // 2`` steps, then every edge free) avoids the
    folded local minima of tiny KANs; a target whose structure is a product (x*y: no additive
    part for the read-out to learn) trains better from the plain start. With ``both``, fit
    runs both from the same initial parameters, and the warm start once more from a second
    draw of the initialisation, and continues the one with the lower training objective
    (ties: warm, then cold); otherwise only the warm start. With ``redraws`` > 1 (and ``both``),
    redraws 2 .. ``redraws`` of the initialisation (:func:`redraw_initialisation`) are probed
    too, each from the plain and the warm start (``"cold_redrawn2"``, ``"warm_redrawn2"``, ...).
    Returns the steps done, the
    optimizer and the History of the kept start. Any exception leaves the model as it was.
    """
    model = run.model
    initial = snapshot(model)
    try:
        starts = {}
        if both:
            starts["cold"] = _cold_probe(run, probe, "cold")
            model.load_state_dict(initial)
        starts["warm"] = _warm_probe(run, probe, "warm")
        if both:
            model.load_state_dict(initial)
            redraw_initialisation(model)
            starts["warm_redrawn"] = _warm_probe(run, probe, "warm_redrawn")
            for redraw in range(2, redraws + 1):  # further redraws: both starts from each
                model.load_state_dict(initial)
                redraw_initialisation(model, redraw)
                redrawn = snapshot(model)
                starts[f"cold_redrawn{redraw}"] = _cold_probe(run, probe, f"cold_redrawn{redraw}")
                model.load_state_dict(redrawn)
                starts[f"warm_redrawn{redraw}"] = _warm_probe(run, probe, f"warm_redrawn{redraw}")
    except BaseException:
        model.load_state_dict(initial)
        raise
    losses = {name: _objective(h, run.lamb) for name, (_, _, h) in starts.items()}
    best = min(losses, key=lambda name: (losses[name], name != "warm", name))
    state, opt, history = starts[best]
    model.load_state_dict(state)
    history.start_losses = losses
    return probe, opt, history


def _cold_probe(run: ProbeRun, probe: int, name: str) -> tuple[dict[str, Tensor], torch.optim.Optimizer, History]:
    """``probe`` steps of the plain start from the model's current parameters: the state reached,
    the optimizer and the History (``start = name``)."""
    history = History(start=name)
    opt = run.loop(0, probe, run.optimizer(), history)
    return snapshot(run.model), opt, history


def _warm_probe(run: ProbeRun, probe: int, name: str) -> tuple[dict[str, Tensor], torch.optim.Optimizer, History]:
    """``probe`` steps of the warm start from the model's current parameters: the state
    reached, the optimizer and the History (``start = name``)."""
    readout = LinearReadout(run.model)
    try:
        history = History(warm_start_steps=probe // 2, start=name)
        opt = run.loop(0, probe, run.optimizer(), history, readout=readout)
    finally:
        if readout.active:
            readout.cancel()
    return snapshot(run.model), opt, history


@torch.no_grad()
def redraw_initialisation(model: KAN, draw: int = 1) -> None:
    """Re-initialise every layer of ``model`` (a fresh KAN) from draw number ``draw`` (1: the
    second draw, 2: the third, ...) derived from its seed (the same distribution as the first:
    noisy near-zero splines, Xavier base weights); masks and grids are kept. Deterministic:
    the same seed and ``draw`` always give the same parameters."""
    gen = torch.Generator().manual_seed((model.config.seed * 1_000_003 + REDRAW_SALT * draw) % 2**63)
    for layer in model.layers:
        mask = layer.mask.clone()
        layer.reset_parameters(gen)
        layer.mask.copy_(mask)


def _objective(history: History, lamb: float) -> float:
    """The last training objective of a probe (fit loss plus penalty; inf if it ended non-finite)."""
    value = history.train_loss[-1] + (lamb * history.reg[-1] if history.reg else 0.0)
    return value if value == value else float("inf")
