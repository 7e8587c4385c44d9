"""What :func:`kanlab.discover` returns: candidates, the Pareto front, the chosen formula."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["Candidate", "DiscoveryResult", "pareto_front", "choose"]


@dataclass
class Candidate:
    """One formula found on the way: its complexity (sympy operation count) and errors.

    Attributes:
        formula: sympy expression in the input names.
        complexity: ``sympy.count_ops`` of the formula (constants are free).
        train_rmse, test_rmse: root-mean-square errors on the training / held-out rows.
        source: where it came from (``"structure"``, ``"kan [2, 5, 1]"``, ...).
        chosen: whether it is the result.
    """

    formula: Any
    complexity: int
    train_rmse: float
    test_rmse: float
    source: str
    chosen: bool = False


def pareto_front(candidates: list[Candidate]) -> list[Candidate]:
    """The candidates no other beats in both complexity and test error, simplest first."""
    ordered = sorted(candidates, key=lambda c: (c.complexity, c.test_rmse))
    front, best = [], float("inf")
    for c in ordered:
        if c.test_rmse < best:
            front.append(c)
            best = c.test_rmse
    return front


def choose(candidates: list[Candidate], rel_tol: float = 0.1, abs_tol: float = 0.0) -> Candidate:
    """The simplest candidate whose test error is within ``(1 + rel_tol)`` of the best plus
    ``abs_tol`` (a simpler formula is kept only if it does not spoil the fit)."""
    if not candidates:
        raise ValueError("no candidates to choose from")
    best = min(c.test_rmse for c in candidates)
    good = [c for c in candidates if c.test_rmse <= best * (1 + rel_tol) + abs_tol]
    return min(good, key=lambda c: (c.complexity, c.test_rmse))


@dataclass
class DiscoveryResult:
    """The result of :func:`kanlab.discover`.

    Attributes:
        formula: the chosen, simplified sympy formula.
        test_rmse, train_rmse: its errors on the held-out / training rows.
        relative_error: ``test_rmse / std(y_test)``.
        complexity: its sympy operation count.
        model: a :class:`kanlab.KAN` computing the formula (symbolic edges, polished), or the
            numeric surrogate where the formula has no KAN form.
        candidates: every candidate, the chosen one marked.
        tree: the structure found on the surrogate (:class:`kanlab.structure.StructureNode`).
        surrogate: the numeric KAN the structure tests ran on.
        seconds: wall time.
        notes: what was tried and skipped (time budget, failed compilations, ...).
    """

    formula: Any
    test_rmse: float
    train_rmse: float
    relative_error: float
    complexity: int
    model: Any
    candidates: list[Candidate]
    tree: Any
    surrogate: Any
    seconds: float
    notes: list[str] = field(default_factory=list)

    @property
    def pareto(self) -> list[Candidate]:
        """The Pareto front of (complexity, test error), simplest first."""
        return pareto_front(self.candidates)

    def summary(self) -> str:
        """The formula, its errors and the Pareto front as text (``*`` marks the choice)."""
        lines = [f"formula: {self.formula}",
                 f"test RMSE {self.test_rmse:.3e} (relative {self.relative_error:.2e}), "
                 f"complexity {self.complexity}, {self.seconds:.1f} s",
                 "Pareto front (complexity, test RMSE, formula):"]
        for c in self.pareto:
            mark = "*" if c.chosen else " "
            lines.append(f"  {mark} {c.complexity:3d}  {c.test_rmse:.3e}  {c.formula}  [{c.source}]")
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.summary()
