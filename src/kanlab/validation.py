"""Checks at the public boundary: errors that name the argument and what was expected."""
from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["check_input", "check_finite", "as_float_tensor"]


def check_input(x, n_features: int, name: str = "x") -> None:
    """``x`` must be a floating tensor whose last dimension is ``n_features``."""
    if not isinstance(x, Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if not x.is_floating_point():
        raise TypeError(f"{name} must be a floating-point tensor, got dtype {x.dtype}")
    if x.dim() == 0 or x.shape[-1] != n_features:
        raise ValueError(f"{name} must have shape (..., {n_features}), got {tuple(x.shape)}")


def check_finite(x: Tensor, name: str) -> None:
    """Raise a ValueError naming ``name`` when ``x`` holds NaN or inf."""
    if x.is_floating_point() and not bool(torch.isfinite(x).all()):
        bad = int((~torch.isfinite(x)).sum())
        raise ValueError(f"{name} contains {bad} NaN or inf value(s); clean or impute the data first")


def as_float_tensor(x, name: str, dtype=None, device=None) -> Tensor:
    """Convert array-likes to a floating tensor, with a clear error if that is impossible."""
    try:
        t = torch.as_tensor(x, device=device)
    except (TypeError, ValueError, RuntimeError) as err:
        raise TypeError(f"{name} must be a tensor or array of numbers: {err}") from None
    if not t.is_floating_point():
        t = t.to(dtype or torch.get_default_dtype())
    if dtype is not None:
        t = t.to(dtype)
    return t
