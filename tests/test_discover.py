"""kanlab.discover and `kanlab discover`: from a table to the law behind it (float64)."""
import math

import numpy as np
import pytest
import torch
from conftest import uniform_rows as _rows

sympy = pytest.importorskip("sympy")

import kanlab  # noqa: E402
from kanlab.cli import main  # noqa: E402
from kanlab.symbolic import to_numpy  # noqa: E402


def test_discover_finds_a_shifted_product_and_its_model_is_the_formula():
    x = _rows(250, [(-1, 1), (0, 2 * math.pi)])
    y = 1 + x[:, 0] * torch.sin(x[:, 1])
    result = kanlab.discover(x, y, names=["a", "theta"], time_budget=30, steps=15)
    a, theta = sympy.symbols("a theta")
    assert sympy.simplify(result.formula - (1 + a * sympy.sin(theta))) == 0, result.summary()
    assert result.relative_error < 1e-10 and result.tree.kind == "product"
    assert sum(c.chosen for c in result.candidates) == 1 and any(c.chosen for c in result.pareto)
    assert result.complexity == min(c.complexity for c in result.pareto if c.chosen)
    # the returned KAN computes the printed formula
    pred = to_numpy(result.formula, [a, theta])(x.numpy())
    np.testing.assert_allclose(result.model(x)[:, 0].detach().numpy(), pred, rtol=1e-8, atol=1e-10)
    assert "Pareto front" in str(result)


def test_discover_rejects_bad_input_with_named_arguments():
    x = _rows(50, [(0, 1), (0, 1)])
    with pytest.raises(ValueError, match="y must have shape"):
        kanlab.discover(x, torch.zeros(49, dtype=torch.float64))
    with pytest.raises(ValueError, match="names"):
        kanlab.discover(x, x[:, 0], names=["a"])
    with pytest.raises(ValueError, match="time_budget"):
        kanlab.discover(x, x[:, 0], time_budget=0)
    with pytest.raises(ValueError, match="X contains"):
        kanlab.discover(torch.full((50, 2), float("nan"), dtype=torch.float64), x[:, 0])


def test_cli_discover_prints_the_law_of_a_csv(tmp_path, capsys):
    pd = pytest.importorskip("pandas")
    x = _rows(200, [(0.1, 1.0), (0.5, 2.0)], seed=1).numpy()
    path = tmp_path / "data.csv"
    pd.DataFrame({"a": x[:, 0], "b": x[:, 1], "F": x[:, 0] / x[:, 1]}).to_csv(path, index=False)
    code = main(["discover", str(path), "--target", "F", "--time-budget", "20", "--tree",
                 "--model", str(tmp_path / "law.kan")])
    out = capsys.readouterr().out
    assert code == 0
    assert "formula: a/b" in out, out
    model = kanlab.load(tmp_path / "law.kan")
    assert str(model.symbolic_formula()[0]) == "a/b"
    assert main(["discover", str(path), "--target", "G"]) == 2
    assert "no column" in capsys.readouterr().err


# ---------------------------------------------------------------------- the seven laws, from data alone
LAWS = {
    "exp_sin_sq": (lambda x: torch.exp(torch.sin(math.pi * x[:, 0]) + x[:, 1] ** 2), [(-1, 1)] * 2,
                   lambda a, b: sympy.exp(sympy.sin(sympy.pi * a) + b ** 2)),
    "product": (lambda x: x[:, 0] * x[:, 1], [(-1, 1)] * 2, lambda a, b: a * b),
    "quotient": (lambda x: x[:, 0] / x[:, 1], [(0.5, 2)] * 2, lambda a, b: a / b),
    "sin_cos": (lambda x: torch.sin(math.pi * x[:, 0]) + torch.cos(math.pi * x[:, 1]), [(-1, 1)] * 2,
                lambda a, b: sympy.sin(sympy.pi * a) + sympy.cos(sympy.pi * b)),
    "velocity": (lambda x: (x[:, 0] + x[:, 1]) / (1 + x[:, 0] * x[:, 1]), [(-0.8, 0.8)] * 2,
                 lambda a, b: (a + b) / (1 + a * b)),
    "sqrt": (lambda x: torch.sqrt(1 + x[:, 0] ** 2 + x[:, 1] ** 2), [(-1, 1)] * 2,
             lambda a, b: sympy.sqrt(1 + a ** 2 + b ** 2)),
    "gaussian": (lambda x: torch.exp(-x[:, 0] ** 2 / 2) / math.sqrt(2 * math.pi), [(-2, 2)],
                 lambda a: sympy.exp(-a ** 2 / 2) / sympy.sqrt(2 * sympy.pi)),
}


@pytest.mark.slow
@pytest.mark.parametrize("name", list(LAWS))
def test_discover_recovers_the_workflow_laws(name):
    f, ranges, exact = LAWS[name]
    x = _rows(1000, ranges)
    symbols = sympy.symbols(f"x0:{len(ranges)}")
    result = kanlab.discover(x, f(x), time_budget=120)
    fresh = _rows(1000, ranges, seed=123)
    pred = to_numpy(result.formula, symbols)(fresh.numpy())
    truth = f(fresh).numpy()
    assert np.sqrt(np.mean((pred - truth) ** 2)) <= 1e-6 * truth.std(), result.summary()
    assert sympy.simplify(result.formula - exact(*symbols)) == 0, result.summary()
