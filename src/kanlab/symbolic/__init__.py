"""Symbolic regression with KANs: snap edges to closed forms, read formulas, compile formulas to KANs.

Workflow::

    model.fit(data, lamb=1e-3)                  # sparse
    model = model.prune(x)                      # small
    model.auto_symbolic(x)                      # edges -> c f(a x + b) + d
    model.fit(data)                             # train a, b, c, d
    polish_symbolic(model, x, y)                # Levenberg-Marquardt to machine precision
    model.symbolic_formula()                    # [exp(x1**2 + sin(pi*x0))]

sympy is needed only for formulas and the compiler, and is imported when they run.
"""
from .edges import SymbolicEdges
from .fit import FitResult, SingularFitError, fit_functions, rank_candidates
from .library import SymbolicFunction, get_function, library_names, register, resolve_library
from .ops import (EdgeChoice, Suggestion, auto_symbolic, default_library, fix_symbolic, suggest_symbolic,
                  unfix_symbolic)
from .formula import round_constants, simplify_formula, symbolic_formula, to_latex, to_numpy, to_torch
from .compile import compile_formula
from .polish import polish_formula, polish_symbolic

__all__ = ["SymbolicEdges", "SymbolicFunction", "register", "get_function", "library_names",
           "resolve_library", "FitResult", "SingularFitError", "fit_functions", "rank_candidates",
           "Suggestion", "EdgeChoice", "suggest_symbolic", "fix_symbolic", "unfix_symbolic",
           "auto_symbolic", "default_library", "symbolic_formula", "round_constants",
           "simplify_formula", "to_latex", "to_numpy", "to_torch", "compile_formula", "polish_symbolic",
           "polish_formula"]
