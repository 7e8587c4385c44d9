"""The paper's datasets against independent truth: hand-computed values, closed forms, autograd."""
import math

import numpy as np
import pytest
import torch

from kanlab import Dataset
from kanlab.datasets import (
    FEYNMAN,
    SPECIAL,
    TOY,
    continual_peaks,
    feynman_dataset,
    peaks,
    poisson_problem,
    poisson_solution,
    poisson_source,
    sample_function,
    special_dataset,
    toy_dataset,
)

sp = pytest.importorskip("scipy.special")


def _at(func, *point):
    return float(func(torch.tensor([point], dtype=torch.float64))[0])


# ------------------------------------------------------------------ toy functions
def test_toy_values_at_hand_points():
    assert _at(TOY["bessel_j0"], 0.0) == pytest.approx(1.0)
    # J0 first zero is 2.404825557695773: at x = z / 20
    assert _at(TOY["bessel_j0"], 2.404825557695773 / 20) == pytest.approx(0.0, abs=1e-12)
    assert _at(TOY["bessel_j0"], 0.05) == pytest.approx(0.7651976865579666, rel=1e-12)  # J0(1)
    assert _at(TOY["exp_sin_sq"], 0.5, 1.0) == pytest.approx(math.exp(2.0))
    assert _at(TOY["product"], 0.3, -0.7) == pytest.approx(-0.21)
    x = [1.0] * 50 + [0.0] * 50  # sin^2(pi/2) = 1 for half the inputs
    assert _at(TOY["exp_mean_sin_100d"], *x) == pytest.approx(math.exp(0.5))
    # x1^2 + x2^2 = 1/2 -> sin = 1; x3 = x4 = 0 -> sin = 0
    assert _at(TOY["exp_sin_4d"], 0.5, 0.5, 0.0, 0.0) == pytest.approx(math.exp(0.5))


@pytest.mark.parametrize("name", list(TOY))
def test_toy_datasets_are_seeded_and_in_range(name):
    a, b = toy_dataset(name, 64, 32, seed=3), toy_dataset(name, 64, 32, seed=3)
    c = toy_dataset(name, 64, 32, seed=4)
    assert isinstance(a, Dataset) and a.train_input.dtype == torch.float64
    assert torch.equal(a.train_input, b.train_input) and not torch.equal(a.train_input, c.train_input)
    assert a.train_input.abs().max() <= 1.0 and a.train_label.shape == (64, 1)
    assert torch.allclose(a.test_label, TOY[name](a.test_input)[:, None])


def test_unknown_names_raise():
    for gen in (toy_dataset, feynman_dataset, special_dataset):
        with pytest.raises(ValueError, match="name"):
            gen("nope")


# ------------------------------------------------------------------ Feynman
FEYNMAN_POINTS = {  # id: (inputs, value worked out by hand)
    "I.6.2": ((0.0, 1.0), 1 / math.sqrt(2 * math.pi)),
    "I.6.2b": ((1.0, 0.0, 1.0), math.exp(-0.5) / math.sqrt(2 * math.pi)),
    "I.9.18": ((2.0, 0.0, 1.0, 0.0, 1.0, 0.0), 2.0 / 3.0),
    "I.12.11": ((0.5, math.pi / 2), 1.5),
    "I.13.12": ((0.5, 0.5), 0.5),
    "I.15.3x": ((0.5, 0.6), 0.625),
    "I.16.6": ((0.5, 0.5), 0.8),
    "I.18.4": ((1.0, 0.5), 0.75),
    "I.26.2": ((0.5, math.pi / 2), math.pi / 6),
    "I.27.6": ((1.0, 1.0), 0.5),
    "I.29.16": ((1.0, math.pi / 2, 0.0), math.sqrt(2.0)),
    "I.30.3": ((2.0, math.pi / 2), 2.0),  # sin^2(pi/2) / sin^2(pi/4)
    "I.30.5": ((0.5, 1.0), math.pi / 6),
    "I.37.4": ((1.0, 0.0), 4.0),
    "I.40.1": ((2.0, 1.0), 2 / math.e),
    "I.44.4": ((2.0, math.e), 2.0),
    "I.50.26": ((0.0, 0.5), 1.5),
    "II.2.42": ((3.0, 2.0), 4.0),
    "II.6.15a": ((3.0, 4.0, 1.0), 15 / (4 * math.pi)),
    "II.11.7": ((2.0, 0.5, 0.0), 3.0),
    "II.11.27": ((1.0, 1.5), 3.0),
    "II.35.18": ((1.0, 0.0), 0.5),
    "II.36.38": ((1.0, 2.0, 3.0), 7.0),
    "II.38.3": ((1.0, 4.0), 0.25),
    "III.10.19": ((2.0, 2.0), 3.0),
    "III.17.37": ((2.0, 0.5, math.pi), 1.0),
}


def test_every_feynman_entry_has_a_hand_checked_point():
    assert set(FEYNMAN_POINTS) == set(FEYNMAN)


@pytest.mark.parametrize("name", list(FEYNMAN_POINTS))
def test_feynman_formula_at_hand_point(name):
    point, value = FEYNMAN_POINTS[name]
    assert _at(FEYNMAN[name], *point) == pytest.approx(value, rel=1e-12, abs=1e-14)


def test_relativistic_addition_is_tanh_of_rapidities():
    d = feynman_dataset("I.16.6", 200, 10, seed=1)
    u, v = d.train_input[:, 0], d.train_input[:, 1]
    assert torch.allclose(d.train_label[:, 0], torch.tanh(torch.atanh(u) + torch.atanh(v)))


@pytest.mark.parametrize("name", list(FEYNMAN))
def test_feynman_data_finite_and_inside_ranges(name):
    d = feynman_dataset(name, 256, 16, seed=0)
    r = torch.tensor(FEYNMAN[name].ranges, dtype=torch.float64)
    assert torch.isfinite(d.train_label).all()
    assert (d.train_input >= r[:, 0]).all() and (d.train_input <= r[:, 1]).all()


# ------------------------------------------------------------------ special functions
def test_special_closed_forms():
    x = torch.linspace(-0.9, 0.9, 7, dtype=torch.float64)
    for degree, poly in ((0, lambda t: 1 + 0 * t), (1, lambda t: t), (2, lambda t: (3 * t ** 2 - 1) / 2)):
        got = SPECIAL["lpmv_m0"](torch.stack([torch.full_like(x, degree), x], 1))
        assert torch.allclose(got, poly(x), atol=1e-13)  # Legendre polynomials
    # J_{1/2}(x) = sqrt(2 / (pi x)) sin x;  K_{1/2}(x) = sqrt(pi / (2x)) e^-x
    xs = torch.linspace(1.0, 3.0, 5, dtype=torch.float64)
    half = torch.full_like(xs, 0.5)
    assert torch.allclose(SPECIAL["jv"](torch.stack([half, xs], 1)), torch.sqrt(2 / (math.pi * xs)) * torch.sin(xs))
    assert torch.allclose(SPECIAL["kv"](torch.stack([half, xs], 1)), torch.sqrt(math.pi / (2 * xs)) * torch.exp(-xs))
    # m = 0: sn(u | 0) = sin u, F(phi | 0) = E(phi | 0) = phi
    u = torch.linspace(-1, 1, 5, dtype=torch.float64)
    zero = torch.zeros_like(u)
    assert torch.allclose(SPECIAL["ellipj"](torch.stack([u, zero], 1)), torch.sin(u))
    assert torch.allclose(SPECIAL["ellipkinc"](torch.stack([u, zero], 1)), u)
    assert torch.allclose(SPECIAL["ellipeinc"](torch.stack([u, zero], 1)), u)


def test_real_spherical_harmonics_closed_forms():
    g = torch.Generator().manual_seed(0)
    polar = torch.rand(50, generator=g, dtype=torch.float64) * math.pi
    az = torch.rand(50, generator=g, dtype=torch.float64) * 2 * math.pi
    x = torch.stack([polar, az], 1)
    c, s = torch.cos(polar), torch.sin(polar)
    expected = {
        "sph_harm_m0_n1": math.sqrt(3 / (4 * math.pi)) * c,
        "sph_harm_m1_n1": -math.sqrt(3 / (8 * math.pi)) * s * torch.cos(az),
        "sph_harm_m0_n2": math.sqrt(5 / (16 * math.pi)) * (3 * c ** 2 - 1),
        "sph_harm_m1_n2": -math.sqrt(15 / (8 * math.pi)) * s * c * torch.cos(az),
        "sph_harm_m2_n2": math.sqrt(15 / (32 * math.pi)) * s ** 2 * torch.cos(2 * az),
    }
    for name, value in expected.items():
        assert torch.allclose(SPECIAL[name](x), value, atol=1e-12), name


@pytest.mark.parametrize("name", list(SPECIAL))
def test_special_datasets_finite(name):
    d = special_dataset(name, 128, 16, seed=2)
    assert d.train_input.shape == (128, 2) and torch.isfinite(d.train_label).all()
    assert torch.allclose(d.test_label, SPECIAL[name](d.test_input)[:, None])


# ------------------------------------------------------------------ Poisson
def test_poisson_source_is_laplacian_of_solution():
    p = poisson_problem(n_interior=300, n_boundary=40, n_test=10, seed=0)
    x = p.interior.clone().requires_grad_(True)
    u = poisson_solution(x)
    (grad,) = torch.autograd.grad(u.sum(), x, create_graph=True)
    lap = sum(torch.autograd.grad(grad[:, i].sum(), x, retain_graph=True)[0][:, i] for i in range(2))
    assert torch.allclose(lap[:, None], p.source, atol=1e-10)
    assert torch.allclose(poisson_source(p.interior), p.source)


def test_poisson_boundary_on_square_with_zero_solution():
    p = poisson_problem(n_interior=10, n_boundary=400, n_test=10, seed=1)
    on_edge = (p.boundary.abs() == 1.0).any(dim=1)
    assert on_edge.all() and p.boundary.abs().max() <= 1.0
    assert p.boundary_value.abs().max() < 1e-12
    sides = torch.stack([p.boundary[:, 0] == -1, p.boundary[:, 0] == 1,
                         p.boundary[:, 1] == -1, p.boundary[:, 1] == 1]).sum(dim=1)
    assert (sides > 50).all()  # every side is sampled
    assert torch.allclose(p.test_solution, poisson_solution(p.test_input))


# ------------------------------------------------------------------ continual learning
def test_continual_phases_cover_one_peak_each():
    phases = continual_peaks(n_per_phase=100, n_test=50, seed=0)
    assert len(phases) == 5
    for i, d in enumerate(phases):
        lo = -1.0 + 0.4 * i
        assert (d.train_input >= lo - 1e-12).all() and (d.train_input <= lo + 0.4 + 1e-12).all()
        centre = torch.tensor([[lo + 0.2]], dtype=torch.float64)
        assert float(peaks(centre)) == pytest.approx(1.0, abs=1e-5)  # own peak, others' tails ~1e-21
        ref = np.exp(-300 * (d.test_input.numpy() - np.array([-0.8, -0.4, 0, 0.4, 0.8])) ** 2).sum(1)
        assert np.allclose(d.test_label.numpy()[:, 0], ref)


def test_sample_function_rejects_plain_callables():
    with pytest.raises(TypeError, match="func"):
        sample_function(lambda x: x, 4, 4)
