"""The symbolic function library: name -> (singularity-safe torch function, sympy function, complexity).

Every torch function here is *safe*: it is exact where the mathematical function is defined
and finite, and returns finite values with finite gradients everywhere else (poles are
clamped, logarithms and roots of invalid arguments are replaced by finite values), so a
symbolic edge never puts NaN into a model. sympy is imported only when a sympy function
is called.

Users add their own entries with :func:`register`.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable, Iterable

import torch
from torch import Tensor

__all__ = ["SymbolicFunction", "register", "get_function", "library_names", "resolve_library",
           "canonical_params"]


@dataclass(frozen=True)
class SymbolicFunction:
    """One library entry.

    Attributes:
        name: the key used in models and configs.
        torch_fn: elementwise, singularity-safe torch function.
        sympy_fn: the same function on a sympy expression.
        complexity: cost used when ranking candidates (x = 1, sin = 2, arcsin = 4, ...).
        degree: ``p`` if ``f(s u) = s**p f(u)`` for ``s > 0`` (powers), else None; formulas use
            it to pull the scale out of ``c f(a x + b)``.
    """

    name: str
    torch_fn: Callable[[Tensor], Tensor]
    sympy_fn: Callable[[Any], Any]
    complexity: float
    degree: float | None = None


def _sp():
    import sympy

    return sympy


def _eps(x: Tensor) -> float:
    """Distance from a pole where safe forms start clamping (depends on the precision)."""
    return 1e-12 if x.dtype == torch.float64 else 1e-5


def _away_from_zero(x: Tensor) -> Tensor:
    eps = _eps(x)
    return torch.where(x.abs() < eps, torch.full_like(x, eps).copysign(x), x)


def _inv_power(n: int) -> Callable[[Tensor], Tensor]:
    def f(x: Tensor) -> Tensor:
        return _away_from_zero(x) ** (-n)

    f.__name__ = f"inv_power_{n}"
    return f


def _power(n: int) -> Callable[[Tensor], Tensor]:
    def f(x: Tensor) -> Tensor:
        return x ** n

    f.__name__ = f"power_{n}"
    return f


def _sqrt(x: Tensor) -> Tensor:
    pos = x > 0
    return torch.where(pos, torch.sqrt(torch.where(pos, x, 1.0)), 0.0)


def _pow15(x: Tensor) -> Tensor:
    pos = x > 0
    return torch.where(pos, torch.where(pos, x, 1.0) ** 1.5, 0.0)


def _rsqrt(x: Tensor) -> Tensor:
    return torch.rsqrt(torch.clamp(x, min=_eps(x)))


def _log(x: Tensor) -> Tensor:
    return torch.log(torch.clamp(x.abs(), min=_eps(x)))


def _exp(x: Tensor) -> Tensor:
    return torch.exp(torch.clamp(x, max=0.5 * math.log(torch.finfo(x.dtype).max)))


def _unit_interval(fn: Callable[[Tensor], Tensor], edge_value: Callable[[Tensor], Tensor]):
    """``fn`` inside (-1, 1), ``edge_value(sign)`` outside (arcsin, arccos)."""

    def f(x: Tensor) -> Tensor:
        inside = x.abs() < 1
        return torch.where(inside, fn(torch.where(inside, x, 0.0)), edge_value(torch.sign(x)))

    f.__name__ = fn.__name__
    return f


def _arctanh(x: Tensor) -> Tensor:
    eps = torch.finfo(x.dtype).eps
    return torch.atanh(torch.clamp(x, -1 + eps, 1 - eps))


def _gaussian(x: Tensor) -> Tensor:
    return torch.exp(-x * x)


def _zero(x: Tensor) -> Tensor:
    return x * 0


def _identity(x: Tensor) -> Tensor:
    return x


_LIBRARY: dict[str, SymbolicFunction] = {}
_ALIASES = {"x^0.5": "sqrt", "1/sqrt(x)": "1/sqrt", "1/x^0.5": "1/sqrt", "sign": "sgn",
            "asin": "arcsin", "acos": "arccos", "atan": "arctan", "atanh": "arctanh"}


def register(name: str, torch_fn: Callable[[Tensor], Tensor], sympy_fn: Callable[[Any], Any],
             complexity: float, degree: float | None = None, overwrite: bool = False) -> SymbolicFunction:
    """Add a function to the library (available to every model by ``name``).

    Args:
        name: key, e.g. ``"sinh"``.
        torch_fn: elementwise torch function; make it finite everywhere (see the module doc).
        sympy_fn: the same function on a sympy expression, e.g. ``sympy.sinh``.
        complexity: ranking cost (the built-ins use 1 to 4).
        degree: homogeneity degree for powers (see :class:`SymbolicFunction`).
        overwrite: allow replacing an existing entry.

    Example:
        >>> import sympy
        >>> _ = register("sinh", torch.sinh, sympy.sinh, 3, overwrite=True)
    """
    if not isinstance(name, str) or not name:
        raise TypeError(f"name must be a non-empty string, got {name!r}")
    if not callable(torch_fn) or not callable(sympy_fn):
        raise TypeError(f"torch_fn and sympy_fn of {name!r} must be callable")
    if not (isinstance(complexity, (int, float)) and math.isfinite(complexity) and complexity >= 0):
        raise ValueError(f"complexity of {name!r} must be a finite number >= 0, got {complexity!r}")
    if (name in _LIBRARY or name in _ALIASES) and not overwrite:
        raise ValueError(f"{name!r} is already in the library; pass overwrite=True to replace it")
    entry = SymbolicFunction(name, torch_fn, sympy_fn, float(complexity), degree)
    _LIBRARY[name] = entry
    return entry


def get_function(name: str) -> SymbolicFunction:
    """The library entry called ``name`` (aliases such as ``"x^0.5"`` accepted)."""
    if isinstance(name, SymbolicFunction):
        return name
    key = _ALIASES.get(name, name)
    try:
        return _LIBRARY[key]
    except (KeyError, TypeError):
        raise ValueError(f"unknown symbolic function {name!r}; known: {library_names()} "
                         "(add your own with kanlab.symbolic.register)") from None


def library_names() -> list[str]:
    """Names of every registered function, in library order."""
    return list(_LIBRARY)


def resolve_library(library: Iterable[str] | None) -> list[SymbolicFunction]:
    """``None`` -> the whole library; a list of names -> their entries (unknown names raise)."""
    if library is None:
        return list(_LIBRARY.values())
    if isinstance(library, str):
        raise TypeError(f"library must be a list of function names, got the string {library!r}")
    entries = [get_function(n) for n in library]
    if not entries:
        raise ValueError("library must name at least one function")
    return entries


def canonical_params(name: str, a: float, b: float, c: float, d: float) -> tuple[float, float, float, float]:
    """The same edge ``c f(a x + b) + d`` with redundant parameters removed.

    Powers (``degree`` p): ``c |a|^p f(sign(a) x + b / |a|)``; the identity: ``(c a) x + (c b + d)``;
    exp: ``(c e^b) exp(a x)``. Keeps training well conditioned (c = 5e4 with b = -10.7 in
    ``c exp(a x + b)`` makes LBFGS crawl) and formulas simple.
    """
    fn = get_function(name)
    if fn.name == "x":
        return 1.0, 0.0, c * a, c * b + d
    if fn.degree is not None and a != 0:
        s = abs(a)
        return math.copysign(1.0, a), b / s, c * s ** fn.degree, d
    if fn.name == "exp" and b < 700 and math.isfinite(c * math.exp(b)):
        return a, 0.0, c * math.exp(b), d
    return a, b, c, d


def _sympy_power(n: int) -> Callable[[Any], Any]:
    return lambda x: x ** n


def _builtins() -> None:
    sp = _sp
    register("x", _identity, lambda x: x, 1, degree=1)
    for n in range(2, 6):
        register(f"x^{n}", _power(n), _sympy_power(n), 2 if n == 2 else 3, degree=n)
    for n in range(1, 6):
        name = "1/x" if n == 1 else f"1/x^{n}"
        register(name, _inv_power(n), _sympy_power(-n), 2 if n <= 2 else n, degree=-n)
    register("sqrt", _sqrt, lambda x: sp().sqrt(x), 2, degree=0.5)
    register("x^1.5", _pow15, lambda x: x ** sp().Rational(3, 2), 4, degree=1.5)
    register("1/sqrt", _rsqrt, lambda x: 1 / sp().sqrt(x), 2, degree=-0.5)
    register("exp", _exp, lambda x: sp().exp(x), 2)
    register("log", _log, lambda x: sp().log(x), 2)
    register("abs", torch.abs, lambda x: sp().Abs(x), 3, degree=1)
    register("sin", torch.sin, lambda x: sp().sin(x), 2)
    register("cos", torch.cos, lambda x: sp().cos(x), 2)
    register("tan", torch.tan, lambda x: sp().tan(x), 3)
    register("tanh", torch.tanh, lambda x: sp().tanh(x), 3)
    register("sgn", torch.sign, lambda x: sp().sign(x), 3, degree=0)
    register("arcsin", _unit_interval(torch.asin, lambda s: s * (math.pi / 2)), lambda x: sp().asin(x), 4)
    register("arccos", _unit_interval(torch.acos, lambda s: (1 - s) * (math.pi / 2)), lambda x: sp().acos(x), 4)
    register("arctan", torch.atan, lambda x: sp().atan(x), 4)
    register("arctanh", _arctanh, lambda x: sp().atanh(x), 4)
    register("gaussian", _gaussian, lambda x: sp().exp(-x ** 2), 3)
    register("0", _zero, lambda x: sp().Integer(0), 0)


_builtins()
