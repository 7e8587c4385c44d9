"""Levenberg-Marquardt for the squared error of a KAN, with a Jacobian built from its structure.

A KAN's output is linear in every spline coefficient given the node values, so the Jacobian
of the outputs with respect to all parameters needs no per-sample autograd: one backward
pass per output gives ``g_l[n, j] = d out[n] / d y_l[n, j]`` for every layer's pre-activations
(samples do not interact, so the gradient of the sum over samples is the per-sample one), and

    d out[n] / d coef_l[j, i, m]        = g_l[n, j] * w_s[j, i] * B_m(x_l[n, i])
    d out[n] / d scale_base_l[j, i]     = g_l[n, j] * b(x_l[n, i])
    d out[n] / d scale_spline_l[j, i]   = g_l[n, j] * spline_{j,i}(x_l[n, i])

(masked edges contribute zero). The damped Gauss-Newton step then solves a ``P x P`` system.
For the small full-batch fits KANs are used for in science (hundreds to a few thousand
parameters, thousands of points) this converges where L-BFGS crawls: every seed reaches the
same accuracy instead of a seed-dependent plateau (docs/training.md).
"""
from __future__ import annotations

import torch
from torch import Tensor

from . import splines
from .activations import base_function

__all__ = ["LevenbergMarquardt", "residual_jacobian", "supports_structured_jacobian", "jacobian_entries",
           "choose_optimizer", "probe_redraws", "LM_MAX_ENTRIES", "LM_MAX_PARAMS", "LM_MAX_DEPTH", "LM_PROBE_REDRAWS"]

#: fit's ``optimizer="auto"`` picks Levenberg-Marquardt while its Jacobian has at most this many
#: entries (samples x outputs x parameters) ...
LM_MAX_ENTRIES = 20_000_000
#: ... the model at most this many trainable parameters (the P x P solve per step) ...
LM_MAX_PARAMS = 3000
#: ... and, for a fresh model (never trained), at most this many layers: on [4, 2, 1, 1]
#: Levenberg-Marquardt ended G=3 at test RMSE 0.1-0.5 from seeds 0, 1, 4, 6 where L-BFGS reached
#: 4.5e-3 from each, so a deeper model's first fit gets L-BFGS. Once trained (the next fit, a
#: refined or loaded model) it gets Levenberg-Marquardt: on the same problem every seed then
#: ended G=50 at 2.9-3.8e-7, where L-BFGS throughout left 3.5e-6 to 4.1e-5.
LM_MAX_DEPTH = 2
#: Redraws of the initialisation a fresh model's start probe tries with Levenberg-Marquardt: the
#: first (warm) as with L-BFGS, and redraws 2 and 3 from the plain and the warm start each, seven
#: candidates in all (a probe step costs about 10 ms on [2, 1, 1] with 1000 points).
LM_PROBE_REDRAWS = 3


def choose_optimizer(name: str, model, n_full_batch: int | None, distributed: bool, loss_kind: str,
                     lamb: float, lr, fresh: bool | None = None) -> str:
    """The optimizer :func:`kanlab.fit` runs for ``name``: ``"auto"`` is ``"lm"`` for a full-batch
    squared error without penalty and without ``lr`` on a model small enough (the ``LM_MAX_*``
    limits; the depth limit holds for fresh models only), ``"lbfgs"`` otherwise; other names are
    returned as they are, and ``"lm"`` where it cannot run is a ValueError naming what it needs.

    Args:
        n_full_batch: the number of training samples when the data is one full batch, else None.
        distributed: True under data-parallel training.
        loss_kind: ``"mse"``, ``"cross_entropy"`` or ``"custom"`` (:func:`kanlab.losses.resolve_loss`).
        fresh: whether the model was never trained (None: :meth:`KAN.is_fresh`).
    """
    params: list[Tensor] = [p for p in model.parameters() if p.requires_grad]
    reasons = []
    if loss_kind != "mse":
        reasons.append("loss='mse'")
    if lamb > 0:
        reasons.append("lamb=0")
    if n_full_batch is None or distributed:
        reasons.append("full-batch data on one process")
    if not supports_structured_jacobian(model, params):
        reasons.append("only spline parameters trainable (no symbolic edges being fitted)")
    if name == "lm" and lr is not None:
        raise ValueError("optimizer='lm' takes no lr (its step length comes from the damping); drop lr")
    if name == "lm" and reasons:
        raise ValueError(f"optimizer='lm' needs {', '.join(reasons)}; use optimizer='lbfgs'")
    if name != "auto":
        return name
    if reasons or lr is not None or n_full_batch is None:
        return "lbfgs"
    if fresh is None:
        fresh = getattr(model, "is_fresh", lambda: True)()
    fresh_and_deep = fresh and getattr(model, "depth", 0) > LM_MAX_DEPTH
    small = (sum(p.numel() for p in params) <= LM_MAX_PARAMS
             and jacobian_entries(model, n_full_batch, params) <= LM_MAX_ENTRIES)
    return "lm" if small and not fresh_and_deep else "lbfgs"


def probe_redraws(name: str, model, n_full_batch: int | None, distributed: bool, loss_kind: str, lamb: float,
                  lr) -> int:
    """Redraws of the initialisation a fresh model's start probe tries: ``LM_PROBE_REDRAWS``
    where :func:`choose_optimizer` picks Levenberg-Marquardt for the model once trained (so
    also for ``"auto"`` on a fresh deep model, which gets L-BFGS: on [2, 1, 1, 1] seeds 8 and 9
    of tanh(2 sqrt(1 + x^2 + y^2) - 2) stalled at test RMSE 9e-2 with three candidates and
    reached 7e-5 to 1.2e-4 at G=3 with seven), 1 otherwise (three candidates)."""
    trained = choose_optimizer(name, model, n_full_batch, distributed, loss_kind, lamb, lr, fresh=False)
    return LM_PROBE_REDRAWS if trained == "lm" else 1


def supports_structured_jacobian(model, params: list[Tensor]) -> bool:
    """True when every trainable parameter is a layer's ``coef`` / ``scale_base`` / ``scale_spline``."""
    layers = getattr(model, "layers", ())
    known = {id(getattr(layer, name, None)) for layer in layers for name in ("coef", "scale_base", "scale_spline")}
    return all(id(p) in known for p in params)


def jacobian_entries(model, n_samples: int, params: list[Tensor]) -> int:
    """Number of entries of the Jacobian :func:`residual_jacobian` builds."""
    return n_samples * model.n_outputs * sum(p.numel() for p in params)


def residual_jacobian(model, x: Tensor, params: list[Tensor]) -> tuple[Tensor, Tensor]:
    """The model's output and its Jacobian with respect to ``params`` (in that order).

    Shape: ``x`` ``(N, n_in)`` -> ``(N, n_out)`` and ``(N * n_out, P)`` with rows ordered
    sample-major (row ``n * n_out + o``) and ``P`` the total size of ``params``.
    """
    with torch.enable_grad():
        h, inputs, pre = x.detach().requires_grad_(True), [], []
        for l in range(model.depth):
            inputs.append(h.detach())
            y = model.layer_outputs(l, h)
            pre.append(y)
            h = model.combine_nodes(l, y)
        out = h
        n_out = out.shape[1]
        node_grads = [torch.autograd.grad(out[:, o].sum(), pre, retain_graph=o + 1 < n_out, allow_unused=True)
                      for o in range(n_out)]
    blocks: dict[int, Tensor] = {}
    for l, layer in enumerate(model.layers):
        g = torch.stack([_or_zero(ng[l], pre[l]) for ng in node_grads], dim=1)  # (N, n_out, out_l)
        _layer_blocks(layer, inputs[l], g, blocks)
    missing = [i for i, p in enumerate(params) if id(p) not in blocks]
    if missing:
        raise ValueError("residual_jacobian supports the splines' coef, scale_base and scale_spline only")
    jac = torch.cat([blocks[id(p)] for p in params], dim=-1)  # (N, n_out, P)
    return out.detach(), jac.reshape(-1, jac.shape[-1])


def _or_zero(grad: Tensor | None, like: Tensor) -> Tensor:
    return torch.zeros_like(like) if grad is None else grad


def _layer_blocks(layer, h: Tensor, g: Tensor, blocks: dict[int, Tensor]) -> None:
    """Jacobian blocks of one layer's parameters from its inputs ``h`` ``(N, n_in)`` and the
    outputs' gradients ``g`` ``(N, n_out_model, n_out_layer)`` at its pre-activations."""
    n, d = g.shape[0], g.shape[1]
    basis = splines.bspline_basis(h, layer.grid, layer.spline_order)  # (N, n_in, nb)
    mask = layer.mask
    gm = g.unsqueeze(-1) * mask  # (N, d, n_out, n_in)
    spline = torch.einsum("nim,jim->nji", basis, layer.coef.detach())  # (N, n_out, n_in)
    base = base_function(layer.base_activation)(h)  # (N, n_in)
    gs = gm * layer.scale_spline.detach()  # (N, d, n_out, n_in)
    coef = gs.unsqueeze(-1) * basis.unsqueeze(1).unsqueeze(1)  # (N, d, n_out, n_in, nb)
    blocks[id(layer.coef)] = coef.reshape(n, d, -1)
    blocks[id(layer.scale_base)] = (gm * base.unsqueeze(1).unsqueeze(1)).reshape(n, d, -1)
    blocks[id(layer.scale_spline)] = (gm * spline.unsqueeze(1)).reshape(n, d, -1)


class LevenbergMarquardt:
    """Levenberg-Marquardt (Nielsen's damping update, Marquardt's diagonal scaling) on the mean
    squared error of a KAN's outputs; the normal equations are solved in float64.

    The damping never falls below ``min_damping`` and scales every parameter by at least
    ``diagonal_floor`` times the largest diagonal entry of ``J^T J``: coefficients that few
    samples touch (the outermost bases of a fine grid, where the data thins out) then move
    like gradient descent instead of jumping to the values that interpolate those few
    samples. Without the floors, G = 50 fits of seeds 0-9 on a [3, 1, 1] sum ended at test
    RMSE 3.6e-4 to 1.8e4, dominated by test points near the ends of the hidden activations'
    range; with ``1e-4`` both, at 1.2e-7 to 1.3e-5. The diagonal floor is what protects
    them: with it, a damping floor of ``1e-5`` or ``1e-7`` leaves that sum where it was, while
    ``1e-4`` slows every step along the weakly curved directions that several hidden nodes
    sharing one function create (docs/training.md).

    Args:
        params: the trainable parameters (the model's splines' ``coef``, ``scale_base``,
            ``scale_spline``).
        damping: the initial damping, relative to the (floored) diagonal of ``J^T J``.
        min_damping, diagonal_floor: see above.
        max_tries: damping increases per step before the step gives up (the parameters are
            then left as they were).
    """

    def __init__(self, params, damping: float = 1e-3, min_damping: float = 1e-5, diagonal_floor: float = 1e-4,
                 max_tries: int = 12):
        self.params = list(params)
        self.state = {"damping": max(float(damping), min_damping), "growth": 2.0}
        self.min_damping, self.diagonal_floor, self.max_tries = min_damping, diagonal_floor, max_tries

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Nothing to clear: the step does not use ``.grad`` (kept for the optimizer protocol)."""

    def state_dict(self) -> dict:
        """The damping state (what a checkpoint stores)."""
        return dict(self.state)

    def load_state_dict(self, state: dict) -> None:
        """Restore :meth:`state_dict`."""
        self.state = {"damping": float(state["damping"]), "growth": float(state["growth"])}

    @torch.no_grad()
    def step(self, model, x: Tensor, y: Tensor) -> Tensor:
        """One damped Gauss-Newton step on ``mean((model(x) - y) ** 2)``; returns the loss at
        the parameters the step ends on (the step is rejected, and the parameters kept, when no
        damping within ``max_tries`` reduces the loss).

        Shape: ``x`` ``(N, n_in)``, ``y`` ``(N, n_out)``.
        """
        pred, jac = residual_jacobian(model, x, self.params)
        resid = (pred - y).reshape(-1).double()
        jac = jac.double()
        loss = resid.square().mean()
        if not bool(torch.isfinite(loss)):
            return loss.to(pred.dtype)  # nothing to step from; the caller reports the divergence
        hess = jac.T @ jac  # (P, P)
        grad = jac.T @ resid  # (P,)
        diag = self._floored(hess.diagonal())
        flat = torch.cat([p.detach().reshape(-1) for p in self.params])
        damping, growth = self.state["damping"], self.state["growth"]
        for _ in range(self.max_tries):
            delta = _solve(hess, diag * damping, grad)
            if delta is not None:
                self._assign(flat - delta.to(flat.dtype))
                new_loss = ((model(x) - y).double().square().mean())
                predicted = (delta @ (damping * diag * delta + grad)) / resid.numel()
                if bool(torch.isfinite(new_loss)) and new_loss < loss and predicted > 0:
                    rho = float((loss - new_loss) / predicted)
                    self.state["damping"] = max(damping * max(1 / 3, 1 - (2 * rho - 1) ** 3), self.min_damping)
                    self.state["growth"] = 2.0
                    return new_loss.to(pred.dtype)
            damping, growth = damping * growth, growth * 2
            self.state["damping"], self.state["growth"] = damping, growth
        self._assign(flat)
        self.state["damping"] = min(self.state["damping"], 1e10)
        return loss.to(pred.dtype)

    def _floored(self, diag: Tensor) -> Tensor:
        """The diagonal scaling: every entry raised to at least ``diagonal_floor`` times the largest."""
        return torch.maximum(diag, self.diagonal_floor * diag.max()).clamp_min(torch.finfo(diag.dtype).tiny)

    def _assign(self, flat: Tensor) -> None:
        offset = 0
        for p in self.params:
            p.copy_(flat[offset:offset + p.numel()].reshape(p.shape))
            offset += p.numel()


def _solve(hess: Tensor, damping_diag: Tensor, grad: Tensor) -> Tensor | None:
    """``(hess + diag(damping_diag))^{-1} grad`` by Cholesky; None when not positive definite."""
    factor, info = torch.linalg.cholesky_ex(hess + torch.diag(damping_diag))
    if int(info) != 0:
        return None
    return torch.cholesky_solve(grad.unsqueeze(1), factor).squeeze(1)
