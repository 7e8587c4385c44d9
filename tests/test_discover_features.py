"""Sparse feature regression (kanlab.discovery.features), the constant rounding of discover's
candidates, and the benchmark's quick mode (float64)."""
import math
import time

import numpy as np
import pytest
import torch
from conftest import uniform_rows as _rows

sympy = pytest.importorskip("sympy")

from kanlab.discovery.features import feature_candidates  # noqa: E402
from kanlab.discovery.finish import finish  # noqa: E402
from kanlab.structure.problem import placeholder  # noqa: E402
from kanlab.symbolic import to_numpy  # noqa: E402


def _fresh_error(expr, f, ranges):
    x = _rows(500, ranges, seed=7)
    pred = to_numpy(expr, [placeholder(k) for k in range(len(ranges))])(x.numpy())
    truth = f(x).numpy()
    return float(np.sqrt(np.mean((pred - truth) ** 2)) / truth.std())


LAWS = {  # laws with a linear, rational, squared or logarithmic sparse form
    "linear": (lambda x: 2 * x[:, 0] * torch.cos(x[:, 1]) - x[:, 1] ** 2, [(-1, 1), (-2, 2)]),
    "rational": (lambda x: (1 + 2 * x[:, 0] * x[:, 1]) / (1 + x[:, 0]), [(0, 1), (-1, 1)]),
    "square": (lambda x: torch.sqrt(x[:, 0] ** 2 + 3 * x[:, 1]), [(-1, 1), (0.5, 2)]),
    "log": (lambda x: x[:, 0] ** 2 * torch.exp(-x[:, 1] ** 2 / x[:, 0]), [(0.5, 2), (-1, 1)]),
    "distance": (lambda x: 1 / (1 + (x[:, 0] - x[:, 1]) ** 2 + x[:, 2] ** 2), [(-1, 1)] * 3),
    # three terms u, v, T uv of the linearised form, none a good first pick alone
    "three-term ratio": (lambda x: (2 * x[:, 0] - x[:, 1]) / (1 + x[:, 0] * x[:, 1] / 2), [(-0.9, 0.9)] * 2),
    "phase product": (lambda x: torch.sin(x[:, 0] * x[:, 1]) / (2 + torch.cos(x[:, 0])), [(-2, 2)] * 2),
    # four factors among thousands of products: the greedy search over all features goes astray
    "five variables": (lambda x: 1 / (2 + torch.sin(x[:, 0]) + (x[:, 1] - x[:, 2]) ** 2 + x[:, 3] * x[:, 4]),
                       [(-1, 1)] * 5),
}


@pytest.mark.parametrize("name", list(LAWS))
def test_feature_regression_recovers_sparse_laws_exactly(name):
    f, ranges = LAWS[name]
    x = _rows(400, ranges)
    found = feature_candidates(x, f(x), time.perf_counter() + 60)
    assert found, name
    expr, err, source = found[0]
    assert err < 1e-10, (name, expr, source)
    assert _fresh_error(expr, f, ranges) < 1e-10, (name, expr)


def test_a_law_linear_in_one_variable_is_fit_after_dividing_it_out():
    # y changes sign with x0, so no transform of y applies; y / x0 = sqrt(2 + x1 x2) squares
    f = lambda x: x[:, 0] * torch.sqrt(2 + x[:, 1] * x[:, 2])  # noqa: E731
    ranges = [(-1, 1)] * 3
    x = _rows(400, ranges)
    found = feature_candidates(x, f(x), time.perf_counter() + 60, factor_out=True)
    # the y / x_k fits run only where y's own fits miss (so "y / x0" also says that they did)
    expr, err, source = found[0]
    assert err < 1e-10 and "y / x0" in source, (expr, source)
    assert _fresh_error(expr, f, ranges) < 1e-10, expr


def test_a_one_signed_target_keeps_every_row_whatever_the_noise_estimate():
    # a surrogate's poor error can overstate the noise 100-fold; rows of one sign still all
    # take the log transform (log y = -x0^2 - x0 x1 is the only sparse form)
    f = lambda x: torch.exp(-x[:, 0] ** 2 - x[:, 0] * x[:, 1])  # noqa: E731
    ranges = [(-1, 1)] * 2
    x = _rows(400, ranges)
    y = f(x)
    expr, err, source = feature_candidates(x, y, time.perf_counter() + 60, noise=2 * float(y.std()))[0]
    assert err < 1e-10 and "log" in source, (expr, source)


def test_a_log_fit_with_a_huge_constant_is_a_formula_not_an_overflow():
    from kanlab.discovery.features import _inverse_log

    u = placeholder(0)
    expr = _inverse_log(1.0)(1.0, sympy.Float(1000.0) + u)  # e^1000 overflows a float
    assert expr.free_symbols == {u}
    ratio = (expr / sympy.exp(1000 + u)).subs(u, sympy.Rational(1, 2)).evalf()
    assert abs(float(ratio) - 1.0) < 1e-12, expr


def test_feature_regression_rejects_degenerate_rational_fits():
    # a function with no sparse form: every candidate must be an honest fit (finite, not
    # claiming an error it does not have on fresh points)
    f = lambda x: torch.sin(x[:, 0] * x[:, 1] ** 2) ** 3 + torch.tanh(3 * x[:, 1])  # noqa: E731
    ranges = [(-2, 2), (-1, 1)]
    x = _rows(400, ranges)
    for expr, err, _ in feature_candidates(x, f(x), time.perf_counter() + 60):
        assert math.isfinite(err)
        assert _fresh_error(expr, f, ranges) < 5 * err + 1e-3


def test_finish_rounds_constants_of_a_noisy_fit_to_the_law():
    x = _rows(800, [(-1, 1), (0, 2 * math.pi)])
    gen = torch.Generator().manual_seed(3)
    clean = 2 * x[:, 0] + torch.sin(x[:, 1]) / math.pi
    y = clean + 0.01 * clean.std() * torch.randn(800, generator=gen, dtype=torch.float64)
    a, b = sympy.symbols("a b")
    # the kind of formula a fit on noisy data returns: constants a little off, a near-zero offset,
    # a near-zero phase (at 1e-2 all at once, 0.318 -> pi/10 would spoil the batch)
    rough = sympy.Float(2.0031) * a + sympy.Float(0.0004) + sympy.Float(0.3186) * sympy.sin(
        sympy.Float(1.0005) * b + sympy.Float(-0.0011))
    out = finish(rough, [a, b], {}, x, y)
    assert sympy.simplify(out - (2 * a + sympy.sin(b) / sympy.pi)) == 0, out


def _noisy(x, clean, seed=5):
    gen = torch.Generator().manual_seed(seed)
    return clean + 0.01 * clean.std() * torch.randn(clean.shape[0], generator=gen, dtype=torch.float64)


def test_finish_takes_a_common_constant_out_of_a_root_before_rounding():
    # c sqrt(a^2 + 4 b^2) / pi fit as c sqrt(k1 a^2 + k2 b^2): neither k is simple, k2 / k1 and
    # sqrt(k1) are
    x = _rows(800, [(-1, 1)] * 3)
    y = _noisy(x, x[:, 2] * torch.sqrt(x[:, 0] ** 2 + 4 * x[:, 1] ** 2) / math.pi)
    a, b, c = sympy.symbols("a b c")
    rough = c * sympy.sqrt(sympy.Float(0.10139) * a ** 2 + sympy.Float(0.40511) * b ** 2)
    out = finish(rough, [a, b, c], {}, x, y)
    assert sympy.simplify(out - c * sympy.sqrt(a ** 2 + 4 * b ** 2) / sympy.pi) == 0, out


def test_finish_prefers_the_simplest_number_the_noise_allows():
    # b in [-1, 0]: b and b^2 are nearly collinear, so noise moves their constants by ~3%
    x = _rows(800, [(-1, 1), (-1, 0), (-1, 1)])
    y = _noisy(x, x[:, 0] / ((x[:, 1] - 1) ** 2 + x[:, 2] ** 2))
    a, b, c = sympy.symbols("a b c")
    rough = a / (sympy.Float(0.967) * b ** 2 - sympy.Float(2.025) * b + sympy.Float(0.9995) * c ** 2
                 + sympy.Float(0.9988))
    out = finish(rough, [a, b, c], {}, x, y)
    assert sympy.simplify(out - a / ((b - 1) ** 2 + c ** 2)) == 0, out


def test_nice_number_prefers_few_digits_over_the_nearest_fraction():
    from kanlab.symbolic.formula import nice_number

    assert nice_number(0.636339, tolerance=1e-2) == 2 / sympy.pi  # not 7/11, 0.003% nearer
    assert nice_number(0.5, tolerance=1e-2) == sympy.Rational(1, 2)
    assert nice_number(math.pi / 6, tolerance=1e-6) == sympy.pi / 6


def test_benchmark_quick_mode_recovers_its_equations():
    bench = pytest.importorskip("benchmarks.discovery")
    rows = bench.run(["II.38.3", "I.12.11"], noise=0.0, n=300, budget=20, seed=0, gplearn=False,
                     log=lambda *a, **k: None)
    assert [r["exact"] for r in rows] == [True, True], [str(r["formula"]) for r in rows]
    assert "exact: 2 of 2" in bench.table(rows, with_gp=False)
