"""The ``"triton"`` path: the KAN layer as fused Triton kernels, for CUDA tensors.

:class:`TritonKAN` runs four kernels (:mod:`.triton_kernels`) on a table ``T`` ``(n_in, nb + 1,
n_out)`` built from ``coef`` and both scales (row 0 ``scale_base``, row ``1 + m``
``scale_spline * coef[..., m]``, outputs contiguous): forward, input gradient and one of two
table-gradient kernels; each touches only the ``k + 1`` live bases of every input (closed form on
uniform grids, a binary search over the knots on adapted ones), so no ``(N, n_in, nb)`` tensor
exists. The base activation and its derivative are torch calls (``(N, n_in)`` only). Spline
orders 1-5; float32 / float64, and float16 / bfloat16 inputs with float32 sums. Second and higher
derivatives go through the reference, as on the other fast paths.

Triton is an optional dependency (``pip install 'kanlab[gpu]'``), imported on first use only.
On CPU tensors the kernels run in Triton's interpreter when ``TRITON_INTERPRET=1`` was set before
their first use in the process (slow: for tests); otherwise an explicit ``path="triton"`` raises (:func:`supports_call`).

The table gradient ``dL/dT`` is summed by :data:`TABLE_GRAD`: ``"tile"`` (local basis tiles in
registers times the output gradient, one partial sum per program: deterministic, cost ~ the padded
table width) or ``"scatter"`` (atomic adds of the ``k + 1`` live rows: cost independent of the grid
size, not bitwise reproducible); ``"auto"`` takes ``"tile"`` up to :data:`TILE_MAX_WIDTH` and under
``torch.use_deterministic_algorithms(True)``. The block sizes and that threshold are first guesses
that no GPU measurement has tuned yet (benchmarks/gpu_speed.py compares both kernels).
"""
from __future__ import annotations

import contextlib
import importlib.util
import os

import torch
from torch import Tensor

from ..activations import base_function
from .common import base_and_derivative, pack_weights, reference_backward
from .reference import kan_linear_reference

__all__ = ["TritonKAN", "run", "supports", "supports_call", "auto_applies", "auto_applies_call",
           "unavailable_reason", "table_grad_kernel", "TABLE_GRAD", "TILE_MAX_WIDTH", "LAUNCH", "MAX_SPLINE_ORDER"]

MAX_SPLINE_ORDER = 5
DTYPES = (torch.float16, torch.bfloat16, torch.float32, torch.float64)
TABLE_GRAD = "auto"  # "auto", "tile" or "scatter"
TILE_MAX_WIDTH = 32  # "auto": the tile kernel while the table width (nb + 1, padded) is at most this
PARTIAL_BYTES = 2 ** 25  # the tile kernel's partial sums take at most this (or one table's size)
# Block sizes per kernel: rows (samples) per block, the most output columns per block (fewer for
# small n_out, at least 16), inputs per program, warps. Chosen without a GPU, from ptxas's register
# counts (benchmarks/triton_compile_check.py, sm_90, k = 3 / 5): 64 rows spilled 1-3 KB per
# thread in float32 (the local bases of every row a thread holds stay live), 16 rows none on
# uniform grids (118-198 registers). The tile kernel's table rows per block are the table width's
# power of two, at most 64. Not timed on a GPU yet.
LAUNCH = {"forward": dict(rows=16, cols=64, warps=4),
          "input_grad": dict(rows=16, cols=32, inputs=4, warps=4),
          "tile": dict(rows=16, cols=64, warps=4),
          "scatter": dict(rows=16, cols=64, inputs=4, warps=4)}
_STATE: dict = {}


def _cdiv(a: int, b: int) -> int:
    return -(-a // b)


def _block(n: int, most: int, least: int = 16) -> int:
    """The power of two >= ``n``, within ``[least, most]``."""
    return max(least, min(most, 1 << max(0, n - 1).bit_length()))


def _kernels():
    """The kernel module, imported (and so compiled or interpreted, per TRITON_INTERPRET) once."""
    if "module" not in _STATE:
        from . import triton_kernels
        _STATE["module"] = triton_kernels
        _STATE["interpreted"] = type(triton_kernels.kan_forward_kernel).__name__ == "InterpretedFunction"
    return _STATE["module"]


def _interpreted() -> bool:
    """Whether the kernels run (or, not loaded yet, will run) in Triton's interpreter."""
    if "interpreted" in _STATE:
        return _STATE["interpreted"]
    return os.environ.get("TRITON_INTERPRET", "") not in ("", "0")


def unavailable_reason(device: torch.device) -> str | None:
    """Why the Triton kernels cannot run on ``device`` here; None when they can."""
    if importlib.util.find_spec("triton") is None:
        return "path='triton' needs the optional dependency triton: pip install 'kanlab[gpu]'"
    if device.type == "cuda":
        return None
    if device.type == "cpu":
        if _interpreted():
            return None
        if "interpreted" in _STATE:
            return ("path='triton' on CPU tensors runs in Triton's interpreter, but the kernels were "
                    "loaded for the GPU in this process (set TRITON_INTERPRET=1 before their first use)")
        return ("path='triton' runs on CUDA tensors; on CPU tensors only in Triton's interpreter: set "
                "TRITON_INTERPRET=1 before the first call (slow, meant for tests)")
    return f"path='triton' runs on CUDA tensors (CPU ones in Triton's interpreter), got device {device}"


def supports(x: Tensor, grid: Tensor, coef: Tensor, scale_base: Tensor, scale_spline: Tensor,
             spline_order: int) -> bool:
    """Whether the kernels handle these arguments (dtypes, orders 1-5, one device, sizes)."""
    n_in = x.shape[-1]
    width = coef.shape[-1] + 1
    return (x.dim() == 2 and x.dtype in DTYPES and coef.dtype == scale_base.dtype == scale_spline.dtype == x.dtype
            and grid.is_floating_point() and 1 <= spline_order <= MAX_SPLINE_ORDER
            and grid.shape == (n_in, coef.shape[-1] + spline_order + 1)
            and len({t.device for t in (x, grid, coef, scale_base, scale_spline)}) == 1
            and n_in * width * coef.shape[0] < 2 ** 31 and n_in * _cdiv(width, 16) < 2 ** 16
            and _cdiv(coef.shape[0], 16) < 2 ** 16)


def auto_applies(x: Tensor, grid: Tensor, coef: Tensor, scale_base: Tensor, scale_spline: Tensor,
                 spline_order: int) -> bool:
    """What ``path="auto"`` asks: CUDA tensors, triton installed, arguments supported."""
    return (x.is_cuda and supports(x, grid, coef, scale_base, scale_spline, spline_order)
            and unavailable_reason(x.device) is None)


def supports_call(x: Tensor, layer) -> bool:
    """:data:`~kanlab.kernels.PATHS`' ``supports`` for an explicit ``path="triton"``.

    Raises:
        RuntimeError: the kernels cannot run on ``x.device`` here (no triton; CPU tensors without
            ``TRITON_INTERPRET=1``; another device type).
    """
    reason = unavailable_reason(x.device)
    if reason is not None:
        raise RuntimeError(reason)
    return supports(x, layer.grid, layer.coef, layer.scale_base, layer.scale_spline, layer.spline_order)


def auto_applies_call(x: Tensor, layer) -> bool:
    """:data:`~kanlab.kernels.PATHS`' ``auto`` predicate (see :func:`auto_applies`)."""
    return auto_applies(x, layer.grid, layer.coef, layer.scale_base, layer.scale_spline, layer.spline_order)


def run(x: Tensor, layer) -> Tensor:
    """The layer by the Triton kernels (``layer``: :class:`~kanlab.kernels.LayerParams`)."""
    base_function(layer.base_activation)  # a clear error for an unknown name
    x = torch.where(torch.isinf(x), torch.nan, x)  # +-inf rows give NaN like NaN rows, as on every path
    return TritonKAN.apply(x, layer.coef, layer.scale_base, layer.scale_spline, layer.grid, layer.spline_order,
                           layer.base_activation, bool(layer.uniform))


def _compute_dtype(dtype: torch.dtype) -> torch.dtype:
    return torch.float64 if dtype == torch.float64 else torch.float32


def _on_device(device: torch.device):
    """Triton launches on the current CUDA device: make it the tensors' one."""
    return torch.cuda.device(device) if device.type == "cuda" else contextlib.nullcontext()


def _shape_args(grid: Tensor, spline_order: int, uniform: bool) -> dict:
    """The compile-time constants of a grid: order, kind, binary-search steps (``2 ** STEPS >
    n_knots``, rounded up to a multiple of 4 so that grid extension rarely recompiles)."""
    steps = -(-grid.shape[1].bit_length() // 4) * 4
    return dict(K=spline_order, UNIFORM=uniform, STEPS=1 if uniform else steps)


def _forward(x: Tensor, b: Tensor, grid: Tensor, table: Tensor, spline_order: int, uniform: bool,
             out_dtype: torch.dtype) -> Tensor:
    """``(N, n_out)`` in ``out_dtype``; ``b`` and ``grid`` in the table's dtype."""
    n, n_in = x.shape
    n_out = table.shape[2]
    y = torch.empty(n, n_out, dtype=out_dtype, device=x.device)
    cfg = LAUNCH["forward"]
    block_n, block_o = cfg["rows"], _block(n_out, cfg["cols"])
    launch = (_cdiv(n, block_n), _cdiv(n_out, block_o))
    _kernels().kan_forward_kernel[launch](x, b, grid, table, y, n, n_in, n_out, grid.shape[1],
                                          BLOCK_N=block_n, BLOCK_O=block_o, num_warps=cfg["warps"],
                                          **_shape_args(grid, spline_order, uniform))
    return y


def _input_grad(x: Tensor, db: Tensor, grid: Tensor, table: Tensor, g: Tensor, spline_order: int,
                uniform: bool) -> Tensor:
    """``dL/dx`` ``(N, n_in)`` in the table's dtype."""
    n, n_in = x.shape
    n_out = table.shape[2]
    gx = torch.zeros(n, n_in, dtype=table.dtype, device=x.device)
    cfg = LAUNCH["input_grad"]
    block_n, block_o, block_i = cfg["rows"], _block(n_out, cfg["cols"]), cfg["inputs"]
    launch = (_cdiv(n, block_n), _cdiv(n_in, block_i))
    _kernels().kan_input_grad_kernel[launch](x, db, grid, table, g, gx, n, n_in, n_out, grid.shape[1],
                                             BLOCK_N=block_n, BLOCK_O=block_o, BLOCK_I=block_i,
                                             num_warps=cfg["warps"], **_shape_args(grid, spline_order, uniform))
    return gx


def table_grad_kernel(width: int) -> str:
    """``"tile"`` or ``"scatter"``: which kernel sums ``dL/dT`` for a table of ``width`` rows per input."""
    if torch.are_deterministic_algorithms_enabled():
        return "tile"
    if TABLE_GRAD != "auto":
        return TABLE_GRAD
    return "tile" if _block(width, 1 << 30) <= TILE_MAX_WIDTH else "scatter"


def _table_grad(x: Tensor, b: Tensor, grid: Tensor, g: Tensor, spline_order: int, uniform: bool,
                shape: tuple, dtype: torch.dtype) -> Tensor:
    """``dL/dT`` of shape ``(n_in, width, n_out)`` in ``dtype``."""
    n, n_in = x.shape
    _, width, n_out = shape
    args = (n, n_in, n_out, grid.shape[1])
    if table_grad_kernel(width) == "scatter":
        gt = torch.zeros(shape, dtype=dtype, device=x.device)
        cfg = LAUNCH["scatter"]
        block_n, block_o, block_i = cfg["rows"], _block(n_out, cfg["cols"]), cfg["inputs"]
        launch = (_cdiv(n, block_n), _cdiv(n_in, block_i), _cdiv(n_out, block_o))
        _kernels().kan_table_grad_scatter_kernel[launch](x, b, grid, g, gt, *args, BLOCK_N=block_n, BLOCK_O=block_o,
                                                         BLOCK_I=block_i, num_warps=cfg["warps"],
                                                         **_shape_args(grid, spline_order, uniform))
        return gt
    cfg = LAUNCH["tile"]
    block_n, block_o, block_r = cfg["rows"], _block(n_out, cfg["cols"]), _block(width, 64)
    n_chunks = _cdiv(width, block_r)
    one_copy = n_in * width * n_out * torch.finfo(dtype).bits // 8
    copies = max(1, min(PARTIAL_BYTES // one_copy, _cdiv(n, 4 * block_n)))
    rows_per_program = _cdiv(_cdiv(n, copies), block_n) * block_n
    copies = _cdiv(n, rows_per_program)
    part = torch.empty(copies, *shape, dtype=dtype, device=x.device)
    launch = (copies, n_in * n_chunks, _cdiv(n_out, block_o))
    _kernels().kan_table_grad_tile_kernel[launch](x, b, grid, g, part, *args, rows_per_program, n_chunks,
                                                  BLOCK_N=block_n, BLOCK_O=block_o, BLOCK_R=block_r,
                                                  num_warps=cfg["warps"], **_shape_args(grid, spline_order, uniform))
    return part[0] if copies == 1 else part.sum(0)


class TritonKAN(torch.autograd.Function):
    """The layer function of :func:`~kanlab.kernels.kan_linear_reference` by the Triton kernels.

    Saves ``x``, the parameters and the table ``T``; the backward recomputes ``b(x)`` and ``b'(x)``.
    Higher-order derivatives (``create_graph=True``) differentiate the reference instead.

    Shape: ``x`` ``(N, n_in)``, ``coef`` ``(n_out, n_in, nb)``, scales ``(n_out, n_in)``,
    ``grid`` ``(n_in, nb + k + 1)`` -> ``(N, n_out)`` in ``x``'s dtype.
    """

    @staticmethod
    def forward(ctx, x: Tensor, coef: Tensor, scale_base: Tensor, scale_spline: Tensor, grid: Tensor,
                spline_order: int, base_name: str, uniform: bool) -> Tensor:
        ctx.spline_order, ctx.base_name, ctx.uniform = spline_order, base_name, uniform
        ctx.save_for_backward(x, coef, scale_base, scale_spline, grid)  # as given: create_graph needs them
        cdt = _compute_dtype(x.dtype)
        table = pack_weights(coef.to(cdt), scale_base.to(cdt), scale_spline.to(cdt)).permute(1, 2, 0).contiguous()
        if x.shape[0] == 0:
            return x.new_zeros(0, coef.shape[0])
        xc = x.contiguous()
        with _on_device(x.device):
            b = base_function(base_name)(xc.to(cdt)).contiguous()
            return _forward(xc, b, grid.to(cdt).contiguous(), table, spline_order, uniform, x.dtype)

    @staticmethod
    def backward(ctx, grad_out: Tensor):
        x, coef, sb, ss, grid = ctx.saved_tensors
        k, name, uniform = ctx.spline_order, ctx.base_name, ctx.uniform
        if torch.is_grad_enabled():  # create_graph=True: exact higher-order derivatives
            def layer_fn(x_, coef_, sb_, ss_):
                return kan_linear_reference(x_, grid, coef_, sb_, ss_, k, name)
            return reference_backward(ctx, grad_out, layer_fn, (x, coef, sb, ss)) + (None,) * 4
        need_x, need_params = ctx.needs_input_grad[0], any(ctx.needs_input_grad[1:4])
        cdt = _compute_dtype(x.dtype)
        coef_c, ss_c = coef.to(cdt), ss.to(cdt)
        shape = (x.shape[1], coef.shape[-1] + 1, coef.shape[0])  # (n_in, width, n_out)
        gx = gt = None
        with _on_device(x.device):
            xc, g, grid_c = x.contiguous(), grad_out.contiguous(), grid.to(cdt).contiguous()
            b, db = base_and_derivative(name, xc.to(cdt), need_x)
            if need_x:
                table = pack_weights(coef_c, sb.to(cdt), ss_c).permute(1, 2, 0).contiguous()
                gx = (_input_grad(xc, db.contiguous(), grid_c, table, g, k, uniform) if x.shape[0]
                      else torch.zeros(x.shape, dtype=cdt, device=x.device)).to(x.dtype)
            if need_params:
                gt = (_table_grad(xc, b.contiguous(), grid_c, g, k, uniform, shape, cdt) if x.shape[0]
                      else torch.zeros(shape, dtype=cdt, device=x.device))
        gc = gsb = gss = None
        if gt is not None:
            gw = gt.permute(2, 0, 1)  # (n_out, n_in, width)
            gsb = gw[..., 0].to(sb.dtype) if ctx.needs_input_grad[2] else None
            gc = (gw[..., 1:] * ss_c.unsqueeze(-1)).to(coef.dtype) if ctx.needs_input_grad[1] else None
            gss = (gw[..., 1:] * coef_c).sum(-1).to(ss.dtype) if ctx.needs_input_grad[3] else None
        return gx, gc, gsb, gss, None, None, None, None
