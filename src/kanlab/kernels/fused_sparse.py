"""Optional fused *sparse* C++ kernels on uniform CPU grids: only the ``k + 1`` live bases.

Three one-pass OpenMP kernels (``kernels/cpp/sparse_kan.cpp``, built into the same
extension as :mod:`~kanlab.kernels.fused`) on a padded weight table ``T`` ``(n_in, P, W)``,
``P = G + 3k + 1`` rows per input (base row, ``k`` zero rows, the ``G + k`` bases, ``k``
zero rows), ``W = n_out`` rounded up to a whole SIMD vector:

* ``sparse_forward``: ``y[n] = sum_i b(x_ni) T[i, 0] + sum_j B_j(x_ni) T[i, 1 + s + j]``
  (``s`` the knot interval from the closed form), accumulated in registers per sample;
* ``sparse_input_grad``: ``dL/dx[n, i] = <b'(x_ni) T[i, 0] + sum_j B'_j(x_ni) T[i, 1 + s + j], g[n]>``;
* ``sparse_table_grad``: the samples of each input grouped by interval (counting sort), each
  interval's ``k + 1`` row sums of ``B_j g[n]`` kept in registers, inputs in parallel.

Every kernel costs ``O(N n_in (k + 2) n_out)``, independent of ``G``; no ``(N, n_in G)``
buffer exists (peak memory ~ the output and its gradient). The base activation and its
derivative stay torch calls; the table and its gradient are mapped to and from the packed
weights by cheap torch copies.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from ..activations import base_function
from .common import _DERIVATIVES, base_and_derivative, differentiable_backward
from .fused import _mats, extension

__all__ = ["FusedSparseKAN", "padded_table", "table_grad_to_weight", "padded_width"]


def padded_width(n_out: int, dtype: torch.dtype) -> int:
    """``n_out`` rounded up to a whole 64-byte vector of ``dtype``."""
    lanes = 512 // torch.finfo(dtype).bits
    return -(-n_out // lanes) * lanes


def padded_table(weight: Tensor, spline_order: int) -> Tensor:
    """Packed weights ``(n_out, n_in, nb + 1)`` -> padded table ``(n_in, nb + 2k + 1, W)``."""
    n_out, n_in, width = weight.shape
    k = spline_order
    tab = weight.new_zeros(n_in, width + 2 * k, padded_width(n_out, weight.dtype))
    wt = weight.permute(1, 2, 0)  # (n_in, nb+1, n_out)
    tab[:, 0, :n_out] = wt[:, 0]
    tab[:, k + 1: k + width, :n_out] = wt[:, 1:]
    return tab


def table_grad_to_weight(gtab: Tensor, spline_order: int, n_out: int) -> Tensor:
    """Gradient of the padded table ``(n_in, nb + 2k + 1, W)`` -> packed ``(n_out, n_in, nb + 1)``."""
    k = spline_order
    width = gtab.shape[1] - 2 * k
    g = torch.cat([gtab[:, :1], gtab[:, k + 1: k + width]], dim=1)  # (n_in, nb+1, W)
    return g[..., :n_out].permute(2, 0, 1).contiguous()


class FusedSparseKAN(torch.autograd.Function):
    """Same contract as :class:`~kanlab.kernels.sparse.SparseKAN` (uniform grids, CPU,
    float32/float64; ``weight`` ``(n_out, n_in, nb + 1)`` from
    :func:`~kanlab.kernels.common.pack_weights`). Saves ``x``, ``b(x)`` and the padded table;
    higher-order derivatives go through the reference."""

    @staticmethod
    def forward(ctx, x: Tensor, weight: Tensor, grid: Tensor, spline_order: int, base_name: str) -> Tensor:
        ext, k = extension(), spline_order
        x = x.contiguous()
        grid = grid.to(x.dtype).contiguous()
        m_w, _ = _mats(k, x.dtype)
        b = base_function(base_name)(x).contiguous()
        tab = padded_table(weight, k)
        y = ext.sparse_forward(x, b, grid, m_w, tab, k)  # (N, W)
        n_out = weight.shape[0]
        ctx.spline_order, ctx.base_name, ctx.n_out = k, base_name, n_out
        ctx.save_for_backward(x, weight, grid, b, tab)
        return y if y.shape[1] == n_out else y[:, :n_out]

    @staticmethod
    def backward(ctx, grad_out: Tensor):
        x, weight, grid, b, tab = ctx.saved_tensors
        if torch.is_grad_enabled():  # create_graph=True: exact higher-order derivatives
            gx, gw = differentiable_backward(ctx, grad_out, x, weight, grid)
            return gx, gw, None, None, None
        ext, k = extension(), ctx.spline_order
        m_w, m_d = _mats(k, x.dtype)
        g = grad_out.contiguous()
        if g.shape[1] != tab.shape[2]:
            g = F.pad(g, (0, tab.shape[2] - g.shape[1]))  # (N, W), zero columns
        gx = gw = None
        if ctx.needs_input_grad[0]:
            if ctx.base_name in _DERIVATIVES:
                db = _DERIVATIVES[ctx.base_name](x)
            else:
                _, db = base_and_derivative(ctx.base_name, x, True)
            gx = ext.sparse_input_grad(g, x, db.contiguous(), grid, m_d, tab, k)
        if ctx.needs_input_grad[1]:
            gtab = ext.sparse_table_grad(g, x, b, grid, m_w, k)
            gw = table_grad_to_weight(gtab, k, ctx.n_out)
        return gx, gw, None, None, None
