"""What :class:`KANRegressor` and :class:`KANClassifier` share: arguments, fitting, prediction, formulas."""
from __future__ import annotations

import numpy as np
import torch
from sklearn.base import BaseEstimator
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted

from ..network import KAN
from ..validation import check_bool, check_int
from ._recipe import make_plan, scale_inputs, train, validation_split

__all__ = ["KANEstimator", "DTYPES", "OPTIMIZERS"]

DTYPES = {"float32": torch.float32, "float64": torch.float64}
OPTIMIZERS = ("auto", "lbfgs", "adam", "adamw")
SYMBOLIC_POLISH_STEPS = 50  # L-BFGS steps on the snapped edges' parameters (symbolic=True; at most `steps`)


class KANEstimator(BaseEstimator):
    """Shared fitting code. Subclasses define ``_loss`` and how targets map to outputs.

    Arguments are documented on :class:`kanlab.sklearn.KANRegressor`.
    """

    _loss = "mse"

    def __init__(self, hidden="auto", grid_size="auto", spline_order=3, steps="auto", optimizer="auto", lr=None,
                 batch_size="auto", alpha="auto", lamb=0.0, early_stopping="auto", validation_fraction=0.2,
                 n_iter_no_change=10, update_grid="auto", standardize=True, symbolic=False, dtype="float32",
                 random_state=None, progress=False, base_activation="identity"):
        """Store the arguments as given (scikit-learn's contract: they are checked in ``fit``)."""
        self.hidden = hidden
        self.grid_size = grid_size
        self.spline_order = spline_order
        self.steps = steps
        self.optimizer = optimizer
        self.lr = lr
        self.batch_size = batch_size
        self.alpha = alpha
        self.lamb = lamb
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.n_iter_no_change = n_iter_no_change
        self.update_grid = update_grid
        self.standardize = standardize
        self.symbolic = symbolic
        self.dtype = dtype
        self.random_state = random_state
        self.progress = progress
        self.base_activation = base_activation

    # ------------------------------------------------------------------ fitting
    def _check_params(self) -> torch.dtype:
        """Validate the arguments that ``make_plan`` does not; returns the torch dtype."""
        dtype = self.dtype.lower() if isinstance(self.dtype, str) else self.dtype
        if dtype not in DTYPES:
            raise ValueError(f"dtype must be one of {sorted(DTYPES)}, got {self.dtype!r}")
        if not (isinstance(self.optimizer, str) and self.optimizer.lower() in OPTIMIZERS):
            raise ValueError(f"optimizer must be one of {list(OPTIMIZERS)} (any case), got {self.optimizer!r}")
        if self.early_stopping not in ("auto", True, False):
            raise ValueError(f"early_stopping must be 'auto', True or False, got {self.early_stopping!r}")
        if not 0.0 < self.validation_fraction < 1.0:
            raise ValueError(f"validation_fraction must be in (0, 1), got {self.validation_fraction!r}")
        check_int("n_iter_no_change", self.n_iter_no_change, 1)
        check_int("spline_order", self.spline_order, 1)
        if self.steps != "auto":
            check_int("steps", self.steps, 1)  # 0 steps would return an untrained model without a word
        for name in ("standardize", "symbolic", "progress") + (() if self.update_grid == "auto" else ("update_grid",)):
            check_bool(name, getattr(self, name))
        if not self.lamb >= 0:
            raise ValueError(f"lamb must be >= 0, got {self.lamb!r}")
        return DTYPES[dtype]

    def _label_smoothing(self) -> float:
        return 0.0

    def _fit_model(self, X: np.ndarray, target: np.ndarray, n_out: int, output_names) -> None:
        """Train ``model_`` on ``X`` ``(N, d)`` and ``target`` (``(N, n_out)`` floats or ``(N,)`` classes)."""
        dtype = self._check_params()
        if X.shape[0] < 2:
            raise ValueError(f"{type(self).__name__} needs at least 2 samples, got n_samples = {X.shape[0]}")
        self._plan = plan = make_plan(_Lowered(self), X.shape[0], X.shape[1])
        seed = int(check_random_state(self.random_state).randint(0, 2**31 - 1))
        if self.standardize:
            self.x_mean_, self.x_scale_ = scale_inputs(X)
        else:
            self.x_mean_, self.x_scale_ = np.zeros(X.shape[1]), np.ones(X.shape[1])
        x = torch.tensor(standardized(X, self.x_mean_, self.x_scale_, "X", dtype), dtype=dtype)
        if target.dtype.kind == "f":
            standardized(target, 0.0, 1.0, "y", dtype)
        y = torch.tensor(target, dtype=dtype if target.dtype.kind == "f" else torch.long)
        val, full = None, (x, y)
        if plan.early_stopping:
            fit_idx, val_idx = validation_split(target if target.dtype.kind != "f" else np.zeros(len(target), int),
                                                plan.validation_fraction, seed, stratify=target.dtype.kind != "f")
            x, y, val = x[fit_idx], y[fit_idx], (x[val_idx], y[val_idx])
        names = getattr(self, "feature_names_in_", None)
        model = KAN(width=[X.shape[1], *plan.hidden, n_out], grid_size=plan.grids[0],
                    spline_order=self.spline_order, seed=seed, dtype=dtype, base_activation=self.base_activation,
                    input_names=[str(n) for n in names] if names is not None else None,
                    output_names=output_names)
        self.model_, self.history_, report = train(plan, model, self._loss, x, y, val, seed, self.progress,
                                                   self._label_smoothing(), full)
        self.model_ = self.model_.to(torch.float64)  # predictions independent of the batch's make-up
        self.n_iter_ = sum(len(h) for h in self.history_)
        self.grid_size_ = report["grid"]
        self.validation_loss_ = report["validation_loss"]
        self.alpha_ = report["alpha"]
        self.linear_ = report["linear"]
        self.formula_ = None
        if self.symbolic:  # snap to closed forms, polish their affine parameters, read the formula
            x, y = (t.to(torch.float64) if t.is_floating_point() else t for t in full)
            self.model_.auto_symbolic(x)
            steps = SYMBOLIC_POLISH_STEPS if self.steps == "auto" else max(1, min(SYMBOLIC_POLISH_STEPS, self.steps))
            self.history_.append(self.model_.fit((x, y), steps=steps, optimizer="lbfgs", loss=self._loss,
                                                 update_grid=False, progress=self.progress, eval_every=steps))
            self.formula_ = self._formula()

    @torch.no_grad()
    def _raw_predict(self, X) -> np.ndarray:
        """Model outputs ``(N, n_out)`` on the original feature scale."""
        from sklearn.utils.validation import validate_data

        check_is_fitted(self, "model_")
        X = validate_data(self, X, reset=False, dtype=np.float64)
        dtype = next(self.model_.parameters()).dtype
        x = torch.tensor(np.clip(X / self.x_scale_ - self.x_mean_ / self.x_scale_, -1e30, 1e30), dtype=dtype)
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


class _Lowered:
    """``est``'s arguments with the option strings lower-cased (``optimizer="LBFGS"`` works)."""

    def __init__(self, est):
        self.__dict__.update({k: (v.lower() if isinstance(v, str) else v) for k, v in est.get_params().items()})


def standardized(a: np.ndarray, mean, scale, name: str, dtype: torch.dtype) -> np.ndarray:
    """``(a - mean) / scale``, without overflow in the difference, checked finite in ``dtype``
    with room to square (an MSE of such values must stay finite)."""
    out = a / scale - mean / scale
    limit = float(np.sqrt(torch.finfo(dtype).max)) / 4
    if not np.all(np.abs(out) < limit):
        raise ValueError(f"{name} has values too large to train on in {dtype} after standardisation "
                         f"(|value| up to {np.nanmax(np.abs(out)):.3g}); use standardize=True or rescale {name}")
    return out


def _num(v):
    import sympy

    return sympy.Float(float(v))
