"""Training losses by name and the label checks that go with them."""
from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["LOSSES", "resolve_loss", "check_labels"]

LOSSES = ("mse", "cross_entropy")
# other spellings users bring along (torch's class names, pykan's, scikit-learn's)
_LOSS_ALIASES = {"mseloss": "mse", "squared_error": "mse", "crossentropy": "cross_entropy",
                 "crossentropyloss": "cross_entropy", "cross-entropy": "cross_entropy", "ce": "cross_entropy",
                 "log_loss": "cross_entropy"}


def resolve_loss(loss) -> tuple[str, Callable[[Tensor, Tensor], Tensor]]:
    """``("mse" | "cross_entropy" | "custom", fn(pred, label) -> scalar)``."""
    if callable(loss):
        return "custom", loss
    name = _LOSS_ALIASES.get(loss.lower(), loss.lower()) if isinstance(loss, str) else None
    if name == "mse":
        return "mse", F.mse_loss
    if name == "cross_entropy":
        return "cross_entropy", F.cross_entropy
    raise ValueError(f"loss must be one of {list(LOSSES)} (any case) or a callable(pred, label) -> scalar, "
                     f"got {loss!r}")


def check_labels(kind: str, label: Tensor, n_outputs: int, name: str) -> None:
    """Labels must match the model: ``(N, n_out)`` for mse (``(N,)`` too when ``n_out == 1``),
    class indices ``(N,)`` in ``[0, n_out)`` (or probabilities ``(N, n_out)``) for cross-entropy."""
    if kind == "mse":
        if label.dim() == 1 and n_outputs == 1:  # (N,) for a one-output model: read as (N, 1)
            return
        if label.dim() != 2 or label.shape[1] != n_outputs:
            hint = " (use label[:, None] for a one-output model)" if label.dim() == 1 else ""
            raise ValueError(f"{name} must have shape (N, {n_outputs}) to match the model's outputs, "
                             f"got {tuple(label.shape)}{hint}")
    elif kind == "cross_entropy":
        if label.dim() == 1:
            if label.is_floating_point() and not bool((label == label.round()).all()):
                raise ValueError(f"{name} must hold integer class indices for cross_entropy")
            lo, hi = int(label.min()), int(label.max())
            if lo < 0 or hi >= n_outputs:
                raise ValueError(f"{name} class indices must lie in [0, {n_outputs}), got [{lo}, {hi}]")
        elif label.dim() != 2 or label.shape[1] != n_outputs:
            raise ValueError(f"{name} must be class indices (N,) or probabilities (N, {n_outputs}), "
                             f"got {tuple(label.shape)}")


def prepare_labels(kind: str, label: Tensor) -> Tensor:
    """Cross-entropy wants long class indices; mse labels ``(N,)`` become ``(N, 1)``."""
    if kind == "cross_entropy" and label.dim() == 1:
        return label.long()
    if kind == "mse" and label.dim() == 1:
        return label[:, None]
    return label


@torch.no_grad()
def evaluate(model, kind: str, loss_fn, x: Tensor, y: Tensor, chunk: int = 65536) -> dict[str, float]:
    """Loss and RMSE (or accuracy) of ``model`` on ``(x, y)``, in chunks to bound memory."""
    preds = torch.cat([model(x[i:i + chunk]) for i in range(0, x.shape[0], chunk)])
    out = {"loss": float(loss_fn(preds, y))}
    if kind == "cross_entropy":
        target = y if y.dim() == 1 else y.argmax(dim=1)
        out["accuracy"] = float((preds.argmax(dim=1) == target).to(preds.dtype).mean())
    elif preds.shape == y.shape:
        out["rmse"] = float(torch.sqrt(torch.mean((preds - y) ** 2)))
    return out
