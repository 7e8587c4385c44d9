"""KAN: a stack of KAN layers built from a frozen config, with optional multiplication nodes."""
from __future__ import annotations

import contextlib
import copy
import dataclasses
import numbers
from dataclasses import dataclass
from typing import Sequence

import torch
from torch import Tensor, nn

from . import kernels
from .activations import base_function
from .compat import require_data, translate
from .layer import KANLayer, estimate_layer_bytes
from .validation import (as_model_input, check_dtype, check_finite, check_float, check_grid_range, check_input,
                         check_int, check_device, check_memory, check_names, check_seed)

__all__ = ["KAN", "KANConfig", "LayerActivations", "normalize_width"]


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
    grid_eps: float = 0.02
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
        d = dataclasses.asdict(self)
        d["width"] = [list(w) for w in self.width]
        d["grid_range"] = list(self.grid_range)
        for key in ("input_names", "output_names"):
            d[key] = list(d[key]) if d[key] is not None else None
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "KANConfig":
        """Inverse of :meth:`to_dict`; unknown or missing keys and bad values raise ValueError / TypeError."""
        if not isinstance(d, dict):
            raise TypeError(f"a KAN config must be a dict, got {type(d).__name__}")
        known = {f.name for f in dataclasses.fields(cls)}
        unknown, missing = sorted(set(d) - known), sorted({"width"} - set(d))
        if unknown or missing:
            raise ValueError(f"bad KAN config: unknown keys {unknown}, missing keys {missing}")
        return cls(**d)

    def estimate_bytes(self, dtype: torch.dtype | None = None) -> int:
        """Peak memory (bytes) to build a KAN of this config: parameters plus the largest
        layer's initialisation fit (float64 least squares over ``G + 1`` points)."""
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
        self.inputs, self.outputs, self._edge_fn = inputs, outputs, edge_fn
        self._edges = None

    @property
    def edges(self) -> Tensor:
        if self._edges is None:
            self._edges = self._edge_fn(self.inputs)
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
        return iter((self.inputs, self.edges, self.outputs))


def normalize_width(width) -> tuple[tuple[int, int], ...]:
    """``[2, [5, 2], 1]`` -> ``((2, 0), (5, 2), (1, 0))``, with clear errors."""
    if isinstance(width, (str, bytes)) or not (isinstance(width, Sequence) or hasattr(width, "__array__")):
        raise TypeError(f"width must be a list of layer sizes such as [2, 5, 1], got {width!r}")
    width = list(width)
    if len(width) < 2:
        raise ValueError(f"width must have at least two entries (inputs and outputs), got {width!r}")
    out = []
    for i, w in enumerate(width):
        pair = (w,) if isinstance(w, numbers.Integral) else tuple(w) if isinstance(w, Sequence) else None
        if pair is None or len(pair) not in (1, 2) or (len(pair) == 1 and not isinstance(w, numbers.Integral)):
            raise TypeError(f"width[{i}] must be an int >= 1 or a pair [n_sum, n_mult], got {w!r}")
        pair = tuple(check_int(f"width[{i}]", v, 0) for v in pair) + (0,) * (2 - len(pair))
        if pair[0] + pair[1] < 1:
            raise ValueError(f"width[{i}] must have at least one node, got {w!r}")
        out.append(pair)
    if out[0][1]:
        raise ValueError(f"width[0] (the inputs) cannot have multiplication nodes, got {width[0]!r}")
    return tuple(out)


class KAN(nn.Module):
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

    Shape:
        input ``(..., width[0])`` -> output ``(..., width[-1])``.

    Example:
        >>> model = KAN(width=[2, 5, 1], grid_size=5, seed=0)
        >>> model(torch.rand(8, 2)).shape
        torch.Size([8, 1])
    """

    def __init__(self, width=None, grid_size: int | None = None, spline_order: int | None = None,
                 grid_range=(-1.0, 1.0), base_activation: str = "silu", grid_eps: float = 0.02,
                 noise_scale: float = 0.1, mult_arity: int = 2, seed: int = 0, dtype=None, device=None,
                 *, grid: int | None = None, k: int | None = None, input_names=None, output_names=None,
                 config: KANConfig | None = None):
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
        self.layers = nn.ModuleList(
            KANLayer(n_in, n_out, config.grid_size, config.spline_order, config.grid_range,
                     config.base_activation, config.grid_eps, config.noise_scale,
                     dtype=dtype, device=device, generator=gen)
            for n_in, n_out in config.layer_shapes())
        # Symbolic edges per layer (filled by kanlab.symbolic), keyed by the layer index.
        # Each module maps (N, n_in) -> (N, n_out) and has edges(x) -> (N, n_out, n_in).
        self.symbolic = nn.ModuleDict()
        self._init_signature = self._signature()

    # ------------------------------------------------------------------ description
    @property
    def width(self) -> list:
        """Node counts per layer: ints, or ``[n_sum, n_mult]`` where a layer has mult nodes."""
        return [s if m == 0 else [s, m] for s, m in self.config.width]

    @property
    def depth(self) -> int:
        return len(self.layers)

    @property
    def n_inputs(self) -> int:
        return self.config.width[0][0]

    @property
    def n_outputs(self) -> int:
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
        return f"width={self.width}, grid_size={self.config.grid_size}, spline_order={self.config.spline_order}"

    # ------------------------------------------------------------------ compute
    def forward(self, x: Tensor) -> Tensor:
        x = self.as_input(x)
        lead = x.shape[:-1]
        h = x.reshape(-1, self.n_inputs)  # (N, n0)
        for l in range(self.depth):
            h = self.layer_step(l, h)
        return h.reshape(*lead, self.n_outputs)

    def as_input(self, x, name: str = "x") -> Tensor:
        """``x`` as this model's input: arrays are converted to the parameters' dtype and device,
        a tensor of another dtype or device is a TypeError naming both
        (:func:`kanlab.validation.as_model_input`). Shape: ``(..., width[0])``."""
        return as_model_input(x, self.n_inputs, self.layers[0].coef, name)

    def layer_step(self, l: int, h: Tensor) -> Tensor:
        """Node values after layer ``l``: numeric + symbolic edges summed, mult nodes applied.

        Shape: ``h`` ``(N, n_in)`` -> ``(N, n_sum + n_mult)`` of the next node layer.
        """
        y = self.layers[l](h)  # (N, n_out)
        if str(l) in self.symbolic:
            y = y + self.symbolic[str(l)](h)
        return self.combine_nodes(l, y)

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
            y = self.layers[l](h)  # (N, n_out)
            if str(l) in self.symbolic:
                y = y + self.symbolic[str(l)](h)
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
    def refine(self, grid_size: int, x: Tensor | None = None) -> "KAN":
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
        if x is None:
            new.layers = nn.ModuleList(layer.refine(grid_size) for layer in self.layers)
            return new
        layers = []
        for l, layer in enumerate(self.layers):
            if l > 0:
                check_finite(h, f"the activations x produces at layer {l}")
            layers.append(layer.refine(grid_size, h))
            h = self.layer_step(l, h)  # the old layer: the function being kept
        new.layers = nn.ModuleList(layers)
        return new

    def copy(self) -> "KAN":
        """An independent deep copy."""
        return copy.deepcopy(self)

    # ------------------------------------------------------------------ training
    def fit(self, data, **kwargs):
        """Train in place; see :func:`kanlab.training.fit` for the arguments (pykan's ``opt=``,
        ``loss_fn=``, ``batch=`` are accepted, see :mod:`kanlab.compat`). Returns a History."""
        from .training import fit

        return fit(self, data, **translate("fit", kwargs))

    # ------------------------------------------------------------------ interpretability
    # Thin delegations: the work lives in kanlab.pruning / plotting / symbolic / io.
    def attribute(self, x: Tensor):
        """Edge, node and input importance scores from data; see :func:`kanlab.pruning.attribute`."""
        from .pruning import attribute

        return attribute(self, x)

    def feature_scores(self, x: Tensor) -> Tensor:
        """Importance of each input ``(width[0],)``; see :func:`kanlab.pruning.feature_scores`."""
        from .pruning import feature_scores

        return feature_scores(self, x)

    def prune(self, x: Tensor | None = None, node_threshold: float = 1e-2, edge_threshold: float = 3e-2,
              **pykan_kwargs) -> "KAN":
        """A new, physically smaller KAN without unimportant nodes and edges, scored on ``x``."""
        from .pruning import prune

        kw = dict(dict(node_threshold=node_threshold, edge_threshold=edge_threshold),
                  **translate("prune", pykan_kwargs))
        return prune(self, require_data(x, "prune"), **kw)

    def prune_inputs(self, x: Tensor, threshold: float = 1e-2) -> "KAN":
        """A new KAN without the inputs scoring below ``threshold`` (input names are kept)."""
        from .pruning import prune_inputs

        return prune_inputs(self, x, threshold=threshold)

    def remove_edge(self, l: int, i: int, j: int) -> "KAN":
        """A new KAN without the edge from node ``i`` of layer ``l`` to node ``j`` of layer ``l + 1``."""
        from .pruning import remove_edge

        return remove_edge(self, l, i, j)

    def remove_node(self, l: int, i: int) -> "KAN":
        """A new KAN without hidden node ``i`` of node layer ``l``."""
        from .pruning import remove_node

        return remove_node(self, l, i)

    def plot(self, x: Tensor, **kwargs):
        """The network diagram as a matplotlib Figure; see :func:`kanlab.plotting.plot_network`."""
        from .plotting import plot_network

        return plot_network(self, x, **kwargs)

    def plot_edge(self, l: int, i: int, j: int, x: Tensor, **kwargs):
        """One edge's function against its data, as a matplotlib Figure."""
        from .plotting import plot_edge

        return plot_edge(self, l, i, j, x, **kwargs)

    # ------------------------------------------------------------------ symbolic
    def suggest_symbolic(self, l: int, i: int, j: int, x: Tensor | None = None, **kwargs):
        from .symbolic import suggest_symbolic

        return suggest_symbolic(self, l, i, j, require_data(x, "suggest_symbolic"),
                                **translate("suggest_symbolic", kwargs))

    def fix_symbolic(self, l: int, i: int, j: int, name: str, x: Tensor | None = None, **kwargs):
        from .symbolic import fix_symbolic

        return fix_symbolic(self, l, i, j, name, x, **translate("fix_symbolic", kwargs))

    def unfix_symbolic(self, l: int, i: int, j: int) -> None:
        from .symbolic import unfix_symbolic

        return unfix_symbolic(self, l, i, j)

    def auto_symbolic(self, x: Tensor | None = None, **kwargs):
        from .symbolic import auto_symbolic

        return auto_symbolic(self, require_data(x, "auto_symbolic"), **translate("auto_symbolic", kwargs))

    def symbolic_formula(self, var_names=None, **kwargs):
        from .symbolic import symbolic_formula

        named = {} if var_names is None else {"var_names": var_names}
        return symbolic_formula(self, **translate("symbolic_formula", dict(kwargs, **named)))

    # ------------------------------------------------------------------ files
    def save(self, path, metadata: dict | None = None) -> None:
        """Write one ``.kan`` file atomically; see :func:`kanlab.io.save`."""
        from .io import save

        save(self, path, metadata)


@contextlib.contextmanager
def all_or_nothing(module: nn.Module):
    """Run an in-place change of ``module`` so that it either completes or, on any exception
    (KeyboardInterrupt included), leaves every parameter and buffer bitwise as it was."""
    saved = {k: v.detach().clone() for k, v in module.state_dict().items()}
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
