"""KANRegressor / KANClassifier: scikit-learn's own checks, pipelines, grid search, names, formulas."""
import pickle

import numpy as np
import pytest
import torch

pytest.importorskip("sklearn")
from sklearn.datasets import load_diabetes, make_classification  # noqa: E402
from sklearn.model_selection import GridSearchCV  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402
from sklearn.utils.estimator_checks import parametrize_with_checks  # noqa: E402

from kanlab.sklearn import KANClassifier, KANRegressor, expected_failed_checks  # noqa: E402
from kanlab.sklearn._recipe import scale_inputs  # noqa: E402
from conftest import has_module  # noqa: E402

# the suite's fast configuration: one L-BFGS step (up to 20 iterations) per grid; a second one
# runs the validation path (penalty choice, grid schedule, refit) on every check's data
FAST = dict(hidden=(2,), grid_size=3, steps=1, optimizer="lbfgs", random_state=0)
FAST_VALIDATED = dict(FAST, grid_size=(3, 4), early_stopping=True, n_iter_no_change=1)


@parametrize_with_checks([KANRegressor(**FAST), KANClassifier(**FAST), KANRegressor(**FAST_VALIDATED),
                          KANClassifier(**FAST_VALIDATED)],
                         expected_failed_checks=expected_failed_checks)
def test_sklearn_estimator_checks(estimator, check):
    check(estimator)


def _xy(n=200, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.uniform(-1, 1, size=(n, 2))
    return X, np.exp(np.sin(np.pi * X[:, 0]) + X[:, 1] ** 2)


def test_regressor_learns_and_is_reproducible():
    X, y = _xy()
    exact = dict(hidden=(3,), grid_size=(3, 6), steps=5, optimizer="LBFGS", alpha=0.0, random_state=0)
    a = KANRegressor(**exact).fit(X, y)
    b = KANRegressor(**exact).fit(X, y)
    Xt, yt = _xy(100, seed=1)
    assert a.score(Xt, yt) > 0.999
    assert np.array_equal(a.predict(Xt), b.predict(Xt))
    assert a.model_.config.grid_size == a.grid_size_ == 6 and a.alpha_ == 0.0
    # predictions equal the underlying model on standardised inputs, un-standardised
    x = torch.tensor((Xt - a.x_mean_) / a.x_scale_)
    expect = a.model_(x).detach().numpy()[:, 0] * a.y_scale_[0] + a.y_mean_[0]
    np.testing.assert_allclose(a.predict(Xt), expect, rtol=1e-12)
    back = pickle.loads(pickle.dumps(a))
    assert np.array_equal(back.predict(Xt), a.predict(Xt))


def test_multi_output_and_pandas_names():
    pd = pytest.importorskip("pandas")
    X, y = _xy()
    frame = pd.DataFrame(X, columns=["speed", "angle"])
    targets = pd.DataFrame({"f": y, "g": X[:, 0] * 2 - X[:, 1]})
    reg = KANRegressor(hidden=(4,), steps=20, optimizer="lbfgs", random_state=0).fit(frame, targets)
    pred = reg.predict(frame)
    assert pred.shape == (200, 2)
    assert reg.model_.config.input_names == ("speed", "angle")
    assert reg.model_.config.output_names == ("f", "g")
    assert list(reg.feature_names_in_) == ["speed", "angle"]
    np.testing.assert_allclose(pred[:, 1], targets["g"], atol=0.05)
    series_fit = KANRegressor(**FAST).fit(frame, targets["f"])
    assert series_fit.predict(frame).shape == (200,)
    assert series_fit.model_.config.output_names == ("f",)


def test_pipeline_and_grid_search_on_diabetes():
    X, y = load_diabetes(return_X_y=True)
    search = GridSearchCV(KANRegressor(hidden=(2,), steps=3, random_state=0),
                          {"grid_size": [3, 5]}, cv=2)
    search.fit(X[:200], y[:200])
    assert search.best_params_["grid_size"] in (3, 5)
    assert np.isfinite(search.cv_results_["mean_test_score"]).all()
    pipe = make_pipeline(StandardScaler(), KANRegressor(hidden=(2,), steps=5, optimizer="lbfgs", random_state=0))
    assert pipe.fit(X[:200], y[:200]).score(X[:200], y[:200]) > 0.3


def test_classifier_probabilities_and_labels():
    X, y = make_classification(n_samples=300, n_features=4, n_informative=3, n_redundant=0, n_classes=3,
                               random_state=0)
    labels = np.array(["cat", "dog", "eel"])[y]
    clf = KANClassifier(hidden=(4,), steps=20, optimizer="lbfgs", alpha=0.0, early_stopping=False,
                        random_state=0).fit(X, labels)
    proba = clf.predict_proba(X)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-12)
    assert set(clf.predict(X)) <= set(labels)
    assert np.array_equal(clf.predict(X), clf.classes_[proba.argmax(axis=1)])
    assert clf.score(X, labels) > 0.85
    assert clf.model_.config.output_names == ("cat", "dog", "eel")


def test_formula_in_original_units(monkeypatch):
    """The estimator maps the model's formula (standardised units) back to the data's units.
    The symbolic module is replaced by a stub whose 'formula' is exact for a linear model."""
    sympy = pytest.importorskip("sympy")
    pd = pytest.importorskip("pandas")
    rng = np.random.default_rng(0)
    X = pd.DataFrame(rng.normal(3.0, 2.0, size=(100, 2)), columns=["a", "b"])
    y = 5.0 + 2.0 * X["a"] - X["b"]

    def fake_auto_symbolic(model, x, **kwargs):
        fake_auto_symbolic.called = True

    def fake_formula(model, var_names=None, **kwargs):
        # the exact formula of a stand-in linear model: least squares in standardised units
        return [sympy.Symbol(var_names[0]) * coef[0] + sympy.Symbol(var_names[1]) * coef[1] + coef[2]]

    from kanlab import KAN

    monkeypatch.setattr(KAN, "auto_symbolic", fake_auto_symbolic)
    monkeypatch.setattr(KAN, "symbolic_formula", fake_formula)
    offset, scale = scale_inputs(X.to_numpy())  # the estimator's input scaling, onto [-1, 1]
    xs = (X.to_numpy() - offset) / scale
    ys = (y - y.mean()) / y.std(ddof=0)
    coef = np.linalg.lstsq(np.c_[xs, np.ones(len(xs))], ys, rcond=None)[0]
    reg = KANRegressor(**FAST, symbolic=True).fit(X, y)
    assert fake_auto_symbolic.called
    expr = reg.sympy()
    assert expr is reg.formula_
    assert {s.name for s in expr.free_symbols} == {"a", "b"}
    f = sympy.lambdify([sympy.Symbol("a"), sympy.Symbol("b")], expr)
    np.testing.assert_allclose(f(X["a"].to_numpy(), X["b"].to_numpy()), y, rtol=1e-9)
    with pytest.raises(ValueError, match="symbolic=True"):
        KANRegressor(**FAST).fit(X, y).sympy()



@pytest.mark.skipif(not has_module("kanlab.symbolic.edges"), reason="kanlab.symbolic absent")
def test_real_symbolic_formula():
    sympy = pytest.importorskip("sympy")
    X, y = _xy()
    reg = KANRegressor(hidden=(1,), grid_size=5, steps=20, random_state=0, symbolic=True).fit(X, y)
    assert isinstance(reg.sympy(), sympy.Expr)
