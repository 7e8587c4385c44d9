"""kanlab.discover: from a table to a formula in one call (composes training, structure, symbolic)."""
from __future__ import annotations

import itertools
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import torch
from torch import Tensor

from ..datasets.core import Dataset
from ..network import KAN
from ..structure.hypotheses import SYMMETRIES, get_transform
from ..structure.problem import Problem, placeholder
from ..structure.tree import DEFAULT_TRANSFORMS, StructureNode, grow, root_problem
from ..validation import as_float_tensor, check_finite
from .features import feature_candidates
from .finish import complexity, finish_candidates, formula_model
from .leaf import kan_candidates, one_variable_candidates, relative_error
from .result import DiscoveryResult, choose

__all__ = ["discover"]


@dataclass
class _Context:
    deadline: float
    seed: int
    floor: float  # relative error of the surrogate: what model-made targets are worth
    steps: int
    start_cost: float = 0.0  # seconds one KAN workflow start takes, about (from the surrogate's training)
    notes: list = field(default_factory=list)

    def time_left(self) -> float:
        return self.deadline - time.perf_counter()


def _check(X, y, names):
    X = as_float_tensor(X, "X", dtype=torch.float64)
    y = as_float_tensor(y, "y", dtype=torch.float64)
    if X.dim() != 2:
        raise ValueError(f"X must have shape (N, n_features), got {tuple(X.shape)}")
    if y.dim() == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.dim() != 1 or y.shape[0] != X.shape[0]:
        raise ValueError(f"y must have shape ({X.shape[0]},) or ({X.shape[0]}, 1), got {tuple(y.shape)}")
    if X.shape[0] < 20:
        raise ValueError(f"X must have at least 20 rows, got {X.shape[0]}")
    check_finite(X, "X")
    check_finite(y, "y")
    names = [f"x{k}" for k in range(X.shape[1])] if names is None else [str(n) for n in names]
    if len(names) != X.shape[1] or len(set(names)) != len(names):
        raise ValueError(f"names must be {X.shape[1]} distinct names (one per column of X), got {names}")
    return X, y, names


def _split(X: Tensor, y: Tensor, test_size: float, seed: int):
    if not 0.0 < test_size < 1.0:
        raise ValueError(f"test_size must be in (0, 1), got {test_size!r}")
    perm = torch.randperm(X.shape[0], generator=torch.Generator().manual_seed(seed))
    n_test = max(1, int(round(test_size * X.shape[0])))
    te, tr = perm[:n_test], perm[n_test:]
    return X[tr], y[tr], X[te], y[te]


def train_surrogate(Xtr: Tensor, ytr: Tensor, Xte: Tensor, yte: Tensor, seed: int, steps: int,
                    restarts: int = 1) -> tuple[KAN, float]:
    """A numeric KAN ``[d, 2d + 1, 1]`` for the structure tests: G = 5, then G = 10; the best of
    ``restarts`` seeds on the first grid (one is enough: a fresh model's first fit already probes a
    plain and a warm start). Returns the model and its relative test error."""
    d = Xtr.shape[1]
    data = Dataset(Xtr, ytr[:, None], Xte, yte[:, None])
    best = None
    for s in range(restarts):
        model = KAN([d, 2 * d + 1, 1], grid_size=5, seed=seed + s, dtype=torch.float64)
        try:
            hist = model.fit(data, steps=steps, progress=False)
        except FloatingPointError:
            continue
        if best is None or hist.test_rmse[-1] < best[1]:
            best = (model, hist.test_rmse[-1])
    if best is None:
        raise ValueError("the surrogate KAN diverged on every start; check the data (scale, outliers)")
    model = best[0].refine(10, Xtr)
    hist = model.fit(data, steps=steps, progress=False)
    return model, hist.test_rmse[-1] / max(float(yte.std()), 1e-300)


# ---------------------------------------------------------------------- tree -> formulas
def _lifted(expr, problem):
    """A child's formula in its parent's placeholders."""
    return expr.xreplace({placeholder(k): e for k, e in enumerate(problem._lift())})


def _cost(cand) -> float:
    import sympy

    return cand[3] if len(cand) > 3 else float(sympy.count_ops(cand[0]) + len(cand[0].atoms(sympy.Float)))


def _best(cands: list, floor: float, k: int = 2) -> list:
    """Up to ``k`` simplest formulas within 1.5x of the best error plus twice the surrogate's error."""
    best = min(c[1] for c in cands)
    good = [c for c in cands if c[1] <= 1.5 * best + 2 * floor]
    return sorted(good, key=lambda c: (_cost(c), c[1]))[:k]


def _problem(node: StructureNode) -> Problem:
    """The node's problem (every node :func:`grow` makes has one)."""
    if node.problem is None:
        raise ValueError("the structure node has no problem attached; build it with structure.tree.grow")
    return node.problem


def _assemble(node: StructureNode, parts: list):
    """The node's formula from its children's (already in the node's placeholders)."""
    import sympy

    p = _problem(node)
    t = get_transform(node.transform)
    base = p.base_values() if node.base is None else node.base
    with torch.no_grad():
        at_base = float((t.fn(p.at_base(base)) - node.shift).mean())
    k = len(parts)
    if node.kind == "sum":
        inner = sympy.Add(*parts) - (k - 1) * sympy.Float(at_base + node.shift)
    else:
        inner = sympy.Float(node.shift) + sympy.Mul(*parts) / sympy.Float(at_base) ** (k - 1)
    sign = 1.0 if bool((p.y > 0).all()) else -1.0
    return t.inverse(inner, sign)


def solve(node: StructureNode, ctx: _Context, accept: float) -> list:
    """Candidate formulas ``[(expr in the node's placeholders, relative error, source)]``."""
    p = _problem(node)
    out: list = []
    if node.kind == "leaf":
        feats = feature_candidates(p.points, p.y, ctx.deadline, noise=ctx.floor * float(p.y.std()))
        if p.n_vars == 1:
            out = [(e, r, "library fit", c) for e, r, c in one_variable_candidates(p.points[:, 0], p.y)]
        elif not feats or feats[0][1] > 2 * ctx.floor + 1e-9:
            out = kan_candidates(p.points, p.y, ctx.seed, ctx.deadline, ctx.steps, required=not feats,
                                 start_cost=ctx.start_cost)
        return feats + out
    if node.kind == "substitute":
        child = node.children[0]
        return [(_lifted(c[0], _problem(child)),) + tuple(c[1:]) for c in solve(child, ctx, accept)]
    options: list[list] = []
    for child in node.children:
        cands = solve(child, ctx, accept)
        if not cands:
            options = []
            break
        options.append([_lifted(c[0], _problem(child)) for c in _best(cands, ctx.floor)])
    if options:
        for parts in itertools.islice(itertools.product(*options), 8):
            expr = _assemble(node, list(parts))
            out.append((expr, relative_error(expr, p.points, p.y), f"structure: {node.label()}"))
    out += feature_candidates(p.points, p.y, ctx.deadline, noise=ctx.floor * float(p.y.std()))
    out.sort(key=lambda c: c[1])
    if (not out or out[0][1] > accept) and ctx.time_left() > 0:
        ctx.notes.append(f"structure at '{node.label()}' gave relative error "
                         f"{out[0][1] if out else math.inf:.2e}; tried the KAN workflow on the whole node")
        out += kan_candidates(p.points, p.y, ctx.seed, ctx.deadline, ctx.steps, required=not out,
                              start_cost=ctx.start_cost)
    return out


def discover(X, y, names: Sequence[str] | None = None, *, test_size: float = 0.2, seed: int = 0,
             time_budget: float = 120.0, threshold: float = 0.03, steps: int = 30,
             transforms: Sequence[str] = DEFAULT_TRANSFORMS, symmetries: Sequence[str] = SYMMETRIES) -> DiscoveryResult:
    """Find a closed-form formula ``y = f(X)``: structure first, then formulas for the parts.

    1. A numeric KAN (the surrogate) is fit to the training rows.
    2. :func:`kanlab.structure.structure_tree` tests it for separability and symmetries; the
       tree splits the problem (AI Feynman's recursion): sums and products of parts, variables
       that do not matter dropped, pairs replaced by ``x - y``, ``x / y``, ``x y``.
    3. Parts of one variable are fit against the symbolic library (and transforms of the
       target); parts of several variables run the KAN workflow (fit with lamb, prune, refine,
       snap layer by layer with retraining between, ``polish_symbolic``) from several starting
       shapes, MultKAN included. Where the parts do not combine into an accurate formula the
       whole node runs the KAN workflow too.
    4. Every candidate's constants are fit to the training rows, then rounded to simple numbers
       where that costs no accuracy; candidates are ranked by test error and complexity
       (Pareto front) and the simplest within 10% of the best error is chosen.
    5. The choice is compiled into a KAN, polished (``polish_symbolic``) and read back, so the
       printed formula is the model.

    Args:
        X: ``(N, d)`` inputs (tensor or array); y: ``(N,)`` or ``(N, 1)`` targets.
        names: variable names (default ``x0, x1, ...``).
        test_size: fraction of rows held out for ranking.
        seed: drives the split, the initialisations and the swap tests (same seed, same result).
        time_budget: seconds; once spent, no new KAN workflow starts (running steps finish).
        threshold: residual ratio under which a structure test passes.
        steps: optimizer steps per training phase.
        transforms, symmetries: what the structure search tries.

    Returns:
        :class:`~kanlab.discovery.DiscoveryResult` (``print(result)`` shows the Pareto front).

    Example:
        >>> X = torch.rand(500, 2, dtype=torch.float64) + 0.5
        >>> result = kanlab.discover(X, X[:, 0] / X[:, 1], names=["a", "b"], time_budget=30)
        >>> result.formula
        a/b
    """
    start = time.perf_counter()
    X, y, names = _check(X, y, names)
    if not (isinstance(time_budget, (int, float)) and time_budget > 0):
        raise ValueError(f"time_budget must be a number of seconds > 0, got {time_budget!r}")
    Xtr, ytr, Xte, yte = _split(X, y, test_size, seed)
    trained_at = time.perf_counter()
    surrogate, floor = train_surrogate(Xtr, ytr, Xte, yte, seed, steps)
    # a KAN workflow start (three fits and a refine, then two snaps with fits) takes about 2.5 surrogates
    ctx = _Context(start + float(time_budget), seed, floor, steps, 2.5 * (time.perf_counter() - trained_at))
    ctx.notes.append(f"surrogate {surrogate.width}: relative test error {floor:.2e}")
    root = root_problem(surrogate, Xtr, names, y=ytr)
    options = dict(threshold=float(threshold), importance=1e-3, transforms=tuple(transforms),
                   symmetries=tuple(symmetries), method="values", seed=int(seed))
    tree = grow(root, options, 10)
    accept = max(10 * floor, 1e-6)
    direct = feature_candidates(_problem(tree).points, _problem(tree).y, ctx.deadline,
                                noise=floor * float(ytr.std()), factor_out=True)
    if direct and direct[0][1] <= 1e-10 and _cost(direct[0]) <= 30:  # a short exact formula: done
        ctx.notes.append(f"sparse feature regression fits the data to {direct[0][1]:.1e}; structure parts skipped")
        found = direct
    else:
        found = solve(tree, ctx, accept) + direct
    if tree.kind != "leaf" and min((c[1] for c in found), default=math.inf) > accept and ctx.time_left() > 0:
        found += kan_candidates(_problem(tree).points, _problem(tree).y, ctx.seed, ctx.deadline, ctx.steps,
                                required=not found, start_cost=ctx.start_cost)
    if not found:
        raise ValueError("discover found no finite formula within the time budget; raise time_budget")
    variables = [__import__("sympy").Symbol(n) for n in names]
    real = _real_symbols(variables, X)
    found = [(_lifted(c[0], _problem(tree)), c[2]) for c in found]
    candidates = finish_candidates(found, variables, real, Xtr, ytr, Xte, yte)
    chosen = choose(candidates, rel_tol=0.1, abs_tol=1e-12 * float(y.std()))
    chosen.chosen = True
    model, formula, notes = formula_model(chosen, variables, real, Xtr, ytr, Xte, yte, surrogate)
    ctx.notes += notes
    test_rmse = float(((torch.as_tensor(_np_eval(formula, variables, Xte)) - yte) ** 2).mean().sqrt())
    train_rmse = float(((torch.as_tensor(_np_eval(formula, variables, Xtr)) - ytr) ** 2).mean().sqrt())

    return DiscoveryResult(formula, test_rmse, train_rmse, test_rmse / max(float(yte.std()), 1e-300),
                           complexity(formula), model, candidates, tree, surrogate,
                           time.perf_counter() - start, ctx.notes)


def _real_symbols(variables, X: Tensor) -> dict:
    """Symbols that know the sign of their column (so sympy simplifies sqrt(a^2) to a for a > 0)."""
    import sympy

    out = {}
    for k, v in enumerate(variables):
        col = X[:, k]
        sign = {"positive": True} if bool((col > 0).all()) else {"negative": True} if bool((col < 0).all()) else {}
        out[v] = sympy.Symbol(v.name, real=True, **sign)
    return out


def _np_eval(expr, variables, x: Tensor):
    import numpy as np

    from ..symbolic.formula import to_numpy

    with np.errstate(all="ignore"):
        return to_numpy(expr, variables)(x.numpy())
