"""Dense path: local bases scattered straight into the GEMM input, base branch packed in.

The GEMM input is one ``(N, n_in (nb + 1) + 1)`` buffer: per input the base value and the
``nb`` bases, plus one trailing *dump* column shared by the whole row. Entries of bases
that do not exist are scattered into the dump column, which meets a zero weight column,
so no mask pass is needed. Forward is the closed-form (or de Boor) local basis, one
scatter, one GEMM; backward is the two matching GEMMs and a gather of ``k + 1`` entries
per input for the input gradient (in chunks, so its temporaries stay small). Saved
state: the packed input, the span keys and the basis derivatives (no Cox-de Boor
intermediates).
"""
from __future__ import annotations

import functools

import torch
from torch import Tensor

from .common import LayerParams, base_and_derivative, differentiable_backward, group_sum, pack_weights
from .local import local_basis, lookup, span_tables

__all__ = ["DenseKAN", "dense_input", "run"]


@functools.lru_cache(maxsize=64)
def column_table(n_in: int, n_spans: int, spline_order: int, device: torch.device) -> Tensor:
    """Columns of the ``k + 1`` entries of every (input, shifted span ``s``).

    Shape: ``(n_in S, k + 1)``; row ``i S + s`` holds ``i P + 1 + (s - 1 - k + j)`` for live
    entries (:func:`~kanlab.kernels.local.span_tables`) and the dump column ``n_in P``
    otherwise, ``P = nb + 1``.
    """
    cols, live = span_tables(n_spans - 2, spline_order, device)  # (S, k+1) each
    width = n_spans - 1 - spline_order  # nb + 1
    first = torch.arange(n_in, device=device).view(-1, 1, 1) * width
    table = torch.where(live.unsqueeze(0), first + cols, n_in * width)  # (n_in, S, k+1)
    return table.reshape(-1, spline_order + 1)


def columns(key: Tensor, n_in: int, n_knots: int, spline_order: int) -> Tensor:
    """Columns in the packed input of the ``k + 1`` entries of every input.

    Shape: ``key`` ``(N, n_in)`` (``i S + shifted span``) -> ``(N, n_in (k + 1))``.
    """
    table = column_table(n_in, n_knots + 1, spline_order, key.device)
    return lookup(table, key).view(key.shape[0], -1)


def dense_input(x: Tensor, grid: Tensor, spline_order: int, base_name: str, uniform: bool,
                need_derivative: bool):
    """Packed GEMM input and what the input gradient needs.

    Shape: ``x`` ``(N, n_in)`` -> ``a`` ``(N, n_in (nb + 1) + 1)`` (last column: dump),
    ``key`` ``(N, n_in)`` (see :func:`columns`), ``dw`` ``(N, n_in (k + 1))`` and ``db``
    ``(N, n_in)``, both None unless ``need_derivative``.
    """
    n, n_in = x.shape
    k, n_knots = spline_order, grid.shape[1]
    width = n_knots - k  # nb + 1
    shifted, w, dw = local_basis(x, grid, k, uniform, derivative=need_derivative)
    b, db = base_and_derivative(base_name, x, need_derivative)
    key = shifted.add_(torch.arange(0, n_in * (n_knots + 1), n_knots + 1, device=x.device))
    a = x.new_zeros(n, n_in * width + 1)
    w = w.view(n, -1)
    rows = _chunk_rows(n_in, k)
    for r in range(0, n, rows):  # chunks keep the int64 column indices small
        a[r: r + rows].scatter_add_(1, columns(key[r: r + rows], n_in, n_knots, k), w[r: r + rows])
    a[:, :-1].view(n, n_in, width)[:, :, 0] = b
    return a, key, dw.view(n, -1) if need_derivative else None, db


def _chunk_rows(n_in: int, spline_order: int, chunk: int = 2 ** 18) -> int:
    """Rows per chunk so that a chunk holds about ``chunk`` basis entries."""
    return max(1, chunk // (n_in * (spline_order + 1)))


def input_grad(ga: Tensor, key: Tensor, dw: Tensor, db: Tensor, n_knots: int, spline_order: int,
               chunk: int = 2 ** 18) -> Tensor:
    """``dL/dx`` from the gradient of the packed input, ``chunk`` entries at a time (bounded memory).

    Shape: ``ga`` ``(N, n_in (nb + 1) + 1)``, ``key`` ``(N, n_in)``, ``dw`` ``(N, n_in (k + 1))``,
    ``db`` ``(N, n_in)`` -> ``(N, n_in)``.
    """
    n, n_in = key.shape
    k = spline_order
    gx = ga[:, :-1].view(n, n_in, -1)[:, :, 0] * db  # base branch
    rows = _chunk_rows(n_in, k, chunk)
    for r in range(0, n, rows):
        part = ga[r: r + rows].gather(1, columns(key[r: r + rows], n_in, n_knots, k))
        gx[r: r + rows] += group_sum(part.mul_(dw[r: r + rows]), k + 1)
    return gx


def padded_weight(weight: Tensor) -> Tensor:
    """``(n_out, n_in, nb + 1)`` -> ``(n_out, n_in (nb + 1) + 1)`` with a zero dump column."""
    return torch.cat([weight.flatten(1), weight.new_zeros(weight.shape[0], 1)], dim=1)


class DenseKAN(torch.autograd.Function):
    """``y = A(x) @ W.flatten(1).T`` with a packed table ``W`` ``(n_out, n_in, nb + 1)``."""

    @staticmethod
    def forward(ctx, x: Tensor, weight: Tensor, grid: Tensor, spline_order: int, base_name: str,
                uniform: bool) -> Tensor:
        need_x = ctx.needs_input_grad[0]
        a, key, dw, db = dense_input(x, grid, spline_order, base_name, uniform, need_x)
        y = a @ padded_weight(weight).T  # (N, n_out)
        ctx.spline_order, ctx.base_name = spline_order, base_name
        keep_a = a if ctx.needs_input_grad[1] else None
        ctx.save_for_backward(x, weight, grid, keep_a, key if need_x else None,
                              dw if need_x else None, db)
        return y

    @staticmethod
    def backward(ctx, grad_out: Tensor):
        x, weight, grid, a, key, dw, db = ctx.saved_tensors
        if torch.is_grad_enabled():  # create_graph=True: exact higher-order derivatives
            gx, gw = differentiable_backward(ctx, grad_out, x, weight, grid)
            return gx, gw, None, None, None, None
        gx = gw = None
        if ctx.needs_input_grad[0]:
            ga = grad_out @ padded_weight(weight)  # (N, n_in P + 1); the dump column is 0
            gx = input_grad(ga, key, dw, db, grid.shape[1], ctx.spline_order)
        if ctx.needs_input_grad[1]:
            gw = (grad_out.T @ a)[:, :-1].reshape(weight.shape)  # (n_out, n_in, nb+1)
        return gx, gw, None, None, None, None


def run(x: Tensor, layer: LayerParams) -> Tensor:
    """The layer by :class:`DenseKAN`. Shape: ``x`` ``(N, n_in)`` -> ``(N, n_out)``."""
    weight = pack_weights(layer.coef, layer.scale_base, layer.scale_spline)  # (n_out, n_in, nb+1)
    return DenseKAN.apply(x, weight, layer.grid, layer.spline_order, layer.base_activation, bool(layer.uniform))
