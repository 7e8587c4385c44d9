"""Deployment: ONNX, ``torch.export``, TorchScript and ``torch.compile`` of a (trained) KAN.

All four trace :meth:`kanlab.KAN.forward` (numeric and symbolic edges, multiplication nodes),
with the batch dimension left dynamic.

Example:
    >>> model = KAN(width=[2, 5, 1])
    >>> to_onnx(model, example_input(model), "model.onnx")  # torch.onnx.export's order  # doctest: +SKIP
    >>> program = to_exported_program(model)  # torch.export.ExportedProgram
    >>> fast = compile_model(model)  # torch.compile
"""
from __future__ import annotations

import contextlib
import io as _io
import os
import warnings
from pathlib import Path

import torch
from torch import Tensor

from .network import KAN

__all__ = ["to_onnx", "to_exported_program", "to_torchscript", "compile_model", "example_input"]


def example_input(model: KAN, batch: int = 8) -> Tensor:
    """A tracing input ``(batch, width[0])`` on the model's device and dtype, inside the grids."""
    layer = model.layers[0]
    k = layer.spline_order
    lo, hi = layer.grid[:, k], layer.grid[:, -k - 1]  # (n_in,) each: the grid proper's ends
    u = torch.linspace(0.1, 0.9, batch, dtype=lo.dtype, device=lo.device)[:, None]  # (batch, 1)
    return lo + (hi - lo) * u


def _check(model) -> None:
    if not isinstance(model, KAN):
        raise TypeError(f"model must be a kanlab.KAN, got {type(model).__name__}")


@contextlib.contextmanager
def _inference(model: KAN):
    """no_grad and eval mode for the export, the model's mode restored afterwards."""
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            yield
    finally:
        model.train(was_training)


def _batch_dim() -> dict:
    return {"x": {0: torch.export.Dim("batch")}}


def to_exported_program(model: KAN, example: Tensor | None = None, dynamic_batch: bool = True):
    """``torch.export.export`` of the model: a :class:`torch.export.ExportedProgram` whose
    ``.module()`` computes the same outputs (batch size free when ``dynamic_batch``)."""
    _check(model)
    example = _one_tensor(example, "example")
    x = example if example is not None else example_input(model)
    with _inference(model):
        return torch.export.export(model, (x,), dynamic_shapes=_batch_dim() if dynamic_batch else None)


def to_onnx(model: KAN, args=None, f=None, opset: int | None = None, dynamic_batch: bool = True) -> Path:
    """Write the model as an ONNX file (input ``"x"`` ``(batch, width[0])``, output ``(batch, width[-1])``).

    Arguments come in :func:`torch.onnx.export`'s order: ``to_onnx(model, example, path)``, or
    ``to_onnx(model, f=path)`` to trace on :func:`example_input`. The old order
    ``to_onnx(model, path, example)`` still works with a DeprecationWarning.

    Args:
        args: the example input ``(batch, width[0])`` (or a 1-tuple holding it); None: built.
        f: the file to write; its directory must exist.

    Uses the ``torch.export``-based exporter (needs ``onnx`` and ``onnxscript``); run the file
    with ``onnxruntime``. Returns the path.
    """
    _check(model)
    example, path = _example_and_path(args, f, "to_onnx")
    if not path.parent.is_dir():
        raise ValueError(f"cannot write {str(path)!r}: directory {str(path.parent)!r} does not exist")
    x = example if example is not None else example_input(model)
    kwargs = {"opset_version": opset} if opset is not None else {}
    sink = _io.StringIO()  # the exporter reports progress on stdout; library code stays quiet
    with _inference(model), contextlib.redirect_stdout(sink):
        torch.onnx.export(model, (x,), str(path), input_names=["x"], output_names=["y"], dynamo=True,
                          dynamic_shapes=_batch_dim() if dynamic_batch else None, verbose=False, **kwargs)
    return path


def _example_and_path(args, f, caller: str) -> tuple[Tensor | None, Path]:
    """``(example, path)`` from torch.onnx.export's order, or from the old ``(path, example)``."""
    if isinstance(args, (str, os.PathLike)):  # the old order: (model, path, example)
        warnings.warn(f"{caller}(model, path, example) is deprecated; use torch.onnx.export's order "
                      f"{caller}(model, example, path) or {caller}(model, f=path)", DeprecationWarning, stacklevel=3)
        args, f = f, args
    if f is None:
        raise TypeError(f"{caller}() needs the output file: {caller}(model, example, path) or {caller}(model, f=path)")
    return _one_tensor(args, "args"), Path(f)


def _one_tensor(args, name: str) -> Tensor | None:
    """The example tensor from ``args``: a tensor, a 1-tuple holding one, or None."""
    if isinstance(args, (tuple, list)) and len(args) == 1:
        args = args[0]
    if args is not None and not isinstance(args, Tensor):
        raise TypeError(f"{name} must be the example input tensor (batch, n_inputs) or a 1-tuple holding it, "
                        f"got {type(args).__name__}")
    return args


def to_torchscript(model: KAN, example: Tensor | None = None):
    """A TorchScript module by tracing (``torch.jit.trace``); save it with ``.save(path)``.

    Tracing records the operations for the example's shapes except the batch size; the
    model's Python-side argument checks are not part of the traced module. TorchScript is
    deprecated in recent PyTorch: prefer :func:`to_exported_program`.
    """
    _check(model)
    example = _one_tensor(example, "example")
    x = example if example is not None else example_input(model)
    with _inference(model), warnings.catch_warnings():
        warnings.simplefilter("ignore", torch.jit.TracerWarning)  # the shape checks are constant here
        warnings.simplefilter("ignore", DeprecationWarning)
        return torch.jit.trace(model, (x,), check_trace=False)


def compile_model(model: KAN, **kwargs):
    """``torch.compile(model, dynamic=True, **kwargs)``: the same outputs, fused kernels."""
    _check(model)
    kwargs.setdefault("dynamic", True)
    return torch.compile(model, **kwargs)
