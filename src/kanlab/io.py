"""save / load: one ``.kan`` file = safetensors tensors + the config as JSON in its metadata.

The file is a plain safetensors file: an 8-byte little-endian header length, a JSON
header (tensor offsets plus a ``__metadata__`` map of strings) and the raw tensor bytes.
kanlab stores in the metadata:

* ``format`` = ``"kanlab"`` and ``format_version`` (an integer as text),
* ``config``: :meth:`kanlab.KANConfig.to_dict` as JSON,
* ``dtype``: the parameters' dtype,
* ``sha256``: checksum of the header (canonical JSON, without this entry) and the tensor
  bytes (format version 2; version 1 files checksum the tensor bytes only),
* ``symbolic``: JSON ``{layer index: {"type": class name, "config": config_dict()}}``,
* ``user``: JSON of the ``metadata`` dict given to :func:`save` (e.g. the CLI's task and class
  labels), read back by :func:`read_metadata`.

Loading parses JSON and raw tensor bytes only (no pickle, no code from the file). The whole
header is validated against a schema first (:mod:`kanlab.io_schema`: types, ranges, the
tensors' shapes and dtypes against the config), then the checksum, then the tensors (grids
finite and non-decreasing, every value finite); only then is the model built, without its
random initialisation. Symbolic modules are rebuilt from a fixed table of known classes.

Writing is atomic: a temporary file ``.<name>.<random>.tmp`` in the target directory,
flushed and fsynced, then ``os.replace``. Such files left by a save that was killed are
removed by later saves to the same path once they are an hour old (never younger ones,
which may belong to a save running in another process).
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import struct
import tempfile
import time
from pathlib import Path

import torch

from .io_schema import header_checksum, validate_header
from .network import KAN
from .validation import check_device

__all__ = ["save", "load", "read_metadata", "model_to_bytes", "model_from_bytes", "FORMAT_VERSION"]

FORMAT_VERSION = 2
_MAGIC = "kanlab"
_MAX_HEADER = 64_000_000
STALE_TEMP_SECONDS = 3600.0
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
    atomic_write(path, model_to_bytes(model, metadata))
    return True


def model_to_bytes(model: KAN, metadata: dict | None = None) -> bytes:
    """The ``.kan`` file of ``model`` (with ``metadata``, see :func:`save`) as bytes."""
    from safetensors.torch import save as st_save

    tensors = {k: v.detach().to("cpu").contiguous().clone() for k, v in model.state_dict().items()}
    meta = _metadata(model)
    if metadata is not None:
        try:
            meta["user"] = json.dumps(metadata)
        except (TypeError, ValueError) as err:
            raise TypeError(f"metadata must be JSON-serialisable: {err}") from None
    draft = st_save(tensors, metadata=meta)
    meta["sha256"] = header_checksum(_header(draft), _data_section(draft))
    return st_save(tensors, metadata=meta)


def load(path, device=None) -> KAN:
    """Read a ``.kan`` file written by :func:`save`; the model is rebuilt from its config and
    gets bitwise the saved parameters, buffers and symbolic edges.

    Raises:
        ValueError naming the path and the problem for a missing, truncated, corrupt or foreign
        file, one written by a newer kanlab (format version), or a ``device`` this machine
        does not have (e.g. ``"cuda"`` without CUDA).
    """
    path = Path(path)
    device = check_device(device)
    if not path.is_file():
        raise ValueError(f"cannot load {str(path)!r}: no such file")
    return model_from_bytes(path.read_bytes(), str(path), device)


def model_from_bytes(blob: bytes, where: str = "<bytes>", device=None) -> KAN:
    """Rebuild a model from the bytes of a ``.kan`` file (see :func:`load`); ``where`` names
    the source in error messages."""
    from safetensors.torch import load as st_load

    where = f"cannot load {where!r}"
    header = _read_header(blob, where)
    try:
        spec = validate_header(header, len(blob) - 8 - _header_length(blob), FORMAT_VERSION,
                               set(_SYMBOLIC_CLASSES))
    except ValueError as err:
        raise ValueError(f"{where}: {err}") from None
    _verify_checksum(blob, header, spec.version, where)
    try:
        tensors = st_load(blob)
    except Exception as err:  # safetensors raises its own error types for bad bytes
        raise ValueError(f"{where}: corrupt tensor data ({err})") from None
    _check_values(tensors, where)
    model = torch.nn.utils.skip_init(KAN, config=spec.config, dtype=spec.dtype)  # no random init
    for key, entry in spec.symbolic.items():
        model.symbolic[key] = _build_symbolic(entry, where, spec.dtype)
    model.load_state_dict(tensors, strict=True)  # names, shapes and dtypes were checked above
    return model.to(device) if device is not None else model


def read_metadata(path) -> dict:
    """The ``metadata`` dict saved with the model in ``path`` (``{}`` when none was given);
    only the header is read."""
    path = Path(path)
    where = f"cannot load {str(path)!r}"
    if not path.is_file():
        raise ValueError(f"{where}: no such file")
    with open(path, "rb") as f:
        head = f.read(8)
        n = _header_length(head) if len(head) == 8 else 0
        blob = head + f.read(min(n, _MAX_HEADER))
    meta = _read_header(blob, where).get("__metadata__")
    if not isinstance(meta, dict) or meta.get("format") != _MAGIC:
        raise ValueError(f"{where}: not a kanlab model file")
    try:
        user = json.loads(meta.get("user", "{}"))
    except (TypeError, json.JSONDecodeError) as err:
        raise ValueError(f"{where}: bad metadata ({err})") from None
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


def _header_length(blob: bytes) -> int:
    return struct.unpack("<Q", blob[:8])[0]


def _data_section(blob: bytes) -> bytes:
    return blob[8 + _header_length(blob):]


def _header(blob: bytes) -> dict:
    return json.loads(blob[8:8 + _header_length(blob)].decode("utf-8"))


def _read_header(blob: bytes, where: str) -> dict:
    """The parsed JSON header, with a clear error for short, foreign or unreadable files."""
    if len(blob) < 8:
        raise ValueError(f"{where}: file is truncated or not a .kan file ({len(blob)} bytes)")
    n = _header_length(blob)
    if n > _MAX_HEADER or 8 + n > len(blob):
        raise ValueError(f"{where}: not a .kan file or truncated (header length {n}, file {len(blob)} bytes)")
    try:
        return _header(blob)
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
        raise ValueError(f"{where}: not a .kan file (unreadable header)") from None


def _verify_checksum(blob: bytes, header: dict, version: int, where: str) -> None:
    expected = header["__metadata__"].get("sha256")
    if version >= 2:
        actual, what = header_checksum(header, _data_section(blob)), "header and tensor data"
    elif expected is not None:  # format 1: the tensor bytes only
        actual, what = hashlib.sha256(_data_section(blob)).hexdigest(), "tensor data"
    else:
        return
    if actual != expected:
        raise ValueError(f"{where}: corrupt file ({what} checksum mismatch)")


def _check_values(tensors: dict, where: str) -> None:
    """Every value finite; every grid row non-decreasing."""
    for name, t in tensors.items():
        if not bool(torch.isfinite(t).all()):
            raise ValueError(f"{where}: tensor {name!r} holds NaN or inf values")
        if name.endswith(".grid") and not bool((t.diff(dim=1) >= 0).all()):
            raise ValueError(f"{where}: grid {name!r} is not non-decreasing along each row")


def _build_symbolic(entry, where: str, dtype: torch.dtype):
    module_name, attr = _SYMBOLIC_CLASSES[entry["type"]]
    try:
        import importlib

        cls = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as err:
        raise ValueError(f"{where}: the file has symbolic edges but {module_name} is unavailable "
                         f"({err})") from None
    return cls.from_config(entry.get("config", {}), dtype=dtype)


def atomic_write(path, blob: bytes) -> None:
    """Write ``blob`` to ``path`` atomically (temporary file, fsync, ``os.replace``, fsync of the
    directory); stale temporary files of earlier, interrupted writes to ``path`` are removed."""
    path = Path(path)
    remove_stale_temporaries(path)
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


def remove_stale_temporaries(path, max_age: float = STALE_TEMP_SECONDS) -> list[Path]:
    """Remove temporary files that interrupted atomic writes to ``path`` left behind.

    Only files named exactly as :func:`atomic_write` names them (``.<name>.<8 random
    characters>.tmp``, in ``path``'s directory), regular files owned by this user and not
    modified for ``max_age`` seconds are removed. Returns the removed paths.
    """
    path = Path(path)
    pattern = re.compile(r"^\." + re.escape(path.name) + r"\.[a-z0-9_]{8}\.tmp$")
    removed, now = [], time.time()
    try:
        candidates = [p for p in path.parent.iterdir() if pattern.match(p.name)]
    except OSError:
        return removed
    for p in candidates:
        try:
            st = p.lstat()
            if (st.st_mode & 0o170000) == 0o100000 and st.st_uid == getattr(os, "getuid", lambda: st.st_uid)() and now - st.st_mtime > max_age:
                p.unlink()
                removed.append(p)
        except OSError:  # gone already, or not ours to remove
            continue
    return removed
