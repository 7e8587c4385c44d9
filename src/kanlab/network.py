"""KAN: a stack of KAN layers built from a frozen config, with optional multiplication nodes."""
from __future__ import annotations

import contextlib
import copy
import dataclasses
from collections.abc import Iterable, MutableMapping, Sequence
from typing import TYPE_CHECKING, cast

import torch
from torch import Tensor, nn

from . import kernels
from .config import KANConfig, normalize_width
from .layer import KANLayer
from .network_api import KANMethods
from .validation import (
    as_model_input,
    check_device,
    check_dtype,
    check_finite,
    check_input,
    check_int,
    check_memory,
)

if TYPE_CHECKING:  # for annotations only: symbolic imports network, not the other way round
    from .symbolic.edges import SymbolicEdges

__all__ = ["KAN", "KANConfig", "LayerActivations", "normalize_width"]


class LayerActivations:
    """What flows through one layer on a batch: ``inputs`` ``(N, n_in)``, ``outputs``
    ``(N, n_out)`` (the edges summed) and, computed when first read, ``edges``
    ``(N, n_out, n_in)`` (each edge's phi, symbolic part included).

    ``edges`` costs ``N * n_out * n_in`` values (12 GB in float32 for 60,000 samples through
    784 x 64 edges), so it is only built on request; :meth:`edge` gives one edge and
    :meth:`edge_moments` every edge's mean and standard deviation, both in memory bounded
    by the data. Edges are computed from the layer as it was when the activations were
    taken (its parameters are snapshotted, differentiably), whatever happens to the model
    afterwards. Unpacks as ``inputs, edges, outputs``.
    """

    def __init__(self, inputs: Tensor, outputs: Tensor, edge_fn):
        """Hold ``inputs`` ``(N, n_in)`` and ``outputs`` ``(N, n_out)``; ``edge_fn(inputs, edge=None)``
        gives the edges ``(N, n_out, n_in)``, or one edge ``(N,)`` for ``edge = (j, i)``."""
        self.inputs, self.outputs, self._edge_fn = inputs, outputs, edge_fn
        self._edges: Tensor | None = None

    @property
    def edges(self) -> Tensor:
        """Every edge's value ``(N, n_out, n_in)``, computed on first read and kept."""
        if self._edges is None:
            self._edges = edges = self._edge_fn(self.inputs)
            return edges
        return self._edges

    def edge(self, j: int, i: int) -> Tensor:
        """Values ``(N,)`` of the edge from input ``i`` to output ``j``."""
        return self._edge_fn(self.inputs, (j, i))

    def edge_moments(self) -> tuple[Tensor, Tensor]:
        """Mean and standard deviation over the batch of every edge, each ``(n_out, n_in)``."""
        from .edge_stats import edge_moments

        n_edges = self.outputs.shape[1] * self.inputs.shape[1]
        return edge_moments(self._edge_fn, self.inputs, n_edges)

    def __iter__(self):
        """``inputs, edges, outputs``."""
        return iter((self.inputs, self.edges, self.outputs))


def _layer_list(layers: Iterable[KANLayer]) -> Sequence[KANLayer]:
    """An ``nn.ModuleList`` of ``layers`` (registered: its parameters are the model's), typed as
    the sequence of :class:`KANLayer` it holds."""
    return cast("Sequence[KANLayer]", nn.ModuleList(layers))


class KAN(KANMethods, nn.Module):
    """A Kolmogorov-Arnold network.

    Args:
        width: node counts per layer, e.g. ``[2, 5, 1]``; an entry ``[n_sum, n_mult]``
            adds multiplication nodes (KAN 2.0's MultKAN).
        grid_size: grid intervals G of every spline (``grid`` is accepted as an alias).
        spline_order: B-spline order k (``k`` is accepted as an alias).
        grid_range, base_activation, grid_eps, noise_scale: see :class:`KANLayer`.
        mult_arity: operands of each multiplication node.
        seed: initialisation seed (the same seed gives the same parameters).
        dtype, device: of the parameters.
        input_names, output_names: names of the inputs and outputs (formulas, plots, the CLI).
        config: a :class:`KANConfig` to build from instead of the arguments above.

    Shape:
        input ``(..., width[0])`` -> output ``(..., width[-1])``.

    Example:
        >>> model = KAN(width=[2, 5, 1], grid_size=5, seed=0)
        >>> model(torch.rand(8, 2)).shape
        torch.Size([8, 1])
    """

    def __init__(self, width=None, grid_size: int | None = None, spline_order: int | None = None,
                 grid_range=(-1.0, 1.0), base_activation: str = "silu", grid_eps: float = 1.0,
                 noise_scale: float = 0.1, mult_arity: int = 2, seed: int = 0, dtype=None, device=None,
                 *, grid: int | None = None, k: int | None = None, input_names=None, output_names=None,
                 config: KANConfig | None = None):
        """Build the layers from ``config``, or from the arguments (see the class docstring)."""
        super().__init__()
        if config is None:
            config = KANConfig(width=width, grid_size=_alias("grid_size", grid_size, "grid", grid, 5),
                               spline_order=_alias("spline_order", spline_order, "k", k, 3),
                               grid_range=grid_range, base_activation=base_activation, grid_eps=grid_eps,
                               noise_scale=noise_scale, mult_arity=mult_arity, seed=seed,
                               input_names=input_names, output_names=output_names)
        elif not isinstance(config, KANConfig):
            raise TypeError(f"config must be a KANConfig, got {type(config).__name__}")
        dtype = check_dtype(dtype)
        device = check_device(device)
        width = [s if m == 0 else [s, m] for s, m in config.width]
        check_memory(f"KAN(width={width}, grid_size={config.grid_size})",
                     config.estimate_bytes(dtype), device)
        self.config = config
        gen = torch.Generator().manual_seed(config.seed)
        self.layers = _layer_list(
            KANLayer(n_in, n_out, config.grid_size, config.spline_order, config.grid_range,
                     config.base_activation, config.grid_eps, config.noise_scale,
                     dtype=dtype, device=device, generator=gen)
            for n_in, n_out in config.layer_shapes())
        # Symbolic edges per layer (filled by kanlab.symbolic), keyed by the layer index.
        # Each module maps (N, n_in) -> (N, n_out) and has edges(x) -> (N, n_out, n_in).
        self.symbolic = cast("MutableMapping[str, SymbolicEdges]", nn.ModuleDict())
        self._init_signature = self._signature()

    # ------------------------------------------------------------------ description
    @property
    def width(self) -> list:
        """Node counts per layer: ints, or ``[n_sum, n_mult]`` where a layer has mult nodes."""
        return [s if m == 0 else [s, m] for s, m in self.config.width]

    @property
    def depth(self) -> int:
        """Number of KAN layers, ``len(width) - 1``."""
        return len(self.layers)

    @property
    def n_inputs(self) -> int:
        """Number of inputs, ``width[0]``."""
        return self.config.width[0][0]

    @property
    def n_outputs(self) -> int:
        """Number of outputs (the last node layer's addition plus multiplication nodes)."""
        s, m = self.config.width[-1]
        return s + m

    def n_params(self) -> int:
        """Number of trainable scalars."""
        return sum(p.numel() for p in self.parameters() if p.requires_grad)

    def is_fresh(self) -> bool:
        """True while the parameters are still those of the initialisation (never trained,
        loaded or copied into); :func:`kanlab.fit` warm-starts such a model."""
        return len(self.symbolic) == 0 and self._signature() == getattr(self, "_init_signature", None)

    def _signature(self) -> tuple[float, ...]:
        """Sums and sums of squares of every parameter: changes whenever a parameter does."""
        if any(p.is_meta for p in self.parameters()):
            return ()  # a skeleton to load weights into: never fresh
        with torch.no_grad():
            return tuple(v for p in self.parameters()
                         for v in (float(p.double().sum()), float(p.double().square().sum())))

    def extra_repr(self) -> str:
        """The width and grid shown by ``repr(model)``."""
        return f"width={self.width}, grid_size={self.config.grid_size}, spline_order={self.config.spline_order}"

    # ------------------------------------------------------------------ compute
    def forward(self, x: Tensor) -> Tensor:
        """The network's output: every layer's edges summed, multiplication nodes applied.

        Args:
            x: inputs; arrays are converted to the parameters' dtype and device (:meth:`as_input`).

        Shape:
            ``x`` ``(..., width[0])`` -> ``(..., n_outputs)``.
        """
        x = self.as_input(x)
        lead = x.shape[:-1]
        h = x.reshape(-1, self.n_inputs)  # (N, n0)
        for l in range(self.depth):
            h = self.layer_step(l, h)
        return h.reshape(*lead, self.n_outputs)

    def as_input(self, x, name: str = "x") -> Tensor:
        """``x`` as this model's input: arrays are converted to the parameters' dtype and device,
        a tensor of another dtype or device is a TypeError naming both
        (:func:`kanlab.validation.as_model_input`); ``name`` is the argument named in errors.

        Shape: ``(..., width[0])``."""
        return as_model_input(x, self.n_inputs, self.layers[0].coef, name)

    def layer_step(self, l: int, h: Tensor) -> Tensor:
        """Node values after layer ``l``: numeric + symbolic edges summed, mult nodes applied.

        Shape: ``h`` ``(N, n_in)`` -> ``(N, n_sum + n_mult)`` of the next node layer.
        """
        return self.combine_nodes(l, self.layer_outputs(l, h))

    def layer_outputs(self, l: int, h: Tensor) -> Tensor:
        """Layer ``l``'s pre-activations: its numeric and symbolic edges summed per output.

        Shape: ``h`` ``(N, n_in)`` -> ``(N, n_sum + arity * n_mult)``.
        """
        y = self.layers[l](h)
        if str(l) in self.symbolic:
            y = y + self.symbolic[str(l)](h)
        return y

    def combine_nodes(self, l: int, y: Tensor) -> Tensor:
        """Turn layer ``l``'s pre-activations ``(N, n_sum + arity * n_mult)`` into node
        values ``(N, n_sum + n_mult)``: multiplication nodes multiply their operands."""
        n_sum, n_mult = self.config.width[l + 1]
        if n_mult == 0:
            return y
        prods = y[:, n_sum:].reshape(y.shape[0], n_mult, self.config.mult_arity).prod(dim=-1)
        return torch.cat([y[:, :n_sum], prods], dim=1)

    def forward_with_activations(self, x: Tensor) -> tuple[Tensor, list[LayerActivations]]:
        """Output and every layer's activations from one pass.

        Shape: ``x`` ``(N, width[0])`` -> ``(N, n_out)`` and a list with one
        :class:`LayerActivations` per layer (edges computed on request).
        """
        x = self.as_input(x)
        h = x.reshape(-1, self.n_inputs)
        acts = []
        for l in range(self.depth):
            y = self.layer_outputs(l, h)  # (N, n_out)
            acts.append(LayerActivations(h, y, self._edge_function(l)))
            h = self.combine_nodes(l, y)
        return h, acts

    def forward_with_inputs(self, x: Tensor) -> tuple[Tensor, list[Tensor]]:
        """Output and the inputs of every layer from one pass (what the regulariser needs).

        Shape: ``x`` ``(N, width[0])`` -> ``(N, n_out)`` and ``[(N, width[l]) for each layer]``.
        """
        check_input(x, self.n_inputs, "x")
        h, inputs = x.reshape(-1, self.n_inputs), []
        for l in range(self.depth):
            inputs.append(h)
            h = self.layer_step(l, h)
        return h, inputs

    def activations(self, x: Tensor) -> list[LayerActivations]:
        """Per layer: its inputs, the summed outputs and (on request) every edge's value,
        computed from ``x`` (nothing is cached from earlier calls)."""
        return self.forward_with_activations(x)[1]

    def layer_edges(self, l: int, h: Tensor) -> Tensor:
        """Values of layer ``l``'s edges (numeric + symbolic) at its inputs ``h`` ``(N, n_in)``.

        Shape: ``(N, n_in)`` -> ``(N, n_out, n_in)``.
        """
        edges = self.layers[l].edges(h)
        if str(l) in self.symbolic:
            edges = edges + self.symbolic[str(l)].edges(h)
        return edges

    def edge_values(self, l: int, h: Tensor, j: int, i: int) -> Tensor:
        """Values ``(N,)`` of one edge of layer ``l`` (input ``i`` -> output ``j``) at ``h`` ``(N, n_in)``."""
        return self._edge_function(l, snapshot=False)(h, (j, i))

    def _edge_function(self, l: int, snapshot: bool = True):
        """``fn(h, edge=None)``: layer ``l``'s edges ``(n, n_out, n_in)``, or one edge ``(n,)``
        when ``edge = (j, i)``, from a snapshot of the layer's tensors (clones keep gradients)."""
        layer = self.layers[l]
        names = ("grid", "coef", "scale_base", "scale_spline", "mask")
        t = {k: (getattr(layer, k).clone() if snapshot else getattr(layer, k)) for k in names}
        sym = self.symbolic[str(l)] if str(l) in self.symbolic else None
        if sym is not None and snapshot:
            sym = copy.deepcopy(sym)
        k, base = layer.spline_order, layer.base_activation

        def fn(h: Tensor, edge: tuple[int, int] | None = None) -> Tensor:
            if edge is None:
                out = kernels.kan_edges_reference(h, t["grid"], t["coef"], t["scale_base"] * t["mask"],
                                                  t["scale_spline"] * t["mask"], k, base)
                return out + sym.edges(h) if sym is not None else out
            j, i = edge
            hi = h[:, i:i + 1]  # (n, 1)
            one = kernels.kan_edges_reference(hi, t["grid"][i:i + 1], t["coef"][j:j + 1, i:i + 1],
                                              (t["scale_base"] * t["mask"])[j:j + 1, i:i + 1],
                                              (t["scale_spline"] * t["mask"])[j:j + 1, i:i + 1], k, base)
            one = one[:, 0, 0]
            return one + sym.edges(h)[:, j, i] if sym is not None else one

        return fn

    # ------------------------------------------------------------------ grids
    @torch.no_grad()
    def update_grid(self, x: Tensor) -> None:
        """Adapt every layer's grid to the activations that ``x`` ``(N, width[0])`` produces,
        layer by layer, keeping each layer's function."""
        h = self._check_grid_data(x, self.config.grid_size)
        with all_or_nothing(self):  # a failure in a later layer restores the earlier ones bitwise
            for l, layer in enumerate(self.layers):
                if l > 0:
                    check_finite(h, f"the activations x produces at layer {l}")
                layer.update_grid(h)
                h = self.layer_step(l, h)

    def _check_grid_data(self, x: Tensor, grid_size: int) -> Tensor:
        """``x`` as ``(N, width[0])`` for a grid update / refinement: at least 2 finite samples,
        and the spline fits of every layer fit in memory."""
        check_input(x, self.n_inputs, "x")
        h = x.reshape(-1, self.n_inputs)
        if h.shape[0] < 2:
            raise ValueError(f"update_grid needs at least 2 samples in x, got {h.shape[0]}")
        check_finite(h, "x")
        for layer in self.layers:
            layer.check_fit_memory(grid_size, h.shape[0])
        return h

    @torch.no_grad()
    def refine(self, grid_size: int, x: Tensor | None = None) -> KAN:
        """A new model on grids of ``grid_size`` intervals representing the same function
        (grid extension: fit coarse, refine, fit again).

        The new grids span the old grids' ranges. Activations that training pushed past a
        grid's range live on its extension knots, which a finer grid shortens; pass the
        training inputs ``x`` to place the new grids on the activations they produce (as
        ``update_grid`` at the new size), so the refined model keeps the function wherever
        the data goes.
        """
        grid_size = check_int("grid_size", grid_size, 1)
        config = dataclasses.replace(self.config, grid_size=grid_size)
        check_memory(f"refine(grid_size={grid_size})", config.estimate_bytes(self.layers[0].coef.dtype),
                     self.layers[0].coef.device)
        h = None if x is None else self._check_grid_data(x, grid_size)
        new = copy.deepcopy(self)
        new.config = config
        if h is None:
            new.layers = _layer_list(layer.refine(grid_size) for layer in self.layers)
            return new
        layers = []
        for l, layer in enumerate(self.layers):
            if l > 0:
                check_finite(h, f"the activations x produces at layer {l}")
            layers.append(layer.refine(grid_size, h))
            h = self.layer_step(l, h)  # the old layer: the function being kept
        new.layers = _layer_list(layers)
        return new

    def copy(self) -> KAN:
        """An independent deep copy."""
        return copy.deepcopy(self)


def snapshot(module: nn.Module) -> dict[str, Tensor]:
    """Detached clones of every parameter and buffer of ``module`` (its ``state_dict``), to
    restore later with ``module.load_state_dict``."""
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


@contextlib.contextmanager
def all_or_nothing(module: nn.Module):
    """Run an in-place change of ``module`` so that it either completes or, on any exception
    (KeyboardInterrupt included), leaves every parameter and buffer bitwise as it was."""
    saved = snapshot(module)
    flags = [(m, m._uniform) for m in module.modules() if isinstance(m, KANLayer)]
    try:
        yield
    except BaseException:
        with torch.no_grad():
            for k, v in module.state_dict().items():
                v.copy_(saved[k])
        for m, flag in flags:
            m._uniform = flag
        raise


def _alias(name: str, value, alias: str, alias_value, default):
    if value is not None and alias_value is not None and value != alias_value:
        raise ValueError(f"give {name} or its alias {alias}, not both ({value!r} != {alias_value!r})")
    chosen = value if value is not None else alias_value if alias_value is not None else default
    return check_int(name if value is not None else alias, chosen, 1)
