"""The KAN paper's special functions of two variables, evaluated with scipy.special.

The paper does not state input ranges; ours (per entry) keep each function finite and smooth:
orders / degrees in [0, 2] or [0, 1], elliptic parameters m in [0, 1], Bessel arguments away
from the singular origin, Legendre arguments inside (-1, 1), spherical-harmonic angles over the
sphere. Spherical harmonics use the real part of Y_n^m(polar, azimuth) (``scipy.special.sph_harm_y``,
or the older ``sph_harm`` with swapped argument order).
"""
from __future__ import annotations

import math
from functools import partial

import torch
from torch import Tensor

from .core import Dataset
from .registry import PaperFunction, sample_function

__all__ = ["SPECIAL", "special_dataset", "real_sph_harm"]


def _special():
    try:
        import scipy.special as sp
    except ImportError as err:  # pragma: no cover - scipy is in the data/dev extras
        raise ImportError("special-function datasets need scipy: pip install 'kanlab[data]'") from err
    return sp


def _numpy_call(fn, x: Tensor) -> Tensor:
    """Apply ``fn(col0, col1)`` (numpy, float64) to ``x`` ``(N, 2)``; -> ``(N,)`` in x's dtype."""
    a = x.detach().cpu().double().numpy()
    return torch.as_tensor(fn(a[:, 0], a[:, 1]), dtype=x.dtype, device=x.device)


def real_sph_harm(m: int, n: int, polar, azimuth):
    """Re Y_n^m(polar, azimuth) (numpy arrays), over scipy's old or new API."""
    sp = _special()
    if hasattr(sp, "sph_harm_y"):
        return sp.sph_harm_y(n, m, polar, azimuth).real
    return sp.sph_harm(m, n, azimuth, polar).real  # pragma: no cover - scipy < 1.15


def _ellipj(u, m):
    return _special().ellipj(u, m)[0]  # sn(u | m)


def _by_name(name: str, *fixed):
    def f(a, b):
        return getattr(_special(), name)(*fixed, a, b)
    return f


def _entry(name, fn, ranges, variables, formula) -> PaperFunction:
    return PaperFunction(name, partial(_numpy_call, fn), tuple((float(lo), float(hi)) for lo, hi in ranges),
                         variables, formula)


_ORD, _ARG, _UNIT = (0.0, 2.0), (1.0, 3.0), (0.0, 1.0)
_POLAR, _AZIM = (0.0, math.pi), (0.0, 2.0 * math.pi)

SPECIAL: dict[str, PaperFunction] = {e.name: e for e in [
    _entry("ellipj", _ellipj, ((-1.0, 1.0), _UNIT), ("u", "m"), "sn(u | m) (Jacobi elliptic sn)"),
    _entry("ellipkinc", _by_name("ellipkinc"), ((-1.0, 1.0), _UNIT), ("phi", "m"), "F(phi | m)"),
    _entry("ellipeinc", _by_name("ellipeinc"), ((-1.0, 1.0), _UNIT), ("phi", "m"), "E(phi | m)"),
    _entry("jv", _by_name("jv"), (_ORD, _ARG), ("v", "x"), "J_v(x)"),
    _entry("yv", _by_name("yv"), (_ORD, _ARG), ("v", "x"), "Y_v(x)"),
    _entry("kv", _by_name("kv"), (_ORD, _ARG), ("v", "x"), "K_v(x)"),
    _entry("iv", _by_name("iv"), (_ORD, _ARG), ("v", "x"), "I_v(x)"),
    *[_entry(f"lpmv_m{m}", _by_name("lpmv", m), (_ORD, (-0.9, 0.9)), ("v", "x"),
             f"P_v^{m}(x) (associated Legendre, order {m})") for m in (0, 1, 2)],
    *[_entry(f"sph_harm_m{m}_n{n}", partial(lambda p, a, m, n: real_sph_harm(m, n, p, a), m=m, n=n),
             (_POLAR, _AZIM), ("polar", "azimuth"), f"Re Y_{n}^{m}(polar, azimuth)")
      for m, n in ((0, 1), (1, 1), (0, 2), (1, 2), (2, 2))],
]}


def special_dataset(name: str, n_train: int = 1000, n_test: int = 1000, seed: int = 0,
                    dtype=torch.float64) -> Dataset:
    """Data for the special function ``name`` (a key of :data:`SPECIAL`, e.g. ``"jv"``,
    ``"lpmv_m1"``, ``"sph_harm_m1_n2"``); inputs ``(N, 2)``, labels ``(N, 1)``.

    Example:
        >>> special_dataset("jv", n_train=8, n_test=4).train_input.shape
        torch.Size([8, 2])
    """
    if name not in SPECIAL:
        raise ValueError(f"name must be one of {list(SPECIAL)}, got {name!r}")
    return sample_function(SPECIAL[name], n_train, n_test, seed, dtype)
