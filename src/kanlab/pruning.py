"""Attribution scores (KAN 2.0) and pruning to a new, physically smaller KAN.

Scores come from data. For every edge, its *magnitude* is the standard deviation of
``phi(x)`` over the samples; importance flows backward from the outputs (each output
node scores 1): an edge into pre-activation ``j`` scores
``std(phi_ji) / std(y_j) * score(j)`` and a node scores the sum of its outgoing edges'
scores. A multiplication node passes its score to each of its operands.

Pruning removes what *varies* little. The mean of everything removed is kept: it is
folded into the spline of a surviving edge into the same pre-activation (B-splines sum
to one inside the grid), so a pruned model reproduces the original up to the variation
of what was removed (exactly so while the data stays inside the grids).

Multiplication nodes are pruned like sum nodes (a kept mult node keeps all its
operands; its operand edges can be masked individually).
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
from torch import Tensor

from .validation import check_float, check_index, check_input

if TYPE_CHECKING:
    from .network import KAN

__all__ = ["Attribution", "attribute", "feature_scores", "prune", "prune_inputs", "remove_edge",
           "remove_node", "select_nodes"]

_EPS = 1e-4


@dataclass(frozen=True)
class Attribution:
    """Importance scores of one model on one batch of data.

    Attributes:
        edges: per layer ``l``, ``(n_out_l, n_in_l)`` edge scores (``n_out_l`` counts every
            multiplication-node operand).
        nodes: per node layer, ``(n_nodes,)`` scores; ``nodes[0]`` are the inputs and
            ``nodes[-1]`` the outputs (all 1).
        incoming: per node layer, ``(n_nodes,)`` largest score of an edge into the node
            (zeros for the inputs).
        magnitudes: per layer, ``(n_out_l, n_in_l)`` standard deviation of each edge.
        means: per layer, ``(n_out_l, n_in_l)`` mean of each edge over the data.
    """

    edges: list[Tensor]
    nodes: list[Tensor]
    incoming: list[Tensor]
    magnitudes: list[Tensor]
    means: list[Tensor]

    @property
    def inputs(self) -> Tensor:
        """``(width[0],)`` importance of each input."""
        return self.nodes[0]


def _check_data(model: KAN, x) -> Tensor:
    check_input(x, model.n_inputs, "x")
    x = x.reshape(-1, model.n_inputs)
    if x.shape[0] < 2:
        raise ValueError(f"x must hold at least 2 samples to measure edge variation, got {x.shape[0]}")
    if not bool(torch.isfinite(x).all()):
        raise ValueError("x contains NaN or inf values")
    return x


def _check_threshold(name: str, value) -> float:
    return check_float(name, value, 0.0)


def _node_to_sub(model: KAN, l: int, node_values: Tensor) -> Tensor:
    """Spread node-layer ``l + 1`` values ``(n_nodes,)`` onto layer ``l``'s outputs
    ``(n_sum + arity * n_mult,)`` (each operand gets its mult node's value)."""
    n_sum, n_mult = model.config.width[l + 1]
    ar = model.config.mult_arity
    return torch.cat([node_values[:n_sum], node_values[n_sum:].repeat_interleave(ar)])


def _sub_to_node_max(model: KAN, l: int, sub_values: Tensor) -> Tensor:
    n_sum, n_mult = model.config.width[l + 1]
    mult = sub_values[n_sum:].reshape(n_mult, model.config.mult_arity)
    return torch.cat([sub_values[:n_sum], mult.amax(dim=1) if n_mult else mult.sum(dim=1)])


@torch.no_grad()
def attribute(model: KAN, x: Tensor) -> Attribution:
    """Edge, node and input importance of ``model`` on the samples ``x``.

    Args:
        model: a :class:`kanlab.KAN`.
        x: ``(N, width[0])`` samples, N >= 2.

    Returns:
        :class:`Attribution` (``.edges``, ``.nodes``, ``.inputs``, ...).

    Example:
        >>> model = kanlab.KAN([2, 3, 1], seed=0)
        >>> attribute(model, torch.rand(100, 2) * 2 - 1).inputs.shape
        torch.Size([2])
    """
    x = _check_data(model, x)
    _, acts = model.forward_with_activations(x)
    moments = [a.edge_moments() for a in acts]  # chunked: never (N, n_out, n_in) at once
    means = [m for m, _ in moments]  # (n_out, n_in) per layer
    mags = [s for _, s in moments]
    sub_std = [a.outputs.std(dim=0) for a in acts]  # (n_out,) per layer
    node = torch.ones(model.n_outputs, dtype=x.dtype, device=x.device)
    nodes, edges = [node], []  # type: list[Tensor], list[Tensor]
    for l in range(model.depth - 1, -1, -1):
        sub = _node_to_sub(model, l, node)  # (n_out,)
        edge = mags[l] / (sub_std[l] + _EPS).unsqueeze(1) * sub.unsqueeze(1)  # (n_out, n_in)
        node = edge.sum(dim=0)  # (n_in,)
        edges.insert(0, edge)
        nodes.insert(0, node)
    incoming = [torch.zeros_like(nodes[0])]
    incoming += [_sub_to_node_max(model, l, e.amax(dim=1)) for l, e in enumerate(edges)]
    return Attribution(edges=edges, nodes=nodes, incoming=incoming, magnitudes=mags, means=means)


def feature_scores(model: KAN, x: Tensor) -> Tensor:
    """``(width[0],)`` importance of each input on the samples ``x`` ``(N, width[0])``."""
    return attribute(model, x).inputs


# ---------------------------------------------------------------------- building smaller models
def _absorb(layer, out_idx: int, value: float, scores: Tensor | None, removed: Tensor) -> None:
    """Add the constant ``value`` to pre-activation ``out_idx`` of ``layer`` through the spline
    of a surviving numeric edge (partition of unity); the best-scored one is used."""
    if value == 0.0:
        return
    usable = (layer.mask[out_idx] > 0) & (layer.scale_spline[out_idx].abs() > 1e-8) & ~removed[out_idx]
    if not bool(usable.any()):
        return
    rank = scores[out_idx] if scores is not None else layer.scale_spline[out_idx].abs()
    i = int(torch.where(usable, rank, torch.full_like(rank, -math.inf)).argmax())
    layer.coef.data[out_idx, i] += value / layer.scale_spline.data[out_idx, i]


def _mask_edges(model: KAN, l: int, removed: Tensor, means: Tensor, scores: Tensor | None) -> None:
    """Zero the edges ``removed`` ``(n_out, n_in)`` of layer ``l`` in place, folding their means in."""
    layer = model.layers[l]
    for j in range(removed.shape[0]):
        if bool(removed[j].any()):
            _absorb(layer, j, float(means[j][removed[j]].sum()), scores, removed)
    layer.mask.data[removed] = 0.0
    sym = model.symbolic[str(l)] if str(l) in model.symbolic else None
    if sym is not None and hasattr(sym, "mask"):
        sym.mask.data[removed] = 0.0


def _sub_index(model: KAN, l: int, keep_nodes: Tensor) -> Tensor:
    """Indices of layer ``l``'s outputs that belong to the kept nodes of node layer ``l + 1``."""
    return torch.nonzero(_node_to_sub(model, l, keep_nodes.to(torch.float64)) > 0).flatten()


def select_nodes(model: KAN, keep: list[Tensor], means: list[Tensor] | None = None,
                 scores: list[Tensor] | None = None, input_names=None) -> KAN:
    """A new KAN with only the nodes ``keep[l]`` (bool ``(n_nodes_l,)`` per node layer).

    The outgoing edges of removed nodes are dropped with their ``means`` (per layer
    ``(n_out, n_in)``) folded into surviving edges. Symbolic modules are restricted with
    their ``select(out_idx, in_idx)``.
    """
    from .network import KAN

    cfg = model.config
    device = model.layers[0].coef.device
    keep = [k.to(device=device, dtype=torch.bool) for k in keep]
    for l, k in enumerate(keep):
        if not bool(k.any()):
            what = "input" if l == 0 else "output" if l == len(keep) - 1 else f"node layer {l}"
            raise ValueError(f"pruning would remove every node of {what}; lower the thresholds")
    width = []
    for l, k in enumerate(keep):
        n_sum = cfg.width[l][0]
        width.append((int(k[:n_sum].sum()), int(k[n_sum:].sum())))
    names = cfg.input_names
    if input_names is not None:
        names = tuple(input_names)
    elif names is not None:
        names = tuple(n for n, kk in zip(names, keep[0].tolist()) if kk)
    new_cfg = dataclasses.replace(cfg, width=tuple(width), input_names=names)
    p = model.layers[0].coef
    new = KAN(config=new_cfg, dtype=p.dtype, device=p.device)
    work = model.copy()  # absorb constants here, then slice
    for l in range(model.depth):
        in_keep = keep[l]
        if means is not None and not bool(in_keep.all()):
            removed = (~in_keep).unsqueeze(0).expand(work.layers[l].mask.shape).clone()
            sub_keep = _node_to_sub(model, l, keep[l + 1].to(torch.float64)) > 0
            removed &= sub_keep.unsqueeze(1)
            _mask_edges(work, l, removed, means[l], scores[l] if scores is not None else None)
        in_idx = torch.nonzero(in_keep).flatten()
        out_idx = _sub_index(model, l, keep[l + 1])
        _copy_layer(work.layers[l], new.layers[l], out_idx, in_idx)
        if str(l) in work.symbolic:
            sym = work.symbolic[str(l)]
            if not hasattr(sym, "select"):
                raise TypeError(f"symbolic module of layer {l} has no select(out_idx, in_idx) method")
            new.symbolic[str(l)] = sym.select(out_idx, in_idx)
    return new


@torch.no_grad()
def _copy_layer(src, dst, out_idx: Tensor, in_idx: Tensor) -> None:
    dst.set_grid(src.grid[in_idx])
    dst.coef.copy_(src.coef[out_idx][:, in_idx])
    dst.scale_base.copy_(src.scale_base[out_idx][:, in_idx])
    dst.scale_spline.copy_(src.scale_spline[out_idx][:, in_idx])
    dst.mask.copy_(src.mask[out_idx][:, in_idx])
    dst.grid_range = src.grid_range


# ---------------------------------------------------------------------- pruning
def _check_connected(model: KAN) -> None:
    for l in range(model.depth):
        if not bool(_live(model, l).any()):
            raise ValueError(f"pruning removed every edge of layer {l}; lower the thresholds")


def _live(model: KAN, l: int) -> Tensor:
    """``(n_out, n_in)`` bool: edges with a numeric or a symbolic part."""
    live = model.layers[l].mask > 0
    if str(l) in model.symbolic and hasattr(model.symbolic[str(l)], "mask"):
        live = live | (model.symbolic[str(l)].mask > 0)
    return live


@torch.no_grad()
def prune(model: KAN, x: Tensor, node_threshold: float = 1e-2, edge_threshold: float = 3e-2) -> KAN:
    """A new, physically smaller KAN without unimportant hidden nodes and edges.

    1. A hidden node is kept when its score (outgoing importance, see :func:`attribute`)
       and its largest incoming edge score both exceed ``node_threshold``.
    2. On the smaller model, edges scoring at most ``edge_threshold`` are masked; hidden
       nodes left without incoming or outgoing edges are then removed too.
    Means of removed edges are folded into surviving ones (see the module docstring).

    Args:
        model: a :class:`kanlab.KAN` (not modified).
        x: ``(N, width[0])`` samples the scores are measured on.
        node_threshold, edge_threshold: in ``[0, inf)``.

    Returns:
        a new :class:`kanlab.KAN`; raises ValueError when nothing would be left.
    """
    node_threshold = _check_threshold("node_threshold", node_threshold)
    edge_threshold = _check_threshold("edge_threshold", edge_threshold)
    x = _check_data(model, x)
    s = attribute(model, x)
    keep = [torch.ones_like(n, dtype=torch.bool) for n in s.nodes]
    for l in range(1, model.depth):
        keep[l] = (s.nodes[l] > node_threshold) & (s.incoming[l] > node_threshold)
    new = select_nodes(model, keep, s.means, s.edges)
    s = attribute(new, x)
    for l in range(new.depth):
        removed = (s.edges[l] <= edge_threshold) & _live(new, l)
        if bool(removed.any()):
            _mask_edges(new, l, removed, s.means[l], s.edges[l])
    _check_connected(new)
    return _drop_dead_nodes(new, x)


def _drop_dead_nodes(model: KAN, x: Tensor):
    """Remove hidden nodes with no live incoming or no live outgoing edge (repeat until none)."""
    while True:
        keep = [torch.ones(sum(w), dtype=torch.bool, device=x.device) for w in model.config.width]
        for l in range(1, model.depth):
            has_in = _sub_to_node_max(model, l - 1, _live(model, l - 1).any(dim=1).double()) > 0
            has_out = _live(model, l).any(dim=0)
            keep[l] = has_in & has_out
        if all(bool(k.all()) for k in keep):
            return model
        s = attribute(model, x)
        model = select_nodes(model, keep, s.means, s.edges)
        _check_connected(model)


@torch.no_grad()
def prune_inputs(model: KAN, x: Tensor, threshold: float = 1e-2) -> KAN:
    """A new KAN without the inputs whose score (see :func:`feature_scores`) on the samples ``x``
    ``(N, width[0])`` is at most ``threshold``; the surviving inputs keep their names (``config.input_names``, or
    ``x0, x1, ...`` when the model had none)."""
    threshold = _check_threshold("threshold", threshold)
    x = _check_data(model, x)
    s = attribute(model, x)
    keep = [torch.ones_like(n, dtype=torch.bool) for n in s.nodes]
    keep[0] = s.inputs > threshold
    if not bool(keep[0].any()):
        raise ValueError(f"prune_inputs would remove every input (largest score "
                         f"{float(s.inputs.max()):.3g} <= threshold {threshold}); lower the threshold")
    names = model.config.input_names or tuple(f"x{i}" for i in range(model.n_inputs))
    kept = [n for n, k in zip(names, keep[0].tolist()) if k]
    return select_nodes(model, keep, s.means, s.edges, input_names=kept)


def _check_index(name: str, value, n: int) -> int:
    return check_index(name, value, n)


@torch.no_grad()
def remove_edge(model: KAN, l: int, i: int, j: int) -> KAN:
    """A copy of ``model`` with the edge from node ``i`` of node layer ``l`` to output ``j``
    of KAN layer ``l`` masked (for multiplication nodes ``j`` indexes the operands).
    Nothing is folded in: the copy equals the model minus that edge's value."""
    _check_index("l", l, model.depth)
    layer = model.layers[l]
    _check_index("i", i, layer.in_features)
    _check_index("j", j, layer.out_features)
    new = model.copy()
    removed = torch.zeros_like(layer.mask, dtype=torch.bool)
    removed[j, i] = True
    _mask_edges(new, l, removed, torch.zeros_like(layer.mask), None)
    _check_connected(new)
    return new


@torch.no_grad()
def remove_node(model: KAN, l: int, i: int) -> KAN:
    """A new, smaller KAN without hidden node ``i`` of node layer ``l`` (``1 <= l < depth``),
    its incoming and outgoing edges. Nothing is folded in: the new model equals the old one
    with that node's outgoing edges removed."""
    check_index("l", l, model.depth, low=1)  # a hidden node layer
    _check_index("i", i, sum(model.config.width[l]))
    keep = [torch.ones(sum(w), dtype=torch.bool) for w in model.config.width]
    keep[l][i] = False
    return select_nodes(model, keep)
