"""Pieces shared by the paths: what a layer call carries, the packed weight table, the base
branch, the exact higher-order fallback.

The eager fast paths compute ``y = A(x) @ W.flatten(1).T`` with the *packed* table
``W = [scale_base | scale_spline * coef]`` of shape ``(n_out, n_in, n_basis + 1)`` and the
packed input row ``A(x)[n, i] = [b(x_ni), B_0(x_ni), ..., B_{nb-1}(x_ni)]``.
"""
from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor

from .. import splines
from ..activations import activation

__all__ = ["LayerParams", "SPARSE_WIDTH_RATIO", "eager_path", "pack_weights", "base_and_derivative", "packed_reference", "reference_backward",
           "differentiable_backward", "group_sum"]


class LayerParams(NamedTuple):
    """One layer call's parameters and settings, as :func:`~kanlab.kernels.kan_linear` got them.

    Shape: ``grid`` ``(n_in, G + 2k + 1)``, ``coef`` ``(n_out, n_in, G + k)``, scales
    ``(n_out, n_in)``; ``uniform``: every row of ``grid`` is equally spaced.
    """

    grid: Tensor
    coef: Tensor
    scale_base: Tensor
    scale_spline: Tensor
    spline_order: int
    base_activation: str
    uniform: bool


# Without a native path: the eager sparse path wins once the packed row (nb + 1 columns per
# input) is this many times wider than the live entries (k + 2 per input). Measured with
# benchmarks/layer_speed.py --crossover at (1024, 64, 64), cubic, 1 CPU thread: sparse/dense
# f+b = 1.04 at G = 15, 0.93 at G = 20.
SPARSE_WIDTH_RATIO = 4.5


def eager_path(n_basis: int, spline_order: int) -> str:
    """The eager choice: ``"sparse"`` when ``(n_basis + 1) >= SPARSE_WIDTH_RATIO * (k + 2)``,
    else ``"dense"``."""
    return "sparse" if n_basis + 1 >= SPARSE_WIDTH_RATIO * (spline_order + 2) else "dense"


def pack_weights(coef: Tensor, scale_base: Tensor, scale_spline: Tensor) -> Tensor:
    """``[scale_base | scale_spline * coef]``.

    Shape: ``coef`` ``(n_out, n_in, nb)``, scales ``(n_out, n_in)`` -> ``(n_out, n_in, nb + 1)``.
    """
    return torch.cat([scale_base.unsqueeze(-1), scale_spline.unsqueeze(-1) * coef], dim=-1)


def base_and_derivative(name: str, x: Tensor, need_derivative: bool) -> tuple[Tensor, Tensor | None]:
    """``b(x)`` and, if asked, ``b'(x)`` (else None). Shape: ``(N, n_in)`` -> two ``(N, n_in)``."""
    act = activation(name)
    return act.function(x), act.derivative(x) if need_derivative else None


def packed_reference(x: Tensor, grid: Tensor, weight: Tensor, spline_order: int, base_name: str) -> Tensor:
    """The oracle in packed form: Cox-de Boor basis, base column, one matmul.

    Shape: ``x`` ``(N, n_in)``, ``weight`` ``(n_out, n_in, nb + 1)`` -> ``(N, n_out)``.
    """
    basis = splines.bspline_basis(x, grid, spline_order)  # (N, n_in, nb)
    a = torch.cat([activation(base_name).function(x).unsqueeze(-1), basis], dim=-1)  # (N, n_in, nb+1)
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
