"""Compile every Triton kernel variant of the ``"triton"`` path for a GPU, without a GPU.

``python benchmarks/triton_compile_check.py`` runs Triton's compiler (bundled LLVM and ptxas) to
sm_90 (Hopper) machine code for each kernel, spline order 1-5, uniform and adapted grids, and the
launchers' input / sum dtypes (float32 / float32, float64 / float64, bfloat16 / float32), with
the launchers' block sizes, and prints a markdown table of registers and spills per thread (ptxas
-v). Catches what Triton's interpreter accepts but its compiler rejects. Exit 1 if any fails.
``--orders`` / ``--arch`` narrow or change the targets. Do not set TRITON_INTERPRET.
"""
from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile

DTYPES = [("fp32", "fp32"), ("fp64", "fp64"), ("bf16", "fp32")]


def kernels(x: str, s: str):
    """(kernel, pointer element types, block sizes, warps) as the launchers in triton_kan.py use them."""
    from kanlab.kernels import triton_kernels as tk
    from kanlab.kernels.triton_kan import LAUNCH
    fwd, gx, tile, scatter = (LAUNCH[name] for name in ("forward", "input_grad", "tile", "scatter"))
    return [
        (tk.kan_forward_kernel, dict(x_ptr=x, b_ptr=s, grid_ptr=s, t_ptr=s, y_ptr=x),
         dict(BLOCK_N=fwd["rows"], BLOCK_O=fwd["cols"]), fwd["warps"]),
        (tk.kan_input_grad_kernel, dict(x_ptr=x, db_ptr=s, grid_ptr=s, t_ptr=s, g_ptr=x, gx_ptr=s),
         dict(BLOCK_N=gx["rows"], BLOCK_O=gx["cols"], BLOCK_I=gx["inputs"]), gx["warps"]),
        (tk.kan_table_grad_tile_kernel, dict(x_ptr=x, b_ptr=s, grid_ptr=s, g_ptr=x, part_ptr=s),
         dict(BLOCK_N=tile["rows"], BLOCK_O=tile["cols"], BLOCK_R=32), tile["warps"]),
        (tk.kan_table_grad_scatter_kernel, dict(x_ptr=x, b_ptr=s, grid_ptr=s, g_ptr=x, gt_ptr=s),
         dict(BLOCK_N=scatter["rows"], BLOCK_O=scatter["cols"], BLOCK_I=scatter["inputs"]), scatter["warps"]),
    ]


def compile_kernel(fn, pointers: dict, constants: dict, warps: int, arch: int):
    import triton
    from triton.backends.compiler import GPUTarget
    signature = {name: "constexpr" if name in constants else "*" + pointers[name] if name in pointers else "i32"
                 for name in fn.arg_names}
    source = triton.compiler.ASTSource(fn=fn, signature=signature, constexprs=constants)
    return triton.compile(source, target=GPUTarget("cuda", arch, 32), options={"num_warps": warps})


def ptxas_usage(ptx: str, arch: int) -> str:
    """``registers / spill bytes`` from ptxas -v, or ``?`` without a ptxas."""
    try:  # the ptxas Triton itself runs for this architecture
        from triton.backends.nvidia.compiler import get_ptxas
        ptxas = get_ptxas(arch).path
    except Exception:
        return "? | ?"
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "k.ptx")
        with open(path, "w") as f:
            f.write(ptx)
        run = subprocess.run([ptxas, "-v", f"-arch=sm_{arch}a" if arch >= 90 else f"-arch=sm_{arch}", path,
                              "-o", os.path.join(tmp, "k.cubin")], capture_output=True, text=True)
    regs = re.search(r"Used (\d+) registers", run.stderr)
    spill = re.search(r"(\d+) bytes spill stores", run.stderr)
    return f"{regs.group(1) if regs else '?'} | {spill.group(1) if spill else '?'}"


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--orders", type=int, nargs="*", default=[1, 2, 3, 4, 5])
    ap.add_argument("--arch", type=int, default=90, help="compute capability x 10 (90: H100/H200)")
    ap.add_argument("--dtypes", nargs="*", default=[x for x, _ in DTYPES], choices=[x for x, _ in DTYPES],
                    help="input dtypes (the sums: float64 for fp64, else float32)")
    args = ap.parse_args(argv)
    if os.environ.get("TRITON_INTERPRET", "") not in ("", "0"):
        sys.exit("unset TRITON_INTERPRET: the interpreter does not compile")
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "src"))
    print(f"| kernel | x / sums | k | grid | registers | spill bytes |  (sm_{args.arch})")
    print("|---|---|---:|---|---:|---:|")
    failed = 0
    for x, s in (d for d in DTYPES if d[0] in args.dtypes):
        for k in args.orders:
            for uniform in (True, False):
                shape = dict(K=k, UNIFORM=uniform, STEPS=1 if uniform else 8)
                for fn, pointers, blocks, warps in kernels(x, s):
                    try:
                        compiled = compile_kernel(fn, pointers, dict(shape, **blocks), warps, args.arch)
                        usage = ptxas_usage(compiled.asm["ptx"], args.arch)
                    except Exception as err:  # report every failure, then exit 1
                        failed += 1
                        usage = f"FAILED: {type(err).__name__}: {str(err).splitlines()[0][:200]} |"
                    grid = "uniform" if uniform else "adapted"
                    print(f"| {fn.__name__} | {x} / {s} | {k} | {grid} | {usage} |", flush=True)
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
