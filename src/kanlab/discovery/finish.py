"""Finishing candidates: constants fit to the data, rounded where that costs nothing, errors
measured; and the chosen formula turned into a KAN (compile, polish, read back)."""
from __future__ import annotations

import math

import numpy as np
from torch import Tensor

from ..symbolic.formula import round_constants, symbolic_formula, to_numpy
from ..symbolic.polish import polish_formula, polish_symbolic
from .result import Candidate

__all__ = ["finish_candidates", "formula_model"]


def _rmse(expr, variables, x: Tensor, y: Tensor) -> float:
    try:
        with np.errstate(all="ignore"):
            pred = to_numpy(expr, variables)(x.numpy())
    except Exception:  # noqa: BLE001 - numpy cannot evaluate it: not a usable formula
        return math.inf
    if not np.isfinite(pred).all():
        return math.inf
    return float(np.sqrt(np.mean((pred - y.numpy()) ** 2)))


def complexity(expr) -> int:
    """sympy's operation count plus one per floating constant (a fitted number costs more than 2 or pi)."""
    import sympy

    return int(sympy.count_ops(expr)) + len(expr.atoms(sympy.Float))


def _simplify(expr, real: dict | None = None):
    """sympy.simplify with the variables' signs known (then the plain symbols back). Skipped for
    large expressions: over 40 operations, or over 15 with a trigonometric function (trigsimp's
    polynomial factoring ran for minutes on a 30-operation candidate of I.15.3x)."""
    import sympy

    ops = sympy.count_ops(expr)
    if ops > 40 or (ops > 15 and expr.has(sympy.sin, sympy.cos, sympy.tan)):
        return expr
    real = real or {}
    try:
        out = sympy.simplify(expr.xreplace(real))
    except Exception:  # noqa: BLE001 - keep the unsimplified form
        return expr
    return out.xreplace({r: v for v, r in real.items()})


def finish(expr, variables, real, Xtr, ytr):
    """Constants fit, then rounded to simple numbers (1e-6, then 1e-3 relative with the rest
    refit) where the training error does not grow by more than 1%; sympy-simplified."""
    expr, rmse = polish_formula(expr, variables, Xtr, ytr)
    tiny = 1e-13 * float(ytr.abs().max())
    for tol in (1e-6, 1e-3, 1e-2):
        rounded = round_constants(expr, tolerance=tol)
        if rounded == expr:
            continue
        rounded, r = polish_formula(rounded, variables, Xtr, ytr)
        if r <= 1.01 * rmse + tiny:
            expr, rmse = rounded, min(r, rmse) if r <= rmse else r
    simple = _simplify(expr, real)
    if simple != expr and _rmse(simple, variables, Xtr, ytr) <= 1.01 * rmse + tiny:
        expr = simple
    return expr


def finish_candidates(found, variables, real, Xtr, ytr, Xte, yte) -> list[Candidate]:
    """:class:`Candidate` for each distinct ``(expr, source)`` in ``found`` (non-finite ones dropped)."""
    import sympy

    out, seen = [], set()
    for expr, source in found:
        try:
            expr = finish(expr, variables, real, Xtr, ytr)
        except (ValueError, TypeError, RuntimeError):
            continue
        key = sympy.srepr(expr)
        if key in seen:
            continue
        seen.add(key)
        tr, te = _rmse(expr, variables, Xtr, ytr), _rmse(expr, variables, Xte, yte)
        if math.isfinite(tr) and math.isfinite(te):
            out.append(Candidate(expr, complexity(expr), tr, te, source))
    return out


def formula_model(chosen: Candidate, variables, real, Xtr, ytr, Xte, yte, surrogate):
    """The chosen formula as a KAN: compiled, polished, read back. Returns ``(model, formula,
    notes)``; where it cannot be compiled (or the read-back is worse), the surrogate and the
    candidate's own formula."""
    from ..symbolic.compile import compile_formula

    notes = []
    try:
        model = compile_formula(chosen.formula, variables)
        polish_symbolic(model, Xtr, ytr)
        formula = symbolic_formula(model, var_names=variables)[0]
    except (ValueError, TypeError, RuntimeError) as err:
        notes.append(f"the formula has no KAN form ({err}); result.model is the numeric surrogate")
        return surrogate, chosen.formula, notes
    if not _rmse(formula, variables, Xte, yte) <= 1.01 * chosen.test_rmse + 1e-13 * float(yte.abs().max()):
        notes.append("the compiled KAN's formula fit worse than the candidate; result.model is the compiled "
                     "KAN before reading back")
        return model, chosen.formula, notes
    simple = _simplify(formula, real)
    if _rmse(simple, variables, Xte, yte) <= 1.01 * chosen.test_rmse + 1e-13 * float(yte.abs().max()):
        formula = simple
    return model, formula, notes
