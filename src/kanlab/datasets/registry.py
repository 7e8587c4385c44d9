"""A named target function with its input ranges, and the dataset generator built on it."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
from torch import Tensor

from .core import Dataset, from_function

__all__ = ["PaperFunction", "sample_function"]


@dataclass(frozen=True)
class PaperFunction:
    """A target ``fn``: ``(N, n_var)`` float tensor -> ``(N,)`` tensor, sampled uniformly in ``ranges``.

    Attributes:
        name: identifier (e.g. ``"I.16.6"`` or ``"jv"``).
        fn: the function; pure, float64-exact where the math allows.
        ranges: one ``(lo, hi)`` per variable.
        variables: the variables' names, in input order.
        formula: the formula in words, for reports.
    """

    name: str
    fn: Callable[[Tensor], Tensor]
    ranges: tuple[tuple[float, float], ...]
    variables: tuple[str, ...]
    formula: str

    @property
    def n_var(self) -> int:
        """Number of input variables (one range per variable)."""
        return len(self.ranges)

    def __call__(self, x: Tensor) -> Tensor:
        if x.dim() != 2 or x.shape[1] != self.n_var:
            raise ValueError(f"x must have shape (N, {self.n_var}) for {self.name}, got {tuple(x.shape)}")
        return self.fn(x)


def sample_function(func: PaperFunction, n_train: int = 1000, n_test: int = 1000, seed: int = 0,
                    dtype=torch.float64) -> Dataset:
    """Train/test data for ``func``: inputs uniform in its ranges, labels ``(N, 1)``.

    Example:
        >>> from kanlab.datasets import FEYNMAN
        >>> sample_function(FEYNMAN["I.16.6"], n_train=4, n_test=2).train_input.shape
        torch.Size([4, 2])
    """
    if not isinstance(func, PaperFunction):
        raise TypeError(f"func must be a PaperFunction, got {type(func).__name__}")
    return from_function(func, n_var=func.n_var, ranges=func.ranges, n_train=n_train, n_test=n_test,
                         seed=seed, dtype=dtype)
