"""The optional C++ extension: built on first use, once per process, cached per machine.

The sources in ``kernels/cpp/`` (every ``*.cpp`` file registers its own operators in the
``kanlab`` namespace with ``TORCH_LIBRARY_FRAGMENT``) are JIT-built with
``torch.utils.cpp_extension.load`` (needs a C++ compiler and ninja) into torch's extension
cache (``TORCH_EXTENSIONS_DIR``, default ``~/.cache/torch_extensions``), under a name that
hashes the sources and the CPU's features (``-march=native`` builds are not shared across CPUs,
and checkouts with different kernels do not rebuild over each other). The first build on a
machine takes about two minutes and says so once (a :class:`KernelBuildNotice` warning, which
Python prints on stderr); later processes load the cached
build in well under a second. ``KANLAB_NO_CPP=1`` disables it.

Example:
    >>> from kanlab import kernels
    >>> ops = kernels.load_extension()  # None where it cannot be built (kernels.build_error() says why)
"""
from __future__ import annotations

import glob
import hashlib
import os
import platform
import threading
import time
import warnings

import torch
from torch import Tensor

__all__ = ["load_extension", "build_error", "applies", "large_batch", "clear_stale_lock", "FUSED_MIN_ELEMENTS",
           "BUILD_MESSAGE", "KernelBuildNotice"]

BUILD_MESSAGE = "compiling kanlab's CPU kernels, once per machine, ~2 min"


class KernelBuildNotice(UserWarning):
    """Issued when the C++ kernels start compiling (the first use on a machine)."""
# "auto" takes the C++ paths (and so builds them, once per process, ~2 min the first time on
# a machine) only for batches with at least this many input entries N * n_in, so small
# models never trigger a build. Below it the eager passes cost little anyway.
FUSED_MIN_ELEMENTS = 4096
_CPP_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "cpp")
_LOCK = threading.Lock()
_STATE: dict = {}  # "ops" (None when unavailable) and "error" once a build was tried


def load_extension():
    """The kernels' operator namespace (``torch.ops.kanlab``), building them on the first call.

    Returns None when the extension cannot be built or loaded (no compiler or ninja, a failed
    build, ``KANLAB_NO_CPP=1``); :func:`build_error` then says why. Never raises; thread-safe;
    tries once per process.
    """
    if "ops" in _STATE:
        return _STATE["ops"]
    with _LOCK:
        if "ops" not in _STATE:
            _STATE["ops"], _STATE["error"] = _build()
    return _STATE["ops"]


def build_error() -> str | None:
    """Why the extension is unavailable (None if it loaded or was not tried yet)."""
    return _STATE.get("error")


def large_batch(x: Tensor, layer=None) -> bool:
    """``N * n_in >= FUSED_MIN_ELEMENTS`` for ``x`` ``(N, n_in)``: worth the C++ kernels."""
    return x.shape[0] * x.shape[1] >= FUSED_MIN_ELEMENTS


def applies(x: Tensor, layer) -> bool:
    """Whether the C++ kernels handle this call: a uniform grid, CPU, float32/float64 input and
    parameters of one dtype, and the extension loads (building it on the first such call).

    Args: ``x`` ``(N, n_in)``; ``layer`` a :class:`~kanlab.kernels.common.LayerParams`.
    """
    dtype = x.dtype
    return (layer.uniform and x.device.type == "cpu" and dtype in (torch.float32, torch.float64)
            and layer.coef.dtype == layer.scale_base.dtype == layer.scale_spline.dtype == dtype
            and load_extension() is not None)


def _sources() -> tuple[list[str], list[str]]:
    """``(*.cpp, *.h)`` paths of the kernels, sorted."""
    return (sorted(glob.glob(os.path.join(_CPP_DIR, "*.cpp"))),
            sorted(glob.glob(os.path.join(_CPP_DIR, "*.h"))))


def clear_stale_lock(path: str, max_age_s: float = 900.0) -> bool:
    """Remove torch's build lock at ``path`` when it is older than ``max_age_s`` (a build takes
    a minute or two): a process killed while building leaves the lock behind, and every later
    process would wait for it forever. Returns whether a lock was removed."""
    try:
        if time.time() - os.path.getmtime(path) <= max_age_s:
            return False
        os.remove(path)
        return True
    except OSError:  # no lock, or another process removed it first
        return False


def _build():
    """``(ops, None)`` or ``(None, reason)``; never raises."""
    if os.environ.get("KANLAB_NO_CPP", "") not in ("", "0"):
        return None, "disabled by KANLAB_NO_CPP"
    try:
        from torch.utils import cpp_extension
        if not cpp_extension.is_ninja_available():
            return None, "ninja is not available"
        sources, _ = _sources()
        name = f"kanlab_kernels_{_build_tag()}"
        build_dir = cpp_extension._get_build_directory(name, verbose=False)
        clear_stale_lock(os.path.join(build_dir, "lock"))
        if not os.path.exists(os.path.join(build_dir, f"{name}.so")):
            warnings.warn(BUILD_MESSAGE, KernelBuildNotice, stacklevel=2)
        flags = ["-O3", "-march=native", "-fno-trapping-math", "-fno-math-errno", "-ffp-contract=fast",
                 "-fopenmp"]
        cpp_extension.load(name=name, sources=sources, extra_cflags=flags, extra_ldflags=["-fopenmp"],
                           is_python_module=False, verbose=False)
        return torch.ops.kanlab, None
    except Exception as err:  # no compiler, failed build, unwritable cache: eager paths instead
        return None, f"{type(err).__name__}: {err}"


def _build_tag() -> str:
    """Short hash of the C++ sources and the CPU's features."""
    text = platform.machine()
    for path in sum(_sources(), []):
        with open(path, "rb") as f:
            text += os.path.basename(path) + hashlib.sha1(f.read()).hexdigest()
    try:
        with open("/proc/cpuinfo") as f:
            text += next((line for line in f if line.startswith("flags")), "")
    except OSError:
        pass
    return hashlib.sha1(text.encode()).hexdigest()[:10]
