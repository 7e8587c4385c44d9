"""The plain reference path: dense basis, one einsum. The oracle for the fast paths."""
from __future__ import annotations

from torch import Tensor

from .. import splines
from ..activations import base_function
from .common import LayerParams

__all__ = ["kan_linear_reference", "kan_edges_reference", "run"]


def kan_linear_reference(x: Tensor, grid: Tensor, coef: Tensor, scale_base: Tensor,
                         scale_spline: Tensor, spline_order: int, base_activation: str) -> Tensor:
    """``y_o = sum_i scale_base[o,i] b(x_i) + scale_spline[o,i] sum_m coef[o,i,m] B_m(x_i)``.

    Shape: ``x`` ``(N, n_in)``, ``grid`` ``(n_in, n_knots)``, ``coef`` ``(n_out, n_in, nb)``,
    scales ``(n_out, n_in)`` -> ``(N, n_out)``.
    """
    basis = splines.bspline_basis(x, grid, spline_order)  # (N, n_in, nb)
    weight = scale_spline.unsqueeze(-1) * coef  # (n_out, n_in, nb)
    y = basis.flatten(1) @ weight.flatten(1).T  # (N, n_out)
    return y + base_function(base_activation)(x) @ scale_base.T


def kan_edges_reference(x: Tensor, grid: Tensor, coef: Tensor, scale_base: Tensor,
                        scale_spline: Tensor, spline_order: int, base_activation: str) -> Tensor:
    """Every edge's value ``phi_{o,i}(x_i)``.

    Shape: ``x`` ``(N, n_in)`` -> ``(N, n_out, n_in)``.
    """
    spline = splines.coef_to_curve(x, grid, coef, spline_order)  # (N, n_out, n_in)
    base = base_function(base_activation)(x).unsqueeze(1)  # (N, 1, n_in)
    return scale_base * base + scale_spline * spline


def run(x: Tensor, layer: LayerParams) -> Tensor:
    """:func:`kan_linear_reference` of a layer call. Shape: ``(N, n_in)`` -> ``(N, n_out)``."""
    return kan_linear_reference(x, *layer[:6])
