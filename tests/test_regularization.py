import math

import pytest
import torch

from kanlab import KAN
from kanlab.datasets import from_function
from kanlab.regularization import edge_scales, entropy, regularization


def uniform(n, d, seed=0):
    return torch.rand(n, d, generator=torch.Generator().manual_seed(seed), dtype=torch.float64) * 2 - 1


def linear_kan(width, weights):
    model = KAN(width, base_activation="identity", seed=0, dtype=torch.float64)
    with torch.no_grad():
        for layer, w in zip(model.layers, weights):
            layer.coef.zero_()
            layer.scale_base.copy_(torch.as_tensor(w, dtype=torch.float64))
    return model


def test_edge_scales_closed_form_for_linear_edges():
    x = uniform(500, 2)
    w = torch.tensor([[2.0, -0.5], [0.0, 3.0]], dtype=torch.float64)
    edges = w * x.unsqueeze(1)  # (N, 2, 2): phi_ji = w_ji x_i
    sd = x.std(dim=0)
    assert torch.allclose(edge_scales(x, edges), w.abs() * sd / (sd + 0.1), atol=1e-9)
    assert torch.equal(edge_scales(x[:1], edges[:1]), torch.zeros(2, 2, dtype=torch.float64))


def test_entropy_closed_form():
    s = torch.tensor([[1.0, 1.0], [2.0, 0.0]], dtype=torch.float64)
    p = torch.tensor([[1 / 3, 1 / 3], [2 / 3, 0.0]], dtype=torch.float64)
    h_rows = -(p * torch.log2(p + 1e-4)).sum(dim=1).mean()
    assert entropy(s, 1).item() == pytest.approx(h_rows.item(), rel=1e-12)
    spread = entropy(torch.tensor([[0.5, 0.5]]), 1)
    peaked = entropy(torch.tensor([[1.0, 0.0]]), 1)
    assert peaked < spread


def test_regularization_of_a_linear_network_by_hand():
    a, b, c = 2.0, -0.5, 3.0
    model = linear_kan([2, 1, 1], [[[a, b]], [[c]]])
    x = uniform(400, 2)
    pred, acts = model.forward_with_activations(x)
    h = a * x[:, 0] + b * x[:, 1]
    s0 = torch.stack([abs(a) * x[:, 0].std() / (x[:, 0].std() + 0.1),
                      abs(b) * x[:, 1].std() / (x[:, 1].std() + 0.1)]).unsqueeze(0)  # (1, 2)
    s1 = (abs(c) * h.std() / (h.std() + 0.1)).reshape(1, 1)

    def ent(v):
        v = v[v > 0]
        return float(-(v * torch.log2(v + 1e-4)).sum())

    ent0 = ent(s0[0] / (s0.sum() + 1)) + sum(ent(s0[:, i] / (s0[:, i] + 1)) for i in range(2)) / 2
    ent1 = 2 * ent(s1[0] / (s1.sum() + 1))
    expected = 0.7 * (s0.sum() + s1.sum()) + 1.5 * (ent0 + ent1)
    got = regularization(model, acts, lamb_l1=0.7, lamb_entropy=1.5)
    assert got.item() == pytest.approx(float(expected), rel=1e-7)


def test_coefficient_terms_closed_form():
    model = KAN([2, 2, 1], seed=0, dtype=torch.float64)
    with torch.no_grad():
        for layer in model.layers:
            n = layer.coef.shape[-1]
            layer.coef.copy_(torch.arange(n, dtype=torch.float64) ** 2)  # every edge 0, 1, 4, 9, ...
    _, acts = model.forward_with_activations(uniform(50, 2))
    n = model.layers[0].coef.shape[-1]
    mean_abs = sum(k * k for k in range(n)) / n
    mean_diff = sum(2 * k + 1 for k in range(n - 1)) / (n - 1)
    n_edges = 2 * 2 + 2 * 1
    got = regularization(model, acts, lamb_l1=0.0, lamb_entropy=0.0, lamb_coef=1.0, lamb_coefdiff=0.0)
    assert got.item() == pytest.approx(n_edges * mean_abs, rel=1e-12)
    got = regularization(model, acts, lamb_l1=0.0, lamb_entropy=0.0, lamb_coef=0.0, lamb_coefdiff=1.0)
    assert got.item() == pytest.approx(n_edges * mean_diff, rel=1e-12)


class SinEdge(torch.nn.Module):
    def __init__(self, mask):
        super().__init__()
        self.register_buffer("mask", mask)

    def edges(self, h):
        return self.mask * torch.sin(3 * h).unsqueeze(1)

    def forward(self, h):
        return self.edges(h).sum(-1)


def test_masked_and_constant_edges_have_finite_gradients_and_no_penalty():
    model = KAN([2, 3, 1], seed=0, dtype=torch.float64)
    x = uniform(200, 2)
    with torch.no_grad():
        model.layers[0].mask[1, 0] = 0.0  # numeric part off; a symbolic sin takes the edge over
    model.symbolic["0"] = SinEdge(torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.0, 0.0]], dtype=torch.float64))
    _, acts = model.forward_with_activations(x)
    reg = regularization(model, acts, lamb_entropy=0.0)
    reg.backward()
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)
    scales = [edge_scales(a.inputs, a.edges) for a in acts]
    assert scales[0][1, 0] > 0.1  # the symbolic edge varies...
    full = sum(s.sum() for s in scales)
    assert reg.item() == pytest.approx((full - scales[0][1, 0]).item(), rel=1e-12)  # ...but is not penalised
    del model.symbolic["0"]
    # a constant input column: zero spread, still finite gradients
    model.zero_grad()
    xc = x.clone()
    xc[:, 1] = 0.3
    _, acts = model.forward_with_activations(xc)
    regularization(model, acts).backward()
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)


def test_gradcheck_float64():
    model = KAN([2, 2, 1], seed=0, dtype=torch.float64)
    x = uniform(40, 2)
    # regularization as a function of one layer's scale_base, end to end
    sb = model.layers[0].scale_base.detach().clone().requires_grad_(True)

    def g(s):
        layer = model.layers[0]
        edges = s * torch.nn.functional.silu(x).unsqueeze(1) + layer.scale_spline * layer.spline(x).detach()
        return edge_scales(x, edges).sum() + entropy(edge_scales(x, edges), 0)

    assert torch.allclose(g(model.layers[0].scale_base), edge_scales(x, model.layers[0].edges(x)).sum()
                          + entropy(edge_scales(x, model.layers[0].edges(x)), 0))
    assert torch.autograd.gradcheck(g, (sb,))


def test_training_with_lamb_sparsifies():
    data = from_function(lambda x: torch.sin(math.pi * x[:, 0]), 2, n_train=200, n_test=50, seed=0,
                         dtype=torch.float64)
    l1 = {}
    for lamb in (0.0, 1e-2):
        model = KAN([2, 3, 1], grid_size=3, seed=0, dtype=torch.float64)
        hist = model.fit(data, steps=12, lamb=lamb, optimizer="lbfgs", progress=False)
        with torch.no_grad():
            _, acts = model.forward_with_activations(data.train_input)
        l1[lamb] = float(edge_scales(acts[0].inputs, acts[0].edges)[:, 1].sum())  # edges of unused x1
        assert len(hist.reg) == (12 if lamb else 0)
    assert l1[1e-2] < 0.3 * l1[0.0]  # the unused input's edges shrink 3x or more


def test_regularization_checks_acts():
    model = KAN([2, 3, 1], seed=0)
    _, acts = model.forward_with_activations(torch.rand(10, 2))
    with pytest.raises(ValueError, match="one entry per layer"):
        regularization(model, acts[:1])
