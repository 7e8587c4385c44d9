"""KANRegressor and KANClassifier."""
from __future__ import annotations

import numpy as np
from sklearn.base import ClassifierMixin, RegressorMixin
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, validate_data

from ._base import KANEstimator

__all__ = ["KANRegressor", "KANClassifier"]


class KANRegressor(RegressorMixin, KANEstimator):
    """A KAN regressor (one or several outputs) whose defaults generalise on small tables.

    Inputs are scaled onto the grids' range [-1, 1] and targets standardised inside the
    estimator (predictions and formulas are in the original units). With the defaults the fit
    is sized to the data (see :func:`kanlab.sklearn._recipe.make_plan`): one hidden layer of
    ``min(2 d + 1, 32)`` nodes, an L2 penalty, full-batch L-BFGS below 500 rows and mini-batch
    Adam from there on, where a validation split stops training early, keeps the best
    parameters and picks the grid of the schedule.

    Args:
        hidden: ``"auto"`` or the widths of the hidden node layers, e.g. ``(5,)`` or ``(5, 3)``.
        grid_size: ``"auto"`` (the schedule ``(3, 5)``), an int, or a schedule such as ``(3, 5, 10)``:
            fit, refine, fit again; with a validation split the finer grid is kept only while it
            validates better.
        spline_order: B-spline order k.
        steps: optimizer steps per grid size (at most, with early stopping); ``"auto"``: 100 L-BFGS
            steps or 100 epochs of Adam.
        optimizer: ``"auto"``, ``"lbfgs"``, ``"adam"`` or ``"adamw"`` (any case).
        lr: learning rate (default 1 for L-BFGS, 1e-2 for Adam).
        batch_size: ``"auto"`` (full batch for L-BFGS, 128 for Adam), None (full batch) or an int.
        alpha: L2 penalty ``alpha / (2 n) * sum(theta^2)`` on all parameters (as MLPRegressor's).
        lamb: the KAN paper's sparsity penalty (see :func:`kanlab.fit`), off at 0.
        early_stopping: ``"auto"`` (on from 500 samples), True or False: hold out
            ``validation_fraction`` of the rows, stop after ``n_iter_no_change`` epochs without a
            lower validation loss, keep the best parameters.
        update_grid: adapt the grids to the activations while training (``"auto"``: with L-BFGS).
        standardize: scale inputs onto [-1, 1] and standardise targets (the formula is given in
            the original units).
        symbolic: snap the edges to closed forms after fitting; sets ``formula_`` (needs sympy).
        dtype: ``"float32"`` (default) or ``"float64"``.
        random_state: seeds the initialisation, the validation split and the mini-batch order.
        progress: show progress bars.
        base_activation: b(x) of every edge (``"identity"``: ``phi(x) = w_b x + spline(x)``, so the
            KAN contains the linear models; any name of :data:`kanlab.activations.BASE_ACTIVATIONS`).

    Attributes:
        model_ (:class:`kanlab.KAN`), history_ (one History per grid size tried), n_iter_
        (optimizer steps run), grid_size_ (the grid kept), validation_loss_ (its validation loss,
        None without early stopping), formula_, n_features_in_, feature_names_in_ (pandas input).

    Example:
        >>> from sklearn.datasets import load_diabetes
        >>> X, y = load_diabetes(return_X_y=True)
        >>> KANRegressor(random_state=0).fit(X, y).score(X, y) > 0.4
        True
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
        self._fit_model(X, y2 / self.y_scale_ - self.y_mean_ / self.y_scale_, y2.shape[1], output_names)
        return self

    def predict(self, X):
        """Predictions on ``X`` ``(N, d)``: ``(N,)`` (or ``(N, n_outputs)`` when fitted on 2-D targets)."""
        out = self._raw_predict(X) * self.y_scale_ + self.y_mean_
        return out.ravel() if self._y_1d else out

    def _output_affine(self):
        return self.y_mean_, self.y_scale_

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        tags.target_tags.single_output = True
        return tags


class KANClassifier(ClassifierMixin, KANEstimator):
    """A KAN classifier: one output per class (logits), trained with cross-entropy.

    Arguments as :class:`KANRegressor`, plus ``label_smoothing`` (default 0.1, as in
    ``torch.nn.CrossEntropyLoss``): the training targets put that much probability mass evenly
    on all classes, which keeps the logits from growing without bound on separable data.
    ``formula_`` holds one logit formula per class.
    Attributes: model_, classes_, history_, n_iter_, grid_size_, validation_loss_, formula_,
    n_features_in_, feature_names_in_.
    """

    _loss = "cross_entropy"

    def __init__(self, hidden="auto", grid_size="auto", spline_order=3, steps="auto", optimizer="auto", lr=None,
                 batch_size="auto", alpha="auto", lamb=0.0, early_stopping="auto", validation_fraction=0.2,
                 n_iter_no_change=10, update_grid="auto", standardize=True, symbolic=False, dtype="float32",
                 random_state=None, progress=False, base_activation="identity", label_smoothing=0.1):
        """Store the arguments as given (scikit-learn's contract: they are checked in ``fit``)."""
        super().__init__(hidden=hidden, grid_size=grid_size, spline_order=spline_order, steps=steps,
                         optimizer=optimizer, lr=lr, batch_size=batch_size, alpha=alpha, lamb=lamb,
                         early_stopping=early_stopping, validation_fraction=validation_fraction,
                         n_iter_no_change=n_iter_no_change, update_grid=update_grid, standardize=standardize,
                         symbolic=symbolic, dtype=dtype, random_state=random_state, progress=progress,
                         base_activation=base_activation)
        self.label_smoothing = label_smoothing

    def _label_smoothing(self) -> float:
        if not 0.0 <= self.label_smoothing < 1.0:
            raise ValueError(f"label_smoothing must be in [0, 1), got {self.label_smoothing!r}")
        return float(self.label_smoothing)

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
        """Class logits on ``X`` ``(N, d)``: ``(N, n_classes)`` (``(N,)`` for two classes: logit 1 - logit 0)."""
        check_is_fitted(self, "model_")
        logits = self._raw_predict(X)
        return logits[:, 1] - logits[:, 0] if len(self.classes_) == 2 else logits

    def predict_proba(self, X):
        """Class probabilities on ``X`` ``(N, d)``: ``(N, n_classes)`` (softmax of the logits)."""
        logits = self._raw_predict(X)
        z = np.exp(logits - logits.max(axis=1, keepdims=True))
        return z / z.sum(axis=1, keepdims=True)

    def predict_log_proba(self, X):
        """Log of :meth:`predict_proba` on ``X`` ``(N, d)``: ``(N, n_classes)``."""
        return np.log(self.predict_proba(X))

    def predict(self, X):
        """Class labels ``(N,)`` predicted for ``X`` ``(N, d)``."""
        logits = self._raw_predict(X)
        return self.classes_[np.argmax(logits, axis=1)]


# ---------------------------------------------------------------------- helpers
def _moments(a: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Column means and standard deviations (1 for constant columns). Shape ``(d,)`` each.

    Computed on columns divided by their largest magnitude, so values up to the float64
    limit (1e300 and beyond, whose squares overflow) give finite moments.
    """
    peak = np.abs(a).max(axis=0) if a.shape[0] else np.ones(a.shape[1:])
    peak = np.where((peak > 0) & np.isfinite(peak), peak, 1.0)
    unit = a / peak
    mean, scale = unit.mean(axis=0) * peak, unit.std(axis=0) * peak
    return mean, np.where((scale > 1e-12 * np.abs(mean)) & (scale > 0), scale, 1.0)


def _column_names(y):
    """Target names from a pandas Series / DataFrame, else None."""
    if hasattr(y, "columns"):
        return [str(c) for c in y.columns]
    name = getattr(y, "name", None)
    return [str(name)] if name is not None and hasattr(y, "to_numpy") else None
