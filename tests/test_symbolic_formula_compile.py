"""Formulas from KANs (any multiplication arity), clean-up, exports, and the formula -> KAN compiler."""
import pytest
import torch

sympy = pytest.importorskip("sympy")

import kanlab  # noqa: E402
from kanlab.symbolic import (  # noqa: E402
    compile_formula,
    library_names,
    round_constants,
    symbolic_formula,
    to_latex,
    to_numpy,
    to_torch,
)
from kanlab.symbolic.formula import nice_number  # noqa: E402

x0, x1, x2 = sympy.symbols("x0 x1 x2")
pi = sympy.pi

DOMAIN = {"sqrt": (0.2, 2), "x^1.5": (0.2, 2), "1/sqrt": (0.2, 2), "log": (0.2, 2), "arcsin": (-0.9, 0.9),
          "arccos": (-0.9, 0.9), "arctanh": (-0.9, 0.9), "tan": (-1.2, 1.2), "sgn": (0.1, 1)}


def _points(n_var, lo=-0.9, hi=0.9, n=200):
    return torch.rand(n, n_var, dtype=torch.float64, generator=torch.Generator().manual_seed(0)) * (hi - lo) + lo


def _check_compiled(f, variables, lo=-0.9, hi=0.9):
    model = compile_formula(f, variables)
    x = _points(len(variables), lo, hi)
    ref = torch.as_tensor(to_numpy(f, variables)(x.numpy()))
    torch.testing.assert_close(model(x)[:, 0], ref, rtol=1e-12, atol=1e-12)
    back = symbolic_formula(model, var_names=variables)[0]
    assert sympy.simplify(back - f) == 0, (f, back)
    return model


LIBRARY_CASES = [n for n in library_names() if n not in ("0", "x", "gaussian") and not n.endswith("_test")]


@pytest.mark.parametrize("name", LIBRARY_CASES)
def test_compile_each_library_function_roundtrip(name):
    fn = kanlab.symbolic.get_function(name)
    lo, hi = DOMAIN.get(name, (0.2, 0.9) if name.startswith("1/x") else (-0.9, 0.9))
    f = 2 * fn.sympy_fn(x0) + sympy.Rational(1, 3)
    _check_compiled(f, [x0], lo, hi)


@pytest.mark.parametrize("f,lo,hi", [
    (sympy.exp(sympy.sin(pi * x0) + x1 ** 2), -1, 1), (x0 * x1, -1, 1), (x0 / x1, 0.5, 2),
    ((x0 + x1) / (1 + x0 * x1), -0.8, 0.8), (sympy.sqrt(1 + x0 ** 2 + x1 ** 2), -1, 1),
    (sympy.sin(x0) + x0 ** 2 + 3 * x0 * x1 * x2, -1, 1), (sympy.tanh(sympy.atanh(x0) + sympy.atanh(x1)), -0.8, 0.8)])
def test_compile_composite_formulas(f, lo, hi):
    variables = sorted(f.free_symbols, key=lambda s: s.name)
    model = _check_compiled(f, variables, lo, hi)
    x = _points(len(variables), lo, hi)
    model(x).sum().backward()  # trainable afterwards
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in model.symbolic.parameters())


def test_compile_errors():
    with pytest.raises(ValueError, match="no library function"):
        compile_formula(sympy.besselj(0, x0))
    with pytest.raises(ValueError, match="not in variables"):
        compile_formula(x0 + x1, [x0])


@pytest.mark.parametrize("arity", [1, 2, 3])
def test_formula_with_multiplication_nodes_any_arity(arity, f64):
    model = kanlab.KAN([3, [1, 2], 1], mult_arity=arity, seed=0, dtype=torch.float64)
    names = ["x", "sin", "exp", "x^2", "cos", "tanh", "1/x", "x^3", "arctan"]
    gen = torch.Generator().manual_seed(1)
    for l, layer in enumerate(model.layers):
        for j in range(layer.out_features):
            for i in range(layer.in_features):
                p = (torch.rand(4, generator=gen, dtype=torch.float64) + 0.5).tolist()
                name = names[(3 * j + i + l) % len(names)] if l == 0 else "x"
                if name == "1/x":
                    p[1] = 3.0  # keep the pole away from the inputs
                model.fix_symbolic(l, i, j, name, params=p)
    formula = symbolic_formula(model, simplify=False)[0]
    x = _points(3, -1, 1)
    ref = torch.as_tensor(to_numpy(formula, [x0, x1, x2])(x.numpy()))
    torch.testing.assert_close(ref, model(x)[:, 0], rtol=1e-10, atol=1e-10)
    simple = symbolic_formula(model)[0]
    torch.testing.assert_close(to_torch(simple, [x0, x1, x2])(x), model(x)[:, 0], rtol=1e-8, atol=1e-8)


def test_formula_requires_symbolic_edges_and_names_them():
    model = kanlab.KAN([2, 2, 1], seed=0)
    model.fix_symbolic(0, 0, 0, "sin")
    with pytest.raises(ValueError, match=r"numeric edges: \(l=0, i=1, j=0\)"):
        model.symbolic_formula()
    with torch.no_grad():  # edges off in both parts count as 0
        for layer in model.layers:
            layer.mask.zero_()
    model.fix_symbolic(1, 1, 0, "x", params=(1, 0, 2, 0))
    assert model.symbolic_formula(var_names=["a", "b"]) == [0]


def test_rounding_and_exports():
    assert nice_number(3.14159265358979) == pi and nice_number(0.5 + 1e-9) == sympy.Rational(1, 2)
    assert nice_number(0.3989422804) == 1 / sympy.sqrt(2 * pi) and nice_number(0.123456789) is None
    assert nice_number(34636.4) is None
    e = round_constants(1.0000000001 * sympy.sin(3.14159265359 * x0) + 2.3456 * x1)
    assert e == sympy.sin(pi * x0) + sympy.Float(2.3456) * x1
    assert to_latex(sympy.sin(pi * x0)) == r"\sin{\left(\pi x_{0} \right)}"
    x = _points(2)
    f = sympy.exp(x0) * x1 + 2
    torch.testing.assert_close(to_torch(f)(x), torch.exp(x[:, 0]) * x[:, 1] + 2)
    torch.testing.assert_close(torch.as_tensor(to_numpy(f)(x.numpy())), torch.exp(x[:, 0]) * x[:, 1] + 2)
    torch.testing.assert_close(to_torch(sympy.Integer(3), [x0])(x[:, :1]), torch.full((200,), 3.0, dtype=x.dtype))
