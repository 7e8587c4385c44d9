"""Statistics of every edge's values over many samples, in memory bounded by the data.

A layer with ``n_in`` inputs and ``n_out`` outputs has ``n_out * n_in`` edges; their values
on ``N`` samples form an ``(N, n_out, n_in)`` tensor: 12 GB in float32 for MNIST's 60,000
images through a [784, 64, 10] KAN. Regularisation, attribution and pruning only need each
edge's mean and standard deviation, which these functions compute without that tensor:

* :func:`edge_moments` evaluates the edges in chunks of samples and merges the chunks'
  moments (Chan et al.'s pairwise update): any edge, symbolic ones included, no gradient;
* :func:`numeric_edge_std` uses that a numeric edge is linear in its packed weights
  ``w = [w_b, w_s c_0, ..., w_s c_{nb-1}]`` over the features ``f(x) = [b(x), B_0(x), ...]``:
  ``var(phi_oi) = w_oi^T Cov(f(x_i)) w_oi``, with one ``(nb + 1)^2`` covariance per input.
  Memory ``O(N * n_in * nb)`` at most and exact gradients, for the training penalty.
"""
from __future__ import annotations

import torch
from torch import Tensor
from torch.utils.checkpoint import checkpoint

from . import splines
from .activations import base_function

__all__ = ["edge_moments", "numeric_edge_std", "feature_covariance", "smooth_std", "CHUNK_ELEMENTS"]

# Edge values held at once by the chunked statistics (2**22 float64 values: 32 MB).
CHUNK_ELEMENTS = 2 ** 22


def smooth_std(var: Tensor) -> Tensor:
    """``sqrt(var + eps**2)``: a standard deviation with finite gradients at zero variance."""
    return torch.sqrt(var.clamp_min(0) + torch.finfo(var.dtype).eps ** 2)


def _chunks(n: int, per_sample: int, chunk_elements: int):
    step = max(1, chunk_elements // max(1, per_sample))
    return [(i, min(n, i + step)) for i in range(0, n, step)]


@torch.no_grad()
def edge_moments(edge_fn, h: Tensor, n_edges: int, chunk_elements: int | None = None) -> tuple[Tensor, Tensor]:
    """Mean and (unbiased) standard deviation over the samples of every edge.

    Args:
        edge_fn: ``(n, n_in) -> (n, n_out, n_in)`` edge values of a chunk of samples.
        h: the layer's inputs ``(N, n_in)``, N >= 1.
        n_edges: ``n_out * n_in`` (sizes the chunks).
        chunk_elements: edge values computed at once (default :data:`CHUNK_ELEMENTS`).

    Returns:
        ``mean`` and ``std``, each ``(n_out, n_in)`` (std is 0 for N = 1).
    """
    count, mean, m2 = 0, h.new_zeros(()), h.new_zeros(())
    for lo, hi in _chunks(h.shape[0], n_edges, chunk_elements or CHUNK_ELEMENTS):
        e = edge_fn(h[lo:hi])  # (c, n_out, n_in)
        c, m = hi - lo, e.mean(dim=0)
        s = (e - m).square().sum(dim=0)
        if count == 0:
            count, mean, m2 = c, m, s
            continue
        delta = m - mean
        total = count + c
        mean = mean + delta * (c / total)
        m2 = m2 + s + delta.square() * (count * c / total)
        count = total
    return mean, (m2 / max(1, count - 1)).sqrt()


def _features(layer, h: Tensor) -> Tensor:
    """``[b(h_i), B_0(h_i), ..., B_{nb-1}(h_i)]`` per input. Shape: ``(N, n_in)`` -> ``(N, n_in, nb + 1)``."""
    basis = splines.bspline_basis(h, layer.grid.to(h.dtype), layer.spline_order)  # (N, n_in, nb)
    base = base_function(layer.base_activation)(h).unsqueeze(-1)  # (N, n_in, 1)
    return torch.cat([base, basis], dim=-1)


def _shifted_moments(layer, h: Tensor, shift: Tensor) -> tuple[Tensor, Tensor]:
    """Sum and sum of outer products of ``features(h) - shift``: ``(n_in, nb+1)``, ``(n_in, nb+1, nb+1)``."""
    f = _features(layer, h) - shift
    return f.sum(dim=0), torch.einsum("nia,nib->iab", f, f)


def feature_covariance(layer, h: Tensor, chunk_elements: int | None = None) -> Tensor:
    """Covariance (unbiased) over the samples of each input's features ``[b, B_0, ...]``.

    Accumulated in chunks around a shift (the first chunk's mean, a constant: the covariance
    does not depend on it), memory independent of N. When ``h`` requires grad each chunk
    runs under activation checkpointing, so backward recomputes its features instead of
    keeping ``N * n_in * (nb + 1)`` values and the basis recursion's intermediates (3.3 GB
    for the penalty of a [784, 64, 10] fit on 60,000 samples); gradients are exact.

    Shape: ``h`` ``(N, n_in)`` -> ``(n_in, nb + 1, nb + 1)``.
    """
    n = h.shape[0]
    if n < 2:
        nb1 = layer.n_basis + 1
        return h.new_zeros(h.shape[1], nb1, nb1)
    chunks = _chunks(n, h.shape[1] * (layer.n_basis + 1), chunk_elements or CHUNK_ELEMENTS)
    with torch.no_grad():
        shift = _features(layer, h[chunks[0][0]:chunks[0][1]]).mean(dim=0)  # (n_in, nb+1)
    grad = h.requires_grad and torch.is_grad_enabled()
    s1, s2 = h.new_zeros(()), h.new_zeros(())  # broadcast up to (n_in, nb+1) and (n_in, nb+1, nb+1)
    for lo, hi in chunks:
        if grad:
            d1, d2 = checkpoint(_shifted_moments, layer, h[lo:hi], shift, use_reentrant=False)
        else:
            with torch.no_grad():
                d1, d2 = _shifted_moments(layer, h[lo:hi], shift)
        s1, s2 = s1 + d1, s2 + d2
    return (s2 - s1.unsqueeze(-1) * s1.unsqueeze(-2) / n) / (n - 1)


def numeric_edge_std(layer, h: Tensor, weight: Tensor) -> Tensor:
    """Smoothed standard deviation over the samples of each numeric edge of ``layer``.

    The variance is the quadratic form ``w^T Cov w``, a difference of large terms when an
    edge is nearly constant; below float64 it is computed in float64 (features, covariance
    and form), because float32 round-off there (~1e-8 of var, 1e-4 of std) made the
    penalised loss too noisy for L-BFGS's line search, which then stalled
    (``fit(lamb=1e-3)`` left pruneable nodes alive in float32 that float64 removed).

    Args:
        layer: a :class:`kanlab.KANLayer`.
        h: its inputs ``(N, n_in)``.
        weight: the packed edge weights ``(n_out, n_in, nb + 1)``
            (``[w_b | w_s * c]``, masks applied), differentiable.

    Returns:
        ``(n_out, n_in)`` in ``weight``'s dtype: ``sqrt(var + eps**2)`` (see
        :func:`smooth_std`, float64's eps below float64).
    """
    work = torch.promote_types(weight.dtype, torch.float64)
    cov = feature_covariance(layer, h.to(work))  # (n_in, nb+1, nb+1)
    w = weight.to(work)
    var = torch.einsum("oia,iab,oib->oi", w, cov, w)
    return smooth_std(var).to(weight.dtype)
