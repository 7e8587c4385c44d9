"""pykan's argument spellings, translated to kanlab's or refused with kanlab's spelling named.

pykan users bring their keyword arguments along (``model.fit(dataset, opt="LBFGS")``,
``auto_symbolic(lib=[...])``, ``prune(node_th=...)``). :func:`translate` maps each such name
to kanlab's argument (converting the value where the meaning is the same) and answers the
names kanlab has no counterpart for with a TypeError that says what to use instead.

Example:
    >>> translate("fit", {"opt": "LBFGS", "batch": -1, "steps": 5})
    {'steps': 5, 'optimizer': 'lbfgs', 'batch_size': None}
"""
from __future__ import annotations

from typing import Callable

__all__ = ["translate", "require_data", "PYKAN_ARGUMENTS"]


def _lower(value):
    return value.lower() if isinstance(value, str) else value


def _batch(value):
    """pykan's ``batch=-1`` means the full batch."""
    return None if isinstance(value, int) and value < 0 else value


_NO_FIGURES = ("kanlab's fit draws no figures; pass callbacks=[fn(step, model, history)] and save "
               "model.plot(x) there")
_NO_CACHE = "kanlab caches no activations; pass the data explicitly"

# method -> pykan name -> (kanlab name, value converter) or the message for names with no counterpart
PYKAN_ARGUMENTS: dict[str, dict[str, tuple[str, Callable] | str]] = {
    "fit": {
        "opt": ("optimizer", _lower),
        "loss_fn": ("loss", lambda v: "mse" if v is None else v),
        "batch": ("batch_size", _batch),
        "log": "kanlab's fit has no log=; test metrics are recorded every eval_every steps and "
               "progress=True shows them on a progress bar",
        "metrics": "use callbacks=[fn(step, model, history)] to compute extra metrics",
        "display_metrics": "the progress bar shows train/test RMSE (or accuracy); use callbacks for more",
        "save_fig": _NO_FIGURES, "img_folder": _NO_FIGURES, "save_fig_freq": _NO_FIGURES, "beta": _NO_FIGURES,
        "in_vars": _NO_FIGURES, "out_vars": _NO_FIGURES,
        "singularity_avoid": "kanlab's symbolic functions are always singularity-safe; drop singularity_avoid=",
        "y_th": "kanlab's symbolic functions are always singularity-safe; drop y_th=",
        "reg_metric": "kanlab's regularization is pykan's default 'edge_forward_spline_n'; drop reg_metric=",
    },
    "auto_symbolic": {
        "lib": ("library", lambda v: v),
        "verbose": "kanlab prints nothing: auto_symbolic returns one EdgeChoice per edge instead",
    },
    "suggest_symbolic": {
        "lib": ("library", lambda v: v),
        "verbose": "kanlab prints nothing: suggest_symbolic returns the ranked suggestions",
    },
    "fix_symbolic": {
        "fit_params_bool": "pass x to fit the affine parameters (fit_params_bool=True) or params=(a, b, c, d) "
                           "to set them",
        "verbose": "kanlab prints nothing: fix_symbolic returns the fit's r^2",
        "random": "drop random=; kanlab's fits are deterministic",
        "log_history": "drop log_history=; kanlab keeps no history of edits",
    },
    "prune": {
        "node_th": ("node_threshold", lambda v: v),
        "edge_th": ("edge_threshold", lambda v: v),
        "mode": "kanlab prunes by attribution scores; for manual pruning use remove_node / remove_edge",
        "active_neurons_id": "use remove_node(l, i) to remove nodes by hand",
        "log_history": "drop log_history=; kanlab keeps no history of edits",
    },
    "symbolic_formula": {
        "var": ("var_names", lambda v: v),
        "floating_digit": "kanlab rounds constants by tolerance=; drop floating_digit=",
        "normalizer": "kanlab's formulas are in the model's input units; drop normalizer=",
        "output_normalizer": "kanlab's formulas are in the model's output units; drop output_normalizer=",
    },
}


def translate(method: str, kwargs: dict) -> dict:
    """``kwargs`` with pykan's names for ``method`` replaced by kanlab's.

    Raises:
        TypeError naming kanlab's spelling, for a pykan argument kanlab has no counterpart for
        or one given together with its kanlab name.
    """
    table = PYKAN_ARGUMENTS.get(method, {})
    out = {k: v for k, v in kwargs.items() if k not in table}
    for name, value in kwargs.items():
        if name not in table:
            continue
        entry = table[name]
        if isinstance(entry, str):
            raise TypeError(f"{method}() got pykan's argument {name}=; {entry}")
        new_name, convert = entry
        if new_name in kwargs:
            raise TypeError(f"{method}() got both {name}= (pykan's spelling) and {new_name}=; give {new_name}= only")
        out[new_name] = convert(value)
    return out


def require_data(x, method: str):
    """``x``, or a TypeError when it is missing: pykan's methods read the activations cached by
    the last forward, kanlab's take the data."""
    if x is None:
        raise TypeError(f"{method}() needs the data x (kanlab caches no activations from an earlier "
                        f"forward): model.{method}(x, ...) with x of shape (N, n_inputs)")
    return x
