"""From a (fully symbolic) KAN to sympy formulas, and from formulas to LaTeX, numpy and torch.

sympy is imported inside the functions, so importing this module stays light.
"""
from __future__ import annotations

import functools
import math
from fractions import Fraction
from typing import TYPE_CHECKING, Callable, Sequence

import torch
from torch import Tensor

from .library import canonical_params, get_function

if TYPE_CHECKING:
    from ..network import KAN

__all__ = ["symbolic_formula", "simplify_formula", "factor_constants", "round_constants", "nice_number", "to_latex",
           "to_numpy", "to_torch"]


def _sp():
    import sympy

    return sympy


def symbolic_formula(model: KAN, var_names: Sequence | None = None, simplify: bool = True,
                     tolerance: float = 1e-6, max_denominator: int = 12) -> list:
    """One sympy expression per output of a KAN whose active edges are all symbolic.

    Edges switched off in both the numeric and the symbolic part count as 0; multiplication
    nodes multiply their ``mult_arity`` operands.

    Args:
        var_names: names (or sympy symbols) of the inputs; default the model's
            ``input_names`` or ``x0, x1, ...``.
        simplify: clean up the formula (:func:`simplify_formula`): constants within
            ``tolerance`` (relative) of simple numbers such as 1, 1/2, pi/3, sqrt(2) become exact.

    Raises:
        ValueError: some active edges are still numeric (they are named in the message).
    """
    sp = _sp()
    symbols = _symbols(model, var_names)
    numeric = [(l, i, j) for l, layer in enumerate(model.layers)
               for j in range(layer.out_features) for i in range(layer.in_features) if layer.mask[j, i] != 0]
    if numeric:
        shown = ", ".join(f"(l={l}, i={i}, j={j})" for l, i, j in numeric[:10])
        more = f" and {len(numeric) - 10} more" if len(numeric) > 10 else ""
        raise ValueError(f"symbolic_formula needs every active edge to be symbolic; numeric edges: {shown}{more}. "
                         "Snap them with fix_symbolic / auto_symbolic (or prune them) first.")
    nodes = list(symbols)
    for l, layer in enumerate(model.layers):
        sym = model.symbolic[str(l)] if str(l) in model.symbolic else None
        pre = [sp.Integer(0)] * layer.out_features
        if sym is not None:
            a, b, c, d = (getattr(sym, n).detach().double().cpu().tolist() for n in "abcd")
            for j, i in sym.mask.nonzero().tolist():
                pre[j] = pre[j] + edge_expression(sym.names[j][i], a[j][i], b[j][i], c[j][i], d[j][i], nodes[i])
        n_sum, n_mult = model.config.width[l + 1]
        arity = model.config.mult_arity
        nodes = pre[:n_sum] + [sp.Mul(*pre[n_sum + m * arity: n_sum + (m + 1) * arity]) for m in range(n_mult)]
    if simplify:
        nodes = [simplify_formula(e, tolerance, max_denominator) for e in nodes]
    return nodes


def _symbols(model, var_names):
    sp = _sp()
    n = model.n_inputs
    if var_names is None:
        var_names = model.config.input_names or [f"x{k}" for k in range(n)]
    var_names = list(var_names)
    if len(var_names) != n:
        raise ValueError(f"var_names must have {n} entries (one per input), got {len(var_names)}")
    return [v if isinstance(v, sp.Basic) else sp.Symbol(str(v)) for v in var_names]


def edge_expression(name: str, a: float, b: float, c: float, d: float, u):
    """``c f(a u + b) + d`` as sympy, with redundant parameters removed (:func:`canonical_params`)."""
    sp = _sp()
    fn = get_function(name)
    if fn.name == "0":
        return sp.Float(d)
    a, b, c, d = canonical_params(fn.name, a, b, c, d)
    if fn.name == "x":
        return sp.Float(c) * u + sp.Float(d)
    return sp.Float(c) * fn.sympy_fn(sp.Float(a) * u + sp.Float(b)) + sp.Float(d)


# ---------------------------------------------------------------------- clean-up
_BASES = ("1", "pi", "1/pi", "sqrt(2)", "sqrt(3)", "sqrt(pi)", "1/sqrt(pi)", "sqrt(2*pi)",
          "1/sqrt(2*pi)", "E")


def nice_number(v: float, tolerance: float = 1e-6, max_denominator: int = 12, max_numerator: int = 100):
    """The simplest exact number ``p/q * base`` (|p| <= max_numerator, q <= max_denominator,
    base in 1, pi, sqrt(2), 1/sqrt(2 pi), e, ...) within ``tolerance * max(1, |v|)`` of ``v``,
    or None. Simplest: the smallest ``|p| + q`` plus the base's place in that list (``2/pi``
    before ``7/11``, ``1/2`` before ``pi/6``)."""
    sp = _sp()
    if not math.isfinite(v):
        return None
    best = None
    for rank, (base, bv) in enumerate(_base_values()):
        q = Fraction(v / bv).limit_denominator(max_denominator)
        if abs(q.numerator) <= max_numerator and abs(float(q) * bv - v) <= tolerance * max(1.0, abs(v)):
            cost = abs(q.numerator) + q.denominator + rank
            if best is None or cost < best[0]:
                best = (cost, q, base)
    if best is None:
        return None
    return sp.Rational(best[1].numerator, best[1].denominator) * best[2]


@functools.lru_cache(maxsize=1)
def _base_values() -> tuple:
    """``((sympy base, its float), ...)`` for :data:`_BASES`, built once."""
    sp = _sp()
    return tuple((sp.sympify(b), float(sp.sympify(b))) for b in _BASES)


def round_constants(expr, tolerance: float = 1e-6, max_denominator: int = 12):
    """Replace every float in ``expr`` that is close to a simple number (:func:`nice_number`)."""
    sp = _sp()
    table = {}
    for f in expr.atoms(sp.Float):
        nice = nice_number(float(f), tolerance, max_denominator)
        if nice is not None:
            table[f] = nice
    return expr.xreplace(table) if table else expr


def _split_exp(expr):
    """exp(k + u) -> e^k exp(u) for a number k, so the factor meets the other constants."""
    sp = _sp()

    def splittable(e):
        return isinstance(e, sp.exp) and e.args[0].is_Add and e.args[0].as_coeff_Add()[0] != 0

    def split(e):
        k, rest = e.args[0].as_coeff_Add()
        return sp.exp(k) * sp.exp(rest)

    return expr.replace(splittable, split)


def _simple_fraction(r: float, tolerance: float, max_denominator: int, max_numerator: int = 100) -> bool:
    """Whether ``r >= 0`` is ``p/q`` (``p <= max_numerator``, ``q <= max_denominator``) within
    ``tolerance * r``, or below ``tolerance`` (a zero)."""
    if r <= tolerance:
        return True
    q = Fraction(r).limit_denominator(max_denominator)
    return q.numerator <= max_numerator and abs(float(q) - r) <= tolerance * r


def _normalize_power_bases(expr, tolerance: float, max_denominator: int):
    """(k u + k v + k w)^p -> k^p (u + v + w)^p, choosing the k that makes the most
    coefficients simple numbers (so sqrt(2.3 + 2.3 x^2) becomes 1.52 sqrt(1 + x^2))."""
    sp = _sp()

    def candidate(e):
        return e.is_Pow and e.base.is_Add and e.exp.is_Number and not e.base.is_number

    def normalize(e):
        coeffs = [t.as_coeff_Mul()[0] for t in e.base.args]

        def n_nice(k) -> tuple[int, int]:
            """(ratios that are simple fractions, ratios that are simple numbers), each within
            ``tolerance`` of itself (an absolute one would favour small ratios)."""
            ratios = [abs(float(q / k)) for q in coeffs]
            fractions = sum(_simple_fraction(r, tolerance, max_denominator) for r in ratios)
            return fractions, sum(nice_number(r, tolerance * min(1.0, r), max_denominator) is not None
                                  for r in ratios)

        best, best_count = sp.Integer(1), n_nice(1)
        for k in coeffs:
            if not k.is_Float or k == 0 or (not e.exp.is_Integer and k < 0):
                continue
            count = n_nice(k)
            if count > best_count:
                best, best_count = k, count
        if best == 1:
            return e
        return best ** e.exp * sp.Pow(sp.expand(e.base / best), e.exp)

    return expr.replace(candidate, normalize)


def factor_constants(expr, tolerance: float = 1e-6, max_denominator: int = 12):
    """Numeric factors moved out of exponentials and powers, the same value in a form whose
    constants round better: ``exp(k + u) -> e^k exp(u)``, ``sqrt(k u + 4.01 k v) ->
    sqrt(k) sqrt(u + 4.01 v)`` (the ``k`` that makes the most coefficients simple numbers
    within ``tolerance``)."""
    return _normalize_power_bases(_split_exp(expr), tolerance, max_denominator)


def simplify_formula(expr, tolerance: float = 1e-6, max_denominator: int = 12):
    """Simplify the sympy ``expr``: round constants within ``tolerance`` to rationals with
    denominators up to ``max_denominator``, move numeric factors out of exp and powers, and
    combine exponentials; repeated until nothing changes (at most 5 rounds)."""
    sp = _sp()
    for _ in range(5):
        new = _split_exp(expr)
        new = _normalize_power_bases(new, tolerance, max_denominator)
        new = round_constants(new, tolerance, max_denominator)
        if new == expr:
            break
        expr = new
    return sp.powsimp(expr)


# ---------------------------------------------------------------------- export
def to_latex(expr) -> str:
    """LaTeX source of ``expr``."""
    return _sp().latex(expr)


def _variables(expr, variables):
    if variables is None:
        return sorted(expr.free_symbols, key=lambda s: s.name)
    return [v if isinstance(v, _sp().Basic) else _sp().Symbol(str(v)) for v in variables]


def to_numpy(expr, variables: Sequence | None = None) -> Callable:
    """A numpy function of an array ``(N, n_vars)`` -> ``(N,)`` (variables default: sorted by name)."""
    import numpy as np

    variables = _variables(expr, variables)
    fn = _sp().lambdify(variables, expr, "numpy")

    def f(x):
        x = np.asarray(x, dtype=float)
        return np.broadcast_to(np.asarray(fn(*[x[..., k] for k in range(len(variables))]), dtype=float),
                               x.shape[:-1]).copy()

    return f


def to_torch(expr, variables: Sequence | None = None) -> Callable[[Tensor], Tensor]:
    """A differentiable torch function of ``(N, n_vars)`` -> ``(N,)`` (variables default: sorted by name)."""
    variables = _variables(expr, variables)
    index = {v: k for k, v in enumerate(variables)}
    body = _torch_node(expr, index)

    def f(x: Tensor) -> Tensor:
        out = body(x)
        return out.expand(x.shape[:-1]) if isinstance(out, Tensor) else torch.full(x.shape[:-1], out, dtype=x.dtype,
                                                                                   device=x.device)

    return f


def _torch_funcs() -> dict:
    sp = _sp()
    return {sp.sin: torch.sin, sp.cos: torch.cos, sp.tan: torch.tan, sp.tanh: torch.tanh, sp.exp: torch.exp,
            sp.log: torch.log, sp.Abs: torch.abs, sp.sign: torch.sign, sp.asin: torch.asin, sp.acos: torch.acos,
            sp.atan: torch.atan, sp.atanh: torch.atanh, sp.sinh: torch.sinh, sp.cosh: torch.cosh}


def _torch_node(e, index: dict) -> Callable:
    if e.is_Symbol:
        if e not in index:
            raise ValueError(f"variable {e} is not among the variables {list(index)}")
        k = index[e]
        return lambda x: x[..., k]
    if e.is_number:
        v = complex(e)
        if v.imag != 0:
            raise ValueError(f"constant {e} is not real")
        return lambda x: v.real
    args = [_torch_node(a, index) for a in e.args]
    if e.is_Add:
        return lambda x: sum(f(x) for f in args)
    if e.is_Mul:
        def mul(x):
            out = 1.0
            for f in args:
                out = out * f(x)
            return out
        return mul
    if e.is_Pow:
        return lambda x: args[0](x) ** args[1](x)
    fn = _torch_funcs().get(e.func)
    if fn is None:
        raise ValueError(f"to_torch does not know the function {e.func} (in {e})")
    return lambda x: fn(torch.as_tensor(args[0](x)))
