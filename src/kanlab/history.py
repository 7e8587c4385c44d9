"""History: the per-step record of a :func:`kanlab.fit` run."""
from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["History"]


@dataclass
class History:
    """Per-step metrics. ``train_*`` is on the whole training set in full-batch training and on
    the step's batch otherwise; ``test_*`` on the test set (every ``eval_every`` steps)."""

    train_loss: list[float] = field(default_factory=list)
    test_loss: list[float] = field(default_factory=list)
    train_rmse: list[float] = field(default_factory=list)
    test_rmse: list[float] = field(default_factory=list)
    train_accuracy: list[float] = field(default_factory=list)
    test_accuracy: list[float] = field(default_factory=list)
    reg: list[float] = field(default_factory=list)
    grid_update_steps: list[int] = field(default_factory=list)
    warm_start_steps: int = 0
    start: str = ""
    optimizer: str = ""
    start_losses: dict = field(default_factory=dict)
    seconds: float = 0.0

    def __len__(self) -> int:
        """Number of recorded steps."""
        return len(self.train_loss)

    def to_dict(self) -> dict:
        """Every field as plain lists and scalars (lists copied): what a checkpoint stores."""
        return {k: (list(v) if isinstance(v, list) else v) for k, v in self.__dict__.items()}

    def extend(self, other: History) -> History:
        """Append the steps of ``other``, a History of the run's continuation (its grid-update
        steps shifted by this one's length, its seconds added); returns self."""
        offset = len(self)
        for k, v in self.__dict__.items():
            if k == "grid_update_steps":
                v.extend(s + offset for s in other.grid_update_steps)
            elif isinstance(v, list):
                v.extend(getattr(other, k))
        self.seconds += other.seconds
        return self
