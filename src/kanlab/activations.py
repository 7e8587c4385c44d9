"""Base activations b(x) of the residual branch, by name (names keep configs serialisable)."""
from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["BASE_ACTIVATIONS", "base_function"]


def _identity(x: Tensor) -> Tensor:
    return x


def _zero(x: Tensor) -> Tensor:
    return torch.zeros_like(x)


BASE_ACTIVATIONS: dict[str, Callable[[Tensor], Tensor]] = {
    "silu": F.silu,
    "identity": _identity,
    "zero": _zero,
    "tanh": torch.tanh,
    "gelu": F.gelu,
    "relu": F.relu,
}


def base_function(name: str) -> Callable[[Tensor], Tensor]:
    """The base activation called ``name``; a ValueError lists the known names."""
    try:
        return BASE_ACTIVATIONS[name]
    except KeyError:
        raise ValueError(f"base_activation must be one of {sorted(BASE_ACTIVATIONS)}, got {name!r}") from None
