"""Finishing candidates: constants fit to the data, rounded where that costs nothing, errors
measured; and the chosen formula turned into a KAN (compile, polish, read back)."""
from __future__ import annotations

import math

import numpy as np
from torch import Tensor

from ..symbolic.formula import factor_constants, round_constants, symbolic_formula, to_numpy
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
    """Constants fit, factored out of powers and exponentials (:func:`factor_constants`), then
    rounded to simple numbers where the training error does not grow by more than 1% (all at
    once, then one by one: each to 0 or to a simple number, the others refit; see
    :func:`_rounded`); sympy-simplified, and rounded once more where the simplified form has
    floats left (its constants may be simple where the unsimplified ones were not)."""
    import sympy

    expr, rmse = polish_formula(expr, variables, Xtr, ytr)
    tiny = 1e-13 * float(ytr.abs().max())
    factored = factor_constants(expr, tolerance=1e-2)
    if factored != expr and _rmse(factored, variables, Xtr, ytr) <= rmse * (1 + 1e-9) + tiny:
        expr = factored
    expr, rmse = _rounded(expr, variables, Xtr, ytr, rmse, tiny)
    simple = _simplify(expr, real)
    if simple == expr or not _rmse(simple, variables, Xtr, ytr) <= 1.01 * rmse + tiny:
        return expr
    if not simple.atoms(sympy.Float):
        return simple
    again, r = _rounded(simple, variables, Xtr, ytr, rmse, tiny)
    if again == simple or not r <= 1.01 * rmse + tiny:
        return simple
    final = _simplify(again, real)
    return final if _rmse(final, variables, Xtr, ytr) <= 1.01 * rmse + tiny else again


def _rounded(expr, variables, Xtr, ytr, rmse: float, tiny: float):
    """All constants rounded at once, then one by one. Coarse tolerances first (5e-2, 1e-2,
    1e-3, 1e-6): the simplest number the data allow wins, ``-2`` before ``-63/(10 pi)`` for a
    noisy ``-2.005``; a wrong simple number fails the error test."""
    for tol in (5e-2, 1e-2, 1e-3, 1e-6):
        rounded = round_constants(expr, tolerance=tol)
        if rounded == expr:
            continue
        rounded, r = polish_formula(rounded, variables, Xtr, ytr)
        if r <= 1.01 * rmse + tiny:
            expr, rmse = rounded, min(r, rmse) if r <= rmse else r
            break
    return _round_each(expr, variables, Xtr, ytr, rmse, tiny)


def _round_each(expr, variables, Xtr, ytr, rmse: float, tiny: float, max_floats: int = 6):
    """Each remaining float (smallest first) set to 0, else to the simplest number within
    5e-2, then 2e-2, 1e-2, 1e-3, 1e-4 (:func:`nice_number`), the others refit; kept where the
    training RMSE stays within 1% of the unrounded fit's (``rmse``: noise makes a rounded
    constant cost a little; a wrong one costs much more). Skipped for formulas with more than ``max_floats`` floats."""
    import sympy

    from ..symbolic.formula import nice_number

    n_floats = len(expr.atoms(sympy.Float))
    if not n_floats or n_floats > max_floats:
        return expr, rmse
    limit = 1.01 * rmse + tiny
    current, kept = rmse, 0  # kept: floats tried and left (every refit moves all the others)
    for _ in range(n_floats):
        floats = sorted(expr.atoms(sympy.Float), key=lambda f: abs(float(f)))
        if kept >= len(floats):
            break
        f = floats[kept]
        kept += 1
        options = [sympy.Integer(0)]  # then the simplest number within 5e-2, 2e-2, ... 1e-4
        for tol in (5e-2, 2e-2, 1e-2, 1e-3, 1e-4):
            nice = nice_number(float(f), tolerance=tol)
            if nice is not None and nice not in options:
                options.append(nice)
        for value in options:
            try:
                trial, r = polish_formula(expr.xreplace({f: value}), variables, Xtr, ytr)
            except (ValueError, TypeError, RuntimeError):
                continue
            if r <= limit:
                expr, current = trial, r
                kept -= 1
                break
    return expr, current


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


def _computes(model, expr, variables, x: Tensor) -> bool:
    """Whether ``model`` evaluates ``expr`` at ``x`` to 1e-8 relative."""
    import torch

    want = _predict(expr, variables, x)
    if want is None:
        return False
    with torch.no_grad():
        got = model(x)[:, 0].numpy()
    scale = max(float(np.abs(want).max()), 1e-300)
    return bool(np.all(np.abs(got - want) <= 1e-8 * np.maximum(np.abs(want), 1e-3 * scale)))


def _predict(expr, variables, x: Tensor):
    try:
        with np.errstate(all="ignore"):
            pred = np.asarray(to_numpy(expr, variables)(x.numpy()), dtype=float) * np.ones(x.shape[0])
    except Exception:  # noqa: BLE001 - numpy cannot evaluate it
        return None
    return pred if np.isfinite(pred).all() else None


def formula_model(chosen: Candidate, variables, real, Xtr, ytr, Xte, yte, surrogate, max_complexity: int = 40):
    """The chosen formula as a KAN: compiled; where the KAN computes the formula to 1e-8 relative
    the formula stays as it is (its constants were fit and rounded), otherwise the KAN is
    polished and read back. Returns ``(model, formula, notes)``; where it cannot be compiled (or
    the read-back is worse), the surrogate and the candidate's own formula."""
    from ..symbolic.compile import compile_formula

    notes = []
    if chosen.complexity > max_complexity:
        notes.append(f"the formula has {chosen.complexity} operations (> {max_complexity}): not compiled into a "
                     "KAN; result.model is the numeric surrogate")
        return surrogate, chosen.formula, notes
    try:
        model = compile_formula(chosen.formula, variables)
        if _computes(model, chosen.formula, variables, Xtr):  # constants already fit: keep them exact
            return model, chosen.formula, notes
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
