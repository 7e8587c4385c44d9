"""KAN estimators with their defaults against scikit-learn's baselines on small tables.

One run prints one markdown table, side by side: KANClassifier / KANRegressor (defaults,
random_state=0), MLP behind a StandardScaler, a linear model behind a StandardScaler
(LogisticRegression / Ridge) and HistGradientBoosting, each scored on the same 75/25 split
(random_state=0): accuracy for classification, R^2 for regression, and fit seconds (wall).
Datasets: scikit-learn's bundled tables and a few ``make_*`` generators; California housing
only when it is already in scikit-learn's data home (it is a download).

Usage: ``python benchmarks/tabular.py [--threads 2] [--only digits,diabetes] [--seeds 1]``
(``--seeds 3`` also runs the KAN with random_state 1 and 2 and prints their range).
"""
from __future__ import annotations

import argparse
import time
import warnings

import numpy as np
import torch


def datasets():
    """name -> (X, y, is_classification), generated with fixed seeds."""
    from sklearn import datasets as ds

    out = {}
    for name in ("iris", "wine", "breast_cancer", "digits"):
        X, y = getattr(ds, f"load_{name}")(return_X_y=True)
        out[name] = (X, y, True)
    out["diabetes"] = (*ds.load_diabetes(return_X_y=True), False)
    try:
        X, y = ds.fetch_california_housing(return_X_y=True, download_if_missing=False)
        out["california"] = (X, y, False)
    except OSError:
        pass  # not downloaded on this machine
    out["friedman1"] = (*ds.make_friedman1(n_samples=2000, noise=1.0, random_state=0), False)
    out["regression"] = (*ds.make_regression(n_samples=1000, n_features=20, n_informative=10, noise=10.0,
                                             random_state=0), False)
    out["classification"] = (*ds.make_classification(n_samples=2000, n_features=20, n_informative=8,
                                                     n_classes=3, random_state=0), True)
    out["moons"] = (*ds.make_moons(n_samples=1000, noise=0.3, random_state=0), True)
    out["circles"] = (*ds.make_circles(n_samples=1000, noise=0.1, factor=0.5, random_state=0), True)
    return out


def models(classification: bool, seed: int = 0) -> dict:
    from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
    from sklearn.linear_model import LogisticRegression, Ridge
    from sklearn.neural_network import MLPClassifier, MLPRegressor
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from kanlab.sklearn import KANClassifier, KANRegressor

    if classification:
        return {"KAN": KANClassifier(random_state=seed),
                "MLP": make_pipeline(StandardScaler(), MLPClassifier(random_state=0)),
                "linear": make_pipeline(StandardScaler(), LogisticRegression(max_iter=5000)),
                "HGB": HistGradientBoostingClassifier(random_state=0)}
    return {"KAN": KANRegressor(random_state=seed),
            "MLP": make_pipeline(StandardScaler(), MLPRegressor(random_state=0)),
            "linear": make_pipeline(StandardScaler(), Ridge()),
            "HGB": HistGradientBoostingRegressor(random_state=0)}


def run(X, y, classification: bool, seeds: int) -> dict:
    """``name -> (score, seconds)``, plus ``"KAN seeds"`` -> scores for random_state 0..seeds-1."""
    from sklearn.model_selection import train_test_split

    Xtr, Xte, ytr, yte = train_test_split(X, y, test_size=0.25, random_state=0)
    out = {}
    for name, model in models(classification).items():
        start = time.perf_counter()
        model.fit(Xtr, ytr)
        out[name] = (model.score(Xte, yte), time.perf_counter() - start)
    out["KAN seeds"] = [out["KAN"][0]] + [models(classification, s)["KAN"].fit(Xtr, ytr).score(Xte, yte)
                                          for s in range(1, seeds)]
    return out


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--threads", type=int, default=2, help="torch threads (default 2)")
    parser.add_argument("--only", default=None, help="comma-separated dataset names")
    parser.add_argument("--seeds", type=int, default=1, help="KAN random_states 0..seeds-1 (default 1)")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    warnings.filterwarnings("ignore")  # MLP convergence warnings
    tables = datasets()
    if "california" not in tables:
        print("california housing: skipped (not in scikit-learn's data home; it is a download)\n")
    names = args.only.split(",") if args.only else list(tables)
    cols = ["KAN", "MLP", "linear", "HGB"]
    print(f"75/25 split (random_state=0), defaults, {args.threads} torch thread(s); accuracy (classification) "
          "or R^2 (regression), fit seconds")
    print()
    head = "| dataset | n, d | metric | " + " | ".join(cols) + " | " + " | ".join(f"{c} s" for c in cols) + " |"
    print(head)
    print("|" + "---|" * (3 + 2 * len(cols)))
    for name in names:
        X, y, classification = tables[name]
        res = run(X, y, classification, args.seeds)
        best = max(res[c][0] for c in cols)
        scores = [f"**{res[c][0]:.3f}**" if res[c][0] == best else f"{res[c][0]:.3f}" for c in cols]
        if args.seeds > 1:
            scores[0] += f" ({min(res['KAN seeds']):.3f}-{max(res['KAN seeds']):.3f})"
        secs = [f"{res[c][1]:.1f}" for c in cols]
        metric = "accuracy" if classification else "R^2"
        print(f"| {name} | {X.shape[0]}, {X.shape[1]} | {metric} | " + " | ".join(scores) + " | "
              + " | ".join(secs) + " |", flush=True)


if __name__ == "__main__":
    main()
