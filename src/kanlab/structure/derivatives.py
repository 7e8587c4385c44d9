"""Value, input gradient and full input Hessian of a model (or any differentiable function) at points.

A :class:`kanlab.KAN` without symbolic edges gets its value, gradient and Hessian diagonal in
closed form (:func:`kanlab.input_jet`); the mixed second derivatives, and everything for other
callables, come from double backward (exact on every kernel path: their second derivatives
differentiate the reference path).
"""
from __future__ import annotations

from typing import Callable, NamedTuple

import torch
from torch import Tensor

from ..validation import check_finite

__all__ = ["Derivatives", "function_derivatives", "as_scalar_function"]


class Derivatives(NamedTuple):
    """``value`` ``(N,)``, ``grad`` ``(N, D)`` and ``hess`` ``(N, D, D)`` (symmetric) of one scalar function."""

    value: Tensor
    grad: Tensor
    hess: Tensor


def as_scalar_function(f) -> Callable[[Tensor], Tensor]:
    """``f`` as a function ``(N, D) -> (N,)``: a module or callable with one output (``(N,)`` or ``(N, 1)``)."""
    if not callable(f):
        raise TypeError("f must be a model or a callable mapping (N, D) tensors to (N,) values, "
                        f"got {type(f).__name__}")

    def scalar(x: Tensor) -> Tensor:
        out = f(x)
        if not isinstance(out, Tensor):
            raise TypeError(f"f must return a tensor, got {type(out).__name__}")
        if out.dim() == 2 and out.shape[1] == 1:
            out = out[:, 0]
        if out.shape != x.shape[:1]:
            raise ValueError(f"f must map (N, D) inputs to (N,) or (N, 1) values, got shape {tuple(out.shape)} "
                             f"for inputs {tuple(x.shape)}")
        return out

    return scalar


def function_derivatives(f, x: Tensor) -> Derivatives:
    """Value, gradient and Hessian of ``f`` at the points ``x``.

    Args:
        f: a :class:`kanlab.KAN` with one output, or any differentiable callable
            ``(N, D) -> (N,)`` / ``(N, 1)``.
        x: points ``(N, D)``, floating point (float64 recommended: second derivatives).

    Returns:
        :class:`Derivatives` (detached).

    Example:
        >>> d = function_derivatives(lambda x: x[:, 0] * x[:, 1], torch.rand(5, 2, dtype=torch.float64))
        >>> d.hess[0].tolist()
        [[0.0, 1.0], [1.0, 0.0]]
    """
    if not isinstance(x, Tensor) or not x.is_floating_point() or x.dim() != 2:
        raise TypeError(f"x must be a floating-point tensor of shape (N, D), got "
                        f"{type(x).__name__ if not isinstance(x, Tensor) else (x.dtype, tuple(x.shape))}")
    check_finite(x, "x")
    scalar = as_scalar_function(f)
    n, d = x.shape
    with torch.enable_grad():
        xg = x.detach().requires_grad_(True)
        u = scalar(xg)
        (g,) = torch.autograd.grad(u.sum(), xg, create_graph=True)
        rows = []
        for j in range(d):
            if g.requires_grad:
                (h,) = torch.autograd.grad(g[:, j].sum(), xg, retain_graph=True, allow_unused=True)
            else:
                h = None
            rows.append(torch.zeros_like(x) if h is None else h)
    hess = torch.stack(rows, dim=1).detach()  # (N, D, D)
    hess = (hess + hess.transpose(1, 2)) / 2
    u, g = u.detach(), g.detach()
    jet = _closed_form_jet(f, x)
    if jet is not None:  # the KAN's own closed form for value, gradient and diagonal
        u, g, diag = jet
        hess = hess.clone()
        idx = torch.arange(d)
        hess[:, idx, idx] = diag
    return Derivatives(u, g, hess)


def _closed_form_jet(f, x: Tensor):
    from ..derivatives import input_jet, supports_jet

    if not supports_jet(f) or f.n_outputs != 1:
        return None
    with torch.no_grad():
        u, g, diag = input_jet(f, x)
    return u[:, 0], g[:, 0], diag[:, 0]
