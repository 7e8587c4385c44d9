"""A (sub)problem of the structure search: points, the function at those points, targets.

Each column of ``points`` is a sympy expression of the original variables (``columns``): the
variables themselves at the root, ``x_i - x_j`` after a substitution, and so on. ``fn`` evaluates
the node's function at points *row-aligned* with ``points`` (a substituted pair keeps its second
variable per row, so every evaluation stays at a row of the original data or at a mix of rows
and base values inside the data's box).
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Callable

import torch
from torch import Tensor

__all__ = ["Problem", "INVERSES", "placeholder"]


def placeholder(k: int):
    """The sympy symbol standing for column ``k`` of a problem (``_c0``, ``_c1``, ...)."""
    import sympy

    return sympy.Symbol(f"_c{k}")


# z = op(x_i, x_j) and x_i recovered from (z, x_j)
INVERSES = {
    "minus": (lambda xi, xj: xi - xj, lambda z, xj: z + xj),
    "plus": (lambda xi, xj: xi + xj, lambda z, xj: z - xj),
    "divide": (lambda xi, xj: xi / xj, lambda z, xj: z * xj),
    "times": (lambda xi, xj: xi * xj, lambda z, xj: z / xj),
}


def _sympy_op(op: str, a, b):
    return {"minus": a - b, "plus": a + b, "divide": a / b, "times": a * b}[op]


@dataclass
class Problem:
    """``fn(points) ~ y`` on ``N`` rows; ``columns`` say what each column is (sympy)."""

    points: Tensor  # (N, d)
    fn: Callable[[Tensor], Tensor]  # (N, d) row-aligned -> (N,)
    y: Tensor  # (N,) the values to fit (data at the root, model values below a split)
    columns: list  # d sympy expressions of the original variables
    lift: list | None = None  # d sympy expressions: each column in the parent's placeholders (root: variables)

    @property
    def n_vars(self) -> int:
        return self.points.shape[1]

    def names(self) -> list[str]:
        return [str(c) for c in self.columns]

    def select(self, keep: Sequence[int]) -> Problem:
        """Only the columns ``keep``; the others stay at their row values (the function ignores them)."""
        keep = list(keep)
        full, fn = self.points, self.fn

        def sub(p: Tensor) -> Tensor:
            cols = list(full.unbind(1))
            for k, c in zip(keep, p.unbind(1)):
                cols[k] = c
            return fn(torch.stack(cols, dim=1))

        return Problem(self.points[:, keep], sub, self.y, [self.columns[k] for k in keep],
                       [self._lift()[k] for k in keep])

    def base_values(self, values: Tensor | None = None) -> Tensor:
        """Where the other groups are held for a separated part ``(d,)``: the row whose ``|values|``
        is at their 80th percentile (away from zeros of a factor), or the per-column median."""
        if values is None:
            return self.points.median(dim=0).values
        mag = values.abs()
        row = int((mag - mag.quantile(0.8)).abs().argmin())
        return self.points[row]

    def part(self, group: Sequence[int], outer: Callable[[Tensor], Tensor], base: Tensor) -> Problem:
        """The function of the columns ``group`` with the others held at ``base`` ``(d,)``,
        passed through ``outer`` (the transform, minus a shift); targets from ``fn`` itself."""
        group = list(group)
        full, fn = self.points, self.fn

        def sub(p: Tensor) -> Tensor:
            cols = [base[k].expand(full.shape[0]) for k in range(full.shape[1])]
            for k, c in zip(group, p.unbind(1)):
                cols[k] = c
            return outer(fn(torch.stack(cols, dim=1)))

        pts = self.points[:, group]
        with torch.no_grad():
            y = sub(pts).detach()
        return Problem(pts, sub, y, [self.columns[k] for k in group], [placeholder(k) for k in group])

    def at_base(self, base: Tensor) -> Tensor:
        """``fn`` with every column at ``base`` ``(N,)`` (constant up to the companions)."""
        with torch.no_grad():
            return self.fn(base.expand_as(self.points).clone())

    def substitute(self, i: int, j: int, op: str) -> Problem:
        """Columns ``i, j`` replaced by ``z = op(x_i, x_j)`` (first); ``x_j`` kept per row; same targets."""
        forward, inverse = INVERSES[op]
        full, fn = self.points, self.fn
        others = [k for k in range(full.shape[1]) if k not in (i, j)]
        z = forward(full[:, i], full[:, j])

        def sub(p: Tensor) -> Tensor:
            cols = list(full.unbind(1))
            cols[i] = inverse(p[:, 0], full[:, j])
            for k, c in zip(others, p[:, 1:].unbind(1)):
                cols[k] = c
            return fn(torch.stack(cols, dim=1))

        pts = torch.cat([z[:, None], full[:, others]], dim=1)
        cols = [_sympy_op(op, self.columns[i], self.columns[j])] + [self.columns[k] for k in others]
        lift = [_sympy_op(op, placeholder(i), placeholder(j))] + [placeholder(k) for k in others]
        return Problem(pts, sub, self.y, cols, lift)

    def _lift(self) -> list:
        return list(self.columns) if self.lift is None else list(self.lift)
