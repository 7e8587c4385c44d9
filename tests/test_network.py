import copy
import dataclasses

import pytest
import torch

from kanlab import KAN, KANConfig


def test_forward_shapes_and_width():
    model = KAN([3, 4, 2], seed=0)
    assert model.width == [3, 4, 2]
    assert model(torch.rand(7, 3)).shape == (7, 2)
    assert model(torch.rand(2, 5, 3)).shape == (2, 5, 2)


def test_activations_are_explicit_and_consistent(f64):
    model = KAN([2, 3, 1], seed=0)
    x = torch.rand(50, 2) * 2 - 1
    y, acts = model.forward_with_activations(x)
    torch.testing.assert_close(y, model(x))
    assert [a.edges.shape for a in acts] == [(50, 3, 2), (50, 1, 3)]
    torch.testing.assert_close(acts[1].inputs, acts[0].edges.sum(-1))
    other = model.activations(x[:10])  # nothing cached: a new batch gives its own values
    assert other[0].inputs.shape == (10, 2)


def test_multiplication_nodes(f64):
    model = KAN([2, [1, 2], 1], mult_arity=2, seed=0)
    assert model.width == [2, [1, 2], 1]
    assert [l.out_features for l in model.layers] == [5, 1]
    x = torch.rand(20, 2)
    pre = model.layers[0](x)
    hidden = torch.cat([pre[:, :1], pre[:, 1:3].prod(1, keepdim=True), pre[:, 3:5].prod(1, keepdim=True)], 1)
    torch.testing.assert_close(model(x), model.layers[1](hidden))


def test_same_seed_same_parameters():
    a, b, c = KAN([2, 5, 1], seed=3), KAN([2, 5, 1], seed=3), KAN([2, 5, 1], seed=4)
    for p, q in zip(a.parameters(), b.parameters()):
        assert torch.equal(p, q)
    assert not torch.equal(a.layers[0].coef, c.layers[0].coef)


def test_refine_returns_new_model_with_same_function(f64):
    model = KAN([2, 3, 1], grid_size=4, seed=0)
    x = torch.rand(200, 2) * 2 - 1
    fine = model.refine(8)
    assert fine is not model and fine.config.grid_size == 8 and model.config.grid_size == 4
    assert (fine(x) - model(x)).abs().max() <= 1e-6 * model(x).abs().max()


def test_update_grid_keeps_function_on_data(f64):
    model = KAN([2, 2, 1], grid_size=10, seed=0)
    with torch.no_grad():  # smooth splines (the initial noise is rough on purpose)
        for layer in model.layers:
            m = torch.arange(layer.n_basis)
            layer.scale_base.mul_(0.3)
            index = torch.arange(layer.coef[..., 0].numel()).view_as(layer.coef[..., 0])[..., None]
            layer.coef.copy_(0.3 * torch.sin(0.4 * m + index))
    x = torch.rand(2000, 2) * 1.6 - 0.8
    before = model(x)
    model.update_grid(x)
    assert (model(x) - before).abs().max() <= 1e-3 * before.abs().max()  # projection onto a new grid


def test_config_round_trip_and_frozen():
    model = KAN([2, [3, 1], 1], grid_size=7, spline_order=2, input_names=["a", "b"], seed=5)
    cfg = KANConfig.from_dict(model.config.to_dict())
    assert cfg == model.config
    rebuilt = KAN(config=cfg)
    for p, q in zip(model.parameters(), rebuilt.parameters()):
        assert torch.equal(p, q)
    with pytest.raises(dataclasses.FrozenInstanceError):
        model.config.grid_size = 3


def test_pykan_aliases():
    model = KAN(width=[2, 1], grid=7, k=2)
    assert model.config.grid_size == 7 and model.config.spline_order == 2
    with pytest.raises(ValueError, match="grid_size"):
        KAN([2, 1], grid_size=5, grid=7)


@pytest.mark.parametrize("width, match", [([2], "at least two"), ([2, 0, 1], r"width\[1\]"),
                                          ([[2, 1], 1], r"width\[0\]"), ("2,1", "list")])
def test_bad_width(width, match):
    with pytest.raises((ValueError, TypeError), match=match):
        KAN(width)


def test_bad_grid_size_and_input():
    with pytest.raises(ValueError, match="grid_size"):
        KAN([2, 1], grid_size=0)
    with pytest.raises(ValueError, match=r"\(\.\.\., 2\)"):
        KAN([2, 1])(torch.zeros(3, 4))


def test_deepcopy_is_independent():
    model = KAN([2, 2, 1], seed=0)
    other = copy.deepcopy(model)
    with torch.no_grad():
        other.layers[0].coef.add_(1)
    assert not torch.equal(model.layers[0].coef, other.layers[0].coef)


def test_refine_with_data_keeps_function_where_activations_left_the_grid(f64):
    model = KAN([1, 1, 1], grid_size=5, seed=0)
    with torch.no_grad():  # the hidden activation spans [-1.8, 1.8]: past the next grid's [-1, 1]
        model.layers[0].coef.zero_()
        model.layers[0].scale_base.fill_(0.0)
        model.layers[0].coef.copy_(torch.linspace(-2.5, 2.5, 8).view(1, 1, 8))
        model.layers[1].coef.copy_(torch.sin(torch.linspace(-3, 3, 8)).view(1, 1, 8))
    x = torch.linspace(-1, 1, 400)[:, None]
    hidden = model.layers[0](x)
    assert hidden.abs().max() > 1.5
    plain, with_data = model.refine(40), model.refine(40, x)
    err_plain = (plain(x) - model(x)).abs().max()
    err_data = (with_data(x) - model(x)).abs().max()
    assert err_data <= 1e-3 * model(x).abs().max() and 10 * err_data < err_plain
