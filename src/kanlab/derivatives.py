"""Derivatives of a network's outputs with respect to its inputs, for physics-informed losses.

A KAN is a sum of 1-D functions per layer, so the value, the input gradient and the *diagonal*
of the input Hessian ("jet") propagate layer by layer in closed form: for one layer with inputs
``h`` and their derivatives ``dh = dh/dx_d``, ``d2h = d2h/dx_d^2``,

    y_o   = sum_i phi_oi(h_i)
    dy_o  = sum_i phi'_oi(h_i) dh_i
    d2y_o = sum_i phi''_oi(h_i) dh_i^2 + phi'_oi(h_i) d2h_i

with ``phi'``, ``phi''`` from closed-form B-spline and base-activation derivatives. The result
is an ordinary function of the parameters, so training needs only first-order autograd
(no ``create_graph`` through the spline kernels), which is several times faster than
differentiating the network twice. Other modules (MLPs, KANs with symbolic edges) fall back to
``torch.autograd.grad(create_graph=True)``, so :func:`laplacian` works for any model.

Example:
    >>> import kanlab, torch
    >>> model = kanlab.KAN([2, 3, 1], seed=0, dtype=torch.float64)
    >>> u, lap = laplacian(model, torch.rand(5, 2, dtype=torch.float64))
    >>> u.shape, lap.shape
    (torch.Size([5, 1]), torch.Size([5, 1]))
"""
from __future__ import annotations

import torch
from torch import Tensor, nn

from . import splines
from .activations import activation
from .kernels.common import pack_weights
from .validation import check_finite, check_input

__all__ = ["basis_jet", "base_jet", "layer_jet", "multiply_jets", "input_jet", "laplacian", "supports_jet"]


def basis_jet(x: Tensor, grid: Tensor, spline_order: int) -> tuple[Tensor, Tensor, Tensor]:
    """B-spline bases and their first and second derivatives in one Cox-de Boor pass.

    Equal to :func:`splines.bspline_basis_derivative` with ``order = 0, 1, 2`` on any grid.

    Shape: ``x`` ``(N, n_in)``, ``grid`` ``(n_in, n_knots)`` -> three ``(N, n_in, nb)``,
    ``nb = n_knots - 1 - spline_order``.
    """
    k = spline_order
    levels = splines.bspline_levels(x, grid, k)  # orders 0 .. k
    d1 = splines.differentiate_basis(levels[k - 1], grid, k)
    d2 = (splines.differentiate_basis(splines.differentiate_basis(levels[k - 2], grid, k - 1), grid, k)
          if k >= 2 else torch.zeros_like(d1))
    return levels[k], d1, d2


def base_jet(name: str, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """``b(x)``, ``b'(x)``, ``b''(x)`` of the base activation ``name`` in closed form
    (:class:`~kanlab.activations.BaseActivation`). Shape: ``(N, n_in)`` -> three ``(N, n_in)``."""
    act = activation(name)
    return act.function(x), act.derivative(x), act.second(x)


def layer_jet(layer, h: Tensor, dh: Tensor, d2h: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """Push a jet through one :class:`~kanlab.KANLayer` (masked edges contribute nothing).

    Every quantity is a linear function of the packed weights ``[w_b | w_s c]``, so the three
    are one matrix product: rows ``A(h)``, ``A'(h) dh_d`` and ``A''(h) dh_d^2 + A'(h) d2h_d``
    with ``A = [b, B_0, ..., B_{nb-1}]`` per input.

    Shape: ``h`` ``(N, n_in)``, ``dh``, ``d2h`` ``(N, n_in, D)`` -> ``y`` ``(N, n_out)``,
    ``dy``, ``d2y`` ``(N, n_out, D)``.
    """
    n, n_in = h.shape
    d = dh.shape[-1]
    basis, basis_d1, basis_d2 = basis_jet(h, layer.grid, layer.spline_order)  # (N, n_in, nb) each
    b0, b1, b2 = base_jet(layer.base_activation, h)  # (N, n_in) each
    a0 = torch.cat([b0.unsqueeze(-1), basis], dim=-1)  # (N, n_in, nb+1)
    a1 = torch.cat([b1.unsqueeze(-1), basis_d1], dim=-1)
    a2 = torch.cat([b2.unsqueeze(-1), basis_d2], dim=-1)
    first = a1.unsqueeze(1) * dh.transpose(1, 2).unsqueeze(-1)  # (N, D, n_in, nb+1)
    second = a2.unsqueeze(1) * dh.transpose(1, 2).pow(2).unsqueeze(-1) + \
        a1.unsqueeze(1) * d2h.transpose(1, 2).unsqueeze(-1)  # (N, D, n_in, nb+1)
    rows = torch.cat([a0.unsqueeze(1), first, second], dim=1).reshape(n * (1 + 2 * d), -1)
    weight = pack_weights(layer.coef, layer.scale_base * layer.mask, layer.scale_spline * layer.mask)
    out = (rows @ weight.flatten(1).T).reshape(n, 1 + 2 * d, -1)  # (N, 1+2D, n_out)
    return out[:, 0], out[:, 1:1 + d].transpose(1, 2), out[:, 1 + d:].transpose(1, 2)


def multiply_jets(y: Tensor, dy: Tensor, d2y: Tensor, arity: int) -> tuple[Tensor, Tensor, Tensor]:
    """Jets of products of ``arity`` consecutive entries (multiplication nodes), by the product rule
    ``(ab)'' = a'' b + 2 a' b' + a b''`` folded over the operands.

    Shape: ``y`` ``(N, M arity)``, ``dy``, ``d2y`` ``(N, M arity, D)`` -> ``(N, M)``, ``(N, M, D)`` x 2.
    """
    n, d = y.shape[0], dy.shape[-1]
    y, dy, d2y = y.reshape(n, -1, arity), dy.reshape(n, -1, arity, d), d2y.reshape(n, -1, arity, d)
    p, dp, d2p = y[:, :, 0], dy[:, :, 0], d2y[:, :, 0]
    for j in range(1, arity):
        a, da, d2a = y[:, :, j], dy[:, :, j], d2y[:, :, j]
        p, dp, d2p = (p * a, p.unsqueeze(-1) * da + a.unsqueeze(-1) * dp,
                      p.unsqueeze(-1) * d2a + 2 * dp * da + a.unsqueeze(-1) * d2p)
    return p, dp, d2p


def supports_jet(model: nn.Module) -> bool:
    """True when ``model`` is a :class:`~kanlab.KAN` whose edges the closed-form jet covers (no
    symbolic edges); other models use autograd in :func:`input_jet`."""
    from .network import KAN

    return isinstance(model, KAN) and len(model.symbolic) == 0


def _kan_jet(model, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """The jet layer by layer from ``(x, I, 0)``; mult nodes by :func:`multiply_jets`.
    Shape: ``x`` ``(N, D)`` -> ``(N, n_out)``, ``(N, n_out, D)``, ``(N, n_out, D)``."""
    n, d = x.shape
    h = x
    dh = torch.eye(d, dtype=x.dtype, device=x.device).expand(n, d, d)  # (N, D, D): dx_i/dx_d
    d2h = x.new_zeros(n, d, d)
    for l, layer in enumerate(model.layers):
        h, dh, d2h = layer_jet(layer, h, dh, d2h)
        n_sum, n_mult = model.config.width[l + 1]
        if n_mult:
            p = multiply_jets(h[:, n_sum:], dh[:, n_sum:], d2h[:, n_sum:], model.config.mult_arity)
            h, dh, d2h = (torch.cat([h[:, :n_sum], p[0]], 1), torch.cat([dh[:, :n_sum], p[1]], 1),
                          torch.cat([d2h[:, :n_sum], p[2]], 1))
    return h, dh, d2h


def _autograd_jet(model: nn.Module, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """The same jet by double backward (``create_graph=True``, so it stays trainable)."""
    with torch.enable_grad():
        x = x.detach().requires_grad_(True)
        u = model(x)  # (N, n_out)
        if u.dim() != 2 or u.shape[0] != x.shape[0]:
            raise ValueError(f"model must map (N, {x.shape[1]}) inputs to (N, n_out), got {tuple(u.shape)}")
        grads, hess = [], []
        for o in range(u.shape[1]):
            (g,) = torch.autograd.grad(u[:, o].sum(), x, create_graph=True)  # (N, D)
            h = [torch.autograd.grad(g[:, j].sum(), x, create_graph=True, allow_unused=True)[0]
                 for j in range(x.shape[1])]
            grads.append(g)
            hess.append(torch.stack([x.new_zeros(x.shape[0]) if hj is None else hj[:, j]
                                     for j, hj in enumerate(h)], dim=1))
    return u, torch.stack(grads, dim=1), torch.stack(hess, dim=1)


def input_jet(model: nn.Module, x: Tensor, method: str = "auto") -> tuple[Tensor, Tensor, Tensor]:
    """Outputs, input gradients and diagonal input second derivatives of ``model`` at ``x``.

    Args:
        model: a :class:`~kanlab.KAN` (closed-form jet) or any module mapping ``(N, D)`` to
            ``(N, n_out)`` (autograd).
        x: points ``(N, D)``; need not require grad.
        method: ``"auto"`` (the jet where :func:`supports_jet`, else autograd), ``"jet"`` or
            ``"autograd"``.

    Returns:
        ``u`` ``(N, n_out)``, ``grad`` ``(N, n_out, D)`` with ``grad[n, o, d] = du_o/dx_d`` and
        ``hess_diag`` ``(N, n_out, D)`` with ``d^2 u_o / dx_d^2``; all differentiable with
        respect to the model's parameters by first-order autograd.
    """
    if method not in ("auto", "jet", "autograd"):
        raise ValueError(f"method must be 'auto', 'jet' or 'autograd', got {method!r}")
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    n_in = getattr(model, "n_inputs", x.shape[-1] if isinstance(x, Tensor) and x.dim() else 0)
    check_input(x, n_in, "x")
    if x.dim() != 2:
        raise ValueError(f"x must have shape (N, {n_in}), got {tuple(x.shape)}")
    check_finite(x, "x")
    use_jet = supports_jet(model) if method == "auto" else method == "jet"
    if use_jet and not supports_jet(model):
        raise ValueError("method='jet' needs a KAN without symbolic edges; use method='autograd'")
    if use_jet:
        return _kan_jet(model, x)
    return _autograd_jet(model, x)


def laplacian(model: nn.Module, x: Tensor, method: str = "auto") -> tuple[Tensor, Tensor]:
    """Outputs and their Laplacians ``sum_d d^2 u / dx_d^2`` (see :func:`input_jet`).

    Shape: ``x`` ``(N, D)`` -> ``u`` ``(N, n_out)``, ``lap`` ``(N, n_out)``.
    """
    u, _, hess = input_jet(model, x, method)
    return u, hess.sum(dim=-1)
