"""Sparse path: only the ``k + 1`` live bases (plus the base branch) per input; cost flat in G.

The packed table ``W`` ``(n_out, n_in, nb + 1)`` is laid out as rows
``T[i (nb + 1) + c] = W[:, i, c]`` of a ``(n_in (nb + 1), n_out)`` embedding table. Then

* forward: ``y[n] = sum_c vals[n, c] T[cols[n, c]]`` -- one ``embedding_bag`` with
  per-sample weights, ``n_in (k + 2)`` entries per sample;
* input gradient: ``<grad_y[n], T[cols[n, c]]>`` for the live entries only (a sampled
  dense-dense product on the CSR pattern of ``cols``), times the basis derivatives;
* table gradient: the transposed reduction ``grad_T[r] = sum_{cols = r} vals * grad_y[n]``.
  The samples of each input are grouped by knot interval with one small-integer (radix)
  sort, so every (input, interval, entry) is a contiguous bag of a second
  ``embedding_bag`` over ``grad_y``; the ``k + 1`` entry bags are then added into their
  columns with one ``index_add_`` on a small tensor.

Every step costs ``O(N n_in (k + 2) n_out)``, independent of the grid size.
"""
from __future__ import annotations

import warnings

import torch
import torch.nn.functional as F
from torch import Tensor

from .common import base_and_derivative, differentiable_backward
from .local import local_basis, lookup, span_tables

__all__ = ["SparseKAN", "sparse_entries"]


def sparse_entries(x: Tensor, grid: Tensor, spline_order: int, base_name: str, uniform: bool,
                   need_derivative: bool):
    """Shifted spans, table rows, weights and weight derivatives of every live entry.

    Shape: ``x`` ``(N, n_in)`` -> ``shifted`` ``(N, n_in)``; ``cols``, ``vals``, ``dvals``
    ``(N, n_in (k + 2))`` (entry 0 of each input is the base branch); ``dvals`` is None
    unless ``need_derivative``.
    """
    n, n_in = x.shape
    n_intervals = grid.shape[1] - 1
    shifted, w, dw = local_basis(x, grid, spline_order, uniform)
    b, db = base_and_derivative(base_name, x, need_derivative)
    cols = lookup(row_table(n_in, n_intervals, spline_order, x.device), shifted + _input_offset(
        n_in, n_intervals + 2, x.device))  # (N, n_in, k+2)
    vals = torch.cat([b.unsqueeze(-1), w], dim=-1).view(n, -1)
    dvals = torch.cat([db.unsqueeze(-1), dw], dim=-1).view(n, -1) if need_derivative else None
    return shifted, cols.view(n, -1), vals, dvals


def _input_offset(n_in: int, stride: int, device) -> Tensor:
    return torch.arange(0, n_in * stride, stride, device=device)  # (n_in,)


def row_table(n_in: int, n_intervals: int, spline_order: int, device) -> Tensor:
    """Table rows of the ``k + 2`` entries for every (input, shifted span).

    Shape: ``(n_in (n_intervals + 2), k + 2)``; row ``i S + s`` holds
    ``i (nb + 1) + [0, cols(s)]``.
    """
    cols, _ = span_tables(n_intervals, spline_order, device)  # (S, k+1)
    width = n_intervals - spline_order + 1
    per = torch.cat([torch.zeros_like(cols[:, :1]), cols], dim=1)  # (S, k+2)
    return (per.unsqueeze(0) + _input_offset(n_in, width, device).view(-1, 1, 1)).view(-1, per.shape[1])


def table(weight: Tensor) -> Tensor:
    """``(n_out, n_in, nb + 1)`` -> embedding table ``(n_in (nb + 1), n_out)``."""
    return weight.permute(1, 2, 0).reshape(-1, weight.shape[0])


def table_grad(shifted: Tensor, vals: Tensor, grad_out: Tensor, n_intervals: int,
               spline_order: int) -> Tensor:
    """Gradient of the packed table, without a dense product and without a general sort.

    Shape: ``shifted`` ``(N, n_in)``, ``vals`` ``(N, n_in (k + 2))``, ``grad_out``
    ``(N, n_out)`` -> ``(n_out, n_in, nb + 1)``.
    """
    n, n_in = shifted.shape
    k, n_spans, e = spline_order, n_intervals + 2, spline_order + 2
    keys = shifted.T + _input_offset(n_in, n_spans, shifted.device).unsqueeze(1)  # (n_in, N)
    small = torch.int16 if n_in * n_spans < 2 ** 15 else torch.int32  # radix sort on few bytes
    order = torch.sort(keys.reshape(-1).to(small), stable=True).indices  # input-major, then span
    sample = order.remainder(n).view(n_in, 1, n).expand(n_in, e, n)  # (n_in, k+2, N)
    weights = vals.view(n, n_in, e).permute(1, 0, 2).reshape(n_in * n, e)  # (n_in N, k+2)
    weights = weights.index_select(0, order).view(n_in, n, e).transpose(1, 2)  # (n_in, k+2, N)
    counts = torch.bincount(keys.reshape(-1), minlength=n_in * n_spans).view(n_in, n_spans)
    starts = torch.cumsum(counts, 1) - counts  # (n_in, S) within each input
    base = torch.arange(n_in * e, device=shifted.device).view(n_in, e, 1) * n
    offsets = (base + starts.unsqueeze(1)).reshape(-1)  # bags (input, entry, span)
    bags = F.embedding_bag(sample.reshape(-1), grad_out, offsets, mode="sum",
                           per_sample_weights=weights.reshape(-1))
    bags = bags.view(n_in, e, n_spans, -1)  # (n_in, k+2, S, n_out)
    cols, _ = span_tables(n_intervals, k, shifted.device)  # (S, k+1)
    width = n_intervals - k + 1
    grad = bags.new_zeros(n_in, width, bags.shape[-1])
    grad[:, 0] = bags[:, 0].sum(1)
    grad.index_add_(1, cols.T.reshape(-1), bags[:, 1:].reshape(n_in, (k + 1) * n_spans, -1))
    return grad.permute(2, 0, 1)


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
        need_x = ctx.needs_input_grad[0]
        shifted, cols, vals, dvals = sparse_entries(x, grid, spline_order, base_name, uniform, need_x)
        y = F.embedding_bag(cols, table(weight), mode="sum", per_sample_weights=vals)
        ctx.spline_order, ctx.base_name = spline_order, base_name
        ctx.save_for_backward(x, weight, grid, shifted, cols, vals, dvals)
        return y

    @staticmethod
    def backward(ctx, grad_out: Tensor):
        x, weight, grid, shifted, cols, vals, dvals = ctx.saved_tensors
        if torch.is_grad_enabled():  # create_graph=True: exact higher-order derivatives
            gx, gw = differentiable_backward(ctx, grad_out, x, weight, grid)
            return gx, gw, None, None, None, None
        grad_out = grad_out.contiguous()
        gx = gw = None
        if ctx.needs_input_grad[0]:
            dots = sampled_dots(cols, grad_out, table(weight))  # (N, n_in (k+2))
            gx = (dots * dvals).view(x.shape[0], x.shape[1], -1).sum(-1)
        if ctx.needs_input_grad[1]:
            gw = table_grad(shifted, vals, grad_out, grid.shape[1] - 1, ctx.spline_order)
        return gx, gw, None, None, None, None
