"""The printed formula is the model: evaluated with numpy it equals the snapped model's output
(simplify=False: to 1e-8 relative; the default simplify rounds constants within its tolerance)."""
import math

import numpy as np
import pytest
import torch

sympy = pytest.importorskip("sympy")

import kanlab  # noqa: E402
from kanlab.symbolic import auto_symbolic, default_library, fix_symbolic, symbolic_formula, to_numpy  # noqa: E402


def _agree(model, x, simplify=False):
    formula = symbolic_formula(model, simplify=simplify)[0]
    names = sympy.symbols(f"x0:{model.n_inputs}")
    with np.errstate(all="ignore"):
        pred = to_numpy(formula, names)(x.numpy())
    out = model(x)[:, 0].detach().numpy()
    return formula, float(np.max(np.abs(pred - out)) / max(1.0, np.max(np.abs(out))))


@pytest.mark.parametrize("name", default_library())
def test_every_library_function_prints_what_it_computes(name):
    # a two-layer model: the edge c f(a u + b) + d of this function on top of a linear inner edge
    x = torch.linspace(0.2, 0.8, 200, dtype=torch.float64)[:, None]
    model = kanlab.KAN([1, 1, 1], seed=0, dtype=torch.float64)
    fix_symbolic(model, 0, 0, 0, "x", params=(1.0, 0.0, 0.9, 0.05))
    fix_symbolic(model, 1, 0, 0, name, params=(1.0, 0.0, 1.3, -0.2))
    formula, err = _agree(model, x)
    assert err <= 1e-8, f"{name}: {formula} differs from the model by {err:.2e}"
    if name == "sgn":  # constant on this range: nothing to refit
        return
    # refit from the model's own values (the path auto_symbolic takes): still the model
    fix_symbolic(model, 1, 0, 0, name, x=x)
    formula, err = _agree(model, x)
    assert err <= 1e-8, f"{name} after refit: {formula} differs from the model by {err:.2e}"


def test_log_of_a_negative_node_is_folded_and_prints_what_it_computes():
    # the case: log(1 + x^2 + y^2) learnt with the inner node negative, -0.674 (1 + x^2 + y^2)
    x = torch.rand(300, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(0)) * 2 - 1
    model = kanlab.KAN([2, 1, 1], seed=0, dtype=torch.float64)
    fix_symbolic(model, 0, 0, 0, "x^2", params=(1.0, 0.0, -0.674, -0.337))
    fix_symbolic(model, 0, 1, 0, "x^2", params=(1.0, 0.0, -0.674, -0.337))
    fix_symbolic(model, 1, 0, 0, "log", params=(1.0, 0.0, 1.0, 0.39))
    formula, err = _agree(model, x)
    assert not err <= 1e-8  # the safe log works on |u|: log(u) of a negative u is not what it computes
    r2 = fix_symbolic(model, 1, 0, 0, "log", x=x)  # refit from data folds the sign
    assert r2 == pytest.approx(1.0, abs=1e-12)
    formula, err = _agree(model, x)
    assert err <= 1e-8, f"{formula}: {err:.2e}"


def test_auto_symbolic_snaps_every_edge_and_the_formula_is_the_model():
    data = kanlab.datasets.from_function(lambda x: torch.log(1 + x[:, [0]] ** 2 + x[:, [1]] ** 2), 2,
                                         n_train=300, n_test=10, seed=0, dtype=torch.float64)
    model = kanlab.KAN([2, 3, 1], grid_size=5, seed=0, dtype=torch.float64)
    model.fit(data, steps=20, progress=False)
    choices = auto_symbolic(model, data.train_input)
    assert all(c.fixed and c.reason == "" for c in choices)
    formula, err = _agree(model, data.train_input)  # never raises right after auto_symbolic
    assert err <= 1e-8, f"{formula}: {err:.2e}"


def test_an_edge_no_candidate_can_print_exactly_stays_numeric_and_says_why():
    x = torch.linspace(-1, 1, 200, dtype=torch.float64)[:, None]
    model = kanlab.KAN([1, 1], seed=0, dtype=torch.float64)
    with torch.no_grad():
        model.layers[0].mask.zero_()
    fix_symbolic(model, 0, 0, 0, "x^3", params=(1.0, 0.0, 1.0, 0.0))
    # refit the same edge with a library whose only entry is undefined on part of the data
    model.unfix_symbolic(0, 0, 0)
    with torch.no_grad():
        model.layers[0].mask.fill_(1.0)
    model.fit(kanlab.Dataset(x, x ** 3, x, x ** 3), steps=10, progress=False)
    (choice,) = auto_symbolic(model, x, library=["sqrt"])
    assert not choice.fixed and "domain" in choice.reason
    (choice,) = auto_symbolic(model, x)
    assert choice.fixed and not math.isinf(choice.r2)
