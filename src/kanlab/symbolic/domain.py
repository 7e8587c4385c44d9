"""Where a library function's safe torch form equals the formula it prints.

The library's torch functions are finite everywhere (see :mod:`kanlab.symbolic.library`): the
log works on ``|u|``, roots return 0 below 0, arcsin is clamped, poles are cut off. The sympy
formula is the plain function, so a snapped edge is only *its formula* where its argument
``a x + b`` stays inside the plain function's domain on the data. :func:`exact_on` checks that by
evaluating the sympy function with numpy; a logarithm whose argument is negative everywhere is
folded instead (``log|u| = log|-u|``: negate ``a`` and ``b``).
"""
from __future__ import annotations

from functools import cache

import numpy as np
import torch
from torch import Tensor

from .library import get_function

__all__ = ["exact_on", "fold_sign"]


@cache
def _numpy_fn(name: str):
    import sympy

    u = sympy.Symbol("u")
    return sympy.lambdify(u, get_function(name).sympy_fn(u), "numpy")


def exact_on(name: str, u: Tensor, rtol: float = 1e-9) -> Tensor:
    """Which rows of ``u`` ``(E, N)`` (arguments of the function ``name``) the safe torch form
    computes exactly as the printed formula (finite and equal to ``rtol``) -> ``(E,)`` bool."""
    u = u.detach().to(torch.float64)
    safe = get_function(name).torch_fn(u).cpu().numpy()
    with np.errstate(all="ignore"):
        exact = np.asarray(_numpy_fn(name)(u.cpu().numpy()), dtype=np.complex128)
        exact = np.broadcast_to(exact, safe.shape)
        ok = np.isfinite(exact) & (np.abs(exact.imag) == 0)
        close = np.abs(exact.real - safe) <= rtol * np.maximum(1.0, np.abs(safe))
    return torch.from_numpy((ok & close).all(axis=-1))


def fold_sign(name: str, a: float, b: float, x: Tensor) -> tuple[float, float]:
    """``(a, b)`` with a logarithm's argument made positive on ``x`` where it is negative on all of it."""
    if get_function(name).name == "log" and bool(((a * x + b) < 0).all()):
        return -a, -b
    return a, b
