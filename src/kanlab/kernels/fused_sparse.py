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

__all__ = ["FusedSparseKAN", "padded_table", "table_grad_to_weight", "chunk_width"]


def chunk_width(n_out: int, dtype: torch.dtype) -> int:
    """Output columns per chunk of the table: 1, 2 or 4 whole 64-byte vectors of ``dtype``.

    The widest chunk that pads ``n_out`` by at most a quarter more than single vectors do.
    """
    lanes = 512 // torch.finfo(dtype).bits
    def padded(width):
        return -(-n_out // width) * width
    return next(lanes * nv for nv in (4, 2, 1) if padded(lanes * nv) <= 1.25 * padded(lanes))


def padded_table(weight: Tensor, spline_order: int) -> Tensor:
    """Packed weights ``(n_out, n_in, nb + 1)`` -> padded table ``(n_in, nc, nb + 2k + 1, CH)``
    (``nc`` chunks of ``CH`` output columns, zero columns beyond ``n_out``)."""
    n_out, n_in, width = weight.shape
    k = spline_order
    ch = chunk_width(n_out, weight.dtype)
    nc = -(-n_out // ch)
    tab = weight.new_zeros(n_in, width + 2 * k, nc * ch)
    wt = weight.permute(1, 2, 0)  # (n_in, nb+1, n_out)
    tab[:, 0, :n_out] = wt[:, 0]
    tab[:, k + 1: k + width, :n_out] = wt[:, 1:]
    if nc == 1:
        return tab.unsqueeze(1)
    return tab.view(n_in, width + 2 * k, nc, ch).transpose(1, 2).contiguous()


def table_grad_to_weight(gtab: Tensor, spline_order: int, n_out: int) -> Tensor:
    """Gradient of the padded table ``(n_in, nc, nb + 2k + 1, CH)`` -> packed ``(n_out, n_in, nb + 1)``."""
    k = spline_order
    n_in, nc, rows, ch = gtab.shape
    width = rows - 2 * k
    g = torch.cat([gtab[:, :, :1], gtab[:, :, k + 1: k + width]], dim=2)  # (n_in, nc, nb+1, CH)
    g = g.permute(1, 3, 0, 2).reshape(nc * ch, n_in, width)  # (W, n_in, nb+1)
    return g[:n_out].contiguous()


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
        width = tab.shape[1] * tab.shape[3]
        if g.shape[1] != width:
            g = F.pad(g, (0, width - g.shape[1]))  # (N, W), zero columns
        gx = gw = None
        if ctx.needs_input_grad[0]:
            if ctx.base_name in _DERIVATIVES:
                db = _DERIVATIVES[ctx.base_name](x)
            else:
                _, db = base_and_derivative(ctx.base_name, x, True)
            gx = ext.sparse_input_grad(g, x, db.contiguous(), grid, m_d, tab, k)
        if ctx.needs_input_grad[1]:
            gtab = ext.sparse_table_grad(g, x, b, grid, m_w, k, tab.shape[3])
            gw = table_grad_to_weight(gtab, k, ctx.n_out)
        return gx, gw, None, None, None
