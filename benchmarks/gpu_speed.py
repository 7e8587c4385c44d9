"""Speed and memory of one KAN layer on a GPU: kanlab's paths side by side with the dense limit.

Run ``python benchmarks/gpu_speed.py`` on a machine with a CUDA GPU (a few minutes). For each
shape (batch, in, out, G), cubic splines, it prints one markdown table of forward and
forward+backward (all gradients) median times and the peak memory allocated during one
forward+backward, for

* ``kanlab auto`` -- ``kan_linear(path="auto")`` (the ``triton`` path on CUDA tensors);
* ``kanlab <path>`` -- each path: ``triton`` with either table-gradient kernel (``tile``, ``scatter``),
  ``dense``, ``sparse``, ``reference``;
* ``dense limit`` -- cuBLAS ``nn.Linear(in * (G + k + 1), out)`` on a precomputed basis input that
  requires grad: the three GEMMs any dense-basis KAN pays;
* ``efficient-kan`` -- an efficient-kan-style layer (Cox-de Boor over all bases + one linear),
  written here;
* ``MLP`` -- two ``nn.Linear`` with SiLU, as many parameters as the KAN layer,

with times relative to the dense limit, memory relative to the MLP, and each kanlab path's
largest error against the float64 reference (relative to the largest output). Times come from
CUDA events around each call, contenders interleaved round-robin; medians.

``--dry-run`` runs tiny shapes on CPU tensors, the Triton kernels in Triton's interpreter, to
check the script itself (tests/test_gpu_speed.py calls it). ``--out FILE`` also writes the table.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

SHAPES = [(4096, 128, 128, 5), (1024, 64, 64, 50), (1024, 32, 32, 200), (100, 1000, 1000, 5),
          (36864, 64, 64, 5)]
DRY_SHAPES = [(70, 3, 5, 5)]
K = 3
PATHS = ["triton:tile", "triton:scatter", "dense", "sparse", "reference"]


def event_times(fns, device, reps: int) -> list[float]:
    """Median seconds of each of ``fns``: CUDA events around each call (wall clock on CPU),
    round-robin, each round starting one contender later."""
    import torch
    for fn in fns:  # warm-up (and Triton's compilation)
        fn()
    times = [[] for _ in fns]
    for rep in range(reps):
        for j in range(len(fns)):
            i = (rep + j) % len(fns)
            if device.type == "cuda":
                start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
                start.record()
                fns[i]()
                end.record()
                end.synchronize()
                times[i].append(start.elapsed_time(end) / 1e3)
            else:
                t0 = time.perf_counter()
                fns[i]()
                times[i].append(time.perf_counter() - t0)
    return [statistics.median(ts) for ts in times]


def contenders(n, n_in, n_out, g, device, dtype):
    """label -> (function, leaves that get gradients, kanlab path or None)."""
    import torch
    import torch.nn.functional as F
    from kanlab.kernels import kan_linear, triton_kan
    from layer_speed import ekan_basis, make_params

    gen = torch.Generator().manual_seed(1)
    x = (torch.rand(n, n_in, generator=gen, dtype=dtype) * 2.2 - 1.1).to(device).requires_grad_()
    grid, (coef, sb, ss) = make_params(n_in, n_out, g, device, dtype)
    leaves = [x, coef, sb, ss]
    out = {}

    def kan(path, table_grad="auto"):
        def fn():
            triton_kan.TABLE_GRAD = table_grad
            return kan_linear(x, grid, coef, sb, ss, K, "silu", uniform=True, path=path)
        return fn
    out["kanlab auto"] = kan("auto"), leaves, "auto"
    for path in PATHS:
        name, _, table_grad = path.partition(":")
        out[f"kanlab {path}"] = kan(name, table_grad or "auto"), leaves, path

    width = n_in * (g + K + 1)
    lin = torch.nn.Linear(width, n_out, bias=False, device=device, dtype=dtype)
    a = torch.randn(n, width, device=device, dtype=dtype, requires_grad=True)
    out["dense limit"] = (lambda: lin(a)), [a, lin.weight], None

    def ekan():
        base = F.linear(F.silu(x), sb)
        return base + F.linear(ekan_basis(x, grid, K).view(n, -1), (coef * ss.unsqueeze(-1)).view(n_out, -1))
    out["efficient-kan"] = ekan, leaves, None

    n_params = coef.numel() + sb.numel() + ss.numel()
    hidden = max(1, round((n_params - n_out) / (n_in + n_out + 1)))  # in*h + h + h*out + out = n_params
    mlp = torch.nn.Sequential(torch.nn.Linear(n_in, hidden), torch.nn.SiLU(), torch.nn.Linear(hidden, n_out))
    mlp = mlp.to(device, dtype)
    out["MLP"] = (lambda: mlp(x)), [x, *mlp.parameters()], None
    return out, (x, grid, coef, sb, ss)


def reference_error(fn, tensors) -> float:
    """Largest ``|y - y_ref|`` over the largest ``|y_ref|``, the reference in float64."""
    import torch
    from kanlab.kernels import kan_linear_reference
    x, grid, coef, sb, ss = (t.detach().double() for t in tensors)
    with torch.no_grad():
        ref = kan_linear_reference(x, grid, coef, sb, ss, K, "silu")
        return float((fn().double() - ref).abs().max() / ref.abs().max())


def measure_shape(shape, device, dtype, reps):
    """Rows ``(label, fwd s, f+b s, peak bytes, error or None)`` for one shape."""
    import torch
    from layer_speed import peak_bytes
    named, tensors = contenders(*shape, device, dtype)
    fwds, fbs = [], []
    for fn, leaves, _ in named.values():
        gy = torch.randn_like(fn().detach())

        def fwd(fn=fn):
            with torch.no_grad():
                fn()

        def fb(fn=fn, leaves=leaves, gy=gy):
            for p in leaves:
                p.grad = None
            fn().backward(gy)
        fwds.append(fwd)
        fbs.append(fb)
    t_fwd, t_fb = event_times(fwds, device, reps), event_times(fbs, device, reps)
    rows = []
    for (label, (fn, _, path)), tf, tfb, fb in zip(named.items(), t_fwd, t_fb, fbs):
        err = reference_error(fn, tensors) if path else None
        mem = peak_bytes(fb, device) if device.type == "cuda" else None  # the dry run skips the profiler
        rows.append((label, tf, tfb, mem, err))
    return rows


def table(results, title) -> str:
    """The markdown table of ``{shape: rows}``."""
    lines = [title, "", "| shape (N, in, out, G) | contender | fwd ms | f+b ms | peak MB | fwd / dense | "
             "f+b / dense | MB / MLP | err vs ref |", "|---|---|---:|---:|---:|---:|---:|---:|---:|"]
    for shape, rows in results.items():
        by = {r[0]: r for r in rows}
        d, mlp = by["dense limit"], by["MLP"]
        for label, tf, tfb, mem, err in rows:
            err_s = "" if err is None else f"{err:.1e}"
            mem_s = "n/a | n/a" if mem is None else f"{mem / 2**20:.1f} | {mem / max(mlp[3], 1):.2f}"
            mb, ratio = mem_s.split(" | ")
            lines.append(f"| {shape} | {label} | {tf * 1e3:.3f} | {tfb * 1e3:.3f} | {mb} | "
                         f"{tf / d[1]:.2f} | {tfb / d[2]:.2f} | {ratio} | {err_s} |")
    return "\n".join(lines)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dry-run", action="store_true", help="tiny shapes, CPU tensors, Triton's interpreter")
    ap.add_argument("--dtype", default="float32", choices=["float32", "float64", "bfloat16", "float16"])
    ap.add_argument("--shapes", nargs="*", metavar="N,IN,OUT,G", help="only these shapes")
    ap.add_argument("--reps", type=int, default=30, help="timed calls per contender (median)")
    ap.add_argument("--out", help="also write the markdown table to this file")
    args = ap.parse_args(argv)
    if args.dry_run:  # read when kanlab first loads the kernels: before any import of them
        os.environ.setdefault("TRITON_INTERPRET", "1")
    here = os.path.dirname(os.path.abspath(__file__))
    sys.path[:0] = [os.path.join(here, "..", "src"), here]
    import torch
    device = torch.device("cpu" if args.dry_run else "cuda")
    if device.type == "cuda" and not torch.cuda.is_available():
        sys.exit("gpu_speed.py needs a CUDA GPU (or --dry-run)")
    dtype = getattr(torch, args.dtype)
    shapes = DRY_SHAPES if args.dry_run else SHAPES
    if args.shapes:
        shapes = [tuple(int(v) for v in s.split(",")) for s in args.shapes]
    reps = 1 if args.dry_run else args.reps
    name = torch.cuda.get_device_name() if device.type == "cuda" else "CPU (dry run: Triton interpreter)"
    title = (f"KAN layer, cubic (k = {K}), {args.dtype}, {name}; torch {torch.__version__}, "
             f"TF32 matmul {'on' if torch.backends.cuda.matmul.allow_tf32 else 'off'}; median of {reps}")
    results = {}
    for shape in shapes:
        results[shape] = measure_shape(shape, device, dtype, reps)
        print(f"measured {shape}", file=sys.stderr, flush=True)
    text = table(results, title)
    print(text)
    if args.out:
        tmp = args.out + ".tmp"
        with open(tmp, "w") as f:
            f.write(text + "\n")
        os.replace(tmp, args.out)


if __name__ == "__main__":
    main()
