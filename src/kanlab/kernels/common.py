"""Pieces shared by the fast paths: the packed weight table, base derivatives, the exact
higher-order fallback.

The fast paths compute ``y = A(x) @ W.flatten(1).T`` with the *packed* table
``W = [scale_base | scale_spline * coef]`` of shape ``(n_out, n_in, n_basis + 1)`` and the
packed input row ``A(x)[n, i] = [b(x_ni), B_0(x_ni), ..., B_{nb-1}(x_ni)]``.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

from .. import splines
from ..activations import base_function

__all__ = ["pack_weights", "base_and_derivative", "base_derivative", "packed_reference", "reference_backward",
           "differentiable_backward", "group_sum"]


def pack_weights(coef: Tensor, scale_base: Tensor, scale_spline: Tensor) -> Tensor:
    """``[scale_base | scale_spline * coef]``.

    Shape: ``coef`` ``(n_out, n_in, nb)``, scales ``(n_out, n_in)`` -> ``(n_out, n_in, nb + 1)``.
    """
    return torch.cat([scale_base.unsqueeze(-1), scale_spline.unsqueeze(-1) * coef], dim=-1)


def _silu_d(x: Tensor) -> Tensor:
    if torch.is_grad_enabled() and x.requires_grad:  # differentiable (jets need b'')
        s = torch.sigmoid(x)
        return s * (1 + x * (1 - s))
    # one fused ATen op instead of five (it has no derivative itself)
    return torch.ops.aten.silu_backward(torch.ones((), dtype=x.dtype, device=x.device).expand_as(x), x)


def _gelu_d(x: Tensor) -> Tensor:
    cdf = 0.5 * (1 + torch.erf(x * (1 / math.sqrt(2))))
    return cdf + x * torch.exp(-0.5 * x * x) * (1 / math.sqrt(2 * math.pi))


_DERIVATIVES = {
    "silu": _silu_d,
    "identity": torch.ones_like,
    "zero": torch.zeros_like,
    "tanh": lambda x: 1 - torch.tanh(x) ** 2,
    "gelu": _gelu_d,
    "relu": lambda x: (x > 0).to(x.dtype),
}


def base_and_derivative(name: str, x: Tensor, need_derivative: bool) -> tuple[Tensor, Tensor | None]:
    """``b(x)`` and, if asked, ``b'(x)`` (by autograd for activations without a closed form)."""
    fn = base_function(name)
    if not need_derivative:
        return fn(x), None
    if name in _DERIVATIVES:
        return fn(x), _DERIVATIVES[name](x)
    with torch.enable_grad():
        xd = x.detach().requires_grad_(True)
        b = fn(xd)
        (d,) = torch.autograd.grad(b.sum(), xd)
    return b.detach(), d


def base_derivative(name: str, x: Tensor) -> Tensor:
    """``b'(x)`` alone: the closed form where there is one, else by autograd."""
    if name in _DERIVATIVES:
        return _DERIVATIVES[name](x)
    return base_and_derivative(name, x, True)[1]


def packed_reference(x: Tensor, grid: Tensor, weight: Tensor, spline_order: int, base_name: str) -> Tensor:
    """The oracle in packed form: Cox-de Boor basis, base column, one matmul.

    Shape: ``x`` ``(N, n_in)``, ``weight`` ``(n_out, n_in, nb + 1)`` -> ``(N, n_out)``.
    """
    basis = splines.bspline_basis(x, grid, spline_order)  # (N, n_in, nb)
    a = torch.cat([base_function(base_name)(x).unsqueeze(-1), basis], dim=-1)  # (N, n_in, nb+1)
    return a.flatten(1) @ weight.flatten(1).T


def reference_backward(ctx, grad_out: Tensor, layer_fn, inputs: tuple) -> tuple:
    """Backward that autograd can differentiate again (``create_graph=True``).

    Differentiates ``layer_fn(*inputs)``, a plain reference form of the layer, instead of the
    fast path, so gradients of any order are exact (physics-informed losses); only used when
    a graph of the backward is being built. Returns one gradient per entry of ``inputs``
    (None where ``ctx.needs_input_grad`` is False).
    """
    needs = ctx.needs_input_grad[:len(inputs)]
    wants = [t for t, need in zip(inputs, needs) if need]
    with torch.enable_grad():
        y = layer_fn(*inputs)
        grads = iter(torch.autograd.grad(y, wants, grad_out, create_graph=True, allow_unused=True))
    return tuple(next(grads) if need else None for need in needs)


def differentiable_backward(ctx, grad_out: Tensor, x: Tensor, weight: Tensor, grid: Tensor):
    """:func:`reference_backward` of :func:`packed_reference`. Returns ``(grad_x, grad_weight)``."""
    def layer_fn(x_, weight_):
        return packed_reference(x_, grid, weight_, ctx.spline_order, ctx.base_name)
    return reference_backward(ctx, grad_out, layer_fn, (x, weight))


def group_sum(t: Tensor, group: int) -> Tensor:
    """Sums of consecutive groups of ``group`` entries along the last dimension.

    A matrix-vector product with ones, which is faster than ``sum(-1)`` over a short
    innermost dimension. Shape: ``(N, M group)`` -> ``(N, M)``.
    """
    ones = t.new_ones(group)
    return (t.reshape(-1, group) @ ones).view(t.shape[0], -1)
