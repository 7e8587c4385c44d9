"""save / load: one ``.kan`` file = safetensors tensors + the config as JSON in its metadata.

The file is a plain safetensors file: an 8-byte little-endian header length, a JSON
header (tensor offsets plus a ``__metadata__`` map of strings) and the raw tensor bytes.
kanlab stores in the metadata:

* ``format`` = ``"kanlab"`` and ``format_version`` (an integer as text),
* ``config``: :meth:`kanlab.KANConfig.to_dict` as JSON,
* ``dtype``: the parameters' dtype,
* ``sha256``: checksum of the tensor bytes (corruption is detected on load),
* ``symbolic``: JSON ``{layer index: {"type": class name, "config": config_dict()}}``,
* ``user``: JSON of the ``metadata`` dict given to :func:`save` (e.g. the CLI's task and class
  labels), read back by :func:`read_metadata`.

Loading parses JSON and raw tensor bytes only (no pickle, no code from the file); symbolic
modules are rebuilt from a fixed table of known classes. Writing is atomic: a temporary
file in the target directory, flushed and fsynced, then ``os.replace``.
"""
from __future__ import annotations

import hashlib
import json
import os
import struct
import tempfile
from pathlib import Path

import torch

from .network import KAN, KANConfig

__all__ = ["save", "load", "read_metadata", "FORMAT_VERSION"]

FORMAT_VERSION = 1
_MAGIC = "kanlab"
_MAX_HEADER = 100_000_000
# Symbolic edge classes a file may name: class name -> (module, attribute). Nothing else is built.
_SYMBOLIC_CLASSES = {"SymbolicEdges": ("kanlab.symbolic.edges", "SymbolicEdges")}


def save(model: KAN, path, metadata: dict | None = None) -> bool:
    """Write ``model`` to one ``.kan`` file, atomically (a crash never leaves a partial file).

    Under ``torch.distributed`` only rank 0 writes (the other ranks return False at once).

    Args:
        model: a :class:`kanlab.KAN` (numeric, pruned, symbolic or with multiplication nodes).
        path: destination file; its directory must exist.
        metadata: JSON-serialisable facts stored with the model (:func:`read_metadata`).

    Returns:
        True when this process wrote the file.

    Example:
        >>> model = KAN(width=[2, 3, 1])
        >>> model.save("model.kan"); same = load("model.kan")  # doctest: +SKIP
    """
    from safetensors.torch import save as st_save

    from .distributed import is_rank_zero

    if not isinstance(model, KAN):
        raise TypeError(f"model must be a kanlab.KAN, got {type(model).__name__}")
    path = Path(path)
    if not path.parent.is_dir():
        raise ValueError(f"cannot save to {str(path)!r}: directory {str(path.parent)!r} does not exist")
    if not is_rank_zero():
        return False
    tensors = {k: v.detach().to("cpu").contiguous().clone() for k, v in model.state_dict().items()}
    meta = _metadata(model)
    if metadata is not None:
        try:
            meta["user"] = json.dumps(metadata)
        except (TypeError, ValueError) as err:
            raise TypeError(f"metadata must be JSON-serialisable: {err}") from None
    meta["sha256"] = hashlib.sha256(_data_section(st_save(tensors, metadata=meta))).hexdigest()
    blob = st_save(tensors, metadata=meta)
    _atomic_write(path, blob)
    return True


def load(path, device=None) -> KAN:
    """Read a ``.kan`` file written by :func:`save`; the model is rebuilt from its config and
    gets bitwise the saved parameters, buffers and symbolic edges.

    Raises:
        ValueError naming the path and the problem for a missing, truncated, corrupt or foreign
        file, or one written by a newer kanlab (format version).
    """
    from safetensors.torch import load as st_load

    path = Path(path)
    if not path.is_file():
        raise ValueError(f"cannot load {str(path)!r}: no such file")
    blob = path.read_bytes()
    meta = _read_metadata(blob, path)
    if "sha256" in meta and hashlib.sha256(_data_section(blob)).hexdigest() != meta["sha256"]:
        raise ValueError(f"cannot load {str(path)!r}: corrupt file (tensor data checksum mismatch)")
    try:
        tensors = st_load(blob)
    except Exception as err:  # safetensors raises its own error types for bad bytes
        raise ValueError(f"cannot load {str(path)!r}: corrupt tensor data ({err})") from None
    try:
        config = KANConfig.from_dict(json.loads(meta["config"]))
        dtype = getattr(torch, meta["dtype"].removeprefix("torch."))
        symbolic = json.loads(meta.get("symbolic", "{}"))
    except (KeyError, TypeError, ValueError, AttributeError, json.JSONDecodeError) as err:
        raise ValueError(f"cannot load {str(path)!r}: bad kanlab metadata ({err})") from None
    if not isinstance(dtype, torch.dtype):
        raise ValueError(f"cannot load {str(path)!r}: unknown dtype {meta['dtype']!r}")
    model = KAN(config=config, dtype=dtype)
    saved_dtypes = {k: t.dtype for k, t in tensors.items()}
    for key, entry in symbolic.items():
        model.symbolic[str(key)] = _build_symbolic(entry, path, dtype)
    try:
        model.load_state_dict(tensors, strict=True)
    except RuntimeError as err:
        raise ValueError(f"cannot load {str(path)!r}: tensors do not match the config ({err})") from None
    changed = [k for k, t in model.state_dict().items() if t.dtype != saved_dtypes[k]]
    if changed:  # a silent cast would break the bitwise round trip
        raise ValueError(f"cannot load {str(path)!r}: mixed dtypes are not supported ({changed[:3]})")
    return model.to(device) if device is not None else model


def read_metadata(path) -> dict:
    """The ``metadata`` dict saved with the model in ``path`` (``{}`` when none was given)."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"cannot load {str(path)!r}: no such file")
    with open(path, "rb") as f:
        head = f.read(8)
        n = struct.unpack("<Q", head)[0] if len(head) == 8 else 0
        blob = head + f.read(min(n, _MAX_HEADER))
    meta = _read_metadata(blob, path, check_data=False)
    try:
        user = json.loads(meta.get("user", "{}"))
    except json.JSONDecodeError as err:
        raise ValueError(f"cannot load {str(path)!r}: bad metadata ({err})") from None
    return user if isinstance(user, dict) else {}


# ---------------------------------------------------------------------- helpers
def _metadata(model: KAN) -> dict[str, str]:
    from . import __version__

    param = next(model.parameters())
    symbolic = {key: {"type": type(m).__name__, "config": m.config_dict()}
                for key, m in model.symbolic.items()}
    return {"format": _MAGIC, "format_version": str(FORMAT_VERSION), "kanlab_version": __version__,
            "config": json.dumps(model.config.to_dict()), "dtype": str(param.dtype).removeprefix("torch."),
            "symbolic": json.dumps(symbolic)}


def _data_section(blob: bytes) -> bytes:
    (n,) = struct.unpack("<Q", blob[:8])
    return blob[8 + n:]


def _read_metadata(blob: bytes, path: Path, check_data: bool = True) -> dict[str, str]:
    """Check the safetensors header by hand so every failure names the problem."""
    where = f"cannot load {str(path)!r}"
    if len(blob) < 8:
        raise ValueError(f"{where}: file is truncated or not a .kan file ({len(blob)} bytes)")
    (n,) = struct.unpack("<Q", blob[:8])
    if n > _MAX_HEADER or 8 + n > len(blob):
        raise ValueError(f"{where}: not a .kan file or truncated (header length {n}, file {len(blob)} bytes)")
    try:
        header = json.loads(blob[8:8 + n].decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise ValueError(f"{where}: not a .kan file (unreadable header)") from None
    meta = header.get("__metadata__") if isinstance(header, dict) else None
    if not isinstance(meta, dict) or meta.get("format") != _MAGIC:
        raise ValueError(f"{where}: not a kanlab model file (a safetensors file without kanlab metadata?)")
    try:
        version = int(meta.get("format_version", ""))
    except ValueError:
        raise ValueError(f"{where}: bad format_version {meta.get('format_version')!r}") from None
    if version > FORMAT_VERSION:
        raise ValueError(f"{where}: written in .kan format version {version}, but this kanlab reads up to "
                         f"version {FORMAT_VERSION}; upgrade kanlab")
    ends = [v.get("data_offsets", [0, 0])[1] for k, v in header.items() if k != "__metadata__"]
    if check_data and 8 + n + max(ends, default=0) > len(blob):
        raise ValueError(f"{where}: file is truncated (tensor data ends early)")
    return meta


def _build_symbolic(entry, path: Path, dtype: torch.dtype):
    where = f"cannot load {str(path)!r}"
    if not isinstance(entry, dict) or entry.get("type") not in _SYMBOLIC_CLASSES:
        known = sorted(_SYMBOLIC_CLASSES)
        raise ValueError(f"{where}: unknown symbolic module {entry!r} (known: {known})")
    module_name, attr = _SYMBOLIC_CLASSES[entry["type"]]
    try:
        import importlib

        cls = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as err:
        raise ValueError(f"{where}: the file has symbolic edges but {module_name} is unavailable "
                         f"({err})") from None
    return cls.from_config(entry.get("config", {}), dtype=dtype)


def _atomic_write(path: Path, blob: bytes) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(blob)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, path.stat().st_mode & 0o777 if path.exists() else 0o644)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    try:  # make the rename durable too (POSIX); harmless to skip where unsupported
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    except OSError:
        pass
