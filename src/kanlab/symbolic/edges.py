"""SymbolicEdges: the symbolic half of a KAN layer, ``phi_{o,i}(x) = c f(a x + b) + d`` per edge."""
from __future__ import annotations

from typing import Sequence

import torch
from torch import Tensor, nn

from ..validation import check_input
from .library import get_function

__all__ = ["SymbolicEdges"]


class SymbolicEdges(nn.Module):
    """Closed-form edges of one layer, added by the network to the numeric layer's output.

    Edge ``(o, i)`` computes ``mask[o, i] * (c f(a x_i + b) + d)`` with the library
    function ``names[o][i]`` and trainable ``a, b, c, d`` ``(out, in)``; edges with
    ``mask = 0`` contribute nothing (and their function is never evaluated).

    Args:
        in_features, out_features: the layer's shape.
        names: ``out x in`` function names (default all ``"0"``).

    Shape:
        ``forward``: ``(N, in)`` -> ``(N, out)``; ``edges``: ``(N, in)`` -> ``(N, out, in)``.

    Example:
        >>> sym = SymbolicEdges(2, 1)
        >>> sym.set_edge(0, 1, "sin", a=3.0)
        >>> sym(torch.zeros(4, 2)).shape
        torch.Size([4, 1])
    """

    mask: Tensor  # (out, in) buffer: 1 = symbolic edge on

    def __init__(self, in_features: int, out_features: int, names: Sequence[Sequence[str]] | None = None,
                 dtype=None, device=None):
        """All ``out_features x in_features`` edges off (``mask = 0``), functions ``names`` (default
        ``"0"``), ``a = c = 1``, ``b = d = 0``; parameters of ``dtype`` on ``device``."""
        super().__init__()
        if in_features < 1 or out_features < 1:
            raise ValueError(f"in_features and out_features must be >= 1, got {in_features}, {out_features}")
        self.in_features, self.out_features = int(in_features), int(out_features)
        factory = {"dtype": dtype, "device": device}
        self.a = nn.Parameter(torch.ones(out_features, in_features, **factory))
        self.b = nn.Parameter(torch.zeros(out_features, in_features, **factory))
        self.c = nn.Parameter(torch.ones(out_features, in_features, **factory))
        self.d = nn.Parameter(torch.zeros(out_features, in_features, **factory))
        self.register_buffer("mask", torch.zeros(out_features, in_features, **factory))
        self.names = [["0"] * in_features for _ in range(out_features)]
        if names is not None:
            self._set_names(names)
        self._groups_cache: list[tuple[str, list[int]]] | None = None

    # ------------------------------------------------------------------ config
    def _set_names(self, names) -> None:
        rows = [list(r) for r in names]
        if len(rows) != self.out_features or any(len(r) != self.in_features for r in rows):
            raise ValueError(f"names must be {self.out_features} lists of {self.in_features} names")
        for r in rows:
            for n in r:
                get_function(n)  # unknown names raise here
        self.names = [[str(n) for n in r] for r in rows]
        self._groups_cache = None

    def config_dict(self) -> dict:
        """JSON-able description (tensors live in the state dict)."""
        return {"in_features": self.in_features, "out_features": self.out_features,
                "names": [list(r) for r in self.names]}

    @classmethod
    def from_config(cls, cfg: dict, dtype=None, device=None) -> "SymbolicEdges":
        """Rebuild from ``cfg``, a :meth:`config_dict` (load the state dict afterwards), with
        parameters of ``dtype`` on ``device``."""
        return cls(cfg["in_features"], cfg["out_features"], cfg["names"], dtype=dtype, device=device)

    def extra_repr(self) -> str:
        """The shape and the number of symbolic edges that are on."""
        return (f"in_features={self.in_features}, out_features={self.out_features}, "
                f"symbolic_edges={int(self.mask.count_nonzero())}")

    # ------------------------------------------------------------------ editing
    @torch.no_grad()
    def set_edge(self, out_idx: int, in_idx: int, name: str, a: float = 1.0, b: float = 0.0,
                 c: float = 1.0, d: float = 0.0, active: bool = True) -> None:
        """Make edge ``(out_idx, in_idx)`` compute ``c name(a x + b) + d`` (and switch it on)."""
        self._check_index(out_idx, in_idx)
        fn = get_function(name)
        for p, v in ((self.a, a), (self.b, b), (self.c, c), (self.d, d)):
            p[out_idx, in_idx] = float(v)
        self.names[out_idx][in_idx] = fn.name
        self.mask[out_idx, in_idx] = 1.0 if active else 0.0
        self._groups_cache = None

    @torch.no_grad()
    def clear_edge(self, out_idx: int, in_idx: int) -> None:
        """Switch edge ``(out_idx, in_idx)`` off (its function becomes ``"0"``)."""
        self._check_index(out_idx, in_idx)
        self.mask[out_idx, in_idx] = 0.0
        self.names[out_idx][in_idx] = "0"
        self._groups_cache = None

    def _check_index(self, o: int, i: int) -> None:
        if not (0 <= o < self.out_features and 0 <= i < self.in_features):
            raise IndexError(f"edge ({o}, {i}) is outside a layer of shape out={self.out_features}, "
                             f"in={self.in_features}")

    @torch.no_grad()
    def select(self, out_idx, in_idx) -> "SymbolicEdges":
        """A new module restricted to the rows ``out_idx`` and columns ``in_idx``."""
        out_idx = torch.as_tensor(out_idx, dtype=torch.long).reshape(-1)
        in_idx = torch.as_tensor(in_idx, dtype=torch.long).reshape(-1)
        names = [[self.names[o][i] for i in in_idx.tolist()] for o in out_idx.tolist()]
        new = SymbolicEdges(len(in_idx), len(out_idx), names, dtype=self.a.dtype, device=self.a.device)
        dev = self.a.device
        for name in ("a", "b", "c", "d", "mask"):
            getattr(new, name).copy_(getattr(self, name)[out_idx.to(dev)][:, in_idx.to(dev)])
        return new

    # ------------------------------------------------------------------ compute
    def _groups(self) -> list[tuple[str, list[int]]]:
        """Edges grouped by function name: (name, flat indices), "0" left out.

        Built from the names alone (plain Python data, reset whenever a name changes), so
        tracing, ``torch.export`` and ``torch.compile`` see a fixed graph; edges switched
        off by ``mask`` are computed and multiplied by zero (every library function is
        finite everywhere, so that stays zero).
        """
        if self._groups_cache is None:
            groups: dict[str, list[int]] = {}
            for o, row in enumerate(self.names):
                for i, name in enumerate(row):
                    if name != "0":
                        groups.setdefault(name, []).append(o * self.in_features + i)
            self._groups_cache = list(groups.items())
        return self._groups_cache

    def edges(self, x: Tensor) -> Tensor:
        """Every edge's value at ``x`` (zero where ``mask = 0``). Shape: ``x`` ``(N, in)`` -> ``(N, out, in)``."""
        check_input(x, self.in_features, "x")
        x = x.reshape(-1, self.in_features)
        n, shape = x.shape[0], (self.out_features, self.in_features)
        u = (self.a * x[:, None, :] + self.b).reshape(n, -1)  # (N, out*in)
        vals = u.new_zeros(n, shape[0] * shape[1])
        for name, idx in self._groups():
            index = torch.tensor(idx, device=x.device)
            vals = vals.index_copy(1, index, get_function(name).torch_fn(u.index_select(1, index)))
        return (self.c * vals.reshape(n, *shape) + self.d) * self.mask  # (N, out, in)

    def forward(self, x: Tensor) -> Tensor:
        """The layer's symbolic output at ``x``: its edges summed over inputs.
        Shape: ``(..., in)`` -> ``(..., out)``."""
        lead = x.shape[:-1]
        return self.edges(x).sum(dim=-1).reshape(*lead, self.out_features)
