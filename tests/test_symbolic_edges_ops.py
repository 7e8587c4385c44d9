"""SymbolicEdges and the model operations (suggest / fix / unfix / auto_symbolic), mixed models."""
import copy
import math

import pytest
import torch

import kanlab
from kanlab import splines
from kanlab.symbolic import SingularFitError, SymbolicEdges, register


def test_symbolic_edges_forward_matches_formula_and_mask():
    sym = SymbolicEdges(2, 3, dtype=torch.float64)
    sym.set_edge(0, 0, "sin", 2.0, 0.5, 1.5, -0.2)
    sym.set_edge(2, 1, "1/x", 1.0, 0.0, 3.0, 1.0)
    sym.set_edge(1, 1, "log", 1.0, 0.0, 1.0, 0.0, active=False)
    x = torch.tensor([[0.3, 0.0], [-0.7, 2.0]], dtype=torch.float64)  # 1/x and log at 0: no NaN
    e = sym.edges(x)
    assert e.shape == (2, 3, 2) and torch.isfinite(e).all()
    torch.testing.assert_close(e[:, 0, 0], 1.5 * torch.sin(2 * x[:, 0] + 0.5) - 0.2)
    assert e[1, 2, 1] == 3.0 / 2.0 + 1.0 and e[:, 1].abs().sum() == 0 and e[:, 0, 1].abs().sum() == 0
    torch.testing.assert_close(sym(x), e.sum(-1))
    y = sym(x.requires_grad_(True)).sum()
    y.backward()
    assert torch.isfinite(x.grad).all() and torch.isfinite(sym.a.grad).all()


def test_symbolic_edges_select_config_deepcopy_gradcheck():
    sym = SymbolicEdges(3, 2, dtype=torch.float64)
    sym.set_edge(0, 2, "exp", 0.5, 0.1, 2.0, 0.0)
    sym.set_edge(1, 0, "x^2", 1.0, 0.2, 1.0, 0.3)
    x = torch.rand(5, 3, dtype=torch.float64)
    sub = sym.select([1, 0], [0, 2])
    torch.testing.assert_close(sub.edges(x[:, [0, 2]]), sym.edges(x)[:, [1, 0]][:, :, [0, 2]])
    clone = SymbolicEdges.from_config(sym.config_dict(), dtype=torch.float64)
    clone.load_state_dict(sym.state_dict())
    torch.testing.assert_close(clone(x), sym(x))
    twin = copy.deepcopy(sym)
    with torch.no_grad():
        twin.c.mul_(2)
    assert not torch.allclose(twin(x), sym(x))
    assert torch.autograd.gradcheck(lambda a, xx: (sym.a * 0 + a * 1).sum() * 0 + sym(xx).sum(),
                                    (torch.ones(1, dtype=torch.float64, requires_grad=True),
                                     x.clone().requires_grad_(True)))
    with pytest.raises(ValueError, match="unknown symbolic function"):
        sym.set_edge(0, 0, "nope")


def _spline_model(fns, seed=0):
    """A [2, 1] float64 KAN whose edges are splines fit to known functions (fine grid)."""
    model = kanlab.KAN([2, 1], grid_size=40, seed=seed, dtype=torch.float64)
    layer = model.layers[0]
    pts = torch.linspace(-1, 1, 400, dtype=torch.float64)[:, None].expand(400, 2)
    target = torch.stack([fns[0](pts[:, 0]), fns[1](pts[:, 1])], dim=-1)[:, None, :]  # (M, 1, 2)
    with torch.no_grad():
        layer.scale_base.zero_()
        layer.coef.copy_(splines.curve_to_coef(pts, target, layer.grid, layer.spline_order))
    return model


def test_suggest_fix_unfix_and_explicit_data():
    model = _spline_model([lambda t: torch.sin(math.pi * t), lambda t: t ** 2])
    x = torch.rand(300, 2, dtype=torch.float64) * 2 - 1
    model(torch.rand(7, 2, dtype=torch.float64))  # an unrelated forward pass must not matter
    top = model.suggest_symbolic(0, 0, 0, x, topk=3)
    assert top[0].name == "sin" and top[0].r2 > 1 - 1e-8
    assert model.suggest_symbolic(0, 1, 0, x)[0].name == "x^2"
    before = model(x)
    r2 = model.fix_symbolic(0, 0, 0, "sin", x)
    assert r2 > 1 - 1e-8 and model.layers[0].mask[0, 0] == 0 and model.symbolic["0"].mask[0, 0] == 1
    assert (model(x) - before).abs().max() < 1e-4
    model.unfix_symbolic(0, 0, 0)
    torch.testing.assert_close(model(x), before)
    with pytest.raises(ValueError, match="unknown symbolic function"):
        model.fix_symbolic(0, 0, 0, "nope", x)
    with pytest.raises(IndexError, match="layer index"):
        model.fix_symbolic(3, 0, 0, "sin", x)


def test_singular_fit_and_nan_function_never_put_nan_in_model():
    model = _spline_model([lambda t: t * 0 + 0.5, lambda t: t])
    x = torch.rand(100, 2, dtype=torch.float64) * 2 - 1
    with pytest.raises(SingularFitError, match=r"edge \(l=0, i=0, j=0\).*constant"):
        model.fix_symbolic(0, 0, 0, "sin", x)
    register("nan_fn_test", lambda t: t * float("nan"), lambda t: t, 1, overwrite=True)
    with pytest.raises(ValueError, match="non-finite"):
        model.fix_symbolic(0, 1, 0, "nan_fn_test", x)
    choices = model.auto_symbolic(x, library=["nan_fn_test", "x", "sin"])
    assert {(c.i, c.name) for c in choices} == {(0, "0"), (1, "x")}
    assert torch.isfinite(model(x)).all()
    torch.testing.assert_close(model(x)[:, 0], 0.5 + x[:, 1], atol=1e-6, rtol=0)


def test_mixed_model_trains_in_float64_and_deepcopies():
    model = kanlab.KAN([2, 3, 1], grid_size=5, seed=0, dtype=torch.float64)
    x = torch.rand(200, 2, dtype=torch.float64) * 2 - 1
    model.fix_symbolic(0, 0, 1, "sin", params=(1.0, 0.0, 0.5, 0.0))
    model.fix_symbolic(1, 2, 0, "x^2")
    data = kanlab.datasets.from_function(lambda t: torch.sin(2 * t[:, :1]) + t[:, 1:] ** 2, n_var=2,
                                         n_train=200, n_test=50, dtype=torch.float64)
    a0 = model.symbolic["0"].a.detach().clone()
    twin = copy.deepcopy(model)
    hist = model.fit(data, steps=5, progress=False)
    assert hist.train_rmse[-1] < hist.train_rmse[0] and torch.isfinite(model(x)).all()
    assert not torch.equal(model.symbolic["0"].a.detach(), a0)  # a, b, c, d train
    assert torch.equal(twin.symbolic["0"].a.detach(), a0) and twin.symbolic["0"].names[1][0] == "sin"


def test_auto_symbolic_layer_by_layer_snaps_known_edges():
    model = _spline_model([lambda t: torch.exp(0.5 * t), lambda t: torch.cos(2 * t)])
    x = torch.rand(400, 2, dtype=torch.float64) * 2 - 1
    choices = model.auto_symbolic(x)
    assert [(c.i, c.fixed) for c in choices] == [(0, True), (1, True)]
    assert choices[0].name == "exp" and choices[1].name in ("cos", "sin")  # sin(2x + pi/2) = cos(2x)
    assert all(c.r2 > 1 - 1e-8 for c in choices)
    torch.testing.assert_close(model(x)[:, 0], torch.exp(0.5 * x[:, 0]) + torch.cos(2 * x[:, 1]),
                               atol=1e-6, rtol=0)


def test_import_does_not_load_sympy():
    import subprocess
    import sys

    code = "import sys, kanlab, kanlab.symbolic; m = kanlab.KAN([2, 1]); m.fix_symbolic(0, 0, 0, 'sin'); " \
           "print('sympy' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={**__import__("os").environ, "PYTHONPATH": "src"})
    assert out.stdout.strip() == "False"


def test_auto_symbolic_layers_snaps_only_the_layers_asked():
    model = kanlab.KAN([2, 2, 1], grid_size=5, seed=0, dtype=torch.float64)
    x = torch.rand(200, 2, dtype=torch.float64) * 2 - 1
    choices = model.auto_symbolic(x, layers=[1])
    assert {c.l for c in choices} == {1} and len(choices) == 2
    assert model.layers[0].mask.sum() == 4 and model.layers[1].mask.sum() == 0  # layer 0 still numeric
    later = model.auto_symbolic(x, layers=[0])
    assert {c.l for c in later} == {0} and len(later) == 4 and torch.isfinite(model(x)).all()
    with pytest.raises(IndexError, match="layers"):
        model.auto_symbolic(x, layers=[2])
    fresh = kanlab.KAN([2, 1], seed=0, dtype=torch.float64)
    for call in (lambda: fresh.auto_symbolic(x, library=["x", "nope"]),
                 lambda: fresh.suggest_symbolic(0, 0, 0, x, library=["nope"])):
        with pytest.raises(ValueError, match="unknown symbolic function 'nope'"):
            call()
    assert fresh.layers[0].mask.sum() == 2  # nothing was snapped before the error
