"""Levenberg-Marquardt polishing of a symbolic model's a, b, c, d (machine precision in a few steps).

A snapped KAN has scale redundancies between layers (c of an inner edge against a of the
outer one): curved valleys where LBFGS crawls (1e-6 relative error after hundreds of
iterations). Gauss-Newton with damping crosses them in a handful of steps.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import Tensor
from torch.func import functional_call, jacfwd

from ..validation import check_finite, check_input

if TYPE_CHECKING:
    from ..network import KAN

__all__ = ["polish_symbolic", "polish_formula"]


def polish_symbolic(model: KAN, x: Tensor, y: Tensor, steps: int = 30, tol: float = 1e-30) -> float:
    """Fit the symbolic parameters (a, b, c, d of every symbolic edge) to ``y`` by
    Levenberg-Marquardt, in place; numeric parameters are left alone.

    Args:
        x: inputs ``(N, width[0])``; y: targets ``(N, n_outputs)`` (or ``(N,)`` for one output).
        steps: maximum Gauss-Newton steps; stops early once the error no longer improves.

    Returns:
        The final root-mean-square error on ``(x, y)``.
    """
    check_input(x, model.n_inputs, "x")
    check_finite(x, "x")
    check_finite(y, "y")
    y = y.reshape(x.shape[0], -1).to(x.dtype)
    named = [(n, p) for n, p in model.named_parameters() if n.startswith("symbolic.") and p.requires_grad]
    if not named:
        raise ValueError("the model has no symbolic edges to polish; use fix_symbolic / auto_symbolic first")
    names, shapes = [n for n, _ in named], [p.shape for _, p in named]
    p = torch.cat([v.detach().flatten() for _, v in named])

    def resid(flat: Tensor) -> Tensor:
        params, k = {}, 0
        for n, s in zip(names, shapes):
            params[n] = flat[k:k + s.numel()].view(s)
            k += s.numel()
        return (functional_call(model, params, (x,)) - y).flatten()  # (N * n_out,)

    with torch.no_grad():
        sse = float((resid(p) ** 2).sum())
    lam = 1e-3
    for _ in range(steps):
        if sse <= tol:
            break
        r = resid(p).detach()
        jac = jacfwd(resid)(p).detach()  # (N * n_out, P), forward mode: P is small
        jtj, g = jac.T @ jac, jac.T @ r
        improved = False
        while lam < 1e12:
            damp = lam * (torch.diagonal(jtj) + 1e-12 * torch.diagonal(jtj).max() + 1e-30)
            delta = torch.linalg.lstsq(jtj + torch.diag(damp), -g[:, None]).solution[:, 0]
            with torch.no_grad():
                new = float((resid(p + delta) ** 2).sum())
            if new < sse and torch.isfinite(delta).all():
                p, sse, lam, improved = p + delta, new, max(lam / 3, 1e-12), True
                break
            lam *= 4
        if not improved:
            break
    with torch.no_grad():
        k = 0
        for (_, v), s in zip(named, shapes):
            v.copy_(p[k:k + s.numel()].view(s))
            k += s.numel()
    return (sse / y.numel()) ** 0.5


def polish_formula(expr, variables, x: Tensor, y: Tensor, steps: int = 50):
    """Fit every floating constant of the sympy expression ``expr`` to ``y`` by Levenberg-Marquardt.

    Integers, rationals and named constants (``pi``) are kept exactly; only ``sympy.Float``
    atoms move. Used where a formula has no KAN form (:func:`compile_formula` cannot build it).

    Args:
        expr: sympy expression in ``variables``.
        variables: the inputs in the column order of ``x`` (symbols or names).
        x: ``(N, len(variables))``; y: ``(N,)`` or ``(N, 1)``.

    Returns:
        ``(polished expression, RMSE on (x, y))``.
    """
    import sympy

    from .formula import to_torch

    variables = [v if isinstance(v, sympy.Basic) else sympy.Symbol(str(v)) for v in variables]
    check_input(x, len(variables), "x")
    y = y.reshape(-1).to(x.dtype)
    floats = sorted(expr.atoms(sympy.Float), key=lambda f: (float(f), str(f)))
    params = list(sympy.symbols(f"_polish0:{len(floats)}"))
    template = expr.xreplace(dict(zip(floats, params)))
    fn = to_torch(template, variables + params)
    p = torch.tensor([float(f) for f in floats], dtype=x.dtype)

    def resid(flat: Tensor) -> Tensor:
        return fn(torch.cat([x, flat.expand(x.shape[0], -1)], dim=1)) - y  # (N,)

    def sse_of(flat: Tensor) -> float:
        with torch.no_grad():
            v = float((resid(flat) ** 2).sum())
        return v if v == v else float("inf")

    sse = sse_of(p)
    if floats:
        lam = 1e-3
        for _ in range(steps):
            if sse <= 1e-30 or sse == float("inf"):  # a non-finite residual has no useful gradient
                break
            r = resid(p).detach()
            jac = jacfwd(resid)(p).detach()  # (N, P)
            jac = torch.where(torch.isfinite(jac), jac, 0.0)
            jtj, g = jac.T @ jac, jac.T @ r
            improved = False
            while lam < 1e12:
                damp = lam * (torch.diagonal(jtj) + 1e-12 * torch.diagonal(jtj).max() + 1e-30)
                delta = torch.linalg.lstsq(jtj + torch.diag(damp), -g[:, None]).solution[:, 0]
                new = sse_of(p + delta) if bool(torch.isfinite(delta).all()) else float("inf")
                if new < sse:
                    p, sse, lam, improved = p + delta, new, max(lam / 3, 1e-12), True
                    break
                lam *= 4
            if not improved:
                break
    out = template.xreplace({s: sympy.Float(float(v), 17) for s, v in zip(params, p.tolist())})
    return out, (sse / y.numel()) ** 0.5
