"""Optional fused *sparse* C++ kernels on uniform CPU grids: only the ``k + 1`` live bases.

Three OpenMP kernels (``kernels/cpp/sparse_kan.cpp``, ``sparse_table_grad.cpp``; the extension
is built by :mod:`~kanlab.kernels.extension`) on a weight table ``T``
``(n_in, nc, G + k + 1, CH)``: per input the base row, then one row per basis; the outputs
in ``nc`` chunks of ``CH`` columns (:func:`chunk_width`; zero columns pad ``n_out``):

* ``sparse_forward``: ``y[n] = sum_i b(x_ni) T[i, :, 0] + sum_j B_j(x_ni) T[i, :, 1 + s - k + j]``
  (``s`` the knot interval from the closed form), accumulated in registers per sample. In
  the ``k`` outer intervals on each side some of these bases do not exist: their weights
  are zero, and their rows those of the neighbouring slice (or ``k`` zero rows the table's
  storage has before and after it);
* ``sparse_input_grad``:
  ``dL/dx[n, i] = <b'(x_ni) T[i, :, 0] + sum_j B'_j(x_ni) T[i, :, 1 + s - k + j], g[n]>``, the
  dot products of 16 (float32) or 8 (float64) inputs reduced together;
* ``sparse_table_grad``: inputs in parallel; samples in blocks whose output gradients stay
  in L2, grouped per input by interval (counting sort), each interval's ``k + 1`` row sums
  of ``B_j g[n]`` kept in registers.

Every kernel costs ``O(N n_in (k + 2) n_out)``, independent of ``G``; no ``(N, n_in G)``
buffer exists (peak memory ~ the output and its gradient). The base activation and its
derivative stay torch calls; the table is built from ``coef`` and both scales, and its
gradient mapped back to theirs, by two more C++ loops (``sparse_table.cpp``: tiles of 16 x 16
(float32) or 8 x 8 entries transposed in registers), so the packed weights of the other paths
are never formed.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from ..activations import activation
from .common import LayerParams, reference_backward
from .extension import load_extension
from .local import uniform_basis_matrices
from .reference import kan_linear_reference

__all__ = ["FusedSparseKAN", "chunk_width", "run"]

def run(x: Tensor, layer: LayerParams) -> Tensor:
    """The layer by :class:`FusedSparseKAN`. Shape: ``x`` ``(N, n_in)`` -> ``(N, n_out)``."""
    return FusedSparseKAN.apply(x, layer.coef, layer.scale_base, layer.scale_spline, layer.grid,
                                layer.spline_order, layer.base_activation)


def chunk_width(n_out: int, dtype: torch.dtype) -> int:
    """Output columns per chunk of the table: 1, 2 or 4 whole 64-byte vectors of ``dtype``.

    The widest chunk that pads ``n_out`` by at most a quarter more than single vectors do.
    """
    lanes = 512 // torch.finfo(dtype).bits
    def padded(width):
        return -(-n_out // width) * width
    return next(lanes * nv for nv in (4, 2, 1) if padded(lanes * nv) <= 1.25 * padded(lanes))


class FusedSparseKAN(torch.autograd.Function):
    """The layer function of :func:`~kanlab.kernels.kan_linear_reference` by the sparse C++
    kernels (uniform grids, CPU, float32/float64), straight from the parameters: the table is
    built from ``coef`` and both scales in C++ and its gradient mapped back there.
    Saves ``x``, ``b(x)`` and the table; higher-order derivatives go through the reference.

    Shape: ``x`` ``(N, n_in)``, ``coef`` ``(n_out, n_in, nb)``, scales ``(n_out, n_in)``,
    ``grid`` ``(n_in, nb + k + 1)`` -> ``(N, n_out)``.
    """

    @staticmethod
    def forward(ctx, x: Tensor, coef: Tensor, scale_base: Tensor, scale_spline: Tensor, grid: Tensor,
                spline_order: int, base_name: str) -> Tensor:
        ops, k = load_extension(), spline_order
        inputs = (x, coef, scale_base, scale_spline)  # saved as given: copies have no history for create_graph
        x, coef, scale_base, scale_spline = (t.contiguous() for t in inputs)
        grid = grid.to(x.dtype).contiguous()
        m_w, _ = uniform_basis_matrices(k, x.dtype, x.device)
        b = activation(base_name).function(x).contiguous()
        n_out = coef.shape[0]
        tab = ops.sparse_table(coef, scale_base, scale_spline, k, chunk_width(n_out, x.dtype))
        y = ops.sparse_forward(x, b, grid, m_w, tab, k)  # (N, W)
        ctx.spline_order, ctx.base_name = k, base_name
        ctx.save_for_backward(*inputs, grid, b, tab)
        return y if y.shape[1] == n_out else y[:, :n_out]

    @staticmethod
    def backward(ctx, grad_out: Tensor):
        x, coef, sb, ss, grid, b, tab = ctx.saved_tensors
        k, name = ctx.spline_order, ctx.base_name
        if torch.is_grad_enabled():  # create_graph=True: exact higher-order derivatives
            def layer_fn(x_, coef_, sb_, ss_):
                return kan_linear_reference(x_, grid, coef_, sb_, ss_, k, name)
            return reference_backward(ctx, grad_out, layer_fn, (x, coef, sb, ss)) + (None, None, None)
        ops = load_extension()
        x, coef, ss = x.contiguous(), coef.contiguous(), ss.contiguous()
        m_w, m_d = uniform_basis_matrices(k, x.dtype, x.device)
        g = grad_out.contiguous()
        width = tab.shape[1] * tab.shape[3]
        if g.shape[1] != width:
            g = F.pad(g, (0, width - g.shape[1]))  # (N, W), zero columns
        gx = gc = gsb = gss = None
        if ctx.needs_input_grad[0]:
            db = activation(name).derivative(x)
            gx = ops.sparse_input_grad(g, x, db.contiguous(), grid, m_d, tab, k)
        if any(ctx.needs_input_grad[1:4]):
            gtab = ops.sparse_table_grad(g, x, b, grid, m_w, k, tab.shape[3])
            gc, gsb, gss = ops.sparse_param_grads(gtab, coef, ss)
        return gx, gc, gsb, gss, None, None, None
