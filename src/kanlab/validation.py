"""Checks at the public boundary: errors that name the argument and what was expected.

Every public entry point (constructors, ``fit``, grid updates, pruning, symbolic, ``load``, the
scikit-learn estimators) validates its arguments with these helpers before it touches any state
or allocates anything, so bad input gives a ``ValueError`` / ``TypeError`` that names the
argument, never an error from deep inside torch.
"""
from __future__ import annotations

import math
import numbers
import os
import torch
from torch import Tensor

__all__ = ["ArgumentTypeError", "check_input", "check_finite", "as_float_tensor", "as_model_input", "check_int", "check_index",
           "check_float", "check_seed", "check_dtype", "check_names", "check_grid_range", "check_memory",
           "check_device", "check_bool", "FLOAT_DTYPES", "SEED_MAX"]

# dtypes a model's parameters may have (what every kernel path and the .kan format support)
FLOAT_DTYPES = (torch.float32, torch.float64)
# torch.Generator.manual_seed takes seeds in [0, 2**64); kanlab asks for the non-negative int64 range
SEED_MAX = 2**63 - 1


class ArgumentTypeError(TypeError, ValueError):
    """An argument of the wrong type (``seed=1.7``, ``steps="3"``). A TypeError that is also a
    ValueError, so callers catching either see it."""


def check_input(x, n_features: int, name: str = "x") -> None:
    """``x`` must be a floating tensor whose last dimension is ``n_features``."""
    if not isinstance(x, Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if not x.is_floating_point():
        raise TypeError(f"{name} must be a floating-point tensor, got dtype {x.dtype}")
    if x.dim() == 0 or x.shape[-1] != n_features:
        raise ValueError(f"{name} must have shape (..., {n_features}), got {tuple(x.shape)}")


def check_finite(x: Tensor, name: str) -> None:
    """Raise a ValueError naming ``name`` when ``x`` holds NaN or inf."""
    if x.is_floating_point() and not bool(torch.isfinite(x).all()):
        bad = int((~torch.isfinite(x)).sum())
        raise ValueError(f"{name} contains {bad} NaN or inf value(s); clean or impute the data first")


def as_float_tensor(x, name: str, dtype=None, device=None) -> Tensor:
    """Convert array-likes to a floating tensor, with a clear error if that is impossible."""
    flags = getattr(x, "flags", None)
    if flags is not None and not getattr(flags, "writeable", True):  # torch warns on read-only numpy arrays
        x = x.copy()
    try:
        t = torch.as_tensor(x, device=device)
    except (TypeError, ValueError, RuntimeError) as err:
        raise TypeError(f"{name} must be a tensor or array of numbers: {err}") from None
    if not t.is_floating_point():
        t = t.to(dtype or torch.get_default_dtype())
    if dtype is not None:
        t = t.to(dtype)
    return t


def as_model_input(x, n_features: int, like: Tensor, name: str = "x") -> Tensor:
    """``x`` checked as the input of a model whose parameters look like ``like``.

    Arrays (numpy, nested lists) are converted to ``like``'s dtype and device; a tensor must
    already have them (a TypeError names both dtypes or devices), be floating and end in
    ``n_features``. Costs a few attribute reads for a tensor: it runs on every forward.
    """
    if not isinstance(x, Tensor) and (hasattr(x, "__array__") or isinstance(x, (list, tuple))):
        x = as_float_tensor(x, name, dtype=like.dtype, device=like.device)
    check_input(x, n_features, name)
    if x.dtype != like.dtype:
        raise TypeError(f"{name} has dtype {x.dtype} but the model's parameters have dtype {like.dtype}; "
                        f"convert one of them ({name}.to({like.dtype}) or model.to({x.dtype}))")
    if x.device != like.device:
        raise TypeError(f"{name} is on device {x.device} but the model's parameters are on {like.device}; "
                        f"move one of them ({name}.to('{like.device}') or model.to('{x.device}'))")
    return x


def check_int(name: str, value, min: int | None = None, max: int | None = None) -> int:
    """``value`` as a Python int: an integer (not a bool, not a float such as ``2.0``) in
    ``[min, max]``. numpy integers are accepted.

    Raises:
        TypeError: not an integer. ValueError: out of range.
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ArgumentTypeError(f"{name} must be an integer{_range_text(min, max)}, got {value!r} "
                        f"({type(value).__name__})")
    value = int(value)
    if (min is not None and value < min) or (max is not None and value > max):
        raise ValueError(f"{name} must be an integer{_range_text(min, max)}, got {value!r}")
    return value


def check_index(name: str, value, n: int, low: int = 0) -> int:
    """An index into ``n`` things: an integer (TypeError otherwise) in ``[low, n)`` (IndexError
    otherwise, as for a sequence)."""
    value = check_int(name, value)
    if not low <= value < n:
        raise IndexError(f"{name} must be an integer in [{low}, {n}), got {value!r}")
    return value


def check_float(name: str, value, min: float | None = None, max: float | None = None,
                min_open: bool = False, max_open: bool = False, finite: bool = True) -> float:
    """``value`` as a Python float: a real number (not a bool, str or tensor of several
    values), finite unless ``finite=False``, in ``[min, max]`` (``min_open`` / ``max_open``
    exclude the bound).

    Raises:
        TypeError: not a real number. ValueError: NaN, infinite or out of range.
    """
    if isinstance(value, Tensor) and value.numel() == 1 and not value.is_complex():
        value = value.item()
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ArgumentTypeError(f"{name} must be a real number, got {value!r} ({type(value).__name__})")
    value = float(value)
    if math.isnan(value) or (finite and math.isinf(value)):
        raise ValueError(f"{name} must be a finite number, got {value!r}")
    low_bad = min is not None and (value <= min if min_open else value < min)
    high_bad = max is not None and (value >= max if max_open else value > max)
    if low_bad or high_bad:
        lo = "" if min is None else ("(" if min_open else "[") + f"{min}"
        hi = "" if max is None else f"{max}" + (")" if max_open else "]")
        where = f"in {lo or '(-inf'}, {hi or 'inf)'}"
        raise ValueError(f"{name} must be {where}, got {value!r}")
    return value


def check_bool(name: str, value) -> bool:
    """``value`` must be a bool (numpy bools too)."""
    if not isinstance(value, bool) and type(value).__name__ != "bool_":  # numpy bools too
        raise ArgumentTypeError(f"{name} must be True or False, got {value!r} ({type(value).__name__})")
    return bool(value)


def check_seed(value, name: str = "seed") -> int:
    """A seed must be an integer in ``[0, 2**63 - 1]`` (floats such as 1.7 are not truncated)."""
    return check_int(name, value, 0, SEED_MAX)


def check_dtype(dtype, name: str = "dtype") -> torch.dtype | None:
    """``None`` (the default dtype) or one of :data:`FLOAT_DTYPES`."""
    if dtype is None:
        return None
    if not isinstance(dtype, torch.dtype):
        raise TypeError(f"{name} must be a torch.dtype such as torch.float64 or None, got {dtype!r}")
    if dtype not in FLOAT_DTYPES:
        allowed = ", ".join(str(d) for d in FLOAT_DTYPES)
        raise TypeError(f"{name} must be a floating dtype ({allowed}), got {dtype}")
    return dtype


def check_names(name: str, names, n: int) -> tuple[str, ...] | None:
    """``None`` or a sequence (not a str) of ``n`` strings."""
    if names is None:
        return None
    if isinstance(names, (str, bytes)) or not hasattr(names, "__iter__"):
        raise TypeError(f"{name} must be a list of {n} strings (not a single string), got {names!r}")
    names = list(names)
    bad = [v for v in names if not isinstance(v, str)]
    if bad:
        raise TypeError(f"{name} must hold strings, got {bad[0]!r} ({type(bad[0]).__name__})")
    if len(names) != n:
        raise ValueError(f"{name} must have {n} entries, got {len(names)}")
    return tuple(names)


def check_grid_range(value, name: str = "grid_range") -> tuple[float, float]:
    """``(lo, hi)``: two finite numbers with ``lo < hi`` and a finite width."""
    if isinstance(value, (str, bytes)) or not hasattr(value, "__len__") or len(value) != 2:
        raise TypeError(f"{name} must be a pair (lo, hi) of finite numbers, got {value!r}")
    lo, hi = (check_float(f"{name}[{i}]", v) for i, v in enumerate(value))
    if not lo < hi or not math.isfinite(hi - lo):
        raise ValueError(f"{name} must be (lo, hi) with lo < hi and a finite width, got {tuple(value)!r}")
    return lo, hi


def check_memory(what: str, n_bytes: float, device=None) -> None:
    """Fail fast, before allocating, when ``what`` needs more memory than the device has.

    ``n_bytes`` is an estimate of the peak memory; the limit is the physical memory of the
    machine (CPU) or of the GPU.
    """
    limit = _memory_limit(device)
    if limit is not None and n_bytes > limit:
        raise ValueError(f"{what} needs about {format_bytes(n_bytes)} of memory, more than the "
                         f"{format_bytes(limit)} this {_device_type(device)} has; use a smaller size")


def check_device(device):
    """``None`` or a device torch knows and this build can use (clear error for CUDA without CUDA)."""
    if device is None:
        return None
    try:
        device = torch.device(device)
    except (RuntimeError, TypeError) as err:
        raise ValueError(f"device must be a torch.device or a name such as 'cpu' or 'cuda:0', got "
                         f"{device!r} ({err})") from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"device={str(device)!r} was asked for, but CUDA is not available "
                             "(this torch has no CUDA support or no GPU is visible); use device='cpu'")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise ValueError(f"device={str(device)!r}: only {torch.cuda.device_count()} CUDA device(s) exist")
    elif device.type == "mps" and not torch.backends.mps.is_available():
        raise ValueError(f"device={str(device)!r} was asked for, but MPS is not available; use device='cpu'")
    return device


def format_bytes(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB", "PB"):
        if n < 1000 or unit == "PB":
            return f"{n:.3g} {unit}"
        n /= 1000
    return f"{n:.3g} PB"  # pragma: no cover


def _device_type(device) -> str:
    return "GPU" if device is not None and torch.device(device).type == "cuda" else "machine"


def _memory_limit(device) -> int | None:
    if device is not None and torch.device(device).type == "cuda":
        if not torch.cuda.is_available():
            return None
        return int(torch.cuda.get_device_properties(torch.device(device)).total_memory)
    try:
        return int(os.sysconf("SC_PAGE_SIZE")) * int(os.sysconf("SC_PHYS_PAGES"))
    except (ValueError, OSError, AttributeError):  # pragma: no cover - non-POSIX
        return None


def _range_text(min, max) -> str:
    if min is not None and max is not None:
        return f" in [{min}, {max}]"
    if min is not None:
        return f" >= {min}"
    if max is not None:
        return f" <= {max}"
    return ""
