"""Optional fused C++ kernels for the dense path on uniform CPU grids.

Two one-pass kernels (``kernels/cpp/fused_kan.cpp``) replace the ~10 memory-bound eager
passes of :mod:`~kanlab.kernels.dense`; everything else stays a torch GEMM:

* ``packed_input``: ``x`` and ``b(x)`` ``(N, n_in)`` -> the packed GEMM input
  ``(N, n_in (nb + 1))`` (per input: ``b(x)``, then the ``nb`` bases; closed-form uniform
  basis of any order);
* ``input_grad``: ``dL/da = grad_out @ W``, ``x`` and ``b'(x)`` -> ``dL/dx`` ``(N, n_in)``.

The base activation and its derivative stay torch calls (vectorised, ``(N, n_in)`` only).

``"auto"`` takes this path instead of :mod:`~kanlab.kernels.fused_sparse` for outputs of at most
half a 64-byte SIMD vector on grids where the eager choice is dense (:func:`worth_it`): there
the sparse kernels pad the outputs to a whole vector, and this path was 1.1-1.35x faster
forward + backward (docs/performance.md).
"""
from __future__ import annotations

import torch
from torch import Tensor

from ..activations import activation
from .common import LayerParams, differentiable_backward, eager_path, pack_weights
from .extension import large_batch, load_extension
from .local import uniform_basis_matrices

__all__ = ["FusedKAN", "worth_it", "run"]


def worth_it(x: Tensor, layer: LayerParams) -> bool:
    """Whether ``"auto"`` should take this path: a large batch (as for ``"fused_sparse"``),
    at most half a SIMD vector of outputs, and a grid small enough for the eager dense path."""
    return (large_batch(x, layer) and x.is_floating_point()
            and 2 * layer.coef.shape[0] <= 512 // torch.finfo(x.dtype).bits
            and eager_path(layer.coef.shape[-1], layer.spline_order) == "dense")


def run(x: Tensor, layer: LayerParams) -> Tensor:
    """The layer by :class:`FusedKAN`. Shape: ``x`` ``(N, n_in)`` -> ``(N, n_out)``."""
    weight = pack_weights(layer.coef, layer.scale_base, layer.scale_spline)  # (n_out, n_in, nb+1)
    return FusedKAN.apply(x, weight, layer.grid, layer.spline_order, layer.base_activation)


class FusedKAN(torch.autograd.Function):
    """``y = A(x) @ W.flatten(1).T`` with ``A`` built by the fused kernel (uniform grids, CPU).

    Same contract as :class:`~kanlab.kernels.dense.DenseKAN`: ``weight`` ``(n_out, n_in, nb + 1)``
    packed by :func:`~kanlab.kernels.common.pack_weights`. Backward: ``dL/dx`` from
    ``grad_out @ W`` by the fused gather kernel, ``dL/dW = grad_out^T A``. ``A`` is saved
    for backward, or rebuilt there (one more build pass, ~10 % more time; peak memory 1.3x
    instead of 2.1x the dense limit's) when :attr:`RECOMPUTE` is True, or when it is None
    (the default) and ``A`` takes at least :attr:`RECOMPUTE_BYTES`. Higher-order
    derivatives go through the reference.
    """

    RECOMPUTE: bool | None = None
    RECOMPUTE_BYTES = 2 ** 24  # 16 MiB: (4096, 128 * 9) float32 is 18.9 MB

    @staticmethod
    def forward(ctx, x: Tensor, weight: Tensor, grid: Tensor, spline_order: int, base_name: str) -> Tensor:
        ops = load_extension()
        x_in, x = x, x.contiguous()  # save the input itself: a copy has no history for create_graph
        grid = grid.to(x.dtype).contiguous()
        m_w, _ = uniform_basis_matrices(spline_order, x.dtype, x.device)
        b = activation(base_name).function(x).contiguous()
        a = ops.packed_input(x, b, grid, m_w, spline_order)  # (N, n_in P)
        y = a @ weight.reshape(weight.shape[0], -1).T  # (N, n_out)
        ctx.spline_order, ctx.base_name = spline_order, base_name
        recompute = FusedKAN.RECOMPUTE
        if recompute is None:
            recompute = a.numel() * a.element_size() >= FusedKAN.RECOMPUTE_BYTES
        keep_a = a if ctx.needs_input_grad[1] and not recompute else None
        ctx.save_for_backward(x_in, weight, grid, keep_a)
        return y

    @staticmethod
    def backward(ctx, grad_out: Tensor):
        x, weight, grid, a = ctx.saved_tensors
        if torch.is_grad_enabled():  # create_graph=True: exact higher-order derivatives
            gx, gw = differentiable_backward(ctx, grad_out, x, weight, grid)
            return gx, gw, None, None, None
        ops, k, x = load_extension(), ctx.spline_order, x.contiguous()
        m_w, m_d = uniform_basis_matrices(k, x.dtype, x.device)
        grad_out = grad_out.contiguous()
        gx = gw = None
        if ctx.needs_input_grad[0]:
            gp = grad_out @ weight.reshape(weight.shape[0], -1)  # (N, n_in P)
            gx = ops.input_grad(gp, x, activation(ctx.base_name).derivative(x).contiguous(), grid, m_d, k)
            del gp
        if ctx.needs_input_grad[1]:
            if a is None:
                b = activation(ctx.base_name).function(x)
                a = ops.packed_input(x, b.contiguous(), grid, m_w, k)
            gw = (grad_out.T @ a).view(weight.shape)  # (n_out, n_in, nb + 1)
        return gx, gw, None, None, None
