"""Fast paths behind one function: :func:`kan_linear` resolves a path, then runs it.

Every path computes the same function as :func:`kan_linear_reference` (the oracle), values and
gradients; :data:`PATHS` maps each name to its implementation:

* ``"reference"`` (:mod:`~kanlab.kernels.reference`): the plain Cox-de Boor + matmul oracle;
* ``"dense"`` (:mod:`~kanlab.kernels.dense`): the ``k + 1`` local bases (closed form on uniform
  grids, searchsorted + local de Boor on any grid) scattered into one packed GEMM input;
* ``"sparse"`` (:mod:`~kanlab.kernels.sparse`): only the ``k + 1`` live bases, ``embedding_bag``
  forward, sampled products and a sorted reduction backward; cost independent of the grid size;
* ``"fused"`` (:mod:`~kanlab.kernels.fused`): the dense path with its basis build and input
  gradient done by two one-pass C++ kernels;
* ``"fused_sparse"`` (:mod:`~kanlab.kernels.fused_sparse`): the live bases by C++/OpenMP kernels;
* ``"triton"`` (:mod:`~kanlab.kernels.triton_kan`): the live bases by fused Triton kernels
  (optional dependency ``kanlab[gpu]``), for CUDA tensors; on CPU tensors in Triton's
  interpreter when ``TRITON_INTERPRET=1`` is set (tests), an error otherwise.

The C++ paths are optional: uniform grids, CPU, float32/float64, built once per machine by
:func:`load_extension` (``KANLAB_NO_CPP=1`` disables them).

:func:`resolve_path` decides, first rule that holds:

==============================================================  ===============================
condition                                                       path
==============================================================  ===============================
empty batch                                                     ``"reference"``
``path`` named explicitly                                       that path where its ``supports``
                                                                holds, else its ``fallback``
                                                                (``"fused"`` -> ``"dense"``,
                                                                ``"fused_sparse"`` -> ``"sparse"``,
                                                                ``"triton"`` -> the eager choice)
``torch.export`` / ONNX export / ``jit.trace``, or inside a     ``"reference"`` (plain ops)
``torch.func`` transform (``vmap``, ``jacfwd``, ...)
tracing under ``torch.compile``                                 ``"dense"`` on uniform grids (one
                                                                graph), else ``"reference"``
the first entry of :data:`PATHS` with an ``auto`` predicate     that path
where it and ``supports`` hold: CUDA tensors the Triton
kernels handle (triton installed) for ``"triton"``; ``N * n_in >=
FUSED_MIN_ELEMENTS`` (4096) and the C++ kernels apply, then
``"fused"`` for ``n_out <= 8`` (float32; 4 in float64) on
grids where the eager choice is ``"dense"``, else
``"fused_sparse"``
``G + k + 1 >= SPARSE_WIDTH_RATIO (k + 2)`` (G >= 19, cubic)     ``"sparse"``
otherwise                                                       ``"dense"``
==============================================================  ===============================

Adding a path is one entry of :data:`PATHS` (its ``run``, its ``supports`` predicate, the
``fallback`` for explicit requests it cannot serve, and ``auto`` if ``"auto"`` should try it).
Second and higher derivatives are exact on every path: when a backward graph is requested
(``create_graph=True``) the fast paths' backward differentiates the oracle instead. Non-finite
inputs give NaN in exactly their rows of the output, on every path. Nothing is compiled unless
the caller compiles.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
from torch import Tensor

from . import dense, fused, fused_sparse, reference, sparse, triton_kan
from .common import SPARSE_WIDTH_RATIO, LayerParams, eager_path
from .extension import FUSED_MIN_ELEMENTS, applies, build_error, large_batch, load_extension
from .reference import kan_edges_reference, kan_linear_reference

__all__ = ["kan_linear", "kan_linear_reference", "kan_edges_reference", "resolve_path", "eager_path",
           "KernelPath", "LayerParams", "PATHS", "FUSED_MIN_ELEMENTS", "SPARSE_WIDTH_RATIO", "load_extension",
           "build_error"]

Predicate = Callable[[Tensor, LayerParams], bool]


def _always(x: Tensor, layer: LayerParams) -> bool:
    return True


@dataclass(frozen=True)
class KernelPath:
    """One entry of :data:`PATHS`.

    Attributes:
        run: ``(x (N, n_in), layer) -> (N, n_out)``, differentiable.
        supports: whether ``run`` handles this call (may load what it needs; keep it cheap).
        fallback: the path an explicit request runs where ``supports`` is False (``"eager"``:
            the eager choice, :func:`eager_path`).
        auto: when given, ``"auto"`` tries this path (in table order, before the eager choice)
            where ``auto(x, layer)`` and then ``supports`` hold.
    """

    run: Callable[[Tensor, LayerParams], Tensor]
    supports: Predicate = _always
    fallback: str | None = None
    auto: Predicate | None = None


PATHS: dict[str, KernelPath] = {
    "triton": KernelPath(triton_kan.run, triton_kan.supports_call, "eager", triton_kan.auto_applies_call),
    "fused": KernelPath(fused.run, applies, "dense", fused.worth_it),
    "fused_sparse": KernelPath(fused_sparse.run, applies, "sparse", large_batch),
    "dense": KernelPath(dense.run),
    "sparse": KernelPath(sparse.run),
    "reference": KernelPath(reference.run),
}

def resolve_path(x: Tensor, layer: LayerParams, path: str = "auto") -> str:
    """The name of the :data:`PATHS` entry that runs this call (the module docstring's table).

    Args:
        x: input ``(N, n_in)``.
        layer: the call's parameters and settings.
        path: ``"auto"`` or a key of :data:`PATHS`.

    Returns:
        A key of :data:`PATHS` whose ``supports`` holds for this call.
    """
    if path != "auto" and path not in PATHS:
        raise ValueError(f"path must be 'auto' or one of {tuple(PATHS)}, got {path!r}")
    if x.shape[0] == 0:  # an empty batch: nothing to speed up
        return "reference"
    if path != "auto":
        while not PATHS[path].supports(x, layer):
            path = PATHS[path].fallback
            if path == "eager":
                return eager_path(layer.coef.shape[-1], layer.spline_order)
        return path
    if _is_exporting() or _in_functorch_transform():  # plain ops every exporter / transform knows
        return "reference"
    if torch.compiler.is_compiling():
        # the dense closed form traces into one graph; dynamo cannot trace the adapted-grid
        # (searchsorted) path inside an autograd.Function, so compile the plain ops there
        return "dense" if layer.uniform else "reference"
    for name, entry in PATHS.items():
        if entry.auto is not None and entry.auto(x, layer) and entry.supports(x, layer):
            return name
    return eager_path(layer.coef.shape[-1], layer.spline_order)


def kan_linear(x: Tensor, grid: Tensor, coef: Tensor, scale_base: Tensor, scale_spline: Tensor,
               spline_order: int, base_activation: str, uniform: bool = False,
               path: str = "auto") -> Tensor:
    """Layer output ``(N, n_out)`` for input ``(N, n_in)``; see :func:`kan_linear_reference`.

    Args:
        uniform: every row of ``grid`` is equally spaced (enables the closed-form basis).
        path: ``"auto"`` (:func:`resolve_path`) or a key of :data:`PATHS`.

    Shape: ``x`` ``(N, n_in)``, ``grid`` ``(n_in, G + 2k + 1)``, ``coef`` ``(n_out, n_in, G + k)``,
    scales ``(n_out, n_in)`` -> ``(N, n_out)``.
    """
    layer = LayerParams(grid, coef, scale_base, scale_spline, spline_order, base_activation, uniform)
    return PATHS[resolve_path(x, layer, path)].run(x, layer)


def _is_exporting() -> bool:
    """True under torch.export (ONNX) or TorchScript tracing."""
    check = getattr(torch.compiler, "is_exporting", None)
    return bool(check and check()) or torch.jit.is_tracing()


def _in_functorch_transform() -> bool:
    """True inside torch.func transforms (jacfwd, vmap, ...), which the fast paths' autograd
    Functions do not support."""
    try:
        return torch._C._functorch.peek_interpreter_stack() is not None
    except AttributeError:  # pragma: no cover - other torch versions
        return False
