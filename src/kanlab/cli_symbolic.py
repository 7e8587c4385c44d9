"""`kanlab fit --symbolic`: snap the edges to closed forms only where that keeps the fit.

Two gates, both stated in the output and in metrics.json:

1. every edge must fit a library function with r^2 >= ``--symbolic-r2`` (default 0.99);
   otherwise no formula describes the model and the numeric model is kept;
2. after snapping and polishing the formula's constants, its error (test RMSE, or test log-loss
   for classification; training error under ``--test-size 0``) must be at most
   ``--symbolic-tolerance`` (default 2) times the numeric model's; otherwise the numeric model
   is kept.
"""
from __future__ import annotations

import math

from .losses import evaluate, resolve_loss
from .training import TrainingDiverged

__all__ = ["snap_if_it_keeps_the_fit", "scores"]


def scores(model, kind: str, x, y) -> dict[str, float]:
    """``{"rmse", "r2"}`` for regression, ``{"accuracy", "log_loss"}`` for classification."""
    _, loss_fn = resolve_loss(kind)
    res = evaluate(model, kind, loss_fn, x, y)
    if kind == "cross_entropy":
        return {"accuracy": res["accuracy"], "log_loss": res["loss"]}
    var = float(((y - y.mean(0)) ** 2).mean())
    return {"rmse": res["rmse"], "r2": 1.0 - res["loss"] / var if var > 0 else float("nan")}


def snap_if_it_keeps_the_fit(model, data, has_test: bool, kind: str, fit_kw: dict, args) -> dict:
    """Try the formula on a copy of ``model``; keep it only if it passes both gates.

    Returns:
        a report: ``model`` (the one to keep), ``kept`` (the formula), ``message`` (why, in one
        line), the numeric and (when it got that far) the symbolic scores, edge counts and the gates.
    """
    x, y = (data.test_input, data.test_label) if has_test else (data.train_input, data.train_label)
    where = "test" if has_test else "training"
    metric = "log_loss" if kind == "cross_entropy" else "rmse"
    report = {"r2_threshold": args.symbolic_r2, "tolerance": args.symbolic_tolerance, "measured_on": where,
              "metric": metric, "numeric_scores": scores(model, kind, x, y)}
    candidate = model.copy()
    choices = candidate.auto_symbolic(data.train_input, r2_threshold=args.symbolic_r2)
    weak = [c for c in choices if not c.fixed]
    report.update(edges=len(choices), snapped=len(choices) - len(weak))
    if weak:
        worst = min(weak, key=lambda c: c.r2)
        return dict(report, model=model, kept=False, message=(
            f"numeric model kept: {len(weak)} of {len(choices)} edges fit no library function with r^2 >= "
            f"{args.symbolic_r2} (--symbolic-r2; lowest {worst.r2:.3f}, edge l={worst.l} i={worst.i} j={worst.j})"))
    try:  # polish the constants a, b, c, d of every snapped edge
        candidate.fit(data, **dict(fit_kw, update_grid=False))
    except TrainingDiverged as err:
        return dict(report, model=model, kept=False, message=f"numeric model kept: polishing the formula failed ({err})")
    report["symbolic_scores"] = sym = scores(candidate, kind, x, y)
    num, new = report["numeric_scores"][metric], sym[metric]
    ratio = new / num if num > 0 else (1.0 if new == 0 else math.inf)
    if math.isfinite(new) and new <= args.symbolic_tolerance * num:
        return dict(report, model=candidate, kept=True, message=(
            f"formula kept: its {where} {metric} {new:.3g} is {ratio:.3g}x the numeric model's {num:.3g} "
            f"(limit {args.symbolic_tolerance:g}x)"))
    return dict(report, model=model, kept=False, message=(
        f"numeric model kept: the formula's {where} {metric} {new:.3g} is {ratio:.3g}x the numeric model's "
        f"{num:.3g} (limit {args.symbolic_tolerance:g}x, --symbolic-tolerance)"))
