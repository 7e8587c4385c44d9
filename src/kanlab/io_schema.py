"""The ``.kan`` header schema: everything :func:`kanlab.load` checks before it builds anything.

A header passes only when its types and ranges are right and it describes exactly the tensors a
model of its config has: the file's bytes then bound the model's size, so checking it costs
milliseconds however the header was edited. See :mod:`kanlab.io` for the file layout.
"""
from __future__ import annotations

import hashlib
import json
import math
import re
from dataclasses import dataclass

import torch

from .config import KANConfig

__all__ = ["HeaderSpec", "validate_header", "header_checksum", "DTYPES"]

# dtype name in the metadata -> (torch dtype, safetensors dtype code, bytes per element)
DTYPES = {"float32": (torch.float32, "F32", 4), "float64": (torch.float64, "F64", 8)}
_LAYER_TENSORS = ("coef", "grid", "mask", "scale_base", "scale_spline")
_SYMBOLIC_TENSORS = ("a", "b", "c", "d", "mask")
_SHA = re.compile(r"^[0-9a-f]{64}$")


class HeaderError(ValueError):
    """The header does not describe a valid kanlab model (the message says which part)."""


@dataclass(frozen=True)
class HeaderSpec:
    """What a valid header describes: the config, the dtype and the symbolic modules' configs."""

    config: KANConfig
    dtype: torch.dtype
    symbolic: dict  # layer index (str) -> {"type": ..., "config": {...}}
    version: int


def validate_header(header, data_len: int, max_version: int, symbolic_types) -> HeaderSpec:
    """Check a parsed safetensors header against the schema.

    Args:
        header: the parsed JSON header (tensor entries and ``__metadata__``).
        data_len: bytes after the header (tensor data).
        max_version: newest format version this kanlab reads.
        symbolic_types: class names a symbolic entry may name.

    Raises:
        HeaderError (a ValueError) naming the first problem.
    """
    if not isinstance(header, dict):
        raise HeaderError("the header is not a JSON object")
    meta = header.get("__metadata__")
    if not isinstance(meta, dict) or meta.get("format") != "kanlab":
        raise HeaderError("not a kanlab model file (a safetensors file without kanlab metadata?)")
    if not all(isinstance(k, str) and isinstance(v, str) for k, v in meta.items()):
        raise HeaderError("metadata values must be strings")
    version = _version(meta.get("format_version"), max_version)
    if version >= 2 and not _SHA.match(meta.get("sha256", "")):
        raise HeaderError("missing or malformed sha256 checksum")
    if meta.get("dtype") not in DTYPES:
        raise HeaderError(f"dtype {meta.get('dtype')!r} is not one of {sorted(DTYPES)}")
    config = _config(meta.get("config"))
    symbolic = _symbolic(meta.get("symbolic", "{}"), config, symbolic_types)
    expected = _expected_shapes(config, symbolic)
    _check_tensors(header, expected, DTYPES[meta["dtype"]], data_len)
    return HeaderSpec(config, DTYPES[meta["dtype"]][0], symbolic, version)


def header_checksum(header: dict, data: bytes) -> str:
    """sha256 over the header (without its ``sha256`` entry, as canonical JSON) and the tensor bytes."""
    meta = {k: v for k, v in header.get("__metadata__", {}).items() if k != "sha256"}
    canonical = dict(header, __metadata__=meta)
    digest = hashlib.sha256(json.dumps(canonical, sort_keys=True, separators=(",", ":")).encode())
    digest.update(data)
    return digest.hexdigest()


# ---------------------------------------------------------------------- parts
def _version(text, max_version: int) -> int:
    if not isinstance(text, str) or not re.fullmatch(r"[0-9]{1,6}", text):
        raise HeaderError(f"bad format_version {text!r}")
    version = int(text)
    if version < 1:
        raise HeaderError(f"bad format_version {text!r}")
    if version > max_version:
        raise HeaderError(f"written in .kan format version {version}, but this kanlab reads up to "
                          f"version {max_version}; upgrade kanlab")
    return version


def _json(text, what: str):
    if not isinstance(text, str):
        raise HeaderError(f"{what} is missing")
    try:
        return json.loads(text, parse_constant=_reject_constant)
    except (json.JSONDecodeError, ValueError, RecursionError) as err:
        raise HeaderError(f"{what} is not valid JSON ({err})") from None


def _reject_constant(name: str):
    raise ValueError(f"{name} is not allowed")


def _config(text) -> KANConfig:
    d = _json(text, "config")
    try:
        return KANConfig.from_dict(d)
    except (TypeError, ValueError) as err:
        raise HeaderError(f"bad config ({err})") from None


def _symbolic(text, config: KANConfig, types) -> dict:
    entries = _json(text, "symbolic")
    if not isinstance(entries, dict):
        raise HeaderError(f"symbolic must be a JSON object, got {type(entries).__name__}")
    shapes = config.layer_shapes()
    for key, entry in entries.items():
        if not re.fullmatch(r"[0-9]{1,6}", key) or int(key) >= len(shapes) or str(int(key)) != key:
            raise HeaderError(f"symbolic key {key!r} is not a layer index in [0, {len(shapes)})")
        if not isinstance(entry, dict) or set(entry) != {"type", "config"} or entry["type"] not in types:
            raise HeaderError(f"unknown symbolic module {str(entry)[:80]!r} in symbolic[{key}] (known types: "
                              f"{sorted(types)}, as {{'type': ..., 'config': ...}})")
        _symbolic_config(entry["config"], *shapes[int(key)], key)
    return entries


def _symbolic_config(cfg, n_in: int, n_out: int, key: str) -> None:
    from .symbolic.library import library_names

    if not isinstance(cfg, dict) or set(cfg) != {"in_features", "out_features", "names"}:
        raise HeaderError(f"symbolic[{key}].config must have in_features, out_features and names")
    if cfg["in_features"] != n_in or cfg["out_features"] != n_out or any(
            isinstance(cfg[k], bool) for k in ("in_features", "out_features")):
        raise HeaderError(f"symbolic[{key}] has shape ({cfg['out_features']!r}, {cfg['in_features']!r}) "
                          f"but layer {key} has ({n_out}, {n_in})")
    names, known = cfg["names"], set(library_names())
    if not (isinstance(names, list) and len(names) == n_out
            and all(isinstance(r, list) and len(r) == n_in for r in names)):
        raise HeaderError(f"symbolic[{key}].names must be {n_out} lists of {n_in} names")
    bad = [n for r in names for n in r if not isinstance(n, str) or n not in known]
    if bad:
        raise HeaderError(f"symbolic[{key}].names has unknown function {bad[0]!r}")


def _expected_shapes(config: KANConfig, symbolic: dict) -> dict[str, tuple[int, ...]]:
    g, k = config.grid_size, config.spline_order
    out = {}
    for l, (n_in, n_out) in enumerate(config.layer_shapes()):
        out.update({f"layers.{l}.coef": (n_out, n_in, g + k), f"layers.{l}.grid": (n_in, g + 2 * k + 1),
                    f"layers.{l}.mask": (n_out, n_in), f"layers.{l}.scale_base": (n_out, n_in),
                    f"layers.{l}.scale_spline": (n_out, n_in)})
        if str(l) in symbolic:
            out.update({f"symbolic.{l}.{name}": (n_out, n_in) for name in _SYMBOLIC_TENSORS})
    return out


def _check_tensors(header: dict, expected: dict, dtype_info, data_len: int) -> None:
    names = set(header) - {"__metadata__"}
    missing, extra = sorted(set(expected) - names), sorted(names - set(expected))
    if missing or extra:
        raise HeaderError(f"the tensors do not match the config (missing {missing[:4]}, "
                          f"unexpected {extra[:4]})")
    _, code, item = dtype_info
    spans = []
    for name, shape in expected.items():
        entry = header[name]
        if not isinstance(entry, dict) or set(entry) != {"dtype", "shape", "data_offsets"}:
            raise HeaderError(f"tensor {name!r}: entry must have dtype, shape and data_offsets")
        if entry["dtype"] != code:
            raise HeaderError(f"tensor {name!r} has dtype {entry['dtype']!r}, the model is {code}")
        if entry["shape"] != list(shape):
            raise HeaderError(f"the tensors do not match the config: {name!r} has shape {entry['shape']!r}, "
                              f"the config needs {list(shape)}")
        offsets = entry["data_offsets"]
        if not (isinstance(offsets, list) and len(offsets) == 2
                and all(isinstance(v, int) and not isinstance(v, bool) for v in offsets)):
            raise HeaderError(f"tensor {name!r}: data_offsets must be two integers")
        begin, end = offsets
        if not 0 <= begin <= end <= data_len or end - begin != item * math.prod(shape):
            raise HeaderError(f"tensor {name!r}: data_offsets {offsets} do not fit {list(shape)} {code} "
                              f"in {data_len} bytes of data (truncated file?)")
        spans.append((begin, end))
    spans.sort()
    if any(a[1] > b[0] for a, b in zip(spans, spans[1:])):
        raise HeaderError("tensor data regions overlap")
