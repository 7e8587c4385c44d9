"""Checks :func:`kanlab.fit` runs before it changes anything: arguments, callbacks, batches, the loss.

Everything here raises ``ValueError`` / ``TypeError`` naming the argument, before step 0 (or,
for a batch that only shows up later, before that batch touches the model).
"""
from __future__ import annotations

from typing import Callable, Mapping

import torch
from torch import Tensor

from .validation import check_bool, check_float, check_int, check_seed

__all__ = ["check_fit_args", "check_batch", "check_loss_value", "grid_samples"]


def check_fit_args(*, steps, optimizer, optimizers, lr, batch_size, eval_every, lamb, lamb_l1, lamb_entropy,
                   lamb_coef, lamb_coefdiff, update_grid, grid_update_num, start_grid_update_step,
                   stop_grid_update_step, weight_decay, callbacks, progress, seed, max_iter) -> tuple[Callable, ...]:
    """Validate :func:`kanlab.fit`'s arguments; returns ``callbacks`` as a tuple of callables.

    ``max_iter = 0`` (an L-BFGS step that does nothing) and ``grid_update_num = 0`` (no grid
    updates while ``update_grid=True``) are rejected: say ``update_grid=False`` instead.
    """
    check_int("steps", steps, 0)
    if not isinstance(optimizer, str) or optimizer.lower() not in optimizers:
        raise ValueError(f"optimizer must be one of {list(optimizers)}, got {optimizer!r}")
    if lr is not None:
        check_float("lr", lr, 0.0, min_open=True)
    if batch_size is not None:
        check_int("batch_size", batch_size, 1)
    check_int("eval_every", eval_every, 1)
    for name, value in (("lamb", lamb), ("lamb_l1", lamb_l1), ("lamb_entropy", lamb_entropy),
                        ("lamb_coef", lamb_coef), ("lamb_coefdiff", lamb_coefdiff),
                        ("weight_decay", weight_decay)):
        check_float(name, value, 0.0)
    check_bool("update_grid", update_grid)
    check_int("grid_update_num", grid_update_num, 1)
    check_int("start_grid_update_step", start_grid_update_step)
    if stop_grid_update_step is not None:
        check_int("stop_grid_update_step", stop_grid_update_step)
    check_bool("progress", progress)
    check_seed(seed)
    check_int("max_iter", max_iter, 1)
    return check_callbacks(callbacks)


def check_callbacks(callbacks) -> tuple[Callable, ...]:
    """``callbacks`` must be an iterable of callables (a single callable is a common slip)."""
    if callable(callbacks) or isinstance(callbacks, (str, bytes, Mapping)) or not hasattr(callbacks, "__iter__"):
        raise TypeError("callbacks must be a list of callables cb(step, model, history), got "
                        f"{callbacks!r}; wrap a single one as callbacks=[cb]")
    callbacks = tuple(callbacks)
    for i, cb in enumerate(callbacks):
        if not callable(cb):
            raise TypeError(f"callbacks[{i}] must be callable as cb(step, model, history), got {cb!r}")
    return callbacks


def check_batch(batch) -> tuple:
    """A loader's batch must be a pair ``(input, label)`` (a list or tuple of two tensors)."""
    if isinstance(batch, Mapping):
        raise TypeError(f"data must yield (input, label) pairs, got a dict batch with keys {sorted(map(str, batch))}; "
                        "wrap the loader, e.g. ((b['x'], b['y']) for b in loader), or pass a Dataset")
    if not isinstance(batch, (tuple, list)) or len(batch) < 2:
        raise TypeError(f"data must yield (input, label) pairs, got a batch of type {type(batch).__name__}")
    if not (isinstance(batch[0], Tensor) and isinstance(batch[1], Tensor)):
        raise TypeError(f"data must yield (input, label) pairs of tensors, got ({type(batch[0]).__name__}, "
                        f"{type(batch[1]).__name__})")
    return batch[0], batch[1]


@torch.no_grad()
def check_loss_value(model, loss_fn, x: Tensor, y: Tensor) -> None:
    """The loss of two samples must be a real scalar tensor (a vector loss cannot be minimised)."""
    value = loss_fn(model(x[:2]), y[:2])
    if not isinstance(value, Tensor):
        raise TypeError(f"loss must return a scalar tensor, got {type(value).__name__}")
    if value.numel() != 1 or not value.is_floating_point():
        raise ValueError(f"loss must return a scalar floating tensor (reduce it, e.g. with .mean()), got "
                         f"shape {tuple(value.shape)} and dtype {value.dtype}")


def grid_samples(x: Tensor, previous: Tensor | None) -> Tensor | None:
    """What a grid update uses: ``x`` when it holds at least 2 samples; else (a DataLoader's
    short last batch) the last batch that did; None when there was none (the update is skipped)."""
    return x if x.shape[0] >= 2 else previous
