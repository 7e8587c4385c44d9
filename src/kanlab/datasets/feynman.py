"""The Feynman equations of the KAN paper's table, in dimensionless form.

Each equation from the Feynman Lectures (as used by AI Feynman) is rewritten in ratios of its
quantities so that it has the paper's number of inputs. Ranges keep every formula finite and
smooth enough to fit (documented per entry; angles span [0, 2 pi]). Quantities that are positive
in the physics (lengths, densities, wavelengths) get positive ranges bounded away from zero, which
the paper's [2,1,1] results for products and ratios (e.g. II.38.3 a / b) imply. Written from the physics,
not copied from a list: e.g. I.16.6, relativistic velocity addition, is (u + v) / (1 + u v).
"""
from __future__ import annotations

import math

import torch
from torch import Tensor

from .core import Dataset
from .registry import PaperFunction, sample_function

__all__ = ["FEYNMAN", "feynman_dataset"]

TWO_PI = 2.0 * math.pi
PM1 = (-1.0, 1.0)
UNIT = (0.0, 1.0)
ANGLE = (0.0, TWO_PI)


def _c(x: Tensor, i: int) -> Tensor:
    return x[:, i]


def _i_6_2(x):  # theta, sigma
    t, s = _c(x, 0), _c(x, 1)
    return torch.exp(-t ** 2 / (2 * s ** 2)) / torch.sqrt(2 * math.pi * s ** 2)


def _i_6_2b(x):  # theta, theta1, sigma
    t, t1, s = _c(x, 0), _c(x, 1), _c(x, 2)
    return torch.exp(-(t - t1) ** 2 / (2 * s ** 2)) / torch.sqrt(2 * math.pi * s ** 2)


def _i_9_18(x):  # a = G m1 m2 / x1^2 scale, b..f = coordinates over x1
    a, b, c, d, e, f = (_c(x, i) for i in range(6))
    return a / ((b - 1) ** 2 + (c - d) ** 2 + (e - f) ** 2)


def _i_30_3(x):  # n, theta
    n, t = _c(x, 0), _c(x, 1)
    return torch.sin(n * t / 2) ** 2 / torch.sin(t / 2) ** 2


_ENTRIES = [
    # id, fn, ranges, variables, formula
    ("I.6.2", _i_6_2, ((-1.0, 1.0), (0.5, 2.0)), ("theta", "sigma"),
     "exp(-theta^2/(2 sigma^2)) / sqrt(2 pi sigma^2)"),
    ("I.6.2b", _i_6_2b, (PM1, PM1, (0.5, 2.0)), ("theta", "theta1", "sigma"),
     "exp(-(theta-theta1)^2/(2 sigma^2)) / sqrt(2 pi sigma^2)"),
    ("I.9.18", _i_9_18, (PM1, (-1.0, 0.0), PM1, PM1, PM1, PM1), ("a", "b", "c", "d", "e", "f"),
     "a / ((b-1)^2 + (c-d)^2 + (e-f)^2)"),
    ("I.12.11", lambda x: 1 + _c(x, 0) * torch.sin(_c(x, 1)), (PM1, ANGLE), ("a", "theta"),
     "1 + a sin(theta)   [F/(q E), a = B v / E]"),
    ("I.13.12", lambda x: _c(x, 0) * (1 / _c(x, 1) - 1), (PM1, (0.5, 2.0)), ("a", "b"),
     "a (1/b - 1)   [a = G m1 m2 / r1 in energy units, b = r2/r1]"),
    ("I.15.3x", lambda x: (1 - _c(x, 0)) / torch.sqrt(1 - _c(x, 1) ** 2), (PM1, (-0.8, 0.8)), ("a", "b"),
     "(1 - a) / sqrt(1 - b^2)   [x'/x, a = u t / x, b = u / c]"),
    ("I.16.6", lambda x: (_c(x, 0) + _c(x, 1)) / (1 + _c(x, 0) * _c(x, 1)), ((-0.9, 0.9), (-0.9, 0.9)),
     ("u", "v"), "(u + v) / (1 + u v)   [velocities over c]"),
    ("I.18.4", lambda x: (1 + _c(x, 0) * _c(x, 1)) / (1 + _c(x, 0)), (UNIT, PM1), ("a", "b"),
     "(1 + a b) / (1 + a)   [r/r1, a = m2/m1, b = r2/r1]"),
    ("I.26.2", lambda x: torch.asin(_c(x, 0) * torch.sin(_c(x, 1))), ((0.0, 0.9), (0.0, math.pi)),
     ("n", "theta2"), "arcsin(n sin(theta2))"),
    ("I.27.6", lambda x: 1 / (1 + _c(x, 0) * _c(x, 1)), (UNIT, UNIT), ("a", "b"),
     "1 / (1 + a b)   [f/d1, a = n, b = d1/d2]"),
    ("I.29.16", lambda x: torch.sqrt(1 + _c(x, 0) ** 2 - 2 * _c(x, 0) * torch.cos(_c(x, 1) - _c(x, 2))),
     (UNIT, ANGLE, ANGLE), ("a", "theta1", "theta2"), "sqrt(1 + a^2 - 2 a cos(theta1 - theta2))   [a = x2/x1]"),
    ("I.30.3", _i_30_3, ((0.0, 2.0), (0.5, TWO_PI - 0.5)), ("n", "theta"),
     "sin^2(n theta/2) / sin^2(theta/2)"),
    ("I.30.5", lambda x: torch.asin(_c(x, 0) / _c(x, 1)), ((0.1, 1.0), (1.25, 2.0)), ("a", "n"),
     "arcsin(a / n)   [a = lambda/d > 0]"),
    ("I.37.4", lambda x: 1 + _c(x, 0) + 2 * torch.sqrt(_c(x, 0)) * torch.cos(_c(x, 1)), ((0.1, 1.0), ANGLE),
     ("a", "delta"), "1 + a + 2 sqrt(a) cos(delta)   [I/I1, a = I2/I1]"),
    ("I.40.1", lambda x: _c(x, 0) * torch.exp(-_c(x, 1)), (UNIT, (0.0, 2.0)), ("n0", "a"),
     "n0 exp(-a)   [a = m g x / (k T)]"),
    ("I.44.4", lambda x: _c(x, 0) * torch.log(_c(x, 1)), (UNIT, (0.5, 2.0)), ("n", "a"),
     "n ln(a)   [E/(k T), a = V2/V1]"),
    ("I.50.26", lambda x: torch.cos(_c(x, 0)) + _c(x, 1) * torch.cos(_c(x, 0)) ** 2, (ANGLE, PM1),
     ("a", "alpha"), "cos(a) + alpha cos^2(a)   [a = omega t]"),
    ("II.2.42", lambda x: (_c(x, 0) - 1) * _c(x, 1), (PM1, PM1), ("a", "b"),
     "(a - 1) b   [a = T2/T1]"),
    ("II.6.15a", lambda x: 3 / (4 * math.pi) * _c(x, 2) * torch.sqrt(_c(x, 0) ** 2 + _c(x, 1) ** 2),
     (PM1, PM1, PM1), ("a", "b", "c"), "3/(4 pi) c sqrt(a^2 + b^2)   [coordinates over r]"),
    ("II.11.7", lambda x: _c(x, 0) * (1 + _c(x, 1) * torch.cos(_c(x, 2))), (UNIT, PM1, ANGLE),
     ("n0", "a", "theta"), "n0 (1 + a cos(theta))   [a = p E / (k T)]"),
    ("II.11.27", lambda x: _c(x, 0) * _c(x, 1) / (1 - _c(x, 0) * _c(x, 1) / 3), ((0.1, 1.0), (0.1, 1.0)),
     ("n", "alpha"),
     "n alpha / (1 - n alpha / 3)   [densities and polarisabilities > 0]"),
    ("II.35.18", lambda x: _c(x, 0) / (torch.exp(_c(x, 1)) + torch.exp(-_c(x, 1))), (UNIT, PM1), ("n0", "a"),
     "n0 / (exp(a) + exp(-a))   [a = mu B / (k T)]"),
    ("II.36.38", lambda x: _c(x, 0) + _c(x, 1) * _c(x, 2), (PM1, PM1, PM1), ("a", "alpha", "b"),
     "a + alpha b"),
    ("II.38.3", lambda x: _c(x, 0) / _c(x, 1), ((0.1, 1.0), (0.5, 2.0)), ("a", "b"),
     "a / b   [F/(Y A): a = |x| / L, b = d / L]"),
    ("III.10.19", lambda x: torch.sqrt(1 + _c(x, 0) ** 2 + _c(x, 1) ** 2), (PM1, PM1), ("a", "b"),
     "sqrt(1 + a^2 + b^2)   [a = Bx/Bz, b = By/Bz]"),
    ("III.17.37", lambda x: _c(x, 0) * (1 + _c(x, 1) * torch.cos(_c(x, 2))), (PM1, PM1, ANGLE),
     ("beta", "alpha", "theta"), "beta (1 + alpha cos(theta))"),
]

FEYNMAN: dict[str, PaperFunction] = {
    name: PaperFunction(name, fn, tuple((float(lo), float(hi)) for lo, hi in ranges), variables, formula)
    for name, fn, ranges, variables, formula in _ENTRIES
}


def feynman_dataset(name: str, n_train: int = 1000, n_test: int = 1000, seed: int = 0,
                    dtype=torch.float64) -> Dataset:
    """Data for the Feynman equation ``name`` (a key of :data:`FEYNMAN`, e.g. ``"I.16.6"``).

    Returns:
        :class:`~kanlab.Dataset` with inputs ``(N, n_var)`` uniform in the entry's ranges and
        labels ``(N, 1)``.

    Example:
        >>> feynman_dataset("I.16.6", n_train=8, n_test=4).train_label.shape
        torch.Size([8, 1])
    """
    if name not in FEYNMAN:
        raise ValueError(f"name must be one of {list(FEYNMAN)}, got {name!r}")
    return sample_function(FEYNMAN[name], n_train, n_test, seed, dtype)
