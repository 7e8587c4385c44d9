"""KANConfig: the frozen record of a KAN's architecture, saved with its weights."""
from __future__ import annotations

import dataclasses
import numbers
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from .activations import base_function
from .layer import estimate_layer_bytes
from .validation import check_float, check_grid_range, check_int, check_names, check_seed

__all__ = ["KANConfig", "normalize_width"]


@dataclass(frozen=True)
class KANConfig:
    """Everything that fixes a KAN's architecture (saved with the weights).

    ``width`` holds one ``(n_sum, n_mult)`` pair per node layer: ``n_sum`` addition
    nodes and ``n_mult`` multiplication nodes, each of which multiplies ``mult_arity``
    consecutive pre-activations. ``seed`` drives the initialisation.
    """

    width: tuple[tuple[int, int], ...]
    grid_size: int = 5
    spline_order: int = 3
    grid_range: tuple[float, float] = (-1.0, 1.0)
    base_activation: str = "silu"
    grid_eps: float = 1.0
    noise_scale: float = 0.1
    mult_arity: int = 2
    seed: int = 0
    input_names: tuple[str, ...] | None = None
    output_names: tuple[str, ...] | None = None

    def __post_init__(self):
        """Every field is checked (types, ranges, name counts); numpy scalars become Python ones."""
        width = normalize_width(self.width)
        fields = {"width": width,
                  "grid_size": check_int("grid_size", self.grid_size, 1),
                  "spline_order": check_int("spline_order", self.spline_order, 1),
                  "grid_range": check_grid_range(self.grid_range),
                  "grid_eps": check_float("grid_eps", self.grid_eps, 0.0, 1.0),
                  "noise_scale": check_float("noise_scale", self.noise_scale, 0.0),
                  "mult_arity": check_int("mult_arity", self.mult_arity, 1),
                  "seed": check_seed(self.seed),
                  "input_names": check_names("input_names", self.input_names, width[0][0]),
                  "output_names": check_names("output_names", self.output_names, sum(width[-1]))}
        base_function(self.base_activation)  # validates the name
        for key, value in fields.items():
            object.__setattr__(self, key, value)

    def to_dict(self) -> dict:
        """The config as JSON-ready lists and scalars (what a ``.kan`` file stores)."""
        d = dataclasses.asdict(self)
        d["width"] = [list(w) for w in self.width]
        d["grid_range"] = list(self.grid_range)
        for key in ("input_names", "output_names"):
            d[key] = list(d[key]) if d[key] is not None else None
        return d

    @classmethod
    def from_dict(cls, d: dict) -> KANConfig:
        """The config a :meth:`to_dict` dict ``d`` describes; unknown or missing keys and bad values
        raise ValueError / TypeError."""
        if not isinstance(d, dict):
            raise TypeError(f"a KAN config must be a dict, got {type(d).__name__}")
        known = {f.name for f in dataclasses.fields(cls)}
        unknown, missing = sorted(set(d) - known), sorted({"width"} - set(d))
        if unknown or missing:
            raise ValueError(f"bad KAN config: unknown keys {unknown}, missing keys {missing}")
        return cls(**d)

    def estimate_bytes(self, dtype: torch.dtype | None = None) -> int:
        """Peak memory (bytes) to build a KAN of this config with parameters of ``dtype`` (None:
        torch's default): parameters plus the largest layer's initialisation fit (float64 least
        squares over ``G + 1`` points)."""
        item = torch.empty((), dtype=dtype).element_size()
        sizes = [estimate_layer_bytes(n_in, n_out, self.grid_size, self.spline_order, item)
                 for n_in, n_out in self.layer_shapes()]
        return sum(p for p, _ in sizes) + max(f for _, f in sizes)

    def layer_shapes(self) -> list[tuple[int, int]]:
        """``(in_features, out_features)`` of each KAN layer (out counts every mult-node operand)."""
        shapes = []
        for (s_in, m_in), (s_out, m_out) in zip(self.width[:-1], self.width[1:]):
            shapes.append((s_in + m_in, s_out + self.mult_arity * m_out))
        return shapes


def normalize_width(width) -> tuple[tuple[int, int], ...]:
    """A ``width`` such as ``[2, [5, 2], 1]`` as ``((2, 0), (5, 2), (1, 0))`` (``(n_sum, n_mult)``
    per node layer), with clear errors."""
    if isinstance(width, (str, bytes)) or not (isinstance(width, Sequence) or hasattr(width, "__array__")):
        raise TypeError(f"width must be a list of layer sizes such as [2, 5, 1], got {width!r}")
    width = list(width)
    if len(width) < 2:
        raise ValueError(f"width must have at least two entries (inputs and outputs), got {width!r}")
    out: list[tuple[int, int]] = []
    for i, w in enumerate(width):
        pair = (w,) if isinstance(w, numbers.Integral) else tuple(w) if isinstance(w, Sequence) else None
        if pair is None or len(pair) not in (1, 2) or (len(pair) == 1 and not isinstance(w, numbers.Integral)):
            raise TypeError(f"width[{i}] must be an int >= 1 or a pair [n_sum, n_mult], got {w!r}")
        counts = [check_int(f"width[{i}]", v, 0) for v in pair] + [0] * (2 - len(pair))
        if counts[0] + counts[1] < 1:
            raise ValueError(f"width[{i}] must have at least one node, got {w!r}")
        out.append((counts[0], counts[1]))
    if out[0][1]:
        raise ValueError(f"width[0] (the inputs) cannot have multiplication nodes, got {width[0]!r}")
    return tuple(out)
