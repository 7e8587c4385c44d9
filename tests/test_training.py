import math

import pytest
import torch

import kanlab
from kanlab import KAN, TrainingDiverged
from kanlab.datasets import from_function


def small_data(n=200, seed=0):
    return from_function(lambda x: torch.sin(math.pi * x[:, 0]) + x[:, 1] ** 2, 2, n_train=n, n_test=n,
                         seed=seed, dtype=torch.float64)


def test_lbfgs_learns_and_records_history():
    data = small_data()
    model = KAN([2, 3, 1], grid_size=5, seed=0, dtype=torch.float64)
    hist = model.fit(data, steps=15, progress=False)
    assert len(hist.train_rmse) == len(hist.test_rmse) == 15
    assert hist.test_rmse[-1] < 0.05 * data.test_label.std()
    assert hist.grid_update_steps == [0, 1, 2, 3, 4, 5, 6]  # stop = steps // 2, every stop // 10 steps
    pred = model(data.test_input).detach()
    assert abs(float(torch.sqrt(((pred - data.test_label) ** 2).mean())) - hist.test_rmse[-1]) < 1e-12
    hist = model.fit(data, steps=100, progress=False, max_iter=1)
    assert hist.grid_update_steps == list(range(0, 50, 5))  # the paper's schedule for 100 steps


def test_adam_minibatch_and_dataloader():
    data = small_data(256)
    model = KAN([2, 3, 1], seed=0, dtype=torch.float64)
    hist = model.fit(data, steps=60, optimizer="adam", lr=1e-2, batch_size=32, progress=False)
    assert hist.train_rmse[-1] < hist.train_rmse[0]
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(data.train_input, data.train_label),
                                         batch_size=64, shuffle=False)
    model2 = KAN([2, 3, 1], seed=0, dtype=torch.float64)
    hist2 = model2.fit(loader, steps=20, optimizer="adamw", lr=1e-2, test_data=data, progress=False)
    assert len(hist2.test_rmse) == 20 and hist2.test_rmse[-1] < hist2.test_rmse[0]


def test_same_seed_same_history_and_parameters():
    data = small_data()
    runs = []
    for _ in range(2):
        model = KAN([2, 2, 1], seed=1, dtype=torch.float64)
        hist = model.fit(data, steps=20, optimizer="adam", lr=1e-2, batch_size=50, seed=7, progress=False)
        runs.append((hist.to_dict(), [p.detach().clone() for p in model.parameters()]))
    (h1, p1), (h2, p2) = runs
    h1.pop("seconds"), h2.pop("seconds")
    assert h1 == h2
    assert all(torch.equal(a, b) for a, b in zip(p1, p2))


def test_cross_entropy_classification():
    gen = torch.Generator().manual_seed(0)
    x = torch.rand(300, 2, generator=gen) * 2 - 1
    y = (x[:, 0] * x[:, 1] > 0).long()
    data = {"train_input": x, "train_label": y, "test_input": x, "test_label": y}
    model = KAN([2, 4, 2], seed=0)
    hist = model.fit(data, steps=20, loss="cross_entropy", progress=False)
    assert hist.test_accuracy[-1] > 0.9


def test_callable_loss_and_callback_stop():
    data = small_data()
    model = KAN([2, 1], seed=0, dtype=torch.float64)
    seen = []
    hist = model.fit(data, steps=10, loss=lambda p, y: ((p - y).abs()).mean(),
                     callbacks=[lambda step, m, h: seen.append(step) or step == 2], progress=False)
    assert seen == [0, 1, 2] and len(hist.train_loss) == 3


def test_regularization_runs_in_training():
    data = small_data()
    model = KAN([2, 3, 1], seed=0, dtype=torch.float64)
    hist = model.fit(data, steps=5, lamb=1e-2, progress=False)
    assert len(hist.reg) == 5 and all(r > 0 for r in hist.reg)


def test_divergence_keeps_last_good_parameters():
    data = small_data()
    model = KAN([2, 2, 1], seed=0, dtype=torch.float64)
    good = {}

    def remember(step, m, h):
        good["step"], good["params"] = step, [p.detach().clone() for p in m.parameters()]

    def loss(pred, y):
        base = ((pred - y) ** 2).mean()
        return base * float("nan") if good.get("step", -1) >= 3 else base

    with pytest.raises(TrainingDiverged, match="diverged at step 4"):
        model.fit(data, steps=10, optimizer="adam", loss=loss, update_grid=False, callbacks=[remember],
                  progress=False, warm_start=False)  # callbacks do not see the probed start
    assert all(torch.equal(p, q) for p, q in zip(model.parameters(), good["params"]))


@pytest.mark.parametrize("change, match", [
    (lambda d: d.update(train_input=d["train_input"][:, :1]), r"train_input.*\(\.\.\., 2\)"),
    (lambda d: d["train_input"].__setitem__((0, 0), float("nan")), "train_input.*NaN"),
    (lambda d: d["test_label"].__setitem__((1, 0), float("inf")), "test_label.*NaN or inf"),
    (lambda d: d.update(train_label=d["train_label"].repeat(1, 2)), r"train_label.*\(N, 1\)"),
    (lambda d: d.update(train_input=d["train_input"][:0], train_label=d["train_label"][:0]), "empty"),
])
def test_bad_data(change, match):
    d = small_data(20).to_dict()
    d = {k: v.clone() for k, v in d.items()}
    change(d)
    with pytest.raises(ValueError, match=match):
        KAN([2, 1], dtype=torch.float64).fit(d, steps=1, progress=False)


@pytest.mark.parametrize("kwargs, match", [(dict(optimizer="sgd"), "optimizer"), (dict(loss="mae"), "loss"),
                                           (dict(steps=-1), "steps"), (dict(lamb=-1.0), "lamb")])
def test_bad_options(kwargs, match):
    with pytest.raises(ValueError, match=match):
        KAN([2, 1], dtype=torch.float64).fit(small_data(20), progress=False, **kwargs)


def test_from_function_ranges_and_seed():
    d1 = from_function(lambda x: x.sum(1), 3, ranges=[(0, 1), (2, 3), (-1, 0)], n_train=100, n_test=10, seed=1)
    d2 = from_function(lambda x: x.sum(1), 3, ranges=[(0, 1), (2, 3), (-1, 0)], n_train=100, n_test=10, seed=1)
    assert torch.equal(d1.train_input, d2.train_input)
    assert d1.train_input[:, 1].min() >= 2 and d1.train_input[:, 1].max() <= 3
    torch.testing.assert_close(d1.train_label[:, 0], d1.train_input.sum(1))
    assert d1["test_input"].shape == (10, 3)
