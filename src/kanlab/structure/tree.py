"""The structure tree: recursive separability / symmetry tests on a model (AI Feynman's recursion,
printed and plotted like KAN 2.0's tree converter).

At each node, in this order: variables the function ignores are dropped; a node with one variable
is a leaf; ``T(f)`` additively separable into groups of variables (for the first transform ``T``
that works) makes a ``sum`` node; ``T(f) - c`` multiplicatively separable makes a ``product`` node
(``c = 0`` first, then a fitted shift); a symmetry (``x_i - x_j``, ``x_i / x_j``, ``x_i x_j``,
``x_i + x_j``) makes a ``substitute`` node with one variable fewer; otherwise the node is a leaf.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Callable, NamedTuple

import torch
from torch import Tensor

from .derivatives import as_scalar_function, function_derivatives
from .hypotheses import (
    SYMMETRIES,
    additive_matrix,
    fit_shift,
    get_transform,
    multiplicative_matrix,
    swap_additive_matrix,
    swap_fit_shift,
    swap_multiplicative_matrix,
    swap_values,
    symmetry_score,
    variable_importance,
)
from .problem import Problem

__all__ = ["StructureNode", "structure_tree", "DEFAULT_TRANSFORMS"]

DEFAULT_TRANSFORMS = ("id", "log", "inv", "square", "sqrt", "sin", "exp")


@dataclass
class StructureNode:
    """One node of a structure tree.

    Attributes:
        kind: ``"sum"`` (``T(f) = sum of children``), ``"product"`` (``T(f) - shift = product of
            children``), ``"substitute"`` (``f`` depends on a pair only through ``new_variable``) or
            ``"leaf"`` (no further structure found).
        variables: names of the node's input columns (after ``dropped`` were removed).
        transform: the output transform ``T`` of a sum / product (``"id"``, ``"log"``, ...).
        shift: the ``c`` of a product node.
        score: residual ratio of the test that made the node (0 = exact; leaves: 0).
        dropped: variables the node's function does not depend on.
        new_variable: a substitute node's new column, e.g. ``"a - b"``.
        children: sub-nodes.
    """

    kind: str
    variables: tuple[str, ...]
    transform: str = "id"
    shift: float = 0.0
    score: float = 0.0
    dropped: tuple[str, ...] = ()
    new_variable: str | None = None
    children: list[StructureNode] = field(default_factory=list)
    groups: list = field(default_factory=list, repr=False)  # sum / product: column indices of each child
    base: Tensor | None = field(default=None, repr=False, compare=False)  # where the other groups are held
    problem: Problem | None = field(default=None, repr=False, compare=False)

    def label(self) -> str:
        """One line describing the node (as printed in :meth:`render`)."""
        t = "f" if self.transform == "id" else f"{self.transform}(f)"
        drop = f"  [drops {', '.join(self.dropped)}]" if self.dropped else ""
        if self.kind == "sum":
            head = f"{t} = sum"
        elif self.kind == "product":
            head = f"{t} = product" if self.shift == 0 else f"{t} - {self.shift:.4g} = product"
        elif self.kind == "substitute":
            head = f"via {self.new_variable}"
        else:
            head = "leaf"
        score = f"  score {self.score:.1e}" if self.kind != "leaf" else ""
        return f"{head} ({', '.join(self.variables)}){drop}" + score

    def render(self, prefix: str = "") -> str:
        """The tree as indented text, every line after the first starting with ``prefix``."""
        lines = [self.label()]
        for k, child in enumerate(self.children):
            last = k == len(self.children) - 1
            sub = child.render(prefix + ("   " if last else "│  ")).split("\n")
            lines.append(prefix + ("└─ " if last else "├─ ") + sub[0])
            lines.extend(sub[1:])
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.render()

    def leaves(self) -> list[StructureNode]:
        """The leaves, left to right."""
        return [self] if not self.children else [leaf for c in self.children for leaf in c.leaves()]

    def to_dict(self) -> dict:
        """JSON-able nested description."""
        return {"kind": self.kind, "variables": list(self.variables), "transform": self.transform,
                "shift": self.shift, "score": self.score, "dropped": list(self.dropped),
                "new_variable": self.new_variable, "children": [c.to_dict() for c in self.children]}

    def plot(self, **kwargs):
        """The tree as a matplotlib Figure (:func:`kanlab.structure.plot_tree`)."""
        from .plot import plot_tree

        return plot_tree(self, **kwargs)


def structure_tree(f, x: Tensor, names: Sequence[str] | None = None, threshold: float = 0.03,
                   importance_threshold: float = 1e-3, transforms: Sequence[str] = DEFAULT_TRANSFORMS,
                   symmetries: Sequence[str] = SYMMETRIES, max_depth: int = 10,
                   method: str = "values", seed: int = 0) -> StructureNode:
    """Test ``f`` for separability and symmetries at the points ``x``, recursively.

    Args:
        f: a trained :class:`kanlab.KAN` with one output, or a differentiable callable
            ``(N, D) -> (N,)``.
        x: points ``(N, D)`` inside the region ``f`` is known on (the training inputs).
        names: variable names (default the model's ``input_names``, else ``x0, x1, ...``).
        threshold: a test passes when its residual ratio is below this (0.03 suits a KAN fit to
            about 1e-4 relative error; exact functions reach ~1e-12).
        importance_threshold: variables below this :func:`variable_importance` are dropped.
        transforms, symmetries: which output transforms / symmetries to try, in order.
        max_depth: the recursion stops there (leaf).
        method: how separability is tested: ``"values"`` (AI Feynman's swap tests on the model's
            values: robust, since a fit's values are far more accurate than its second
            derivatives: on a KAN fit to 5e-4 relative error a true product scores 4e-3 by values
            and 0.15 by the Hessian) or ``"hessian"`` (KAN 2.0's mixed second derivatives).
            Symmetries are always tested from the input gradients.
        seed: the partner rows of the swap tests.

    Returns:
        The root :class:`StructureNode`; ``print(tree)`` shows it, ``tree.plot()`` draws it.

    Example:
        >>> x = torch.rand(300, 3, dtype=torch.float64) + 0.5
        >>> print(structure_tree(lambda x: x[:, 0] * (x[:, 1] - x[:, 2]) ** 2, x, ["a", "b", "c"]))
        f = product (a, b, c)  score 0.0e+00
        ├─ leaf (a)
        └─ via b - c (b, c)  score 0.0e+00
           └─ leaf (b - c)
    """
    problem = root_problem(f, x, names)
    for t in transforms:
        get_transform(t)
    if method not in ("values", "hessian"):
        raise ValueError(f"method must be 'values' or 'hessian', got {method!r}")
    options = dict(threshold=float(threshold), importance=float(importance_threshold),
                   transforms=tuple(transforms), symmetries=tuple(symmetries), method=method, seed=int(seed))
    return grow(problem, options, max_depth)


def root_problem(f, x: Tensor, names=None, y: Tensor | None = None) -> Problem:
    """The problem ``f`` on the rows ``x`` (targets ``y``, default ``f(x)``)."""
    import sympy

    if not isinstance(x, Tensor) or x.dim() != 2 or not x.is_floating_point():
        raise TypeError("x must be a floating-point tensor of shape (N, D)")
    if x.shape[0] < 10:
        raise ValueError(f"x must have at least 10 rows to test structure on, got {x.shape[0]}")
    if names is None:
        names = getattr(getattr(f, "config", None), "input_names", None) or [f"x{k}" for k in range(x.shape[1])]
    names = [str(n) for n in names]
    if len(names) != x.shape[1]:
        raise ValueError(f"names must have {x.shape[1]} entries (one per column of x), got {len(names)}")
    fn = as_scalar_function(f)
    if y is None:
        with torch.no_grad():
            y = fn(x).detach()
    return Problem(x, fn, y.reshape(-1), [sympy.Symbol(n) for n in names])


def grow(problem: Problem, options: dict, depth: int) -> StructureNode:
    """The node for ``problem`` and, recursively, its children (the search described in the module doc)."""
    d = function_derivatives(problem.fn, problem.points)
    dropped: tuple[str, ...] = ()
    importance = variable_importance(d, problem.points)
    keep = [k for k in range(problem.n_vars) if float(importance[k]) > options["importance"]]
    if keep and len(keep) < problem.n_vars:
        dropped = tuple(n for k, n in enumerate(problem.names()) if k not in keep)
        problem = problem.select(keep)
        d = d._replace(grad=d.grad[:, keep], hess=d.hess[:, keep][:, :, keep])
    node = StructureNode("leaf", tuple(problem.names()), dropped=dropped, problem=problem)
    if problem.n_vars == 1 or depth <= 0:
        return node
    best = _best_hypothesis(d, problem, options)
    if best is None:
        return node
    kind, transform, shift, groups, score = best
    node.kind, node.transform, node.shift, node.score = kind, transform, shift, score
    if kind == "substitute":
        child = problem.substitute(*groups)
        node.new_variable = str(child.columns[0])
        node.children = [grow(child, options, depth - 1)]
        return node
    t = get_transform(transform)
    node.base = problem.base_values(t.fn(d.value) - shift)
    node.groups = groups
    outer = _shifted(t.fn, shift)
    node.children = [grow(problem.part(g, outer, node.base), options, depth - 1) for g in groups]
    return node


def _shifted(fn: Callable[[Tensor], Tensor], shift: float) -> Callable[[Tensor], Tensor]:
    """``v -> fn(v) - shift``."""
    return lambda v: fn(v) - shift


def _best_hypothesis(d, problem: Problem, options):
    """The passing hypothesis with the smallest residual ratio, as ``(kind, transform, shift,
    groups, score)`` (a substitution's groups are ``(i, j, op)``), or None."""
    if options["method"] == "values":
        tests = _Tests(swap_values(problem.fn, problem.points, options["seed"]), swap_additive_matrix,
                       swap_multiplicative_matrix, swap_fit_shift)
    else:
        tests = _Tests(d, additive_matrix, multiplicative_matrix, fit_shift)
    splits = _splits(tests, d.value, options)
    found = [h for h in (*splits, *_symmetries(d, problem.points, options)) if h[4] < options["threshold"]]
    return min(found, key=lambda h: h[4]) if found else None


def _components(coupled: Tensor) -> list[list[int]]:
    """Connected components of the graph with an edge where ``coupled[i, j]`` ``(D, D)`` bool."""
    n = coupled.shape[0]
    label = list(range(n))
    for i in range(n):
        for j in range(n):
            if coupled[i, j] and label[i] != label[j]:
                old, new = label[j], label[i]
                label = [new if v == old else v for v in label]
    groups: dict[int, list[int]] = {}
    for k, v in enumerate(label):
        groups.setdefault(v, []).append(k)
    return list(groups.values())


def _split_score(matrix: Tensor, groups: list[list[int]]) -> float:
    return max(float(matrix[a][:, b].max()) for k, a in enumerate(groups) for b in groups[k + 1:])


class _Tests(NamedTuple):
    data: object  # Derivatives or swap values
    additive: Callable
    multiplicative: Callable
    shift: Callable


def _splits(tests: _Tests, values: Tensor, options):
    """Every separation into groups: ``(kind, transform, shift, groups, score)``."""
    thr, out = options["threshold"], []
    for t in options["transforms"]:
        m = tests.additive(tests.data, t)
        groups = _components(m > thr)
        if len(groups) > 1:
            out.append(("sum", t, 0.0, groups, _split_score(m, groups)))
    for t in options["transforms"]:
        if t == "log" or not get_transform(t).applies(values):  # log(f) - c: a product again
            continue
        scale = float(get_transform(t).fn(values).abs().max())
        for shift in (0.0, tests.shift(tests.data, t)):
            if abs(shift) > 2 * scale:  # a huge shift passes any test: (g - c)^2 dominates
                continue
            m = tests.multiplicative(tests.data, t, shift)
            groups = _components(m > thr)
            if len(groups) > 1:
                out.append(("product", t, shift, groups, _split_score(m, groups)))
                break  # no shift needed
    return out


def _symmetries(d, x: Tensor, options):
    """Every symmetry ``("substitute", "id", 0, (i, j, op), score)``."""
    out, n = [], d.grad.shape[1]
    for op in options["symmetries"]:
        for i in range(n):
            for j in range(i + 1, n):
                if op in ("divide", "times") and not (bool((x[:, j] > 0).all()) or bool((x[:, j] < 0).all())):
                    continue
                s = symmetry_score(d, x, i, j, op)
                if math.isfinite(s):
                    out.append(("substitute", "id", 0.0, (i, j, op), s))
    return out
