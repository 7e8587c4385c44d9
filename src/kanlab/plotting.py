"""Figures of a KAN: the network with every edge drawn as its learned curve, and one edge
against its data. matplotlib is imported only here (the ``plot`` extra); functions return
``matplotlib.figure.Figure`` objects built without pyplot, and never show or save them.

Every edge curve is a ``Line2D`` whose gid is ``"edge:{l}:{i}:{j}"`` (layer ``l``, input
node ``i``, output ``j``), so figures can be inspected programmatically.
"""
from __future__ import annotations

import math

import torch
from torch import Tensor

from .pruning import attribute
from .validation import check_float, check_index, check_input, check_int

__all__ = ["plot_network", "plot_edge", "edge_curves", "NUMERIC_COLOR", "SYMBOLIC_COLOR"]

NUMERIC_COLOR = "black"
SYMBOLIC_COLOR = "tab:red"
_BOX_H = 0.34  # edge-box height as a fraction of the distance between node layers


def _is_symbolic(model, l: int) -> Tensor:
    """``(n_out, n_in)`` bool: which edges of layer ``l`` are symbolic."""
    sym = model.symbolic[str(l)] if str(l) in model.symbolic else None
    if sym is None or not hasattr(sym, "mask"):
        return torch.zeros_like(model.layers[l].mask, dtype=torch.bool)
    return sym.mask.detach().to(model.layers[l].mask.device) > 0


@torch.no_grad()
def edge_curves(model, x: Tensor, n_points: int = 50) -> list[tuple[Tensor, Tensor]]:
    """Every edge's function over the range its input takes on ``x`` ``(N, width[0])``.

    Returns, per layer, ``t`` ``(n_points, n_in)`` (column ``i`` spans node ``i``'s range)
    and ``phi`` ``(n_points, n_out, n_in)`` with ``phi[:, j, i]`` the edge ``i -> j`` at ``t[:, i]``.
    """
    check_int("n_points", n_points, 2)
    _, acts = model.forward_with_activations(x.reshape(-1, model.n_inputs))
    out = []
    for l, a in enumerate(acts):
        lo, hi = a.inputs.amin(dim=0), a.inputs.amax(dim=0)  # (n_in,)
        u = torch.linspace(0, 1, n_points, dtype=lo.dtype, device=lo.device).unsqueeze(1)
        t = lo + (hi - lo) * u  # (n_points, n_in)
        out.append((t, model.layer_edges(l, t)))
    return out


def _check_args(model, x, beta) -> None:
    check_input(x, model.n_inputs, "x")
    check_float("beta", beta, 0.0, min_open=True)


def _node_x(n: int) -> list[float]:
    return [(k + 0.5) / n for k in range(n)]


def _sub_positions(model, l: int) -> tuple[list[float], list[float], list[int]]:
    """x, y of layer ``l``'s outputs (mult operands sit just below their node) and the node
    each feeds."""
    n_sum, n_mult = model.config.width[l + 1]
    ar = model.config.mult_arity
    xs_node = _node_x(n_sum + n_mult)
    xs, ys, owner = [], [], []
    dx = 0.25 / (n_sum + n_mult)
    for j in range(n_sum):
        xs.append(xs_node[j]), ys.append(l + 1.0), owner.append(j)
    for m in range(n_mult):
        for a in range(ar):
            xs.append(xs_node[n_sum + m] + (a - (ar - 1) / 2) * dx / max(ar - 1, 1))
            ys.append(l + 1.0 - 0.12)
            owner.append(n_sum + m)
    return xs, ys, owner


def _names(model, input_names, output_names) -> tuple[list[str], list[str]]:
    cfg = model.config
    ins = input_names or cfg.input_names or [f"x{i}" for i in range(model.n_inputs)]
    outs = output_names or cfg.output_names or [f"y{j}" for j in range(model.n_outputs)]
    if len(ins) != model.n_inputs or len(outs) != model.n_outputs:
        raise ValueError(f"input_names / output_names must have {model.n_inputs} / {model.n_outputs} entries")
    return list(ins), list(outs)


def _draw_layer(ax, model, l, t, phi, edge_scores, beta, line_cls, coll_cls) -> None:
    """Draw layer ``l``'s edge boxes, curves and connectors into ``ax``."""
    n_out, n_in = edge_scores.shape
    sym = _is_symbolic(model, l)
    sub_x, sub_y, owner = _sub_positions(model, l)
    src_x = _node_x(n_in)
    node_x = _node_x(sum(model.config.width[l + 1]))
    slots = n_in * n_out
    w = min(0.8 / slots, 0.12)
    h = _BOX_H
    alpha = torch.tanh(beta * edge_scores).clamp(0.0, 1.0).tolist()
    ph = phi.detach().cpu()
    segs, seg_colors = [], []
    for i in range(n_in):
        for j in range(n_out):
            k = i * n_out + j
            cx, cy = (k + 0.5) / slots, l + 0.5
            color = SYMBOLIC_COLOR if bool(sym[j, i]) else NUMERIC_COLOR
            a = alpha[j][i]
            rgba = _rgba(color, a)
            segs += [[(src_x[i], l), (cx, cy - h / 2)], [(cx, cy + h / 2), (sub_x[j], sub_y[j])]]
            seg_colors += [rgba, rgba]
            y = ph[:, j, i]
            span = float(y.max() - y.min())
            yn = (y - y.min()) / span if span > 1e-12 else torch.full_like(y, 0.5)
            xn = torch.linspace(0, 1, y.shape[0], dtype=y.dtype)
            line = line_cls((cx - w / 2 + w * xn).tolist(), (cy - h / 2 + h * yn).tolist(),
                            color=color, alpha=a, lw=1.0, gid=f"edge:{l}:{i}:{j}")
            ax.add_line(line)
            box = [[(cx - w / 2, cy - h / 2), (cx + w / 2, cy - h / 2), (cx + w / 2, cy + h / 2),
                    (cx - w / 2, cy + h / 2), (cx - w / 2, cy - h / 2)]]
            segs += [box[0][q:q + 2] for q in range(4)]
            seg_colors += [_rgba(color, 0.3 * a)] * 4
    for j, k in enumerate(owner):  # multiplication operands -> their node
        if sub_y[j] != l + 1.0:
            segs.append([(sub_x[j], sub_y[j]), (node_x[k], l + 1.0)])
            seg_colors.append(_rgba(NUMERIC_COLOR, 0.8))
    ax.add_collection(coll_cls(segs, colors=seg_colors, linewidths=0.6))


def _rgba(color: str, alpha: float):
    from matplotlib.colors import to_rgba

    return to_rgba(color, alpha)


def plot_network(model, x: Tensor, *, title: str | None = None, beta: float = 3.0, n_points: int = 50,
                 input_names=None, output_names=None, scale: float = 1.0):
    """The network diagram: nodes in rows (inputs at the bottom), each edge drawn in its own
    box as its learned curve over the range its input takes on ``x``.

    Edge opacity is ``tanh(beta * score)`` with the scores of :func:`kanlab.pruning.attribute`;
    symbolic edges are drawn in :data:`SYMBOLIC_COLOR`. Multiplication nodes are drawn as
    squares fed by their operands.

    Args:
        model: a :class:`kanlab.KAN`.
        x: ``(N, width[0])`` samples (N >= 2) for the ranges and scores.
        title: figure title (default: the width).
        beta: opacity sharpness. n_points: samples per curve.
        input_names, output_names: labels (default: the config's names, else x0.. / y0..).
        scale: figure size multiplier.

    Returns:
        a ``matplotlib.figure.Figure`` (not shown, not saved).

    Example:
        >>> fig = kanlab.KAN([2, 3, 1]).plot(torch.rand(100, 2))
        >>> fig.savefig("net.png")  # doctest: +SKIP
    """
    from matplotlib.collections import LineCollection
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D

    _check_args(model, x, beta)
    ins, outs = _names(model, input_names, output_names)
    scores = attribute(model, x)
    curves = edge_curves(model, x, n_points)
    widest = max(layer.in_features * layer.out_features for layer in model.layers)
    fig = Figure(figsize=(scale * max(5.0, 0.22 * widest), scale * (1.0 + 1.6 * model.depth)))
    ax = fig.add_axes((0.02, 0.04, 0.96, 0.88))
    ax.set_xlim(0, 1)
    ax.set_ylim(-0.25, model.depth + 0.25)
    ax.set_axis_off()
    for l, (t, phi) in enumerate(curves):
        _draw_layer(ax, model, l, t, phi, scores.edges[l].detach().cpu(), beta, Line2D, LineCollection)
    for l, (n_sum, n_mult) in enumerate(model.config.width):
        xs = _node_x(n_sum + n_mult)
        a = torch.tanh(beta * scores.nodes[l].detach().cpu()).clamp(0.05, 1.0).tolist()
        for k, xk in enumerate(xs):
            marker = "s" if k >= n_sum else "o"
            ax.plot([xk], [l], marker=marker, ms=6, color=_rgba(NUMERIC_COLOR, a[k]), ls="none")
    for xk, name in zip(_node_x(model.n_inputs), ins):
        ax.text(xk, -0.12, name, ha="center", va="top", fontsize=10)
    for xk, name in zip(_node_x(model.n_outputs), outs):
        ax.text(xk, model.depth + 0.12, name, ha="center", va="bottom", fontsize=10)
    fig.suptitle(title if title is not None else f"KAN {model.width}")
    return fig


def plot_edge(model, l: int, i: int, j: int, x: Tensor, *, n_points: int = 200, title: str | None = None):
    """One edge's function (line, gid ``"edge:{l}:{i}:{j}"``) over the range of its input on
    ``x`` ``(N, width[0])``, with the samples themselves as dots.

    Returns:
        a ``matplotlib.figure.Figure``.
    """
    from matplotlib.figure import Figure

    check_input(x, model.n_inputs, "x")
    l = check_index("l", l, model.depth)
    check_index("i", i, model.layers[l].in_features)
    check_index("j", j, model.layers[l].out_features)
    with torch.no_grad():
        acts = model.activations(x.reshape(-1, model.n_inputs))[l]
        t, phi = edge_curves(model, x, n_points)[l]
    symbolic = bool(_is_symbolic(model, l)[j, i])
    color = SYMBOLIC_COLOR if symbolic else NUMERIC_COLOR
    fig = Figure(figsize=(4.5, 3.5))
    ax = fig.add_subplot()
    ax.scatter(acts.inputs[:, i].cpu(), acts.edge(j, i).cpu(), s=4, alpha=0.3, color="tab:blue",
               label="data")
    ax.plot(t[:, i].cpu().tolist(), phi[:, j, i].cpu().tolist(), color=color, lw=2, gid=f"edge:{l}:{i}:{j}",
            label="symbolic" if symbolic else "spline")
    ax.set_xlabel(f"node {i} of layer {l}")
    ax.set_ylabel(f"phi[{l}][{j}, {i}]")
    ax.legend(loc="best", fontsize=8)
    fig.suptitle(title if title is not None else f"edge {i} -> {j} of layer {l}")
    fig.tight_layout()
    return fig
