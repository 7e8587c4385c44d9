"""Sparse path: only the ``k + 1`` live bases (plus the base branch) per input; cost flat in G.

The packed table ``W`` ``(n_out, n_in, nb + 1)`` is laid out as rows
``T[i (nb + 1) + c] = W[:, i, c]`` of a ``(n_in (nb + 1), n_out)`` embedding table. Then

* forward: ``y[n] = sum_c vals[n, c] T[cols[n, c]]`` -- one ``embedding_bag`` with
  per-sample weights, ``C = n_in (k + 2)`` entries per sample;
* input gradient: ``<grad_y[n], T[cols[n, c]]>`` for the live entries only (a sampled
  dense-dense product on the CSR pattern of ``cols``), times the basis derivatives;
* table gradient: the transposed reduction ``grad_T[r] = sum_{cols = r} vals * grad_y[n]``,
  done as a second ``embedding_bag`` over ``grad_y`` after sorting the entries by row.

Every step costs ``O(N n_in (k + 2) n_out)``, independent of the grid size.
"""
from __future__ import annotations

import warnings

import torch
import torch.nn.functional as F
from torch import Tensor

from .common import base_and_derivative, differentiable_backward
from .local import local_basis

__all__ = ["SparseKAN", "sparse_entries"]


def sparse_entries(x: Tensor, grid: Tensor, spline_order: int, base_name: str, uniform: bool,
                   need_derivative: bool):
    """Table rows, weights and weight derivatives of every sample's live entries.

    Shape: ``x`` ``(N, n_in)`` -> ``cols``, ``vals``, ``dvals`` ``(N, n_in, k + 2)``
    (entry 0 is the base branch); ``dvals`` is None unless ``need_derivative``.
    """
    n_in = x.shape[1]
    width = grid.shape[1] - spline_order  # nb + 1 table rows per input
    pos, w, dw = local_basis(x, grid, spline_order, uniform)
    b, db = base_and_derivative(base_name, x, need_derivative)
    first = torch.arange(n_in, device=x.device).mul_(width).view(1, n_in, 1)  # (1, n_in, 1)
    cols = torch.cat([first.expand(x.shape[0], n_in, 1), pos + 1 + first], dim=-1)
    vals = torch.cat([b.unsqueeze(-1), w], dim=-1)
    dvals = torch.cat([db.unsqueeze(-1), dw], dim=-1) if need_derivative else None
    return cols, vals, dvals


def table(weight: Tensor) -> Tensor:
    """``(n_out, n_in, nb + 1)`` -> embedding table ``(n_in (nb + 1), n_out)``."""
    return weight.permute(1, 2, 0).reshape(-1, weight.shape[0])


def transposed_reduce(cols: Tensor, vals: Tensor, grad_out: Tensor, n_rows: int) -> Tensor:
    """``out[r] = sum over entries with cols == r of vals * grad_out[sample]``.

    Shape: ``cols``, ``vals`` ``(N, C)``, ``grad_out`` ``(N, n_out)`` -> ``(n_rows, n_out)``.
    """
    n, c = cols.shape
    flat = cols.reshape(-1)
    order = torch.argsort(flat)
    counts = torch.bincount(flat, minlength=n_rows)
    offsets = torch.cumsum(counts, 0) - counts
    sample = torch.div(order, c, rounding_mode="floor")
    return F.embedding_bag(sample, grad_out, offsets, mode="sum",
                           per_sample_weights=vals.reshape(-1)[order])


def sampled_dots(cols: Tensor, grad_out: Tensor, tab: Tensor) -> Tensor:
    """``<grad_out[n], tab[cols[n, c]]>`` for every entry, without the dense product.

    Shape: ``cols`` ``(N, C)``, ``grad_out`` ``(N, n_out)``, ``tab`` ``(R, n_out)`` -> ``(N, C)``.
    """
    n, c = cols.shape
    crow = torch.arange(0, n * c + 1, c, device=cols.device)
    with warnings.catch_warnings():  # "sparse CSR support is in beta"
        warnings.simplefilter("ignore", UserWarning)
        pattern = torch.sparse_csr_tensor(crow, cols.reshape(-1), grad_out.new_ones(n * c),
                                          size=(n, tab.shape[0]), check_invariants=False)
    out = torch.sparse.sampled_addmm(pattern, grad_out, tab.T, beta=0.0)
    return out.values().view(n, c)


class SparseKAN(torch.autograd.Function):
    """Same function as :class:`~kanlab.kernels.dense.DenseKAN`, touching only live bases."""

    @staticmethod
    def forward(ctx, x: Tensor, weight: Tensor, grid: Tensor, spline_order: int, base_name: str,
                uniform: bool) -> Tensor:
        n, n_in = x.shape
        need_x = ctx.needs_input_grad[0]
        cols, vals, dvals = sparse_entries(x, grid, spline_order, base_name, uniform, need_x)
        cols, vals = cols.view(n, -1), vals.view(n, -1)
        y = F.embedding_bag(cols, table(weight), mode="sum", per_sample_weights=vals)
        ctx.spline_order, ctx.base_name = spline_order, base_name
        ctx.save_for_backward(x, weight, grid, cols, vals, dvals.view(n, -1) if need_x else None)
        return y

    @staticmethod
    def backward(ctx, grad_out: Tensor):
        x, weight, grid, cols, vals, dvals = ctx.saved_tensors
        if torch.is_grad_enabled():  # create_graph=True: exact higher-order derivatives
            gx, gw = differentiable_backward(ctx, grad_out, x, weight, grid)
            return gx, gw, None, None, None, None
        grad_out = grad_out.contiguous()
        gx = gw = None
        if ctx.needs_input_grad[0]:
            dots = sampled_dots(cols, grad_out, table(weight))  # (N, n_in (k+2))
            gx = (dots * dvals).view(x.shape[0], x.shape[1], -1).sum(-1)
        if ctx.needs_input_grad[1]:
            n_out, n_in, width = weight.shape
            gt = transposed_reduce(cols, vals, grad_out, n_in * width)  # (n_in (nb+1), n_out)
            gw = gt.view(n_in, width, n_out).permute(2, 0, 1)
        return gx, gw, None, None, None, None
