"""Training checkpoints: ``fit(..., checkpoint=path, checkpoint_every=k)`` and ``fit(..., resume=path)``.

A checkpoint holds everything the rest of a run depends on: the model (as the bytes of its
``.kan`` file, validated on load like any ``.kan``), the optimizer state (L-BFGS curvature
history and last direction, or Adam moments), the number of completed steps, the History so
far, and the training settings. The mini-batch order is restored by drawing the same number
of batches again from a source built with the same ``seed``, so a run that is killed and
resumed ends bitwise equal to one that never stopped (same machine and thread count; a
DataLoader must itself be deterministic, e.g. ``shuffle=False`` or a seeded ``generator``).

Files are written atomically with :func:`kanlab.io.atomic_write` (a kill during a write
leaves the previous checkpoint) and read with ``torch.load(weights_only=True)`` (tensors and
plain containers only, no code).
"""
from __future__ import annotations

import io
import os
from pathlib import Path

import torch

from .validation import check_int

__all__ = ["Checkpointer", "read_checkpoint"]

_FORMAT = "kanlab-checkpoint"
_VERSION = 1


class Checkpointer:
    """Writes checkpoints during :func:`kanlab.fit` and restores a run from one.

    Args:
        path: where to write checkpoints (None: none are written).
        every: write after every ``every`` completed steps and after the last step.
        resume: a checkpoint to continue from (None: start at step 0).
        settings: the fit arguments that shape the trajectory; a checkpoint written with
            different ones is refused (``steps`` may change: a run can be extended).
    """

    def __init__(self, path, every, resume, settings: dict):
        """Check ``path`` (its folder must exist), ``every`` (>= 1) and ``resume`` (must exist);
        nothing is read or written yet."""
        self.path = None if path is None else _check_path("checkpoint", path, must_exist=False)
        self.every = check_int("checkpoint_every", every, 1)
        self.resume = None if resume is None else _check_path("resume", resume, must_exist=True)
        self.settings = settings
        self._state: dict | None = None

    def restore_model(self, model) -> int:
        """Load the checkpoint's model into ``model`` in place (before the optimizer is built);
        returns the number of completed steps (0 without ``resume``)."""
        if self.resume is None:
            return 0
        from .io import model_from_bytes

        state = read_checkpoint(self.resume)
        differ = {k: (state["settings"].get(k), v) for k, v in self.settings.items()
                  if state["settings"].get(k) != v}
        if differ:
            raise ValueError(f"resume={str(self.resume)!r} was written with other fit settings "
                             f"(checkpoint, this call): {differ}")
        saved = model_from_bytes(state["model"].numpy().tobytes(), str(self.resume))
        if saved.config != model.config:
            raise ValueError(f"resume={str(self.resume)!r} holds a model of another architecture "
                             f"({saved.config}) than the one given ({model.config})")
        param = next(model.parameters())
        if next(saved.parameters()).dtype != param.dtype:
            raise ValueError(f"resume={str(self.resume)!r} holds a {next(saved.parameters()).dtype} model, "
                             f"the one given is {param.dtype}")
        model.symbolic.clear()
        for key, sym in saved.symbolic.items():
            model.symbolic[key] = sym.to(device=param.device, dtype=param.dtype)
        model.load_state_dict(saved.state_dict())
        self._state = state
        return int(state["step"])

    def history_value(self, key: str, default):
        """A field of the checkpoint's History (``default`` without ``resume``)."""
        return default if self._state is None else self._state["history"].get(key, default)

    def restore_run(self, optimizer, history, source) -> torch.Tensor | None:
        """Load the optimizer state and the History, and replay the batches the completed steps
        drew; returns the last replayed batch input with at least 2 rows (for grid updates)."""
        if self._state is None:
            return None
        from .fit_checks import grid_samples

        optimizer.load_state_dict(self._state["optimizer"])
        for key, value in self._state["history"].items():
            setattr(history, key, list(value) if isinstance(value, list) else value)
        previous = None
        for _ in range(int(self._state["step"])):
            x, _ = next(source)
            previous = grid_samples(x, previous)
        self._state = None
        return previous

    def step_done(self, step: int, steps: int, model, optimizer, history) -> None:
        """After step ``step`` (0-based) completed: write a checkpoint when one is due."""
        if self.path is None or ((step + 1) % self.every and step + 1 != steps):
            return
        from .distributed import is_rank_zero
        from .io import atomic_write, model_to_bytes

        if not is_rank_zero():
            return
        blob = bytearray(model_to_bytes(model))
        state = {"format": _FORMAT, "version": _VERSION, "step": step + 1,
                 "model": torch.frombuffer(blob, dtype=torch.uint8).clone(),
                 "optimizer": optimizer.state_dict(), "history": history.to_dict(),
                 "settings": self.settings}
        buffer = io.BytesIO()
        torch.save(state, buffer)
        atomic_write(self.path, buffer.getvalue())


def read_checkpoint(path) -> dict:
    """The contents of a checkpoint file (plain containers and tensors), checked for its format.

    Raises:
        ValueError naming the path for a missing, corrupt or foreign file.
    """
    path = Path(path)
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise ValueError(f"cannot resume from {str(path)!r}: no such file") from None
    except Exception as err:  # torch.load raises many types for bad bytes
        raise ValueError(f"cannot resume from {str(path)!r}: not a readable checkpoint ({err})") from None
    keys = {"format", "version", "step", "model", "optimizer", "history", "settings"}
    if not isinstance(state, dict) or state.get("format") != _FORMAT or not keys <= set(state):
        raise ValueError(f"cannot resume from {str(path)!r}: not a kanlab checkpoint")
    if state["version"] != _VERSION:
        raise ValueError(f"cannot resume from {str(path)!r}: checkpoint version {state['version']!r}, "
                         f"this kanlab reads version {_VERSION}")
    if not (isinstance(state["step"], int) and state["step"] >= 0 and isinstance(state["model"], torch.Tensor)
            and state["model"].dtype == torch.uint8 and isinstance(state["history"], dict)
            and isinstance(state["settings"], dict) and isinstance(state["optimizer"], dict)):
        raise ValueError(f"cannot resume from {str(path)!r}: malformed checkpoint")
    return state


def _check_path(name: str, path, must_exist: bool) -> Path:
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"{name} must be a file path (str or os.PathLike), got {type(path).__name__}")
    path = Path(path)
    if must_exist and not path.is_file():
        raise ValueError(f"{name}={str(path)!r}: no such file")
    if not path.parent.is_dir():
        raise ValueError(f"{name}={str(path)!r}: directory {str(path.parent)!r} does not exist")
    return path
