"""Optional fused C++ kernels for the dense path on uniform CPU grids.

Two one-pass kernels (``kernels/cpp/fused_kan.cpp``) replace the ~10 memory-bound eager
passes of :mod:`~kanlab.kernels.dense`; everything else stays a torch GEMM:

* ``packed_input``: ``x`` and ``b(x)`` ``(N, n_in)`` -> the packed GEMM input
  ``(N, n_in (nb + 1))`` (per input: ``b(x)``, then the ``nb`` bases; closed-form uniform
  basis of any order);
* ``input_grad``: ``dL/da = grad_out @ W``, ``x`` and ``b'(x)`` -> ``dL/dx`` ``(N, n_in)``.

The base activation and its derivative stay torch calls (vectorised, ``(N, n_in)`` only).

The extension is JIT-built with ``torch.utils.cpp_extension.load`` (needs a C++ compiler
and ninja) the first time a large enough layer runs (see :data:`FUSED_MIN_ELEMENTS` in
:mod:`kanlab.kernels`), once per process, into torch's extension cache (``TORCH_EXTENSIONS_DIR``,
default ``~/.cache/torch_extensions``); later processes reuse the cached build. Set
``KANLAB_NO_CPP=1`` to never build it. When the build fails, :func:`extension` returns None
and the eager dense path is used; :func:`build_error` tells why.
"""
from __future__ import annotations

import hashlib
import os
import platform
import threading

import torch
from torch import Tensor

from ..activations import base_function
from .common import base_derivative, differentiable_backward
from .local import uniform_basis_matrices

__all__ = ["FusedKAN", "extension", "build_error", "supports"]

_SOURCES = [os.path.join(os.path.dirname(os.path.abspath(__file__)), "cpp", name)
            for name in ("fused_kan.cpp", "sparse_kan.cpp", "sparse_table.cpp", "sparse_table_grad.cpp")]
_HEADERS = [os.path.join(os.path.dirname(_SOURCES[0]), name) for name in ("uniform_basis.h", "sparse_common.h")]
_LOCK = threading.Lock()
_STATE: dict = {}  # "module" (None when unavailable) and "error" once a build was tried


def extension():
    """The compiled module, building it on the first call; None when it cannot be built."""
    if "module" in _STATE:
        return _STATE["module"]
    with _LOCK:
        if "module" not in _STATE:
            _STATE["module"], _STATE["error"] = _build()
    return _STATE["module"]


def build_error() -> str | None:
    """Why the extension is unavailable (None if it built or was not tried yet)."""
    return _STATE.get("error")


def _build():
    """``(module, None)`` or ``(None, reason)``; never raises."""
    if os.environ.get("KANLAB_NO_CPP", "") not in ("", "0"):
        return None, "disabled by KANLAB_NO_CPP"
    try:
        from torch.utils import cpp_extension
        if not cpp_extension.is_ninja_available():
            return None, "ninja is not available"
        flags = ["-O3", "-march=native", "-fno-trapping-math", "-fno-math-errno", "-ffp-contract=fast",
                 "-fopenmp"]
        module = cpp_extension.load(name=f"kanlab_fused_kan_{_cpu_tag()}", sources=_SOURCES,
                                    extra_cflags=flags, extra_ldflags=["-fopenmp"], verbose=False)
        return module, None
    except Exception as err:  # no compiler, failed build, unwritable cache: eager path instead
        return None, f"{type(err).__name__}: {err}"


def _cpu_tag() -> str:
    """Short hash of the CPU's features and of the C++ sources: ``-march=native`` builds are
    not shared across CPUs, and checkouts with different kernels do not rebuild over each other."""
    text = platform.machine()
    for path in _SOURCES + _HEADERS:
        with open(path, "rb") as f:
            text += hashlib.sha1(f.read()).hexdigest()
    try:
        with open("/proc/cpuinfo") as f:
            text += next((line for line in f if line.startswith("flags")), "")
    except OSError:
        pass
    return hashlib.sha1(text.encode()).hexdigest()[:10]


def supports(x: Tensor, weight: Tensor, uniform: bool) -> bool:
    """Whether the fused kernels handle these inputs (uniform grid, CPU, float32/64, one dtype)."""
    return (uniform and x.device.type == "cpu" and x.dtype in (torch.float32, torch.float64)
            and weight.dtype == x.dtype and x.dim() == 2)


def _mats(spline_order: int, dtype: torch.dtype) -> tuple[Tensor, Tensor]:
    m_w, m_d = uniform_basis_matrices(spline_order, dtype, torch.device("cpu"))
    return m_w, m_d


class FusedKAN(torch.autograd.Function):
    """``y = A(x) @ W.flatten(1).T`` with ``A`` built by the fused kernel (uniform grids, CPU).

    Same contract as :class:`~kanlab.kernels.dense.DenseKAN`: ``weight`` ``(n_out, n_in, nb + 1)``
    packed by :func:`~kanlab.kernels.common.pack_weights`. Backward: ``dL/dx`` from
    ``grad_out @ W`` by the fused gather kernel, ``dL/dW = grad_out^T A``. ``A`` is saved
    for backward, or rebuilt there (one more build pass, ~10 % more time; peak memory 1.3x
    instead of 2.1x the dense limit's) when :attr:`RECOMPUTE` is True, or when it is None
    (the default) and ``A`` takes at least :attr:`RECOMPUTE_BYTES`. Higher-order
    derivatives go through the reference.
    """

    RECOMPUTE: bool | None = None
    RECOMPUTE_BYTES = 2 ** 24  # 16 MiB: (4096, 128 * 9) float32 is 18.9 MB

    @staticmethod
    def forward(ctx, x: Tensor, weight: Tensor, grid: Tensor, spline_order: int, base_name: str) -> Tensor:
        ext = extension()
        x_in, x = x, x.contiguous()  # save the input itself: a copy has no history for create_graph
        grid = grid.to(x.dtype).contiguous()
        m_w, _ = _mats(spline_order, x.dtype)
        b = base_function(base_name)(x).contiguous()
        a = ext.packed_input(x, b, grid, m_w, spline_order)  # (N, n_in P)
        y = a @ weight.reshape(weight.shape[0], -1).T  # (N, n_out)
        ctx.spline_order, ctx.base_name = spline_order, base_name
        recompute = FusedKAN.RECOMPUTE
        if recompute is None:
            recompute = a.numel() * a.element_size() >= FusedKAN.RECOMPUTE_BYTES
        keep_a = a if ctx.needs_input_grad[1] and not recompute else None
        ctx.save_for_backward(x_in, weight, grid, keep_a)
        return y

    @staticmethod
    def backward(ctx, grad_out: Tensor):
        x, weight, grid, a = ctx.saved_tensors
        if torch.is_grad_enabled():  # create_graph=True: exact higher-order derivatives
            gx, gw = differentiable_backward(ctx, grad_out, x, weight, grid)
            return gx, gw, None, None, None
        ext, k, x = extension(), ctx.spline_order, x.contiguous()
        m_w, m_d = _mats(k, x.dtype)
        grad_out = grad_out.contiguous()
        gx = gw = None
        if ctx.needs_input_grad[0]:
            gp = grad_out @ weight.reshape(weight.shape[0], -1)  # (N, n_in P)
            gx = ext.input_grad(gp, x, base_derivative(ctx.base_name, x).contiguous(), grid, m_d, k)
            del gp
        if ctx.needs_input_grad[1]:
            if a is None:
                b = base_function(ctx.base_name)(x)
                a = ext.packed_input(x, b.contiguous(), grid, m_w, k)
            gw = (grad_out.T @ a).view(weight.shape)  # (n_out, n_in, nb + 1)
        return gx, gw, None, None, None
