"""The estimators' training recipe: settings sized to the data, a validation split with early
stopping that keeps the best parameters, and the grid of a schedule picked by validation score.

Pure functions of arrays and settings; the estimators in :mod:`kanlab.sklearn` call them.
"""
from __future__ import annotations

import copy
import dataclasses
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from ..network import KAN
from ..validation import ArgumentTypeError, check_int

__all__ = ["Plan", "make_plan", "train", "scale_inputs", "penalized_loss", "validation_split",
           "simplest_within_one_se", "EARLY_STOPPING_MIN_SAMPLES", "AUTO_ALPHAS"]

# early_stopping="auto" holds out a validation split from this many samples on (20% of 100 is 20
# rows; fewer score too noisily to choose anything)
EARLY_STOPPING_MIN_SAMPLES = 100
MAX_AUTO_HIDDEN = 32
# alpha="auto": the L2 penalties tried on the first grid, chosen on the validation split (the
# first one is used without a validation split)
AUTO_ALPHAS = (3.0, 0.3, 30.0)


@dataclass(frozen=True)
class Plan:
    """Every setting of one fit, with the ``"auto"`` values resolved."""

    hidden: tuple[int, ...]
    grids: tuple[int, ...]
    optimizer: str
    lr: float | None
    batch_size: int | None
    steps: int  # optimizer steps per grid size (at most, with early stopping)
    alphas: tuple[float, ...]  # L2 penalties tried on the first grid (the first without validation)
    try_linear: bool  # also try the KAN with its splines off (a linear model) on the first grid
    lamb: float
    early_stopping: bool
    validation_fraction: float
    n_iter_no_change: int
    eval_every: int  # optimizer steps between validation scores (one epoch for mini-batches)
    update_grid: bool


def make_plan(est, n_samples: int, n_features: int) -> Plan:
    """Resolve ``est``'s ``"auto"`` settings for ``n_samples`` rows of ``n_features`` columns.

    * hidden: ``min(2 d + 1, 32)`` nodes in one layer (Kolmogorov-Arnold's 2d + 1, capped);
    * grid_size: the schedule (3, 5);
    * optimizer: Adam (lr 1e-2) on mini-batches of ``min(128, n)``. Full-batch L-BFGS, the
      choice for noise-free scientific data, overfits small noisy tables: diabetes R^2 -0.47
      where Adam with early stopping gets 0.36 (docs/sklearn.md);
    * early_stopping: on from :data:`EARLY_STOPPING_MIN_SAMPLES` rows;
    * alpha: the penalties :data:`AUTO_ALPHAS` and, with the identity base, the KAN with its
      splines off (a linear model) are tried on the validation split;
    * steps: 100 epochs (L-BFGS: 100 steps) per grid size, at most.
    """
    hidden = _hidden(est.hidden, n_features)
    grids = _grids(est.grid_size)
    optimizer = est.optimizer
    if optimizer == "auto":
        optimizer = "adam"
    early = est.early_stopping
    if early == "auto":
        early = n_samples >= EARLY_STOPPING_MIN_SAMPLES
    n_fit = n_samples - (_n_validation(n_samples, est.validation_fraction) if early else 0)
    batch = est.batch_size
    if batch == "auto":
        batch = None if optimizer == "lbfgs" else min(128, n_fit)
    batch = None if batch is not None and batch >= n_fit else batch
    per_epoch = 1 if batch is None else max(1, n_fit // batch)
    steps = est.steps
    if steps == "auto":
        steps = 100 if optimizer == "lbfgs" else 100 * per_epoch
    lr = est.lr if est.lr is not None else (1.0 if optimizer == "lbfgs" else 1e-2)
    update = est.update_grid if est.update_grid != "auto" else optimizer == "lbfgs"
    linear = isinstance(est.alpha, str) and est.base_activation == "identity"
    return Plan(hidden, grids, optimizer, lr, batch, int(steps), _alphas(est.alpha), linear, float(est.lamb),
                bool(early), float(est.validation_fraction), int(est.n_iter_no_change), per_epoch, bool(update))


def _alphas(alpha) -> tuple[float, ...]:
    if isinstance(alpha, str) and alpha == "auto":
        return AUTO_ALPHAS
    if isinstance(alpha, bool) or not isinstance(alpha, (int, float, np.integer, np.floating)) or not alpha >= 0:
        raise ValueError(f"alpha must be 'auto' or a number >= 0, got {alpha!r}")
    return (float(alpha),)


def _hidden(hidden, n_features: int) -> tuple[int, ...]:
    if isinstance(hidden, str) and hidden == "auto":
        return (min(2 * n_features + 1, MAX_AUTO_HIDDEN),)
    return _int_sequence("hidden", hidden, "'auto', an int >= 1 or a sequence of layer widths")


def _grids(grid_size) -> tuple[int, ...]:
    if isinstance(grid_size, str) and grid_size == "auto":
        return (3, 5)
    return _int_sequence("grid_size", grid_size, "'auto', an int >= 1 or a sequence of them (a grid schedule)")


def _int_sequence(name: str, value, expected: str) -> tuple[int, ...]:
    sizes = (value,) if np.isscalar(value) and not isinstance(value, (str, bytes)) else value
    if isinstance(sizes, (str, bytes)) or not hasattr(sizes, "__iter__") or not list(sizes):
        raise ArgumentTypeError(f"{name} must be {expected}, got {value!r}")
    return tuple(check_int(name, v, 1) for v in sizes)


def _n_validation(n_samples: int, fraction: float) -> int:
    return max(1, int(round(n_samples * fraction)))


def validation_split(y: np.ndarray, fraction: float, seed: int, stratify: bool) -> tuple[np.ndarray, np.ndarray]:
    """Row indices ``(fit, validation)``; stratified by class for classifiers when every class
    has at least two rows."""
    from sklearn.model_selection import train_test_split

    n_val = _n_validation(len(y), fraction)
    idx = np.arange(len(y))
    strat = y if stratify and np.bincount(y).min(initial=2) >= 2 and n_val >= len(np.unique(y)) else None
    fit_idx, val_idx = train_test_split(idx, test_size=n_val, random_state=seed, stratify=strat)
    return np.sort(fit_idx), np.sort(val_idx)


def scale_inputs(X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-column ``(offset, scale)`` that map the training range onto the grids' [-1, 1]
    (constant columns to 0). Shape ``(d,)`` each. Halves are taken before sums and differences,
    so columns near the float64 limit do not overflow."""
    lo, hi = X.min(axis=0), X.max(axis=0)
    center, half = lo / 2 + hi / 2, hi / 2 - lo / 2
    return center, np.where((half > 1e-12 * np.abs(center)) & (half > 0), half, 1.0)


def penalized_loss(model: KAN, kind: str, alpha: float, n_samples: int, label_smoothing: float = 0.0):
    """``loss(pred, label)``: mean squared error or cross-entropy plus the L2 penalty
    ``alpha / (2 n) * sum(theta^2)`` over the model's parameters (as MLPClassifier's ``alpha``)."""
    params = [p for p in model.parameters() if p.requires_grad]
    scale = alpha / (2.0 * n_samples)

    def loss(pred: Tensor, label: Tensor) -> Tensor:
        if kind == "cross_entropy":
            data = F.cross_entropy(pred, label, label_smoothing=label_smoothing)
        else:
            data = F.mse_loss(pred, label)
        if scale == 0:
            return data
        return data + scale * sum((p * p).sum() for p in params)

    return loss


@torch.no_grad()
def _losses(model: KAN, kind: str, x: Tensor, y: Tensor) -> Tensor:
    """Per-sample validation losses ``(N,)``: cross-entropy, or squared error summed over outputs."""
    pred = model(x)
    if kind == "cross_entropy":
        return F.cross_entropy(pred, y, reduction="none")
    return ((pred - y) ** 2).sum(dim=1)


def train(plan: Plan, model: KAN, kind: str, x: Tensor, y: Tensor, val, seed: int, progress: bool,
          label_smoothing: float = 0.0, full=None):
    """Fit ``model`` on ``(x, y)`` grid by grid; returns ``(best model, histories, report)``.

    With a validation set ``val = (x_val, y_val)``: on the first grid one copy of ``model`` is
    trained per penalty in ``plan.alphas``; each fit runs until the validation loss has not
    improved for ``n_iter_no_change`` checks (one check per epoch) and keeps its best parameters.
    Choices between fits (the penalty, then whether a finer grid is worth it) take the simplest
    fit whose validation loss is within one standard error of the lowest (the one-standard-error
    rule: a small validation split cannot tell close fits apart, and the simpler one generalises
    more reliably); the schedule stops at the first grid that is not chosen. Without a
    validation set the first penalty is used, every grid trains for ``plan.steps`` steps and the
    last grid is kept. With ``full = (x_all, y_all)`` (the fit rows plus the validation rows) the
    chosen path is trained once more on all of them, for as many epochs, and that model is
    returned: the validation rows then count for the fit too.
    """
    histories, best, initial = [], None, model.copy()  # best: a _Fit
    for i, grid in enumerate(plan.grids):
        if i == 0 and val is not None:  # simplest first: splines off, then the strongest penalty
            options = [(plan.alphas[0], True)] * plan.try_linear + [(a, False) for a in sorted(plan.alphas, reverse=True)]
        else:
            options = [(plan.alphas[0], False) if best is None else (best.alpha, False)]
        if i > 0:
            model = best.model.refine(grid, x)
        fits = []
        for alpha, linear in options:
            candidate = model.copy() if len(options) > 1 else model
            losses, history, steps = _fit_one(plan, candidate, kind, x, y, val, alpha, linear, seed + i, progress,
                                              label_smoothing)
            histories.append(history)
            path = (best.path if best is not None else []) + [(grid, alpha, linear, steps)]
            fits.append(_Fit(losses, candidate, grid, alpha, linear, path))
        chosen = simplest_within_one_se(fits) if val is not None else fits[0]
        if best is not None and val is not None and simplest_within_one_se([best, chosen]) is best:
            break  # the finer grid does not validate clearly better: keep the coarser one
        best = chosen
        if best.linear:
            break  # a linear model has no use for finer grids
    report = {"grid": best.grid, "alpha": best.alpha, "linear": best.linear, "validation_loss": best.mean,
              "fits": len(histories)}
    if full is not None and val is not None:  # the chosen path again on all rows (validation rows too)
        model, history = _refit(plan, initial, kind, *full, best.path, x.shape[0], seed, progress, label_smoothing)
        histories.append(history)
        return model, histories, report
    return best.model, histories, report


def _refit(plan: Plan, model: KAN, kind: str, x, y, path, n_fit: int, seed: int, progress: bool,
           label_smoothing: float):
    """Replay ``path`` (grid, alpha, linear, steps per stage) from the initial ``model`` on ``(x, y)``."""
    history = None
    for i, (grid, alpha, linear, steps) in enumerate(path):
        if i > 0:
            model = model.refine(grid, x)
        per_step = 1.0 if plan.batch_size is None else x.shape[0] / n_fit  # the same epochs on more rows
        scaled = dataclasses.replace(plan, steps=max(1, round(steps * per_step)))
        _, h, _ = _fit_one(scaled, model, kind, x, y, None, alpha, linear, seed + i, progress, label_smoothing)
        history = h if history is None else history.extend(h)
    return model, history


class _Fit:
    """One trained candidate and its per-sample validation losses (None without validation)."""

    def __init__(self, losses, model: KAN, grid: int, alpha: float, linear: bool, path: list):
        """``path``: ``(grid, alpha, linear, steps)`` of every stage that led here (for the refit)."""
        self.model, self.grid, self.alpha, self.linear, self.path = model, grid, alpha, linear, path
        self.mean = float(losses.mean()) if losses is not None else None
        n = 0 if losses is None else losses.numel()
        self.se = float(losses.std() / n ** 0.5) if n > 1 else 0.0


def simplest_within_one_se(fits: list) -> "_Fit":
    """The first of ``fits`` (ordered simplest first) whose mean validation loss is at most the
    lowest mean plus that fit's standard error."""
    best = min(fits, key=lambda f: f.mean)
    return next(f for f in fits if f.mean <= best.mean + best.se)


def _fit_one(plan: Plan, model: KAN, kind: str, x, y, val, alpha: float, linear: bool, seed: int, progress: bool,
             label_smoothing: float):
    """Train ``model`` in place; with ``val`` stop early and restore the best parameters.
    ``linear``: the spline weights stay zero (with the identity base the KAN is then a linear
    model). Returns ``(per-sample validation losses or None, History, steps to the best)``."""
    from ..datasets.core import Dataset

    if linear:
        for layer in model.layers:
            layer.scale_spline.data.zero_()
            layer.scale_spline.requires_grad_(False)
    tracker = _EarlyStopping(kind, val, plan) if val is not None else None
    history = model.fit(Dataset(x, y, x[:1], y[:1]), steps=plan.steps, optimizer=plan.optimizer, lr=plan.lr,
                        batch_size=plan.batch_size, loss=penalized_loss(model, kind, alpha, x.shape[0], label_smoothing),
                        lamb=plan.lamb, update_grid=plan.update_grid, progress=progress, seed=seed,
                        eval_every=max(1, plan.steps), callbacks=[tracker] if tracker is not None else ())
    for layer in model.layers:
        layer.scale_spline.requires_grad_(True)
    if tracker is None:
        return None, history, len(history)
    tracker.check(model)  # the steps after the last check count too
    model.load_state_dict(tracker.state)
    return _losses(model, kind, *val), history, tracker.best_steps


class _EarlyStopping:
    """A training callback: scores the validation set every ``eval_every`` steps, remembers the
    best parameters, and stops after ``n_iter_no_change`` checks without improvement."""

    def __init__(self, kind: str, val, plan: Plan):
        self.kind, (self.x, self.y) = kind, val
        self.every, self.patience = plan.eval_every, plan.n_iter_no_change
        self.score, self.state, self.since = float("inf"), None, 0
        self.steps, self.best_steps = 0, 0

    def __call__(self, step: int, model: KAN, history) -> bool:
        self.steps = step + 1
        if (step + 1) % self.every:
            return False
        return self.check(model)

    def check(self, model: KAN) -> bool:
        """Score ``model`` now; True when it is time to stop."""
        score = float(_losses(model, self.kind, self.x, self.y).mean())
        if score < self.score or self.state is None:
            self.score, self.state, self.since = score, copy.deepcopy(model.state_dict()), 0
            self.best_steps = self.steps
            return False
        self.since += 1
        return self.since >= self.patience
