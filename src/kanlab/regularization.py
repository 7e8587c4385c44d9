"""Sparsity regularization of the KAN paper, as pure functions of one pass's activations.

Magnitudes follow pykan 0.2 (``reg_metric="edge_forward_spline_n"``): the standard
deviation of each edge's output over the batch divided by its input's spread plus 0.1.
The standard deviation (not the mean of ``|phi|``) leaves constants free, which is what
pruning uses too: constants are folded into surviving edges, variation is what counts.
Edges whose numeric part is masked (pruned, or replaced by a symbolic function) are not
penalised.
"""
from __future__ import annotations

import torch
from torch import Tensor

from .edge_stats import numeric_edge_std, smooth_std
from .kernels.common import pack_weights

__all__ = ["edge_scales", "layer_edge_scales", "entropy", "regularization"]


def edge_scales(inputs: Tensor, edges: Tensor, eps: float = 0.1) -> Tensor:
    """Normalised magnitude of each edge: ``std_n(phi(x)) / (std_n(x) + eps)``.

    Shape: ``inputs`` ``(N, n_in)``, ``edges`` ``(N, n_out, n_in)`` -> ``(n_out, n_in)``.
    With one sample every magnitude is zero. The standard deviations are smoothed as
    ``sqrt(var + eps_machine**2)`` so that constant (e.g. masked) edges have finite gradients.
    """
    if inputs.shape[0] < 2:
        return edges.new_zeros(edges.shape[1:])
    return _smooth_std(edges) / (_smooth_std(inputs) + eps)


def _smooth_std(t: Tensor) -> Tensor:
    return smooth_std(t.var(dim=0))


def entropy(scale: Tensor, dim: int) -> Tensor:
    """Mean entropy (bits) of the magnitudes ``scale`` ``(n_out, n_in)`` normalised along
    ``dim`` as ``p = s / (sum s + 1)`` (pykan's form; the +1 keeps tiny rows from counting)."""
    p = scale / (scale.sum(dim=dim, keepdim=True) + 1)
    return -(p * torch.log2(p + 1e-4)).sum(dim=dim).mean()


def regularization(model, inputs, lamb_l1: float = 1.0, lamb_entropy: float = 2.0,
                   lamb_coef: float = 0.0, lamb_coefdiff: float = 0.0) -> Tensor:
    """The KAN paper's penalty, summed over layers.

    ``lamb_l1 * sum |phi|_1 + lamb_entropy * (entropy of each node's incoming magnitudes +
    entropy of each node's outgoing magnitudes)``, plus optional ``lamb_coef`` (L1 of the
    spline coefficients) and ``lamb_coefdiff`` (L1 of their differences: smoothness).
    ``|phi|_1`` is the standard deviation of each numeric edge over the batch divided by its
    input's (:func:`edge_scales`), computed from per-input feature covariances
    (:func:`kanlab.edge_stats.numeric_edge_std`): memory ``O(N * width)``, never
    ``O(N * n_out * n_in)``, and exact gradients.

    Args:
        model: a :class:`kanlab.KAN`.
        inputs: per layer, its inputs ``(N, n_in)`` from one pass
            (:meth:`KAN.forward_with_inputs`), or that pass's
            :class:`~kanlab.network.LayerActivations` (their ``inputs`` are used).

    Returns:
        a scalar tensor, differentiable with respect to the model's parameters.

    Example:
        >>> model = kanlab.KAN([2, 3, 1], seed=0)
        >>> pred, inputs = model.forward_with_inputs(torch.rand(64, 2))
        >>> regularization(model, inputs).shape
        torch.Size([])
    """
    if len(inputs) != len(model.layers):
        raise ValueError(f"inputs must hold one entry per layer ({len(model.layers)}), got {len(inputs)}")
    inputs = [getattr(h, "inputs", h) for h in inputs]
    total = inputs[0].new_zeros(())
    for layer, h in zip(model.layers, inputs):
        scale = layer_edge_scales(layer, h) * (layer.mask > 0)  # (n_out, n_in)
        total = total + lamb_l1 * scale.sum()
        if lamb_entropy:
            total = total + lamb_entropy * (entropy(scale, 1) + entropy(scale, 0))
    if lamb_coef or lamb_coefdiff:
        for layer in model.layers:
            total = total + lamb_coef * layer.coef.abs().mean(dim=-1).sum()
            total = total + lamb_coefdiff * layer.coef.diff(dim=-1).abs().mean(dim=-1).sum()
    return total


def layer_edge_scales(layer, h: Tensor, eps: float = 0.1) -> Tensor:
    """:func:`edge_scales` of a layer's numeric edges from its inputs alone.

    Shape: ``h`` ``(N, n_in)`` -> ``(n_out, n_in)`` (zeros for N < 2).
    """
    if h.shape[0] < 2:
        return h.new_zeros(layer.out_features, layer.in_features)
    weight = pack_weights(layer.coef, layer.scale_base * layer.mask, layer.scale_spline * layer.mask)
    return numeric_edge_std(layer, h, weight) / (smooth_std(h.var(dim=0)) + eps)
