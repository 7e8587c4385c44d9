"""The validation layer: every public entry point rejects bad arguments with a ValueError / TypeError
that names the argument, before it allocates or changes anything; in-place operations are all or
nothing (bitwise)."""
import math
import time

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

import kanlab
from kanlab import KAN, KANLayer
from kanlab.validation import check_float, check_int, check_seed


def _state(model):
    return {k: v.clone() for k, v in model.state_dict().items()}


def _unchanged(model, before):
    after = model.state_dict()
    assert after.keys() == before.keys()
    for k in before:
        assert torch.equal(after[k], before[k]), k


def _data(n=60, seed=0):
    return kanlab.datasets.from_function(lambda x: x[:, :1] * x[:, 1:], n_var=2, n_train=n, n_test=20,
                                         seed=seed, dtype=torch.float64)


# ---------------------------------------------------------------------- helpers
def test_check_int_and_float():
    assert check_int("n", np.int64(3), 1) == 3 and type(check_int("n", np.int64(3))) is int
    for bad in (True, 2.0, "2", None, 1.7):
        with pytest.raises(TypeError, match="n must be an integer"):
            check_int("n", bad)
    with pytest.raises(ValueError, match=r"n must be an integer in \[1, 5\], got 6"):
        check_int("n", 6, 1, 5)
    assert check_float("lr", 1) == 1.0 and check_float("lr", torch.tensor(0.5)) == 0.5
    for bad, err in ((math.nan, ValueError), (math.inf, ValueError), ("1", TypeError), (False, TypeError),
                     (0.0, ValueError)):
        with pytest.raises(err, match="lr"):
            check_float("lr", bad, 0.0, min_open=True)
    assert check_seed(2**63 - 1) == 2**63 - 1


# ---------------------------------------------------------------------- constructors
@pytest.mark.parametrize("kwargs,err,match", [
    (dict(seed=1.7), TypeError, "seed must be an integer"),
    (dict(seed="abc"), TypeError, "seed"),
    (dict(seed=None), TypeError, "seed"),
    (dict(seed=2**70), ValueError, "seed must be an integer in"),
    (dict(seed=-1), ValueError, "seed"),
    (dict(noise_scale=math.nan), ValueError, "noise_scale must be a finite"),
    (dict(noise_scale=-0.1), ValueError, "noise_scale"),
    (dict(input_names="ab"), TypeError, "input_names must be a list of 2 strings"),
    (dict(input_names=["a", 1]), TypeError, "input_names must hold strings"),
    (dict(input_names=["a"]), ValueError, "input_names must have 2 entries"),
    (dict(output_names=["y", "z"]), ValueError, "output_names must have 1 entries"),
    (dict(grid_range=(-math.inf, math.inf)), ValueError, "grid_range"),
    (dict(grid_range=(1.0, 1.0)), ValueError, "lo < hi"),
    (dict(grid_range=(-1e308, 1e308)), ValueError, "finite width"),
    (dict(grid_range="ab"), TypeError, "grid_range must be a pair"),
    (dict(grid_eps=2.0), ValueError, "grid_eps"),
    (dict(dtype=torch.int64), TypeError, "dtype must be a floating dtype"),
    (dict(dtype=torch.complex64), TypeError, "dtype must be a floating dtype"),
    (dict(dtype="float64"), TypeError, "dtype must be a torch.dtype"),
    (dict(grid_size=2.0), TypeError, "grid_size"),
    (dict(k=0), ValueError, "k must be"),
    (dict(mult_arity=2.0), TypeError, "mult_arity"),
    (dict(device="bogus"), ValueError, "device must be"),
    (dict(base_activation=3), ValueError, "base_activation"),
])
def test_kan_constructor_rejects(kwargs, err, match):
    with pytest.raises(err, match=match):
        KAN([2, 3, 1], **kwargs)


def test_width_accepts_numpy_and_rejects_junk():
    assert KAN(np.array([2, 3, 1])).width == [2, 3, 1]
    for bad, err in (([2, 2.0, 1], TypeError), ([2, -1, 1], ValueError), ([2, [1, 2, 3], 1], TypeError),
                     ("21", TypeError), ([2], ValueError), ([2, 0, 1], ValueError)):
        with pytest.raises(err, match="width"):
            KAN(bad)


def test_sizes_fail_fast_with_a_memory_estimate():
    start = time.perf_counter()
    with pytest.raises(ValueError, match=r"grid_size=1000000\) needs about [0-9.]+ [TP]B of memory"):
        KAN([2, 3, 1], grid_size=10**6)
    with pytest.raises(ValueError, match="needs about"):
        KANLayer(2, 3, grid_size=10**6)
    with pytest.raises(ValueError, match="needs about"):
        KAN([2, 10**6, 10**6])
    with pytest.raises(ValueError, match=r"refine\(grid_size=10000000\) needs about"):
        KAN([2, 3, 1]).refine(10**7)
    assert time.perf_counter() - start < 2.0  # nothing was allocated
    # the estimate is an upper bound of what building really takes, within a small factor
    config = kanlab.KANConfig(width=((4, 0), (8, 0), (2, 0)), grid_size=200)
    model = KAN(config=config, dtype=torch.float64)
    params = sum(t.numel() * t.element_size() for t in model.state_dict().values())
    assert params < config.estimate_bytes(torch.float64) < 1000 * params


def test_kanlayer_constructor_rejects():
    for kwargs, err in ((dict(in_features=2.0, out_features=3), TypeError),
                        (dict(in_features=2, out_features=0), ValueError),
                        (dict(in_features=2, out_features=3, grid_range=(math.nan, 1)), ValueError),
                        (dict(in_features=2, out_features=3, dtype=torch.int32), TypeError)):
        with pytest.raises(err):
            KANLayer(**kwargs)


def test_config_from_dict_is_strict():
    good = KAN([2, 3, 1]).config.to_dict()
    assert kanlab.KANConfig.from_dict(good) == KAN([2, 3, 1]).config
    with pytest.raises(ValueError, match="unknown keys"):
        kanlab.KANConfig.from_dict(dict(good, foo=1))
    with pytest.raises(TypeError, match="seed"):
        kanlab.KANConfig.from_dict(dict(good, seed=1.5))
    with pytest.raises(TypeError, match="must be a dict"):
        kanlab.KANConfig.from_dict([1])


# ---------------------------------------------------------------------- all or nothing
def test_update_grid_with_nan_changes_nothing():
    model = KAN([3, 4, 2], seed=0, dtype=torch.float64)
    x = torch.rand(8, 3, dtype=torch.float64)
    x[2, 1] = math.nan
    before = _state(model)
    with pytest.raises(ValueError, match="x contains 1 NaN"):
        model.update_grid(x)
    with pytest.raises(ValueError, match="x contains"):
        model.layers[0].update_grid(x)
    with pytest.raises(ValueError, match="at least 2 samples"):
        model.update_grid(x[:1])
    _unchanged(model, before)
    with pytest.raises(ValueError, match="x contains"):
        model.refine(10, x)
    _unchanged(model, before)


def test_update_grid_failing_in_a_later_layer_restores_every_layer(monkeypatch):
    model = KAN([2, 3, 1], seed=0, dtype=torch.float64)
    x = torch.rand(50, 2, dtype=torch.float64) * 1.5
    before = _state(model)
    flags = [layer._uniform for layer in model.layers]

    def boom(self, h):
        raise KeyboardInterrupt  # interrupted half way: layer 0 was already updated

    monkeypatch.setattr(model.layers[1], "update_grid", boom.__get__(model.layers[1]))
    with pytest.raises(KeyboardInterrupt):
        model.update_grid(x)
    _unchanged(model, before)
    assert [layer._uniform for layer in model.layers] == flags
    monkeypatch.undo()
    model.update_grid(x)  # and the operation itself still works, and changes the grid
    assert not torch.equal(model.layers[0].grid, before["layers.0.grid"])


def test_update_grid_rejects_activations_that_overflow():
    model = KAN([1, 1, 1], seed=0, dtype=torch.float32)
    with torch.no_grad():
        model.layers[0].scale_base.fill_(1e30)
    before = _state(model)
    with pytest.raises(ValueError, match="activations x produces at layer 1"):
        model.update_grid(torch.linspace(1e10, 2e10, 20)[:, None])
    _unchanged(model, before)


# ---------------------------------------------------------------------- fit
def test_fit_argument_errors_change_nothing():
    data = _data()
    model = KAN([2, 3, 1], seed=0, dtype=torch.float64)
    before = _state(model)
    cases = [(dict(max_iter=0), ValueError, "max_iter"), (dict(grid_update_num=0), ValueError, "grid_update_num"),
             (dict(callbacks=print), TypeError, r"callbacks=\[cb\]"), (dict(callbacks=[1]), TypeError, "callbacks"),
             (dict(seed=1.5), TypeError, "seed"), (dict(lr="x"), TypeError, "lr"), (dict(lr=math.nan), ValueError, "lr"),
             (dict(batch_size=2.0), TypeError, "batch_size"), (dict(lamb=-1), ValueError, "lamb"),
             (dict(update_grid="yes"), TypeError, "update_grid"), (dict(optimizer="sgd"), ValueError, "optimizer"),
             (dict(loss=lambda p, y: (p - y) ** 2), ValueError, "loss must return a scalar"),
             (dict(loss=lambda p, y: 1.0), TypeError, "loss must return a scalar tensor")]
    for kwargs, err, match in cases:
        with pytest.raises(err, match=match):
            model.fit(data, steps=3, progress=False, **kwargs)
    _unchanged(model, before)


def test_fit_loader_of_dicts_is_a_clear_error_before_step_0():
    data = _data()

    class Dicts(torch.utils.data.Dataset):
        def __len__(self):
            return 10

        def __getitem__(self, i):
            return {"x": data.train_input[i], "y": data.train_label[i]}

    model = KAN([2, 3, 1], seed=0, dtype=torch.float64)
    before = _state(model)
    with pytest.raises(TypeError, match=r"dict batch with keys \['x', 'y'\]"):
        model.fit(DataLoader(Dicts(), batch_size=5), steps=2, progress=False)
    _unchanged(model, before)


def test_fit_loader_with_a_one_row_last_batch_uses_the_previous_batch_for_grid_updates():
    data = _data(n=11)
    loader = DataLoader(TensorDataset(data.train_input, data.train_label), batch_size=5)  # 5, 5, 1
    model = KAN([2, 3, 1], seed=0, dtype=torch.float64)
    hist = model.fit(loader, steps=6, optimizer="adam", progress=False, grid_update_num=6, stop_grid_update_step=6)
    assert hist.grid_update_steps == [0, 1, 2, 3, 4, 5] and len(hist) == 6
    # step 2 drew the 1-row batch: its grid update used batch 1 (rows 5..9), as a direct call shows
    ref = KAN([2, 3, 1], seed=0, dtype=torch.float64)
    ref.fit(loader, steps=2, optimizer="adam", progress=False, grid_update_num=6, stop_grid_update_step=6)
    ref.update_grid(data.train_input[5:10])
    assert torch.equal(ref.layers[0].grid, _grid_after_step_2(loader))


def _grid_after_step_2(loader):
    seen = []

    def grab(step, model, history):
        if step == 2:
            seen.append(model.layers[0].grid.clone())

    KAN([2, 3, 1], seed=0, dtype=torch.float64).fit(loader, steps=3, optimizer="adam", progress=False,
                                                    grid_update_num=6, stop_grid_update_step=6,
                                                    callbacks=[grab])
    return seen[0]


# ---------------------------------------------------------------------- symbolic, pruning
def test_symbolic_and_pruning_entry_points_reject_bad_arguments():
    model = KAN([2, 3, 1], seed=0, dtype=torch.float64)
    x = torch.rand(40, 2, dtype=torch.float64)
    before = _state(model)
    with pytest.raises(TypeError, match="l must be an integer"):
        model.fix_symbolic(0.0, 0, 0, "x")
    with pytest.raises(ValueError, match="r2_threshold"):
        model.auto_symbolic(x, r2_threshold=math.nan)
    with pytest.raises(ValueError, match="weight_simple"):
        model.suggest_symbolic(0, 0, 0, x, weight_simple=math.inf)
    with pytest.raises(TypeError, match="topk"):
        model.suggest_symbolic(0, 0, 0, x, topk=2.5)
    with pytest.raises(ValueError, match="node_threshold"):
        model.prune(x, node_threshold=math.nan)
    _unchanged(model, before)
    assert len(model.symbolic) == 0


# ---------------------------------------------------------------------- sklearn
@pytest.mark.parametrize("scale_x,scale_y", [(1.0, 1e300), (1e300, 1.0), (1e-300, 1.0)])
def test_sklearn_extreme_scales_fit_correctly(scale_x, scale_y):
    from kanlab.sklearn import KANRegressor

    rng = np.random.RandomState(0)
    X = rng.rand(80, 2)
    y = X[:, 0] + 2 * X[:, 1]
    with np.errstate(over="raise", invalid="raise", divide="raise"):  # not even a numpy warning
        reg = KANRegressor(hidden=(2,), grid_size=3, steps=5, optimizer="lbfgs", random_state=0).fit(X * scale_x,
                                                                                            y * scale_y)
        pred = reg.predict(X * scale_x) / scale_y
    assert np.all(np.isfinite(pred))
    assert np.abs(pred - y).max() < 0.05 * np.abs(y).max()  # a correct fit, not a constant


def test_sklearn_argument_checks():
    from kanlab.sklearn import KANRegressor

    X, y = np.random.RandomState(0).rand(20, 2), np.arange(20.0)
    for kwargs, err in ((dict(steps=0), ValueError), (dict(hidden=(2.5,)), TypeError), (dict(hidden="3"), TypeError),
                        (dict(grid_size=(3, 0)), ValueError), (dict(spline_order=1.0), TypeError),
                        (dict(standardize="no"), TypeError), (dict(lr=math.nan, steps=1), ValueError)):
        with pytest.raises(err):
            KANRegressor(**kwargs).fit(X, y)
    with pytest.raises(ValueError, match="too large"):
        KANRegressor(standardize=False, steps=1).fit(X, y * 1e300)
