"""Acceptance: fit sparse -> prune -> refine -> auto_symbolic -> fit -> formula recovers known laws (float64).

Every law runs the whole workflow from a wide KAN (:func:`discover`): fit_sparse, prune
(the width it leaves is whatever pruning gives; asserted), fit, refine to G=10, fit, then
auto_symbolic one layer at a time with a short fit after each (the numeric layers above
adapt to the closed forms below them before they are fit in turn: snapping all layers at
once fits the outer edges to inputs they were never trained on), polish_symbolic, formula.
What a user tunes per law is in ``LAWS``, with the seeds it was checked on:

- x*y starts from a MultKAN with multiplication nodes only, ``[2, [0, 2], 1]`` (KAN 2.0);
  one mult node is pruned away. (From sum nodes, [2,5,1] prunes to [2,2,1] and, snapped
  layer by layer, gives ((a x + y)^2 - (a x - y)^2)/(4 a): exact, but not printed as x0*x1.)
- x/y needs nothing special: [2,5,1] prunes to [2,1,1] = exp(log x - log y).
- (x+y)/(1+xy) needs ``weight_simple=0.2``: at 0.8 arctanh (complexity 4) loses to ``x``
  with r^2 = 0.992.
- sin(pi x)+cos(pi y) starts from G=5 with ``lamb=1e-2`` in the first sparse phase (at
  G=3, or with the weak first phase, the sparse fit spreads sin(pi x) over 2-3 nodes).
  Even so it is the least reliable: seeds 0 and 3 prune to [2,2,1] / [2,1,1] and give
  the exact law, seed 4 prunes to [2,3,1] and still does, seeds 1 and 2 fold y into
  a non-library curve and do not.
- the Gaussian snaps its inner layer with the library ``["x", "x^2"]``: in [1,1,1] the
  split between inner and outer edge is not identifiable, and the numeric inner edge is
  an odd, sin-like curve that the full library matches with cos(cos(x)). Seeds 0 and 1
  work; seeds 2 and 3 learn an inner edge with real lopsided curvature (r^2 0.998 for
  x^2, 0.976 for x) and end at RMSE 2% of the std.

Other seeds checked (same recipes, all pass): x*y 2-3, x/y 2-3, (x+y)/(1+xy) 2-3,
sqrt(1+x^2+y^2) 2-3, exp(sin(pi x)+y^2) 2 (prunes to [2,2,1], exact formula).
"""
import math

import pytest
import torch

sympy = pytest.importorskip("sympy")

import kanlab  # noqa: E402
from kanlab.datasets import from_function  # noqa: E402
from kanlab.sparse_fit import fit_sparse  # noqa: E402
from kanlab.symbolic import polish_symbolic, to_numpy  # noqa: E402

x0, x1 = sympy.symbols("x0 x1")
PI = math.pi


def _law(f, n_var, rng, width, pruned, seeds, exact=None, grid_size=3, lamb=1e-3, weight_simple=0.8,
         inner_library=None):
    return dict(f=f, n_var=n_var, rng=rng, width=width, pruned=pruned, seeds=seeds, exact=exact,
                grid_size=grid_size, lamb=lamb, weight_simple=weight_simple, inner_library=inner_library)


LAWS = {
    "exp_sin_sq": _law(lambda x: torch.exp(torch.sin(PI * x[:, [0]]) + x[:, [1]] ** 2), 2, (-1, 1),
                       [2, 5, 1], [2, 1, 1], [0, 1], sympy.exp(sympy.sin(sympy.pi * x0) + x1 ** 2)),
    "product": _law(lambda x: x[:, [0]] * x[:, [1]], 2, (-1, 1), [2, [0, 2], 1], [2, [0, 1], 1], [0, 1], x0 * x1),
    "quotient": _law(lambda x: x[:, [0]] / x[:, [1]], 2, (0.5, 2), [2, 5, 1], [2, 1, 1], [0, 1], x0 / x1),
    "sin_cos": _law(lambda x: torch.sin(PI * x[:, [0]]) + torch.cos(PI * x[:, [1]]), 2, (-1, 1),
                    [2, 5, 1], ([2, 2, 1], [2, 1, 1]), [0, 3], grid_size=5, lamb=1e-2),
    "velocity": _law(lambda x: (x[:, [0]] + x[:, [1]]) / (1 + x[:, [0]] * x[:, [1]]), 2, (-0.8, 0.8),
                     [2, 5, 1], [2, 1, 1], [0, 1], weight_simple=0.2),
    "sqrt": _law(lambda x: torch.sqrt(1 + x[:, [0]] ** 2 + x[:, [1]] ** 2), 2, (-1, 1),
                 [2, 5, 1], [2, 1, 1], [0, 1]),
    "gaussian": _law(lambda x: torch.exp(-x[:, [0]] ** 2 / 2) / math.sqrt(2 * PI), 1, (-2, 2),
                     [1, 5, 1], [1, 1, 1], [0, 1], inner_library=["x", "x^2"]),
}


def _fresh_rmse(f, formula, n_var, rng):
    """RMSE of ``formula`` against ``f`` on 1000 fresh points (float64), and std of ``f``."""
    fresh = torch.rand(1000, n_var, dtype=torch.float64, generator=torch.Generator().manual_seed(123))
    fresh = fresh * (rng[1] - rng[0]) + rng[0]
    truth = f(fresh)[:, 0]
    pred = torch.as_tensor(to_numpy(formula, sympy.symbols(f"x0:{n_var}"))(fresh.numpy()))
    return float(((pred - truth) ** 2).mean().sqrt()), float(truth.std())


def discover(name, seed, n_train=1000, steps=50):
    """The whole workflow for ``LAWS[name]``; returns (pruned width, formula, RMSE, std of f)."""
    law = LAWS[name]
    data = from_function(law["f"], n_var=law["n_var"], ranges=law["rng"], n_train=n_train, n_test=1000,
                         seed=seed, dtype=torch.float64)
    model = kanlab.KAN(law["width"], grid_size=law["grid_size"], grid_range=law["rng"], seed=seed,
                       dtype=torch.float64)
    fit_sparse(model, data, steps=steps, lamb=law["lamb"], sparse_lamb=1e-2, progress=False)
    model = model.prune(data.train_input)
    width = model.width
    model.fit(data, steps=30, progress=False)
    model = model.refine(10)
    model.fit(data, steps=30, progress=False)
    for l in range(model.depth):  # snap a layer, let the numeric layers above adapt, snap the next
        library = law["inner_library"] if l < model.depth - 1 else None
        model.auto_symbolic(data.train_input, weight_simple=law["weight_simple"], library=library, layers=[l])
        model.fit(data, steps=20, progress=False, update_grid=l < model.depth - 1)
    polish_symbolic(model, data.train_input, data.train_label)
    formula = model.symbolic_formula()[0]
    return (width, formula) + _fresh_rmse(law["f"], formula, law["n_var"], law["rng"])


def _check_law(name, seed, n_train=1000, steps=50):
    law = LAWS[name]
    width, formula, rmse, std = discover(name, seed, n_train, steps)
    allowed = law["pruned"] if isinstance(law["pruned"], tuple) else (law["pruned"],)
    assert width in allowed, f"{name}, seed {seed}: pruning left {width} (formula {formula})"
    assert rmse <= 1e-6 * std, f"{name}, seed {seed}: formula {formula} has RMSE {rmse:.3e} (std {std:.3e})"
    if law["exact"] is not None:
        assert sympy.simplify(formula - law["exact"]) == 0, f"{name}, seed {seed}: got {formula}"


def test_workflow_discovers_product_from_a_wide_multkan():
    # a smaller run of the recipe (300 samples, 30 + 30 sparse steps)
    _check_law("product", seed=0, n_train=300, steps=30)


@pytest.mark.slow
@pytest.mark.parametrize("name,seed", [(n, s) for n, law in LAWS.items() for s in law["seeds"]])
def test_workflow_discovers_law_slow(name, seed):
    _check_law(name, seed)


# ---------------------------------------------------------------------- the whole workflow, with pruning
def run_pruned_workflow(seed, n_train, steps=50):
    """examples/discover.py: [2,5,1] -> fit_sparse -> prune -> fit -> refine(10) -> fit ->
    auto_symbolic -> fit -> polish. Returns the pruned width and the final model."""
    f = LAWS["exp_sin_sq"]["f"]
    data = from_function(f, n_var=2, ranges=(-1, 1), n_train=n_train, n_test=1000, seed=seed,
                         dtype=torch.float64)
    model = kanlab.KAN([2, 5, 1], grid_size=3, seed=seed, dtype=torch.float64)
    fit_sparse(model, data, steps=steps, lamb=1e-3, sparse_lamb=1e-2, progress=False)
    model = model.prune(data.train_input)
    width = model.width
    model.fit(data, steps=30, progress=False)
    model = model.refine(10)
    model.fit(data, steps=30, progress=False)
    model.auto_symbolic(data.train_input)
    model.fit(data, steps=20, progress=False, update_grid=False)
    polish_symbolic(model, data.train_input, data.train_label)
    return width, model, data


def _check_pruned_workflow(seed, n_train, steps=50):
    width, model, data = run_pruned_workflow(seed, n_train, steps)
    assert width == [2, 1, 1], f"seed {seed}: pruning left {width}"
    _check_formula(model, seed)
    return model, data


def _check_formula(model, seed):
    formula = model.symbolic_formula()[0]
    assert sympy.simplify(formula - LAWS["exp_sin_sq"]["exact"]) == 0, f"seed {seed}: got {formula}"
    rmse, std = _fresh_rmse(LAWS["exp_sin_sq"]["f"], formula, 2, (-1, 1))
    assert rmse <= 1e-6 * std, f"seed {seed}: formula {formula} has RMSE {rmse:.3e} (std {std:.3e})"


def test_pruned_workflow_discovers_exp_sin_sq_and_round_trips(tmp_path):
    # a smaller run of the recipe (200 samples, 30 + 30 sparse steps)
    model, data = _check_pruned_workflow(seed=0, n_train=200, steps=30)
    # the pruned, symbolic model survives save / load: same tensors, outputs, formula
    model.save(tmp_path / "discovered.kan")
    back = kanlab.load(tmp_path / "discovered.kan")
    assert back.width == [2, 1, 1] and back.config == model.config
    assert set(back.symbolic.keys()) == set(model.symbolic.keys())
    sa, sb = model.state_dict(), back.state_dict()
    assert sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)
    assert torch.equal(back(data.test_input), model(data.test_input))
    assert sympy.simplify(back.symbolic_formula()[0] - model.symbolic_formula()[0]) == 0


@pytest.mark.slow
def test_pruned_workflow_paper_scale():
    """1000 samples, seeds 0-4: at least 4 prune to [2,1,1], and those give the exact formula."""
    widths = []
    for seed in range(5):
        width, model, _ = run_pruned_workflow(seed, n_train=1000)
        widths.append(width)
        if width == [2, 1, 1]:
            _check_formula(model, seed)
    assert sum(w == [2, 1, 1] for w in widths) >= 4, widths
