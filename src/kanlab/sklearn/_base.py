"""scikit-learn estimators: :class:`KANRegressor` and :class:`KANClassifier`.

Both follow the estimator contract (``__init__`` stores the arguments, ``fit`` returns
``self``, learned attributes end in ``_``) and work in ``Pipeline`` and ``GridSearchCV``.
Inputs (and regression targets) are standardised inside the estimator; the fitted
:class:`kanlab.KAN` is ``model_`` and carries the pandas column names as its
``input_names``, so plots and formulas use them.

Example:
    >>> from sklearn.datasets import load_diabetes
    >>> X, y = load_diabetes(return_X_y=True)
    >>> reg = KANRegressor(hidden=(3,), steps=20, random_state=0).fit(X, y)  # doctest: +SKIP
    >>> reg.score(X, y)  # doctest: +SKIP
"""
from __future__ import annotations

import numpy as np
import torch
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
from sklearn.utils import check_random_state
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, validate_data

from .datasets.core import Dataset
from .network import KAN

__all__ = ["KANRegressor", "KANClassifier", "expected_failed_checks"]

_DTYPES = {"float32": torch.float32, "float64": torch.float64}


class _KANEstimator(BaseEstimator):
    """Shared fitting code. Subclasses define ``_loss`` and how targets map to outputs."""

    _loss = "mse"

    def __init__(self, hidden=(5,), grid_size=5, spline_order=3, steps=100, optimizer="lbfgs", lr=None,
                 batch_size=None, lamb=0.0, update_grid=True, standardize=True, symbolic=False,
                 dtype="float64", random_state=None, progress=False):
        self.hidden = hidden
        self.grid_size = grid_size
        self.spline_order = spline_order
        self.steps = steps
        self.optimizer = optimizer
        self.lr = lr
        self.batch_size = batch_size
        self.lamb = lamb
        self.update_grid = update_grid
        self.standardize = standardize
        self.symbolic = symbolic
        self.dtype = dtype
        self.random_state = random_state
        self.progress = progress

    # ------------------------------------------------------------------ fitting
    def _grid_schedule(self) -> list[int]:
        sizes = [self.grid_size] if np.isscalar(self.grid_size) else list(self.grid_size)
        if not sizes or not all(isinstance(g, (int, np.integer)) and not isinstance(g, bool) and g >= 1
                                for g in sizes):
            raise ValueError(f"grid_size must be an int >= 1 or a sequence of them (a grid schedule), "
                             f"got {self.grid_size!r}")
        return [int(g) for g in sizes]

    def _check_params(self) -> torch.dtype:
        if self.dtype not in _DTYPES:
            raise ValueError(f"dtype must be one of {sorted(_DTYPES)}, got {self.dtype!r}")
        hidden = (self.hidden,) if np.isscalar(self.hidden) else tuple(self.hidden)
        if not all(isinstance(h, (int, np.integer)) and h >= 1 for h in hidden):
            raise ValueError(f"hidden must be a sequence of layer widths >= 1, got {self.hidden!r}")
        return _DTYPES[self.dtype]

    def _fit_model(self, X: np.ndarray, target: np.ndarray, n_out: int, output_names) -> None:
        """Train ``model_`` on ``X`` ``(N, d)`` and ``target`` (``(N, n_out)`` floats or ``(N,)`` classes)."""
        dtype = self._check_params()
        schedule = self._grid_schedule()
        if X.shape[0] < 2:
            raise ValueError(f"{type(self).__name__} needs at least 2 samples, got n_samples = {X.shape[0]}")
        seed = int(check_random_state(self.random_state).randint(0, 2**31 - 1))
        self.x_mean_, self.x_scale_ = _moments(X) if self.standardize else (np.zeros(X.shape[1]),
                                                                           np.ones(X.shape[1]))
        x = torch.tensor((X - self.x_mean_) / self.x_scale_, dtype=dtype)
        y = torch.tensor(target, dtype=dtype if target.dtype.kind == "f" else torch.long)
        hidden = [self.hidden] if np.isscalar(self.hidden) else list(self.hidden)
        names = getattr(self, "feature_names_in_", None)
        model = KAN(width=[X.shape[1], *[int(h) for h in hidden], n_out], grid_size=schedule[0],
                    spline_order=self.spline_order, seed=seed, dtype=dtype,
                    input_names=[str(n) for n in names] if names is not None else None,
                    output_names=output_names)
        data = Dataset(x, y, x[:1], y[:1])
        self.history_ = []
        fit_kw = dict(steps=self.steps, optimizer=self.optimizer, lr=self.lr, batch_size=self.batch_size,
                      loss=self._loss, lamb=self.lamb, update_grid=self.update_grid, progress=self.progress,
                      seed=seed, eval_every=max(1, self.steps))
        for i, grid in enumerate(schedule):
            if i > 0:
                model = model.refine(grid)
            self.history_.append(model.fit(data, **fit_kw))
        self.model_ = model
        self.formula_ = None
        if self.symbolic:  # snap to closed forms, polish their affine parameters, read the formula
            model.auto_symbolic(x)
            self.history_.append(model.fit(data, **dict(fit_kw, update_grid=False)))
            self.formula_ = self._formula()

    @torch.no_grad()
    def _raw_predict(self, X) -> np.ndarray:
        """Model outputs ``(N, n_out)`` on the original feature scale."""
        check_is_fitted(self, "model_")
        X = validate_data(self, X, reset=False, dtype=np.float64)
        dtype = next(self.model_.parameters()).dtype
        x = torch.tensor((X - self.x_mean_) / self.x_scale_, dtype=dtype)
        out = [self.model_(x[i:i + 65536]) for i in range(0, x.shape[0], 65536)]
        return torch.cat(out).numpy().astype(np.float64) if out else np.zeros((0, self.model_.n_outputs))

    # ------------------------------------------------------------------ formulas
    def sympy(self):
        """The fitted formula(s) in the original feature names and units: one sympy expression
        (or a list, one per output / class logit). Needs ``symbolic=True`` at fit time."""
        check_is_fitted(self, "model_")
        if self.formula_ is None:
            raise ValueError(f"{type(self).__name__} was fitted with symbolic=False; set symbolic=True "
                             "to get a formula")
        return self.formula_

    def _formula(self):
        import sympy

        names = list(self.model_.config.input_names or [f"x{i}" for i in range(self.model_.n_inputs)])
        exprs = self.model_.symbolic_formula(var_names=names)
        exprs = list(exprs) if isinstance(exprs, (list, tuple)) else [exprs]
        mean, scale = self._output_affine()
        out = []
        for j, expr in enumerate(exprs):
            expr = sympy.sympify(expr)
            by_name = {s.name: s for s in expr.free_symbols}
            subs = {by_name[n]: (sympy.Symbol(n) - _num(m)) / _num(s)
                    for n, m, s in zip(names, self.x_mean_, self.x_scale_) if n in by_name}
            out.append(_num(scale[j]) * expr.xreplace(subs) + _num(mean[j]))
        return out[0] if len(out) == 1 else out

    def _output_affine(self):
        n = self.model_.n_outputs
        return np.zeros(n), np.ones(n)


class KANRegressor(RegressorMixin, _KANEstimator):
    """A KAN regressor (one or several outputs).

    Args:
        hidden: widths of the hidden node layers, e.g. ``(5,)`` or ``(5, 3)``.
        grid_size: grid intervals, or a schedule such as ``(3, 5, 10)``: fit, refine, fit again.
        spline_order, steps (per grid size), optimizer, lr, batch_size, lamb, update_grid:
            see :func:`kanlab.fit`.
        standardize: standardise inputs and targets (the formula is given in original units).
        symbolic: snap the edges to closed forms after fitting; sets ``formula_`` (needs
            :mod:`kanlab.symbolic` and sympy).
        dtype: ``"float64"`` (default) or ``"float32"``.
        random_state: seeds the initialisation and the mini-batch order.
        progress: show progress bars.

    Attributes:
        model_ (:class:`kanlab.KAN`), history_ (one History per grid size), formula_,
        n_features_in_, feature_names_in_ (pandas input).
    """

    def fit(self, X, y):
        """Fit on ``X`` ``(N, d)`` and ``y`` ``(N,)`` or ``(N, n_outputs)``; returns self."""
        output_names = _column_names(y)
        X, y = validate_data(self, X, y, multi_output=True, y_numeric=True, dtype=np.float64)
        y = np.asarray(y, dtype=np.float64)
        self._y_1d = y.ndim == 1
        y2 = y.reshape(-1, 1) if y.ndim == 1 else y
        self.y_mean_, self.y_scale_ = _moments(y2) if self.standardize else (np.zeros(y2.shape[1]),
                                                                           np.ones(y2.shape[1]))
        if output_names is not None and len(output_names) != y2.shape[1]:
            output_names = None
        self._fit_model(X, (y2 - self.y_mean_) / self.y_scale_, y2.shape[1], output_names)
        return self

    def predict(self, X):
        """Predictions ``(N,)`` (or ``(N, n_outputs)`` when fitted on 2-D targets)."""
        out = self._raw_predict(X) * self.y_scale_ + self.y_mean_
        return out.ravel() if self._y_1d else out

    def _output_affine(self):
        return self.y_mean_, self.y_scale_

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        tags.target_tags.single_output = True
        return tags


class KANClassifier(ClassifierMixin, _KANEstimator):
    """A KAN classifier: one output per class (logits), trained with cross-entropy.

    Arguments as :class:`KANRegressor`; ``formula_`` holds one logit formula per class.
    Attributes: model_, classes_, history_, formula_, n_features_in_, feature_names_in_.
    """

    _loss = "cross_entropy"

    def fit(self, X, y):
        """Fit on ``X`` ``(N, d)`` and class labels ``y`` ``(N,)``; returns self."""
        X, y = validate_data(self, X, y, dtype=np.float64)
        check_classification_targets(y)
        self.classes_, encoded = np.unique(y, return_inverse=True)
        if len(self.classes_) < 2:
            raise ValueError(f"{type(self).__name__} needs at least 2 classes in y, got 1 class")
        self._fit_model(X, encoded.astype(np.int64), len(self.classes_), [str(c) for c in self.classes_])
        return self

    def decision_function(self, X):
        """Class logits ``(N, n_classes)`` (``(N,)`` for two classes: logit 1 - logit 0)."""
        check_is_fitted(self, "model_")
        logits = self._raw_predict(X)
        return logits[:, 1] - logits[:, 0] if len(self.classes_) == 2 else logits

    def predict_proba(self, X):
        """Class probabilities ``(N, n_classes)`` (softmax of the logits)."""
        logits = self._raw_predict(X)
        z = np.exp(logits - logits.max(axis=1, keepdims=True))
        return z / z.sum(axis=1, keepdims=True)

    def predict_log_proba(self, X):
        return np.log(self.predict_proba(X))

    def predict(self, X):
        """Class labels ``(N,)``."""
        logits = self._raw_predict(X)
        return self.classes_[np.argmax(logits, axis=1)]


def expected_failed_checks(estimator) -> dict[str, str]:
    """scikit-learn estimator checks that do not apply, with the reason (for ``parametrize_with_checks``).

    None at present: both estimators pass every check of scikit-learn 1.9 (the array-API checks
    skip themselves unless ``SCIPY_ARRAY_API=1``). Kept so new scikit-learn checks can be listed here.
    """
    return {}


# ---------------------------------------------------------------------- helpers
def _moments(a: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Column means and standard deviations (1 for constant columns). Shape ``(d,)`` each."""
    mean, scale = a.mean(axis=0), a.std(axis=0)
    return mean, np.where(scale > 1e-12 * np.maximum(1.0, np.abs(mean)), scale, 1.0)


def _column_names(y):
    """Target names from a pandas Series / DataFrame, else None."""
    if hasattr(y, "columns"):
        return [str(c) for c in y.columns]
    name = getattr(y, "name", None)
    return [str(name)] if name is not None and hasattr(y, "to_numpy") else None


def _num(v):
    import sympy

    return sympy.Float(float(v))
