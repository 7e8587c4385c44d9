"""The start of a fresh model's fit: linear read-out warm start, probed against the plain start."""
import math

import pytest
import torch

import kanlab
from kanlab import KAN
from kanlab.datasets import from_function
from kanlab.warm_start import LinearReadout, redraw_initialisation


def paper_data(n=400):
    f = lambda x: torch.exp(torch.sin(math.pi * x[:, [0]]) + x[:, [1]] ** 2)  # noqa: E731
    return from_function(f, 2, n_train=n, n_test=n, seed=0, dtype=torch.float64)


def product_data(n=300):
    return from_function(lambda x: x[:, [0]] * x[:, [1]], 2, n_train=n, n_test=n, seed=0, dtype=torch.float64)


def test_is_fresh_until_trained_loaded_or_copied_into(tmp_path):
    data = product_data(50)
    model = KAN([2, 3, 1], seed=0, dtype=torch.float64)
    assert model.is_fresh() and model.copy().is_fresh()
    model.save(tmp_path / "m.kan")
    assert not kanlab.load(tmp_path / "m.kan").is_fresh()  # loaded weights count as trained
    model.fit(data, steps=2, progress=False)
    assert not model.is_fresh()
    model.save(tmp_path / "t.kan")
    assert not kanlab.load(tmp_path / "t.kan").is_fresh()
    assert not model.prune(data.train_input).is_fresh() and not model.refine(5).is_fresh()


def test_finishing_the_read_out_keeps_the_function():
    model = KAN([2, 4, 2], grid_size=3, seed=1, dtype=torch.float64)
    x = torch.rand(300, 2, generator=torch.Generator().manual_seed(0), dtype=torch.float64) * 2 - 1
    readout = LinearReadout(model)
    assert model.layers[-1].base_activation == "identity"
    with torch.no_grad():  # as if trained: read-out weights and hidden features moved
        model.layers[-1].scale_base.mul_(3.0)
        model.layers[0].coef.add_(0.5)
    weights = model.layers[-1].scale_base.detach().clone()  # (2, 4) read-out
    before = model(x)
    readout.finish(x)
    assert model.layers[-1].base_activation == "silu" and not readout.active
    assert all(p.requires_grad for p in model.parameters())
    assert torch.allclose(model(x), before, rtol=1e-9, atol=1e-9)  # least squares with a 1e-12 ridge
    hidden = model.layers[0](x).detach()  # (300, 4)
    linear = hidden.unsqueeze(1) * weights  # (300, 2, 4): phi_ji(h) = w_ji h
    assert torch.allclose(model.layers[-1].edges(hidden), linear, rtol=1e-9, atol=1e-9)


def test_the_plain_start_kept_is_the_plain_run():
    """A product has no additive part for a linear read-out: fit keeps the plain start, and the
    result is exactly that of warm_start=False."""
    data = product_data()
    auto = KAN([2, 3, 1], grid_size=3, seed=0, dtype=torch.float64)
    h_auto = auto.fit(data, steps=12, optimizer="lbfgs", progress=False)
    plain = KAN([2, 3, 1], grid_size=3, seed=0, dtype=torch.float64)
    h_plain = plain.fit(data, steps=12, optimizer="lbfgs", progress=False, warm_start=False)
    assert h_auto.start == "cold" and set(h_auto.start_losses) == {"cold", "warm", "warm_redrawn"}
    assert h_auto.start_losses["cold"] < min(h_auto.start_losses["warm"], h_auto.start_losses["warm_redrawn"])
    assert h_auto.train_loss == h_plain.train_loss and len(h_auto) == 12
    assert all(torch.equal(a, b) for a, b in zip(auto.state_dict().values(), plain.state_dict().values()))


def test_warm_start_escapes_the_folded_minimum():
    """exp(sin(pi x) + y^2) on [2,1,1]: from seed 0 the plain start folds the output edge and
    stalls near RMSE 0.6; fit keeps the warm start and lands in the good basin."""
    data = paper_data()
    model = KAN([2, 1, 1], grid_size=3, seed=0, dtype=torch.float64)
    hist = model.fit(data, steps=40, optimizer="lbfgs", progress=False)
    assert hist.start == "warm" and hist.warm_start_steps == 10 and len(hist) == 40
    assert hist.start_losses["cold"] > 0.1 and hist.test_rmse[-1] < 0.05
    stalled = KAN([2, 1, 1], grid_size=3, seed=0, dtype=torch.float64)
    assert stalled.fit(data, steps=40, optimizer="lbfgs", progress=False, warm_start=False).test_rmse[-1] > 0.3


def test_seeds_agree_on_the_first_grid():
    """The seed sweep, small: seeds 0-4 of the plain calls end the first grid within 3x of the
    best seed (seeds 0, 1 and 4 stalled near RMSE 0.4 before fit probed a warm start); the full
    sweep is ``benchmarks/seed_sweep.py``."""
    data = paper_data(200)
    ends = [KAN([2, 1, 1], grid_size=3, seed=seed, dtype=torch.float64).fit(data, steps=30, progress=False)
            .test_rmse[-1] for seed in range(5)]
    assert max(ends) < 3 * min(ends), ends


def test_long_probes_put_every_seed_in_the_good_basin_of_the_first_grid():
    """exp(-2((x-0.2)^2 + y^2)) on [2, 1, 1], seeds 0-9, G=3, 1000 points: with the seven
    candidates compared after 20 steps the worst seed ended 4.3x above the best (test RMSE 9.1e-5
    against 3.9e-4); compared after 40 of the 50 steps, within 1.8x."""
    data = from_function(lambda x: torch.exp(-2 * ((x[:, [0]] - 0.2) ** 2 + x[:, [1]] ** 2)), 2, n_train=1000,
                         n_test=1000, seed=0, dtype=torch.float64)
    ends = []
    for seed in range(10):
        hist = KAN([2, 1, 1], grid_size=3, seed=seed, dtype=torch.float64).fit(data, steps=50, progress=False)
        assert hist.optimizer == "lm" and len(hist.start_losses) == 7 and len(hist) == 50
        ends.append(hist.test_rmse[-1])
    assert max(ends) < 3 * min(ends), ends


def test_second_draw_rescues_a_warm_start_in_a_worse_basin():
    """Seeds 7 and 14 on exp(sin(pi x) + y^2), [2,1,1]: the plain start folds (objective ~0.44)
    and the warm start from the first draw lands in a worse basin (test RMSE 2.3e-2 and 7.7e-2
    with two candidates); the warm start from the second draw reaches the good one (1.4e-2,
    where the other 18 of seeds 0-19 end)."""
    data = paper_data(1000)
    for seed in (7, 14):
        hist = KAN([2, 1, 1], grid_size=3, seed=seed, dtype=torch.float64).fit(data, steps=50, optimizer="lbfgs",
                                                                          progress=False)
        assert hist.start == "warm_redrawn", (seed, hist.start_losses)
        assert hist.start_losses["cold"] > 0.1 and hist.test_rmse[-1] < 1.6e-2, (seed, hist.test_rmse[-1])


def test_redraw_is_a_second_deterministic_draw_that_keeps_masks_and_grids():
    model = KAN([3, 4, 2], grid_size=5, seed=3, dtype=torch.float64)
    with torch.no_grad():
        model.layers[0].mask[1, 2] = 0.0
    first = {k: v.clone() for k, v in model.state_dict().items()}
    redraw_initialisation(model)
    again = KAN([3, 4, 2], grid_size=5, seed=3, dtype=torch.float64)
    with torch.no_grad():
        again.layers[0].mask[1, 2] = 0.0
    redraw_initialisation(again)
    for name, value in model.state_dict().items():
        assert torch.equal(value, again.state_dict()[name]), name  # same seed, same redraw
        if name.endswith(("coef", "scale_base")):
            assert not torch.allclose(value, first[name]), name  # a new draw
        else:  # grids, masks, spline scales
            assert torch.equal(value, first[name]), name
    for layer in model.layers:  # the same distribution as the first draw
        bound = math.sqrt(6.0 / (layer.in_features + layer.out_features))
        assert layer.scale_base.abs().max() <= bound
        assert layer.spline(torch.linspace(-1, 1, 50, dtype=torch.float64)[:, None].expand(50, layer.in_features)
                            ).abs().max() < layer.noise_scale


def test_interrupted_probe_leaves_the_fresh_model(monkeypatch):
    data = paper_data(100)
    model = KAN([2, 2, 1], grid_size=3, seed=0, dtype=torch.float64)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    calls = []

    def loss(pred, y):
        calls.append(1)
        if len(calls) == 25:  # inside the warm probe
            raise KeyboardInterrupt
        return ((pred - y) ** 2).mean()

    with pytest.raises(KeyboardInterrupt):
        model.fit(data, steps=10, loss=loss, progress=False)
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())
    assert model.layers[-1].base_activation == "silu" and model.is_fresh()


@pytest.mark.slow
@pytest.mark.parametrize("name", ["exp(sin(pi x) + y^2)", "exp(-2((x-0.2)^2 + y^2))", "sqrt(1 + x^2 + y^2)",
                                  "exp(sin(pi x)/2 + y^2/2 + tanh z)",
                                  "exp((sin(pi(x1^2+x2^2)) + sin(pi(x3^2+x4^2)))/2)",
                                  "tanh(2 sqrt(1 + x^2 + y^2) - 2)"])
def test_seed_sweep(name):
    """The full sweep of benchmarks/seed_sweep.py on the rows that meet the target, seeds 0-9:
    every seed within 3x of the best at every grid 3 -> 50 (measured worst/best: 1.00-1.01x,
    1.2-2.0x, 1.7-2.4x, 1.01-2.7x, on [4, 2, 1, 1] 1.2-2.0x and on [2, 1, 1, 1] 1.9-2.3x;
    docs/training.md)."""
    import os
    import sys

    sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
    from benchmarks.seed_sweep import chain

    grids = (3, 5, 10, 20, 50)
    ends = [chain(name, seed, grids=grids) for seed in range(10)]
    for j, grid in enumerate(grids):
        col = [e[j] for e in ends]
        assert max(col) < 3 * min(col), (grid, col)
