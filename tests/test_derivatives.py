"""Closed-form input jets (value, gradient, diagonal Hessian) against autograd double backward."""
import pytest
import torch
from torch import nn

import kanlab
from kanlab import derivatives, splines
from kanlab.derivatives import input_jet, laplacian

D64 = torch.float64


def _random_kan(width, seed=0, grid_size=5, base="silu", points=None):
    """A KAN with O(1) random coefficients (initial splines are near zero), grids adapted
    (non-uniform, grid_eps=0.5) to ``points`` when given."""
    model = kanlab.KAN(width, grid_size=grid_size, seed=seed, grid_eps=0.5, base_activation=base, dtype=D64)
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for layer in model.layers:
            layer.coef.copy_(torch.randn(layer.coef.shape, generator=gen, dtype=D64))
            layer.scale_base.copy_(torch.randn(layer.scale_base.shape, generator=gen, dtype=D64))
    if points is not None:
        model.update_grid(points)
    return model


def _points(n, d, seed=1):
    return torch.rand(n, d, generator=torch.Generator().manual_seed(seed), dtype=D64) * 2 - 1


def _assert_jets_close(a, b, tol=1e-10):
    for name, p, q in zip(("u", "grad", "hess_diag"), a, b):
        p, q = p.detach(), q.detach()
        scale = max(1.0, float(q.abs().max()))
        assert float((p - q).abs().max()) <= tol * scale, name


@pytest.mark.parametrize("width,base", [([2, 10, 1], "silu"), ([3, 4, 2, 2], "tanh"), ([2, 3, 1], "gelu"),
                                        ([2, [3, 2], 1], "silu")])
def test_jet_matches_double_backward(width, base):
    x = _points(40, width[0])
    model = _random_kan(width, base=base, points=x)  # update_grid: non-uniform grids
    assert not all(layer._uniform for layer in model.layers)
    _assert_jets_close(input_jet(model, x, method="jet"), input_jet(model, x, method="autograd"))


def test_jet_respects_masked_edges_and_points_off_the_grid():
    x = _points(30, 3) * 1.5  # some inputs beyond the grid range, on the extension knots
    model = _random_kan([3, 4, 2, 2], seed=3)
    model.layers[0].mask[1, 2] = 0.0
    model.layers[1].mask[0, :] = 0.0
    jet = input_jet(model, x, method="jet")
    _assert_jets_close(jet, input_jet(model, x, method="autograd"))
    assert torch.allclose(jet[0], model(x), atol=1e-12)


def test_basis_jet_matches_spline_derivatives():
    x = _points(50, 2)
    grid = splines.adaptive_grid(x, 7, 3, grid_eps=0.3)
    b0, b1, b2 = derivatives.basis_jet(x, grid, 3)
    assert torch.allclose(b0, splines.bspline_basis(x, grid, 3), atol=1e-12)
    assert torch.allclose(b1, splines.bspline_basis_derivative(x, grid, 3, 1), atol=1e-10)
    assert torch.allclose(b2, splines.bspline_basis_derivative(x, grid, 3, 2), atol=1e-9)


@pytest.mark.parametrize("name", ["silu", "tanh", "gelu", "identity"])
def test_base_jet_matches_autograd(name):
    x = torch.linspace(-3, 3, 41, dtype=D64).requires_grad_(True)
    b, d1, d2 = derivatives.base_jet(name, x)
    (g,) = torch.autograd.grad(b.sum(), x, create_graph=True)
    h = torch.autograd.grad(g.sum(), x)[0] if g.requires_grad else torch.zeros_like(x)  # identity: b'' = 0
    assert torch.allclose(d1, g, atol=1e-12) and torch.allclose(d2, h, atol=1e-12)


def test_laplacian_loss_gradients_equal_double_backward_ones():
    x = _points(60, 2)
    model = _random_kan([2, 5, 1], points=x)
    target = torch.sin(x[:, :1])

    def grads(method):
        model.zero_grad()
        u, lap = laplacian(model, x, method=method)
        loss = ((lap - target) ** 2).mean() + (u ** 2).mean()
        loss.backward()
        return [p.grad.clone() for p in model.parameters()]

    for g_jet, g_ref in zip(grads("jet"), grads("autograd")):
        assert torch.allclose(g_jet, g_ref, rtol=1e-10, atol=1e-10 * max(1.0, float(g_ref.abs().max())))


def test_laplacian_of_known_function_through_an_mlp_fallback():
    """An nn.Sequential goes through autograd; a linear-then-square net has a known Laplacian."""
    torch.manual_seed(0)
    lin = nn.Linear(3, 1, dtype=D64)

    class Square(nn.Module):
        def forward(self, t):
            return t ** 2

    model = nn.Sequential(lin, Square())
    x = _points(10, 3)
    u, lap = laplacian(model, x)
    w = lin.weight.detach()[0]
    assert torch.allclose(u, model(x)) and torch.allclose(lap, (2 * w.pow(2).sum()).expand(10, 1))
    assert not derivatives.supports_jet(model)
    mlp = nn.Sequential(nn.Linear(2, 8, dtype=D64), nn.Tanh(), nn.Linear(8, 2, dtype=D64))
    u, grad, hess = input_jet(mlp, _points(5, 2))
    assert u.shape == (5, 2) and grad.shape == (5, 2, 2) and hess.shape == (5, 2, 2)


def test_symbolic_kan_uses_the_autograd_path():
    model = _random_kan([2, 2, 1])
    assert derivatives.supports_jet(model)
    model.symbolic["0"] = nn.Module()  # any symbolic entry: the jet does not cover it
    assert not derivatives.supports_jet(model)
    with pytest.raises(ValueError, match="method='jet'"):
        input_jet(model, _points(4, 2), method="jet")


def test_bad_inputs_are_rejected_with_clear_errors():
    model = _random_kan([2, 3, 1])
    with pytest.raises(ValueError, match=r"x must have shape \(\.\.\., 2\)"):
        laplacian(model, _points(4, 3))
    with pytest.raises(ValueError, match=r"x must have shape \(N, 2\)"):
        laplacian(model, _points(4, 2).reshape(2, 2, 2))
    bad = _points(4, 2)
    bad[1, 0] = float("nan")
    with pytest.raises(ValueError, match="x contains 1 NaN"):
        laplacian(model, bad)
    with pytest.raises(TypeError, match="x must be a floating-point"):
        laplacian(model, torch.ones(4, 2, dtype=torch.long))
    with pytest.raises(ValueError, match="method must be"):
        laplacian(model, _points(4, 2), method="fd")
    with pytest.raises(TypeError, match="model must be a torch.nn.Module"):
        laplacian(lambda t: t, _points(4, 2))


def test_double_backward_through_the_fast_kernels_at_batch_scale():
    """Large batches take the fused C++ kernels (where built), whose create_graph backward once lost
    the history of non-contiguous inputs; the autograd path must still equal the jet there."""
    x = _points(2500, 2)
    model = kanlab.KAN([2, 10, 1], grid_size=5, grid_eps=1.0, seed=0, dtype=D64)
    _assert_jets_close(input_jet(model, x, method="jet"), input_jet(model, x, method="autograd"))
