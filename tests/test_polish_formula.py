"""polish_formula: Levenberg-Marquardt on a sympy formula's floating constants (float64)."""
import math

import pytest
import torch

sympy = pytest.importorskip("sympy")

from kanlab.symbolic.polish import polish_formula  # noqa: E402


def _data():
    gen = torch.Generator().manual_seed(0)
    x = torch.rand(300, 2, generator=gen, dtype=torch.float64) * 2
    return x, 2 * x[:, 0] * torch.exp(-0.5 * x[:, 1]) + math.pi


def test_constants_reach_the_law_and_exact_numbers_stay():
    a, b = sympy.symbols("a b")
    x, y = _data()
    rough = sympy.Float(1.7) * a * sympy.exp(sympy.Float(-0.3) * b) + sympy.pi
    out, rmse = polish_formula(rough, [a, b], x, y)
    assert rmse < 1e-10
    assert out.has(sympy.pi)  # a named constant is not a parameter
    got = sorted(float(f) for f in out.atoms(sympy.Float))
    assert got == pytest.approx([-0.5, 2.0], abs=1e-9)


def test_a_formula_that_overflows_returns_as_it_is_without_a_solver_error(capfd):
    # exp(800 a) overflows on the data: no useful gradient; the solver must not be fed inf / NaN
    a, b = sympy.symbols("a b")
    x, y = _data()
    bad = sympy.Float(2.0) * sympy.exp(sympy.Float(800.0) * a) + b
    out, rmse = polish_formula(bad, [a, b], x, y)
    assert str(out) == str(bad) and rmse == math.inf
    captured = capfd.readouterr()
    assert "ERROR" not in captured.out + captured.err
