import numpy as np
import pytest
import torch
from scipy.interpolate import BSpline

from kanlab import splines


def random_grid(n_in, g, k, uniform, gen):
    if uniform:
        lo = torch.rand(n_in, 1, generator=gen, dtype=torch.float64) * 2 - 2
        width = torch.rand(n_in, 1, generator=gen, dtype=torch.float64) * 3 + 0.5
        return splines.uniform_grid(n_in, g, k, torch.cat([lo, lo + width], 1), dtype=torch.float64)
    steps = torch.rand(n_in, g + 2 * k, generator=gen, dtype=torch.float64) + 0.2
    return torch.cat([torch.full((n_in, 1), -1.5, dtype=torch.float64), -1.5 + steps.cumsum(1)], 1)


def scipy_design(x, knots, k, nu=0):
    n_basis = len(knots) - k - 1
    out = np.zeros((len(x), n_basis))
    for m in range(n_basis):
        c = np.zeros(n_basis)
        c[m] = 1.0
        out[:, m] = BSpline(knots, c, k, extrapolate=False)(x, nu=nu)
    return out


@pytest.mark.parametrize("k", [1, 2, 3, 4, 5])
@pytest.mark.parametrize("uniform", [True, False])
def test_basis_and_derivative_match_scipy(k, uniform):
    gen = torch.Generator().manual_seed(k + 10 * uniform)
    n_in, g = 3, 7
    grid = random_grid(n_in, g, k, uniform, gen)
    lo, hi = grid[:, k], grid[:, -k - 1]
    x = lo + (hi - lo) * torch.rand(200, n_in, generator=gen, dtype=torch.float64)  # inside the range
    basis = splines.bspline_basis(x, grid, k)
    deriv = splines.bspline_basis_derivative(x, grid, k)
    assert basis.shape == (200, n_in, g + k)
    for i in range(n_in):
        knots = grid[i].numpy()
        np.testing.assert_allclose(basis[:, i].numpy(), scipy_design(x[:, i].numpy(), knots, k), atol=1e-12)
        d_ref = scipy_design(x[:, i].numpy(), knots, k, 1)
        np.testing.assert_allclose(deriv[:, i].numpy(), d_ref, atol=1e-12 * 10 ** k)
    np.testing.assert_allclose(basis.sum(-1).numpy(), 1.0, atol=1e-12)  # partition of unity in range


@pytest.mark.parametrize("k", [1, 3, 5])
def test_basis_is_zero_beyond_the_extended_grid(k):
    grid = splines.uniform_grid(2, 4, k, (-1.0, 1.0), dtype=torch.float64)
    far = torch.tensor([[-10.0, 10.0]], dtype=torch.float64)
    assert splines.bspline_basis(far, grid, k).abs().max() == 0  # zero beyond the extended grid


def test_second_derivative_matches_scipy():
    k, grid = 3, random_grid(1, 6, 3, False, torch.Generator().manual_seed(3))
    x = torch.linspace(float(grid[0, k]), float(grid[0, -k - 1]) - 1e-9, 50, dtype=torch.float64)[:, None]
    d2 = splines.bspline_basis_derivative(x, grid, k, order=2)[:, 0]
    np.testing.assert_allclose(d2.numpy(), scipy_design(x[:, 0].numpy(), grid[0].numpy(), k, 2), atol=1e-9)


def test_curve_to_coef_recovers_coefficients():
    gen = torch.Generator().manual_seed(0)
    k, g, n_in, n_out = 3, 8, 2, 3
    grid = random_grid(n_in, g, k, False, gen)
    coef = torch.randn(n_out, n_in, g + k, generator=gen, dtype=torch.float64)
    x = splines.fill_points(grid, k, 6)
    y = splines.coef_to_curve(x, grid, coef, k)
    fitted = splines.curve_to_coef(x, y, grid, k)
    # bases are identified only on the grid range: compare the curves there
    torch.testing.assert_close(splines.coef_to_curve(x, grid, fitted, k), y, atol=1e-8, rtol=0)


def test_curve_to_coef_float32_solves_in_float64():
    grid = splines.uniform_grid(1, 5, 3, dtype=torch.float32)
    x = torch.linspace(-1, 1, 100)[:, None]
    y = torch.sin(3 * x)[:, None, :]
    coef = splines.curve_to_coef(x, y, grid, 3)
    assert coef.dtype == torch.float32
    assert (splines.coef_to_curve(x, grid, coef, 3) - y).abs().max() < 5e-3


def test_adaptive_grid_mixes_uniform_and_quantiles():
    x = torch.tensor([[0.0], [0.1], [0.2], [0.3], [10.0]], dtype=torch.float64)
    uniform = splines.adaptive_grid(x, 4, 1, grid_eps=1.0, margin=0.0)
    torch.testing.assert_close(uniform[0, 1:-1], torch.linspace(0, 10, 5, dtype=torch.float64))
    quant = splines.adaptive_grid(x, 4, 1, grid_eps=0.0, margin=0.0)
    torch.testing.assert_close(quant[0, 1:-1], x[:, 0])
    padded = splines.adaptive_grid(x, 4, 1, grid_eps=0.0, margin=0.1)  # ends move out by 10% of the range
    torch.testing.assert_close(padded[0, [1, -2]], torch.tensor([-1.0, 11.0], dtype=torch.float64))
    torch.testing.assert_close(padded[0, 2:-2], x[1:-1, 0])
    flat = splines.adaptive_grid(torch.ones(10, 1), 3, 3, 0.02)
    assert bool((flat.diff(dim=1) > 0).all())  # a constant input still gets a usable grid


def test_adaptive_grid_with_margin_stays_uniform_for_grid_eps_one():
    # the margin widens the range, not just the end intervals: grid_eps=1 must stay uniform so
    # that update_grid keeps the closed-form fast paths
    x = torch.rand(200, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(0)) * 4 - 1
    grid = splines.adaptive_grid(x, 7, 3, grid_eps=1.0, margin=0.05)
    assert splines.grid_is_uniform(grid)
    lo, hi = x.min(0).values, x.max(0).values
    torch.testing.assert_close(grid[:, 3], lo - 0.05 * (hi - lo))
    torch.testing.assert_close(grid[:, -4], hi + 0.05 * (hi - lo))
    mixed = splines.adaptive_grid(x, 7, 3, grid_eps=0.5, margin=0.05)  # ends are the widened range too
    torch.testing.assert_close(mixed[:, [3, -4]], grid[:, [3, -4]])


@pytest.mark.parametrize("order", [1, 2, 3])
def test_continue_coefficients_carries_the_polynomial_past_the_samples(order):
    """A polynomial of degree k is a spline of order k on any grid; fit on samples in
    [-0.6, 0.3] of a uniform grid on [-1, 1], the coefficients of the bases those samples never
    reach are arbitrary. Continued, the spline equals the polynomial over the whole grid."""
    grid = splines.uniform_grid(1, 10, order, dtype=torch.float64)
    poly = lambda t: 0.7 * t ** order - 0.4 * t + 0.2  # noqa: E731
    x = torch.linspace(-0.6, 0.3, 200, dtype=torch.float64)[:, None]
    basis = splines.bspline_basis(x, grid, order)[:, 0]  # (200, nb)
    reached = basis.abs().sum(0) > 0
    coef = torch.zeros(basis.shape[1], dtype=torch.float64)
    coef[reached] = torch.linalg.lstsq(basis[:, reached], poly(x)).solution[:, 0]
    coef[~reached] = torch.randn(int((~reached).sum()), dtype=torch.float64)  # what earlier grids left
    assert int((~reached).sum()) >= 4
    everywhere = torch.linspace(-1, 1, 101, dtype=torch.float64)[:, None]
    before = splines.coef_to_curve(everywhere, grid, coef[None, None], order)[:, 0, 0]
    assert float((before - poly(everywhere)[:, 0]).abs().max()) > 1e-2
    out = splines.continue_coefficients(coef[None, None], grid, x.min(0).values, x.max(0).values, order)
    torch.testing.assert_close(out[0, 0, reached], coef[reached], rtol=0, atol=0)  # sampled ones kept
    after = splines.coef_to_curve(everywhere, grid, out, order)[:, 0, 0]
    torch.testing.assert_close(after, poly(everywhere)[:, 0], rtol=0, atol=1e-10)
