"""Dense path: local bases scattered straight into the GEMM input, base branch packed in.

Forward is one ``(N, n_in (nb + 1)) @ (n_in (nb + 1), n_out)`` matrix product after an
``O(N n_in k)`` closed-form basis; backward is the two matching products plus a gather
of ``k + 1`` entries per input for the input gradient. No Cox-de Boor intermediates are
stored: the saved state is the packed input, the live positions and the basis
derivatives.
"""
from __future__ import annotations

import torch
from torch import Tensor

from .common import base_and_derivative, differentiable_backward
from .local import local_basis, lookup, span_tables

__all__ = ["DenseKAN", "dense_input"]


def dense_input(x: Tensor, grid: Tensor, spline_order: int, base_name: str, uniform: bool,
                need_derivative: bool):
    """Packed GEMM input and what the input gradient needs.

    Shape: ``x`` ``(N, n_in)`` -> ``a`` ``(N, n_in, nb + 1)``, ``cols`` ``(N, n_in, k + 1)``
    (columns of the live bases in ``a``), ``dw`` ``(N, n_in, k + 1)``, ``db`` ``(N, n_in)``.
    """
    n, n_in = x.shape
    n_basis = grid.shape[1] - 1 - spline_order
    k = spline_order
    shifted, wd = local_basis(x, grid, k, uniform, masked=True)  # (N, n_in), (N, n_in, 2(k+1))
    cols = lookup(span_tables(grid.shape[1] - 1, k, x.device)[0], shifted)  # (N, n_in, k+1)
    w, dw = wd[..., : k + 1], wd[..., k + 1:]
    b, db = base_and_derivative(base_name, x, need_derivative)
    a = x.new_zeros(n, n_in, n_basis + 1)
    a.scatter_add_(2, cols, w)
    a[:, :, 0] = b
    return a, cols, dw, db


class DenseKAN(torch.autograd.Function):
    """``y = A(x) @ W.flatten(1).T`` with a packed table ``W`` ``(n_out, n_in, nb + 1)``."""

    @staticmethod
    def forward(ctx, x: Tensor, weight: Tensor, grid: Tensor, spline_order: int, base_name: str,
                uniform: bool) -> Tensor:
        need_x = ctx.needs_input_grad[0]
        a, cols, dw, db = dense_input(x, grid, spline_order, base_name, uniform, need_x)
        y = a.flatten(1) @ weight.flatten(1).T  # (N, n_out)
        ctx.spline_order, ctx.base_name = spline_order, base_name
        keep_a = a if ctx.needs_input_grad[1] else None
        ctx.save_for_backward(x, weight, grid, keep_a, cols if need_x else None,
                              dw if need_x else None, db)
        return y

    @staticmethod
    def backward(ctx, grad_out: Tensor):
        x, weight, grid, a, cols, dw, db = ctx.saved_tensors
        if torch.is_grad_enabled():  # create_graph=True: exact higher-order derivatives
            gx, gw = differentiable_backward(ctx, grad_out, x, weight, grid)
            return gx, gw, None, None, None, None
        gx = gw = None
        if ctx.needs_input_grad[0]:
            ga = (grad_out @ weight.flatten(1)).view(x.shape[0], *weight.shape[1:])
            gx = (ga.gather(2, cols) * dw).sum(-1) + ga[:, :, 0] * db  # (N, n_in)
        if ctx.needs_input_grad[1]:
            gw = (grad_out.T @ a.flatten(1)).view(weight.shape)  # (n_out, n_in, nb+1)
        return gx, gw, None, None, None, None
