"""The KAN methods that forward to the modules doing the work: training, pruning, plotting,
symbolic and io.

:class:`~kanlab.network.KAN` inherits them from :class:`KANMethods`, so a model keeps the one-object
surface pykan users know (``model.fit``, ``model.prune``, ``model.auto_symbolic``, ...) while each
method stays a thin call into the module that owns the work. Those modules import ``network``, so
they are imported inside the methods, never at import time (DESIGN.md's import direction).
"""
from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, cast

from torch import Tensor

from .compat import merge_pykan, require_data, translate

if TYPE_CHECKING:  # for annotations only
    from .network import KAN
    from .symbolic.ops import EdgeChoice, Suggestion
    from .training import History

__all__ = ["KANMethods"]


def _kan(model: KANMethods) -> KAN:
    """``model`` typed as the :class:`~kanlab.network.KAN` it is (KANMethods is only mixed into KAN)."""
    return cast("KAN", model)


class KANMethods:
    """Training, pruning, plotting, symbolic and file methods of :class:`~kanlab.network.KAN`."""

    __slots__ = ()  # a mixin: adds methods only, no state

    # ------------------------------------------------------------------ training
    def fit(self, data, steps: int = 100, optimizer: str = "auto", lr: float | None = None,
            batch_size: int | None = None, loss="mse", lamb: float = 0.0, lamb_l1: float = 1.0,
            lamb_entropy: float = 2.0, lamb_coef: float = 0.0, lamb_coefdiff: float = 0.0,
            update_grid: bool = True, grid_update_num: int = 10, start_grid_update_step: int = -1,
            stop_grid_update_step: int | None = None, weight_decay: float = 0.0, test_data=None,
            callbacks: Iterable[Callable] = (), progress: bool = True, seed: int = 0,
            eval_every: int = 1, max_iter: int = 20, checkpoint=None, checkpoint_every: int = 10,
            resume=None, warm_start="auto", **pykan_kwargs) -> History:
        """Train in place: :func:`kanlab.training.fit` (each argument is described there).

        pykan's spellings ``opt=``, ``loss_fn=`` and ``batch=`` are accepted in place of
        ``optimizer=``, ``loss=`` and ``batch_size=`` (:mod:`kanlab.compat`).

        Returns:
            The :class:`~kanlab.training.History` of the run.

        Example:
            >>> model = KAN([2, 3, 1], seed=0)
            >>> x = torch.rand(64, 2) * 2 - 1
            >>> history = model.fit((x, x[:, :1] * x[:, 1:]), steps=5, progress=False)
        """
        args = {k: v for k, v in locals().items() if k not in ("self", "data", "pykan_kwargs")}
        from .training import fit

        defaults = {k: p.default for k, p in inspect.signature(KANMethods.fit).parameters.items()}
        return fit(_kan(self), data, **merge_pykan("fit", args, defaults, pykan_kwargs))

    # ------------------------------------------------------------------ interpretability
    def attribute(self, x: Tensor):
        """Edge, node and input importance scores on the samples ``x`` ``(N, width[0])``, N >= 2;
        see :func:`kanlab.pruning.attribute`.

        Returns:
            :class:`~kanlab.pruning.Attribution` (``.edges``, ``.nodes``, ``.inputs``, ...).
        """
        from .pruning import attribute

        return attribute(_kan(self), x)

    def feature_scores(self, x: Tensor) -> Tensor:
        """Importance ``(width[0],)`` of each input on the samples ``x`` ``(N, width[0])``;
        see :func:`kanlab.pruning.feature_scores`."""
        from .pruning import feature_scores

        return feature_scores(_kan(self), x)

    def prune(self, x: Tensor | None = None, node_threshold: float = 1e-2, edge_threshold: float = 3e-2,
              **pykan_kwargs) -> KAN:
        """A new, physically smaller KAN without unimportant nodes and edges, scored on the samples
        ``x`` ``(N, width[0])``: hidden nodes scoring below ``node_threshold`` and edges below
        ``edge_threshold`` go (:func:`kanlab.pruning.prune`; pykan's ``node_th``/``edge_th`` are accepted).
        """
        from .pruning import prune

        kw = dict(dict(node_threshold=node_threshold, edge_threshold=edge_threshold),
                  **translate("prune", pykan_kwargs))
        return prune(_kan(self), require_data(x, "prune"), **kw)

    def prune_inputs(self, x: Tensor, threshold: float = 1e-2) -> KAN:
        """A new KAN without the inputs scoring below ``threshold`` on the samples ``x``
        ``(N, width[0])`` (the kept inputs keep their names)."""
        from .pruning import prune_inputs

        return prune_inputs(_kan(self), x, threshold=threshold)

    def remove_edge(self, l: int, i: int, j: int) -> KAN:
        """A new KAN without the edge from node ``i`` of layer ``l`` to node ``j`` of layer ``l + 1``
        (for multiplication nodes ``j`` indexes the operands; see :func:`kanlab.pruning.remove_edge`)."""
        from .pruning import remove_edge

        return remove_edge(_kan(self), l, i, j)

    def remove_node(self, l: int, i: int) -> KAN:
        """A new KAN without hidden node ``i`` of node layer ``l``."""
        from .pruning import remove_node

        return remove_node(_kan(self), l, i)

    def plot(self, x: Tensor, **kwargs):
        """The network diagram as a matplotlib Figure, each edge's curve over the range its input
        takes on the samples ``x`` ``(N, width[0])``; see :func:`kanlab.plotting.plot_network` for
        the keyword arguments (``title``, ``beta``, ...)."""
        from .plotting import plot_network

        return plot_network(_kan(self), x, **kwargs)

    def plot_edge(self, l: int, i: int, j: int, x: Tensor, **kwargs):
        """The edge from node ``i`` of layer ``l`` to node ``j`` of layer ``l + 1`` against the values
        its input takes on the samples ``x`` ``(N, width[0])``, as a matplotlib Figure
        (:func:`kanlab.plotting.plot_edge`)."""
        from .plotting import plot_edge

        return plot_edge(_kan(self), l, i, j, x, **kwargs)

    # ------------------------------------------------------------------ symbolic
    def suggest_symbolic(self, l: int, i: int, j: int, x: Tensor | None = None, **kwargs) -> list[Suggestion]:
        """Rank library functions for the edge from node ``i`` of layer ``l`` to node ``j`` of layer
        ``l + 1``, each fit as ``c f(a u + b) + d`` to the edge's values on the inputs ``x``
        ``(N, width[0])``; see :func:`kanlab.symbolic.suggest_symbolic` for the keyword arguments
        (``library``, ``topk``, ``weight_simple``, ...). Needs sympy.

        Returns:
            Up to ``topk`` :class:`~kanlab.symbolic.Suggestion` ``(name, r2, score, params)``, best first.

        Example:
            >>> model.suggest_symbolic(0, 0, 0, x, library=["x", "x^2", "sin"])  # doctest: +SKIP
        """
        from .symbolic import suggest_symbolic

        return suggest_symbolic(_kan(self), l, i, j, require_data(x, "suggest_symbolic"),
                                **translate("suggest_symbolic", kwargs))

    def fix_symbolic(self, l: int, i: int, j: int, name: str, x: Tensor | None = None, **kwargs) -> float | None:
        """Replace edge ``(l, i, j)`` by ``c name(a u + b) + d``: the spline is switched off and the
        closed form on. With ``x`` ``(N, width[0])`` the affine parameters are fit to the edge's
        values there; without ``x``, ``params=(a, b, c, d)`` sets them (default ``(1, 0, 1, 0)``)
        (:func:`kanlab.symbolic.fix_symbolic`). Undo with :meth:`unfix_symbolic`.

        Returns:
            The fit's r^2, or None without ``x``.

        Example:
            >>> r2 = model.fix_symbolic(0, 0, 0, "sin", x)  # doctest: +SKIP
        """
        from .symbolic import fix_symbolic

        return fix_symbolic(_kan(self), l, i, j, name, x, **translate("fix_symbolic", kwargs))

    def unfix_symbolic(self, l: int, i: int, j: int) -> None:
        """Make edge ``(l, i, j)`` numeric again (its spline is switched back on)."""
        from .symbolic import unfix_symbolic

        return unfix_symbolic(_kan(self), l, i, j)

    def auto_symbolic(self, x: Tensor | None = None, **kwargs) -> list[EdgeChoice]:
        """Snap every numeric edge to its best library function, layer by layer, fit on the
        activations the inputs ``x`` ``(N, width[0])`` produce; see
        :func:`kanlab.symbolic.auto_symbolic` for ``library``, ``r2_threshold``, ``layers``, ...

        Returns:
            One :class:`~kanlab.symbolic.EdgeChoice` ``(l, i, j, name, r2, fixed)`` per edge considered.

        Example:
            >>> choices = model.auto_symbolic(x, library=["x", "x^2", "sin", "exp"])  # doctest: +SKIP
        """
        from .symbolic import auto_symbolic

        return auto_symbolic(_kan(self), require_data(x, "auto_symbolic"), **translate("auto_symbolic", kwargs))

    def symbolic_formula(self, var_names=None, **kwargs) -> list:
        """One sympy expression per output, once every active edge is symbolic
        (:func:`kanlab.symbolic.symbolic_formula`: ``simplify``, ``tolerance``, ...).

        Args:
            var_names: names or sympy symbols of the inputs (default: ``input_names`` or
                ``x0, x1, ...``).

        Raises:
            ValueError: naming the edges that are still numeric.

        Example:
            >>> model.symbolic_formula()  # doctest: +SKIP
            [sin(3.14159*x0) + x1**2]
        """
        from .symbolic import symbolic_formula

        named = {} if var_names is None else {"var_names": var_names}
        return symbolic_formula(_kan(self), **translate("symbolic_formula", dict(kwargs, **named)))

    # ------------------------------------------------------------------ files
    def save(self, path, metadata: dict | None = None) -> None:
        """Write the model, with the JSON-serialisable ``metadata`` dict, to one ``.kan`` file at
        ``path``, atomically; see :func:`kanlab.io.save`."""
        from .io import save

        save(_kan(self), path, metadata)
