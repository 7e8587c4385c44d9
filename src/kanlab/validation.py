"""Checks at the public boundary: errors that name the argument and what was expected."""
from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["check_input", "check_finite", "as_float_tensor", "as_model_input"]


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
    flags = getattr(x, "flags", None)
    if flags is not None and not getattr(flags, "writeable", True):  # torch warns on read-only numpy arrays
        x = x.copy()
    try:
        t = torch.as_tensor(x, device=device)
    except (TypeError, ValueError, RuntimeError) as err:
        raise TypeError(f"{name} must be a tensor or array of numbers: {err}") from None
    if not t.is_floating_point():
        t = t.to(dtype or torch.get_default_dtype())
    if dtype is not None:
        t = t.to(dtype)
    return t


def as_model_input(x, n_features: int, like: Tensor, name: str = "x") -> Tensor:
    """``x`` checked as the input of a model whose parameters look like ``like``.

    Arrays (numpy, nested lists) are converted to ``like``'s dtype and device; a tensor must
    already have them (a TypeError names both dtypes or devices), be floating and end in
    ``n_features``. Costs a few attribute reads for a tensor: it runs on every forward.
    """
    if not isinstance(x, Tensor) and (hasattr(x, "__array__") or isinstance(x, (list, tuple))):
        x = as_float_tensor(x, name, dtype=like.dtype, device=like.device)
    check_input(x, n_features, name)
    if x.dtype != like.dtype:
        raise TypeError(f"{name} has dtype {x.dtype} but the model's parameters have dtype {like.dtype}; "
                        f"convert one of them ({name}.to({like.dtype}) or model.to({x.dtype}))")
    if x.device != like.device:
        raise TypeError(f"{name} is on device {x.device} but the model's parameters are on {like.device}; "
                        f"move one of them ({name}.to('{like.device}') or model.to('{x.device}'))")
    return x
