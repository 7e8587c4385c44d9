"""From a table to a formula in one call: :func:`discover` (structure tests, the KAN workflow on
the parts, constants fit and rounded, a Pareto front of candidates)."""
from .result import Candidate, DiscoveryResult, choose, pareto_front
from .search import discover, train_surrogate

__all__ = ["discover", "DiscoveryResult", "Candidate", "pareto_front", "choose", "train_surrogate"]
