import pytest
import torch

from kanlab import KANLayer, splines


def cubic_layer(n_in=2, n_out=3, g=5, seed=0):
    """A layer whose splines are global cubics: representable exactly on every grid."""
    layer = KANLayer(n_in, n_out, grid_size=g, dtype=torch.float64, generator=torch.Generator().manual_seed(seed))
    gen = torch.Generator().manual_seed(seed + 1)
    a = torch.randn(4, n_out, n_in, generator=gen, dtype=torch.float64)
    x = splines.fill_points(layer.grid, 3, 8)
    y = sum(a[p] * x[:, None, :] ** p for p in range(4))
    with torch.no_grad():
        layer.coef.copy_(splines.curve_to_coef(x, y, layer.grid, 3))
    return layer


def test_forward_matches_edge_sum_and_any_leading_dims():
    layer = KANLayer(3, 2, generator=torch.Generator().manual_seed(0))
    x = torch.rand(4, 5, 3) * 2 - 1
    y = layer(x)
    assert y.shape == (4, 5, 2)
    torch.testing.assert_close(y.reshape(-1, 2), layer.edges(x.reshape(-1, 3)).sum(-1))


def test_initialisation():
    layer = KANLayer(4, 6, grid_size=5, noise_scale=0.1, generator=torch.Generator().manual_seed(0))
    x = torch.linspace(-1, 1, 101)[:, None].expand(-1, 4)
    assert layer.spline(x).abs().max() < 0.1  # splines start near zero
    bound = (6 / (4 + 6)) ** 0.5
    assert layer.scale_base.abs().max() <= bound and layer.scale_base.std() > bound / 4
    assert bool((layer.scale_spline == 1).all())


@pytest.mark.parametrize("factor", [2, 3])
def test_refine_nested_keeps_function_exactly(factor):
    layer = KANLayer(2, 3, grid_size=4, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        layer.coef.normal_(generator=torch.Generator().manual_seed(2))
    x = torch.rand(500, 2, dtype=torch.float64) * 2 - 1
    old = layer(x)
    new = layer.refine(4 * factor)
    assert new.grid_size == 4 * factor and new.coef.shape[-1] == 4 * factor + 3
    assert (new(x) - old).abs().max() <= 1e-6 * old.abs().max()


def test_refine_and_update_grid_keep_representable_function():
    layer = cubic_layer()
    layer.grid_eps = 0.02  # quantile-leaning: the grid follows the samples' distribution
    x = torch.rand(400, 2, dtype=torch.float64) * 2 - 1
    old = layer(x)
    coarse = layer.refine(3)
    assert (coarse(x) - old).abs().max() <= 1e-6 * old.abs().max()
    samples = torch.randn(300, 2, dtype=torch.float64).clamp(-1, 1) * 0.9
    layer.update_grid(samples)
    assert not layer._uniform
    assert (layer.grid[:, 3] - samples.min(0).values).abs().max() < 0.05  # grid follows the data
    inside = (x >= samples.min(0).values).all(1) & (x <= samples.max(0).values).all(1)
    assert (layer(x)[inside] - old[inside]).abs().max() <= 1e-6 * old.abs().max()


def test_update_grid_continues_the_pieces_past_the_samples():
    """A fine grid: its 2% margin past the samples spans whole intervals, so the outermost bases
    see no sample. Their coefficients continue the sampled pieces: the (k + 1)-th differences
    through them vanish, where a plain refit of the old spline leaves them whatever the old grid
    had there."""
    layer = KANLayer(1, 2, grid_size=150, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        layer.coef.normal_(generator=torch.Generator().manual_seed(1))  # a rough old spline
    x = torch.empty(1000, 1, dtype=torch.float64).exponential_(generator=torch.Generator().manual_seed(0))
    x = x / x.max() * 1.8 - 0.9  # samples inside the old grid, dense on the left, sparse on the right
    layer.update_grid(x)
    nb, k = layer.coef.shape[-1], layer.spline_order
    free = int((layer.grid[0, :nb] > x.max()).sum())
    assert free >= 1
    coef = layer.coef.detach()
    diffs = torch.diff(coef[:, 0], n=k + 1, dim=-1)[:, -free:]  # windows ending at the free bases
    assert float(diffs.abs().max()) < 1e-9 * float(coef.abs().max())
    assert float(splines.bspline_basis(x, layer.grid, k)[..., -free:].abs().max()) == 0.0  # truly unsampled


def test_refine_to_other_sizes_is_a_close_projection():
    layer = KANLayer(1, 1, grid_size=5, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        layer.coef.copy_(torch.sin(torch.linspace(-3, 3, 8, dtype=torch.float64)).view(1, 1, 8))
    x = torch.linspace(-1, 1, 300, dtype=torch.float64)[:, None]
    assert (layer.refine(7)(x) - layer(x)).abs().max() < 2e-2


def test_gradcheck_inputs_and_parameters():
    layer = KANLayer(3, 2, grid_size=4, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    x = (torch.rand(6, 3, dtype=torch.float64) * 2.4 - 1.2).requires_grad_()
    params = (layer.coef, layer.scale_base, layer.scale_spline)

    def f(x, coef, sb, ss):
        return torch.func.functional_call(layer, {"coef": coef, "scale_base": sb, "scale_spline": ss}, (x,))

    assert torch.autograd.gradcheck(f, (x, *params))
    assert torch.autograd.gradgradcheck(f, (x, *params))


@pytest.mark.parametrize("kwargs, match", [
    (dict(grid_size=0), "grid_size"), (dict(spline_order=0), "spline_order"),
    (dict(base_activation="swish"), "base_activation"), (dict(grid_range=(1, -1)), "grid_range"),
    (dict(grid_eps=2.0), "grid_eps"),
])
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        KANLayer(2, 2, **kwargs)


def test_wrong_input_width():
    layer = KANLayer(3, 2)
    with pytest.raises(ValueError, match=r"x must have shape \(\.\.\., 3\)"):
        layer(torch.zeros(5, 2))
    with pytest.raises(TypeError, match="x must be a floating-point tensor"):
        layer(torch.zeros(5, 3, dtype=torch.long))


def test_input_of_another_dtype_is_named_not_a_torch_error():
    layer = KANLayer(2, 3, generator=torch.Generator().manual_seed(0))  # float32
    x = torch.rand(5, 2, dtype=torch.float64)
    named = r"x has dtype torch.float64 but the model's parameters have dtype torch.float32"
    for call in (layer, layer.edges, layer.update_grid):
        with pytest.raises(TypeError, match=named):
            call(x)
    # array inputs are converted to the layer's dtype, as the network does
    assert torch.equal(layer(x.numpy()), layer(x.float()))


def test_state_dict_round_trip_restores_uniform_flag():
    layer = KANLayer(2, 2, grid_eps=0.02, generator=torch.Generator().manual_seed(0))
    layer.update_grid(torch.randn(100, 2))  # a non-uniform grid
    other = KANLayer(2, 2)
    other.load_state_dict(layer.state_dict())
    assert other._uniform == layer._uniform is False
    x = torch.randn(10, 2)
    torch.testing.assert_close(other(x), layer(x))
