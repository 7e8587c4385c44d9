"""Sparse path: only the ``k + 1`` live bases (plus the base branch) per input; cost flat in G.

The packed weights ``W`` ``(n_out, n_in, nb + 1)`` become a zero-padded embedding table
``T`` ``(n_in P, n_out)``, ``P = nb + 2k + 3`` rows per input: row 0 the base branch, row
``m + k + 2`` basis ``m``, zero rows around them for bases that do not exist. Entry ``j``
of an input in shifted span ``s`` reads row ``1 + s + j``, so no masks are needed. Then

* forward: ``y[n] = sum_c vals[n, c] T[cols[n, c]]`` -- one ``embedding_bag`` with
  per-sample weights, ``n_in (k + 2)`` entries per sample;
* input gradient: ``<grad_y[n], T[cols[n, c]]>`` for the live entries only (a sampled
  dense-dense product on the CSR pattern of ``cols``), times the basis derivatives;
* table gradient: the transposed reduction ``grad_T[r] = sum_{cols = r} vals * grad_y[n]``.
  The samples of each input are grouped by span with one small-integer (radix) sort, so
  every (input, entry, span) is a contiguous bag of a second ``embedding_bag`` over
  ``grad_y``; the bags are then added into their rows with ``k + 1`` shifted slice adds.

Every step costs ``O(N n_in (k + 2) n_out)``, independent of the grid size.
"""
from __future__ import annotations

import functools
import warnings

import torch
import torch.nn.functional as F
from torch import Tensor

from .common import LayerParams, base_and_derivative, differentiable_backward, group_sum, pack_weights
from .local import local_basis, lookup

__all__ = ["SparseKAN", "sparse_entries", "padded_table", "run"]


def sparse_entries(x: Tensor, grid: Tensor, spline_order: int, base_name: str, uniform: bool,
                   need_derivative: bool):
    """Span keys, table rows, weights and weight derivatives of every entry.

    Shape: ``x`` ``(N, n_in)`` -> ``key`` ``(N, n_in)`` (``i S + shifted span``); ``cols``,
    ``vals``, ``dvals`` ``(N, n_in (k + 2))`` (entry 0 of each input is the base branch); ``dvals`` is None
    unless ``need_derivative``.
    """
    n, n_in = x.shape
    k, n_spans = spline_order, grid.shape[1] + 1
    shifted, w, dw = local_basis(x, grid, k, uniform, derivative=need_derivative)
    b, db = base_and_derivative(base_name, x, need_derivative)
    key = shifted + torch.arange(0, n_in * n_spans, n_spans, device=x.device)
    cols = lookup(row_table(n_in, n_spans, k, x.device), key)  # (N, n_in, k+2)
    vals = torch.cat([b.unsqueeze(-1), w], dim=-1).view(n, -1)
    dvals = torch.cat([db.unsqueeze(-1), dw], dim=-1).view(n, -1) if need_derivative else None
    return key, cols.view(n, -1), vals, dvals


@functools.lru_cache(maxsize=64)
def row_table(n_in: int, n_spans: int, spline_order: int, device: torch.device) -> Tensor:
    """Table rows of the ``k + 2`` entries of every (input, shifted span ``s``).

    Shape: ``(n_in S, k + 2)``; row ``i S + s`` holds ``i P + [0, 1 + s, ..., 1 + s + k]``
    with ``P = S + k + 1`` rows per input.
    """
    k = spline_order
    s = torch.arange(n_spans).unsqueeze(-1)  # (S, 1)
    per = torch.cat([torch.zeros_like(s), 1 + s + torch.arange(k + 1)], dim=1)  # (S, k+2)
    first = torch.arange(n_in).view(-1, 1, 1) * (n_spans + k + 1)
    return (per.unsqueeze(0) + first).view(-1, k + 2).to(device)


def padded_table(weight: Tensor, spline_order: int) -> Tensor:
    """``(n_out, n_in, nb + 1)`` -> zero-padded table ``(n_in (nb + 2k + 3), n_out)``."""
    n_out, n_in, width = weight.shape
    k = spline_order
    tab = weight.new_zeros(n_in, width + 2 * k + 2, n_out)
    wt = weight.permute(1, 2, 0)  # (n_in, nb+1, n_out)
    tab[:, 0] = wt[:, 0]
    tab[:, k + 2: k + 1 + width] = wt[:, 1:]
    return tab.view(-1, n_out)


def table_grad(key: Tensor, vals: Tensor, grad_out: Tensor, spline_order: int, width: int) -> Tensor:
    """Gradient of the packed weights, without a dense product and without a general sort.

    Shape: ``key`` ``(N, n_in)`` (``i S + shifted span``), ``vals`` ``(N, n_in (k + 2))``,
    ``grad_out`` ``(N, n_out)`` -> ``(n_out, n_in, width)`` with ``width = nb + 1``.
    """
    n, n_in = key.shape
    k, e = spline_order, spline_order + 2
    n_spans = width + k + 1  # n_intervals + 2
    small = torch.int16 if n_in * n_spans < 2 ** 15 else torch.int32  # radix sort on few bytes
    order = torch.sort(key.reshape(-1).to(small), stable=True).indices  # by input, then span
    sample = torch.div(order, n_in, rounding_mode="floor").view(n_in, 1, n).expand(n_in, e, n)
    weights = vals.view(n * n_in, e).index_select(0, order).view(n_in, n, e).transpose(1, 2)
    counts = torch.bincount(key.reshape(-1), minlength=n_in * n_spans).view(n_in, n_spans)
    starts = torch.cumsum(counts, 1) - counts  # (n_in, S) within each input
    first = torch.arange(n_in * e, device=key.device).view(n_in, e, 1) * n
    offsets = (first + starts.unsqueeze(1)).reshape(-1)  # bags (input, entry, span)
    bags = F.embedding_bag(sample.reshape(-1), grad_out, offsets, mode="sum",
                           per_sample_weights=weights.reshape(-1))
    bags = bags.view(n_in, e, n_spans, -1)  # (n_in, k+2, S, n_out)
    grad = bags.new_zeros(n_in, n_spans + k + 1, bags.shape[-1])  # padded rows
    for j in range(k + 1):
        grad[:, 1 + j: 1 + j + n_spans] += bags[:, 1 + j]
    grad[:, k + 1] = bags[:, 0].sum(1)  # row k+1 is always padding: reuse it for the base
    return grad[:, k + 1: k + 1 + width].permute(2, 0, 1)


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
        key, cols, vals, dvals = sparse_entries(x, grid, spline_order, base_name, uniform, need_x)
        tab = padded_table(weight, spline_order)
        y = F.embedding_bag(cols, tab, mode="sum", per_sample_weights=vals)
        ctx.spline_order, ctx.base_name = spline_order, base_name
        ctx.save_for_backward(x, weight, grid, key, cols, vals, dvals, tab if need_x else None)
        return y

    @staticmethod
    def backward(ctx, grad_out: Tensor):
        x, weight, grid, key, cols, vals, dvals, tab = ctx.saved_tensors
        if torch.is_grad_enabled():  # create_graph=True: exact higher-order derivatives
            gx, gw = differentiable_backward(ctx, grad_out, x, weight, grid)
            return gx, gw, None, None, None, None
        grad_out = grad_out.contiguous()
        gx = gw = None
        if ctx.needs_input_grad[0]:
            dots = sampled_dots(cols, grad_out, tab)  # (N, n_in (k+2))
            gx = group_sum(dots * dvals, ctx.spline_order + 2)  # (N, n_in)
        if ctx.needs_input_grad[1]:
            gw = table_grad(key, vals, grad_out, ctx.spline_order, weight.shape[-1])
        return gx, gw, None, None, None, None


def run(x: Tensor, layer: LayerParams) -> Tensor:
    """The layer by :class:`SparseKAN`. Shape: ``x`` ``(N, n_in)`` -> ``(N, n_out)``."""
    weight = pack_weights(layer.coef, layer.scale_base, layer.scale_spline)  # (n_out, n_in, nb+1)
    return SparseKAN.apply(x, weight, layer.grid, layer.spline_order, layer.base_activation, bool(layer.uniform))
