"""The estimators' defaults: settings sized to the data, early stopping that keeps the best
parameters, the one-standard-error choice, the refit, and defaults that generalise."""
import numpy as np
import pytest
import torch

pytest.importorskip("sklearn")
from sklearn.datasets import load_digits, make_friedman1  # noqa: E402
from sklearn.linear_model import Ridge  # noqa: E402
from sklearn.model_selection import train_test_split  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402

from kanlab import KAN  # noqa: E402
from kanlab.sklearn import KANClassifier, KANRegressor  # noqa: E402
from kanlab.sklearn._recipe import (AUTO_ALPHAS, _EarlyStopping, _Fit, make_plan,  # noqa: E402
                                    simplest_within_one_se)


def test_plan_is_sized_to_the_data():
    small = make_plan(KANRegressor(), n_samples=60, n_features=3)
    assert small.hidden == (7,) and not small.early_stopping and small.batch_size is None
    big = make_plan(KANRegressor(), n_samples=2000, n_features=64)
    assert big.hidden == (32,) and big.early_stopping and big.batch_size == 128
    assert big.eval_every == 1600 // 128 and big.steps == 100 * big.eval_every  # 100 epochs, one check each
    assert big.alphas == AUTO_ALPHAS and big.try_linear and big.grids == (3, 5)
    fixed = make_plan(KANRegressor(alpha=0.5, grid_size=4, early_stopping=False, batch_size=None), 2000, 3)
    assert fixed.alphas == (0.5,) and not fixed.try_linear and fixed.grids == (4,) and fixed.batch_size is None
    with pytest.raises(ValueError, match="alpha must be"):
        make_plan(KANRegressor(alpha=-1.0), 10, 2)


def test_early_stopping_restores_the_best_parameters():
    rng = np.random.default_rng(0)
    x = torch.tensor(rng.uniform(-1, 1, (40, 1)))
    y = torch.sin(3 * x) + 0.3 * torch.tensor(rng.normal(size=(40, 1)))  # noisy: the fit will overfit
    xv = torch.tensor(rng.uniform(-1, 1, (40, 1)))
    yv = torch.sin(3 * xv)
    plan = make_plan(KANRegressor(n_iter_no_change=3, batch_size=None), 200, 1)
    tracker, seen = _EarlyStopping("mse", (xv, yv), plan), []

    def record(step, model, history):
        with torch.no_grad():
            seen.append(float(((model(xv) - yv) ** 2).mean()))

    model = KAN([1, 8, 1], grid_size=10, seed=0, dtype=torch.float64)
    model.fit((x, y), steps=200, optimizer="lbfgs", progress=False, callbacks=[record, tracker], update_grid=False,
              warm_start=False)  # callbacks count from step 0
    assert len(seen) < 200  # stopped early
    model.load_state_dict(tracker.state)
    with torch.no_grad():
        restored = float(((model(xv) - yv) ** 2).mean())
    assert restored == pytest.approx(min(seen), rel=1e-12) and min(seen) < seen[-1]
    assert tracker.best_steps == 1 + int(np.argmin(seen))


def test_one_standard_error_rule():
    def fit(losses, name):
        return _Fit(torch.tensor(losses, dtype=torch.float64), name, 3, 1.0, False, [])

    simple, complex_ = fit([1.0, 1.3, 0.7, 1.1], "simple"), fit([0.9, 1.4, 0.5, 0.9], "complex")
    assert simplest_within_one_se([simple, complex_]).model == "simple"  # 0.1 apart, standard error 0.19
    clearly = fit([0.1, 0.2, 0.1, 0.2], "complex")
    assert simplest_within_one_se([simple, clearly]).model == "complex"


def test_validation_picks_the_grid_and_the_refit_uses_every_row():
    X, y = make_friedman1(n_samples=300, noise=0.5, random_state=0)
    reg = KANRegressor(grid_size=(3, 5), n_iter_no_change=3, random_state=0).fit(X, y)
    assert reg.grid_size_ in (3, 5) and reg.model_.config.grid_size == reg.grid_size_
    assert reg.validation_loss_ is not None and reg.alpha_ in AUTO_ALPHAS
    # the last History is the refit on all 300 rows (mini-batches of 128: 2 steps an epoch)
    assert reg.history_[-1].seconds > 0 and next(reg.model_.parameters()).dtype == torch.float64


def test_defaults_beat_a_linear_model_on_a_nonlinear_table():
    X, y = make_friedman1(n_samples=600, noise=1.0, random_state=0)
    Xtr, Xte, ytr, yte = train_test_split(X, y, test_size=0.25, random_state=0)
    kan = KANRegressor(random_state=0).fit(Xtr, ytr).score(Xte, yte)
    ridge = make_pipeline(StandardScaler(), Ridge()).fit(Xtr, ytr).score(Xte, yte)
    assert kan > ridge + 0.1, (kan, ridge)  # friedman1: R^2 ~0.75 linear


@pytest.mark.slow
def test_digits_with_defaults():
    """The issue's target: >= 0.975 accuracy with the defaults (benchmarks/tabular.py times it)."""
    X, y = load_digits(return_X_y=True)
    Xtr, Xte, ytr, yte = train_test_split(X, y, test_size=0.25, random_state=0)
    assert KANClassifier(random_state=0).fit(Xtr, ytr).score(Xte, yte) >= 0.975
