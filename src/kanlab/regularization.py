"""Sparsity regularization of the KAN paper, as pure functions of one pass's activations."""
from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["edge_scales", "regularization"]


def edge_scales(inputs: Tensor, edges: Tensor, eps: float = 0.1) -> Tensor:
    """Magnitude of each edge: mean |phi(x)| over the batch, normalised by the input's spread.

    Shape: ``inputs`` ``(N, n_in)``, ``edges`` ``(N, n_out, n_in)`` -> ``(n_out, n_in)``.
    """
    spread = inputs.std(dim=0) + eps if inputs.shape[0] > 1 else torch.full_like(inputs[0], 1 + eps)
    return edges.abs().mean(dim=0) / spread


def _entropy(p: Tensor, dim: int) -> Tensor:
    return -(p * torch.log2(p + 1e-4)).sum(dim=dim).mean()


def regularization(model, acts, lamb_l1: float = 1.0, lamb_entropy: float = 2.0,
                   lamb_coef: float = 0.0, lamb_coefdiff: float = 0.0) -> Tensor:
    """The KAN paper's penalty, summed over layers.

    ``lamb_l1 * sum |phi|_1 + lamb_entropy * (entropy of each node's incoming magnitudes +
    entropy of each node's outgoing magnitudes)``, plus optional ``lamb_coef`` (L1 of the
    spline coefficients) and ``lamb_coefdiff`` (L1 of their differences: smoothness).

    Args:
        model: the :class:`kanlab.KAN` that produced ``acts``.
        acts: its :class:`~kanlab.network.LayerActivations` from one pass.
    """
    total = acts[0].inputs.new_zeros(())
    for a in acts:
        scale = edge_scales(a.inputs, a.edges)  # (n_out, n_in)
        p_in = scale / (scale.sum(dim=1, keepdim=True) + 1)
        p_out = scale / (scale.sum(dim=0, keepdim=True) + 1)
        total = total + lamb_l1 * scale.sum() + lamb_entropy * (_entropy(p_in, 1) + _entropy(p_out, 0))
    if lamb_coef or lamb_coefdiff:
        for layer in model.layers:
            total = total + lamb_coef * layer.coef.abs().mean(dim=-1).sum()
            total = total + lamb_coefdiff * layer.coef.diff(dim=-1).abs().mean(dim=-1).sum()
    return total
