"""Fast paths behind one function, chosen per call from the shapes.

``kan_linear`` is what :class:`kanlab.KANLayer` calls. Every path computes the same
function as :func:`kan_linear_reference` (the oracle), values and gradients:

* ``"dense"`` (:class:`~kanlab.kernels.dense.DenseKAN`): closed-form (uniform grid) or
  searchsorted + local de Boor (any grid) bases scattered into one packed GEMM input;
* ``"sparse"`` (:class:`~kanlab.kernels.sparse.SparseKAN`): only the ``k + 1`` live bases,
  ``embedding_bag`` forward, sampled products and a sorted reduction backward; cost
  independent of the grid size;
* ``"fused"`` (:class:`~kanlab.kernels.fused.FusedKAN`): the dense path with its basis
  build and input-gradient gather done by two one-pass C++ kernels (optional, JIT-built;
  uniform grids, CPU, float32/float64); falls back to ``"dense"`` where it cannot run;
* ``"fused_sparse"`` (:class:`~kanlab.kernels.fused_sparse.FusedSparseKAN`): only the
  ``k + 1`` live bases, by three C++ kernels of the same extension (same conditions);
  ``"auto"`` takes it, at every grid size, once ``N * n_in >= FUSED_MIN_ELEMENTS`` and the
  extension builds (``"fused"`` instead for outputs of at most half a SIMD vector on grids
  where the eager choice is dense); where it cannot run, ``"auto"`` uses the eager ``"dense"`` / ``"sparse"``
  choice and an explicit ``"fused_sparse"`` falls back to ``"sparse"`` silently
  (``KANLAB_NO_CPP=1`` disables the extension);
* ``"triton"`` (:class:`~kanlab.kernels.triton_kan.TritonKAN`): only the ``k + 1`` live bases,
  by fused Triton kernels (optional dependency ``kanlab[gpu]``); ``"auto"`` takes it for CUDA
  tensors where it applies. On CPU tensors it runs in Triton's interpreter when
  ``TRITON_INTERPRET=1`` is set and raises otherwise; where the kernels do not handle the
  arguments an explicit ``"triton"`` uses the eager ``"dense"`` / ``"sparse"`` choice;
* ``"reference"``: the plain Cox-de Boor + einsum oracle.

Second and higher derivatives are exact on both fast paths: when a backward graph is
requested (``create_graph=True``) their backward differentiates the oracle instead.
Under ``torch.export`` (and so ONNX export) the automatic choice is the reference path;
under ``torch.compile`` it is the dense path on uniform grids (the reference elsewhere), which traces into one
graph (``fullgraph=True`` works); nothing is compiled unless the caller compiles.
"""
from __future__ import annotations

import torch
from torch import Tensor

from .common import pack_weights
from . import fused, triton_kan
from .fused_sparse import FusedSparseKAN
from .fused_sparse import supports as fused_sparse_supports
from .dense import DenseKAN
from .reference import kan_edges_reference, kan_linear_reference
from .sparse import SparseKAN

__all__ = ["kan_linear", "kan_linear_reference", "kan_edges_reference", "choose_path", "choose_cpp_path",
           "PATHS", "FUSED_MIN_ELEMENTS"]

PATHS = ("auto", "dense", "fused", "sparse", "fused_sparse", "triton", "reference")

# "auto" uses the C++ kernels ("fused_sparse"; it builds them, once per process, ~2 min the
# first time on a machine) only for batches with at least this many input entries N * n_in, so
# small models never trigger a build. Below it the eager passes cost little anyway.
FUSED_MIN_ELEMENTS = 4096

# Without the C++ kernels: the eager sparse path wins once the packed row (nb + 1 columns per
# input) is this many times wider than the live entries (k + 2 per input). Measured with benchmarks/layer_speed.py --crossover at
# (1024, 64, 64), cubic, 1 CPU thread: sparse/dense f+b = 1.04 at G = 15, 0.93 at G = 20.
SPARSE_WIDTH_RATIO = 4.5


def choose_path(n_basis: int, spline_order: int) -> str:
    """``"sparse"`` when ``(n_basis + 1) >= SPARSE_WIDTH_RATIO * (k + 2)``, else ``"dense"``."""
    return "sparse" if n_basis + 1 >= SPARSE_WIDTH_RATIO * (spline_order + 2) else "dense"


def choose_cpp_path(eager_path: str, n_out: int, dtype: torch.dtype) -> str:
    """The C++ path ``"auto"`` takes where the extension applies, given the eager choice.

    ``"fused_sparse"`` was the fastest measured at every grid size, but for outputs of at most
    half a 64-byte SIMD vector (padded to a whole one) on grids where the eager choice is
    ``"dense"``: there the dense C++ path ``"fused"`` was (docs/performance.md).
    """
    tiny = 2 * n_out <= 512 // torch.finfo(dtype).bits
    return "fused" if eager_path == "dense" and tiny else "fused_sparse"


def kan_linear(x: Tensor, grid: Tensor, coef: Tensor, scale_base: Tensor, scale_spline: Tensor,
               spline_order: int, base_activation: str, uniform: bool = False,
               path: str = "auto") -> Tensor:
    """Layer output ``(N, n_out)`` for input ``(N, n_in)``; see :func:`kan_linear_reference`.

    Args:
        uniform: every row of ``grid`` is equally spaced (enables the closed-form basis).
        path: ``"auto"`` (from the shapes, see :func:`choose_path` and
            :data:`FUSED_MIN_ELEMENTS`), ``"dense"``, ``"fused"`` (``"dense"`` where the C++
            kernels do not apply), ``"sparse"``, ``"fused_sparse"`` (``"sparse"`` where the
            C++ kernels do not apply), ``"triton"`` (CUDA tensors, or CPU ones under
            ``TRITON_INTERPRET=1``; the eager choice where the kernels do not apply) or ``"reference"``.

    Shape: ``x`` ``(N, n_in)``, ``grid`` ``(n_in, G + 2k + 1)``, ``coef`` ``(n_out, n_in, G + k)``,
    scales ``(n_out, n_in)`` -> ``(N, n_out)``.
    """
    if path not in PATHS:
        raise ValueError(f"path must be one of {PATHS}, got {path!r}")
    if path == "auto":
        # under torch.compile the dense path traces into one graph; the sparse one would break it
        if _is_exporting() or _in_functorch_transform():  # plain ops every exporter / transform knows
            path = "reference"
        else:
            path = choose_path(coef.shape[-1], spline_order)
            if torch.compiler.is_compiling():
                # the dense closed form traces into one graph; dynamo cannot trace the adapted-grid
                # (searchsorted) path inside an autograd.Function, so compile the plain ops there
                path = "dense" if uniform else "reference"
            elif (x.shape[0] * x.shape[-1] >= FUSED_MIN_ELEMENTS
                  and fused_sparse_supports(x, coef, scale_base, scale_spline, uniform)
                  and fused.extension() is not None):
                path = choose_cpp_path(path, coef.shape[0], x.dtype)
            elif triton_kan.auto_applies(x, grid, coef, scale_base, scale_spline, spline_order):
                path = "triton"
    if path == "triton":  # Triton kernels (kernels/triton_kan.py); raises where they cannot run at all
        y = triton_kan.kan_linear_triton(x, grid, coef, scale_base, scale_spline, spline_order,
                                         base_activation, uniform)
        if y is not None:
            return y
        path = choose_path(coef.shape[-1], spline_order)
    if path == "reference" or x.shape[0] == 0:  # an empty batch: nothing to speed up
        return kan_linear_reference(x, grid, coef, scale_base, scale_spline, spline_order,
                                    base_activation)
    if path == "fused_sparse":
        if fused_sparse_supports(x, coef, scale_base, scale_spline, uniform) and fused.extension() is not None:
            return FusedSparseKAN.apply(x, coef, scale_base, scale_spline, grid, spline_order, base_activation)
        path = "sparse"
    weight = pack_weights(coef, scale_base, scale_spline)  # (n_out, n_in, nb+1)
    if path == "fused":
        if fused.supports(x, weight, uniform) and fused.extension() is not None:
            return fused.FusedKAN.apply(x, weight, grid, spline_order, base_activation)
        path = "dense"
    fn = DenseKAN if path == "dense" else SparseKAN
    return fn.apply(x, weight, grid, spline_order, base_activation, bool(uniform))


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
