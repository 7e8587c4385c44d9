"""Base activations b(x) of the residual branch, by name (names keep configs serialisable).

Each activation is one :class:`BaseActivation` record: the function and its first and second
derivatives in closed form. The fast kernels' backward uses ``b'``; the closed-form jets of
:mod:`kanlab.derivatives` use ``b'`` and ``b''``. relu's derivatives are taken as 0 at 0.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["BaseActivation", "ACTIVATIONS", "BASE_ACTIVATIONS", "activation", "base_function"]

Fn = Callable[[Tensor], Tensor]


@dataclass(frozen=True)
class BaseActivation:
    """``b``, ``b'`` and ``b''`` of one base activation; each maps ``(...)`` to ``(...)``.

    ``derivative`` stays differentiable when its input requires grad (double backward and the
    jets need ``b''`` of it); ``second`` is plain torch ops.
    """

    function: Fn
    derivative: Fn
    second: Fn


def _identity(x: Tensor) -> Tensor:
    return x


def _silu_d1(x: Tensor) -> Tensor:
    if torch.is_grad_enabled() and x.requires_grad:  # differentiable
        s = torch.sigmoid(x)
        return s * (1 + x * (1 - s))
    # the kernels' backward: one fused ATen op instead of five (it has no derivative itself)
    return torch.ops.aten.silu_backward(torch.ones((), dtype=x.dtype, device=x.device).expand_as(x), x)


def _silu_d2(x: Tensor) -> Tensor:
    s = torch.sigmoid(x)
    return s * (1 - s) * (2 + x * (1 - 2 * s))


def _tanh_d1(x: Tensor) -> Tensor:
    return 1 - torch.tanh(x) ** 2


def _tanh_d2(x: Tensor) -> Tensor:
    t = torch.tanh(x)
    return -2 * t * (1 - t * t)


def _gelu_d1(x: Tensor) -> Tensor:
    cdf = 0.5 * (1 + torch.erf(x * (1 / math.sqrt(2))))
    return cdf + x * torch.exp(-0.5 * x * x) * (1 / math.sqrt(2 * math.pi))


def _gelu_d2(x: Tensor) -> Tensor:
    return torch.exp(-0.5 * x * x) * (2 - x * x) * (1 / math.sqrt(2 * math.pi))


def _relu_d1(x: Tensor) -> Tensor:
    return (x > 0).to(x.dtype)


ACTIVATIONS: dict[str, BaseActivation] = {
    "silu": BaseActivation(F.silu, _silu_d1, _silu_d2),
    "identity": BaseActivation(_identity, torch.ones_like, torch.zeros_like),
    "zero": BaseActivation(torch.zeros_like, torch.zeros_like, torch.zeros_like),
    "tanh": BaseActivation(torch.tanh, _tanh_d1, _tanh_d2),
    "gelu": BaseActivation(F.gelu, _gelu_d1, _gelu_d2),
    "relu": BaseActivation(F.relu, _relu_d1, torch.zeros_like),
}

# name -> b(x), for code that needs only the function
BASE_ACTIVATIONS: dict[str, Fn] = {name: act.function for name, act in ACTIVATIONS.items()}


def activation(name: str) -> BaseActivation:
    """The record of the base activation called ``name``; a ValueError lists the known names."""
    try:
        return ACTIVATIONS[name]
    except KeyError:
        raise ValueError(f"base_activation must be one of {sorted(ACTIVATIONS)}, got {name!r}") from None


def base_function(name: str) -> Fn:
    """``b`` of the base activation called ``name`` (see :func:`activation`)."""
    return activation(name).function
