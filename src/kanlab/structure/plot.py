"""Drawing a structure tree (needs matplotlib): boxes for nodes, lines to their children."""
from __future__ import annotations

__all__ = ["plot_tree"]


def _layout(node, depth: int, next_x: list, pos: dict) -> float:
    if not node.children:
        x = next_x[0]
        next_x[0] += 1.0
    else:
        xs = [_layout(c, depth + 1, next_x, pos) for c in node.children]
        x = sum(xs) / len(xs)
    pos[id(node)] = (x, -depth)
    return x


def plot_tree(tree, figsize=None, fontsize: int = 9):
    """The tree ``tree`` (a :class:`~kanlab.structure.StructureNode`) as a matplotlib Figure.

    Every node is a box with its :meth:`~kanlab.structure.StructureNode.label`; leaves are
    shaded. Returns the Figure (never shown or saved here).
    """
    from matplotlib.figure import Figure

    pos: dict = {}
    _layout(tree, 0, [0.0], pos)
    xs = [p[0] for p in pos.values()]
    depth = -min(p[1] for p in pos.values())
    width = max(xs) - min(xs) + 1
    fig = Figure(figsize=figsize or (max(4.0, 3.2 * width), 1.4 * (depth + 1)))
    ax = fig.add_subplot(1, 1, 1)
    ax.set_axis_off()

    def draw(node):
        x0, y0 = pos[id(node)]
        for c in node.children:
            x1, y1 = pos[id(c)]
            ax.plot([x0, x1], [y0, y1], color="0.4", lw=1, zorder=1)
            draw(c)
        face = "#e8f0fe" if node.children else "#f3f3f3"
        ax.text(x0, y0, node.label().replace("  score", "\nscore"), ha="center", va="center",
                fontsize=fontsize, zorder=2, bbox=dict(boxstyle="round", fc=face, ec="0.3"))

    draw(tree)
    ax.set_xlim(min(xs) - 0.6, max(xs) + 0.6)
    ax.set_ylim(-depth - 0.5, 0.5)
    fig.tight_layout()
    return fig
