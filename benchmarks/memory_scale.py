"""Time and peak memory of whole-data operations at MNIST's size, and how they grow with N.

Run ``python benchmarks/memory_scale.py``. A [784, 64, 10] KAN (G = 5, cubic, float32)
on N synthetic samples of 784 inputs in [-1, 1] (MNIST's shape; the data themselves do not
matter for time and memory) with 10 regression targets. Every operation runs in a fresh
process, so its peak resident memory above the state before the call (data and model
loaded, kernels warmed up) is its own:

* ``fit``: 2 steps with the default options (full-batch L-BFGS, grid updates);
* ``fit lamb``: the same with ``lamb=1e-3`` (the sparsity penalty);
* ``update_grid``, ``activations`` (on the first 20,000 samples, as the issue asked),
  ``attribute`` (scores for pruning).

It prints a markdown table: seconds and extra peak RSS (MB) per operation for N = 15,000,
30,000 and 60,000, and the ratio of the N = 60,000 cost to the N = 15,000 one (4 when the
cost is linear in N). ``--quick`` uses N = 2,000 / 4,000 / 8,000 (seconds, for a test).
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time

OPS = ("fit", "fit lamb", "update_grid", "activations", "attribute")


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux: KiB


def run_one(op: str, n: int, threads: int) -> dict:
    """Measure one operation in this process (called in a child)."""
    import torch

    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "src"))
    import kanlab

    torch.set_num_threads(threads)
    gen = torch.Generator().manual_seed(0)
    x = torch.rand(n, 784, generator=gen) * 2 - 1
    w = torch.randn(784, 10, generator=gen) / 28
    y = torch.tanh(x @ w) + 0.1 * torch.sin(3 * x[:, :10])
    data = kanlab.Dataset(x, y, x[:1000], y[:1000])
    model = kanlab.KAN([784, 64, 10], grid_size=5, seed=0)
    model(x[:4096])  # builds / loads the C++ kernels outside the measurement
    calls = {
        "fit": lambda: model.fit(data, steps=2, progress=False),
        "fit lamb": lambda: model.fit(data, steps=2, lamb=1e-3, progress=False),
        "update_grid": lambda: model.update_grid(x),
        "activations": lambda: model.activations(x[:20000]),
        "attribute": lambda: model.attribute(x),
    }
    before = _rss_mb()
    start = time.perf_counter()
    calls[op]()
    seconds = time.perf_counter() - start
    return {"op": op, "n": n, "seconds": seconds, "extra_mb": max(0.0, _rss_mb() - before)}


def measure(op: str, n: int, threads: int) -> dict:
    out = subprocess.run([sys.executable, os.path.abspath(__file__), "--child", op, str(n), "--threads",
                          str(threads)], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="N = 2,000 / 4,000 / 8,000")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--child", nargs=2, metavar=("OP", "N"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(run_one(args.child[0], int(args.child[1]), args.threads)))
        return
    sizes = (2000, 4000, 8000) if args.quick else (15000, 30000, 60000)
    print(f"[784, 64, 10], G = 5, float32, {args.threads} threads; seconds / extra peak RSS (MB)\n")
    print("| operation | " + " | ".join(f"N = {n:,}" for n in sizes) + f" | cost N={sizes[-1]:,} / N={sizes[0]:,} |")
    print("|---|" + "---|" * (len(sizes) + 1))
    for op in OPS:
        rows = [measure(op, n, args.threads) for n in sizes]
        cells = [f"{r['seconds']:.2f} s / {r['extra_mb']:.0f} MB" for r in rows]
        ratio = rows[-1]["seconds"] / max(rows[0]["seconds"], 1e-9)
        print(f"| {op} | " + " | ".join(cells) + f" | {ratio:.1f}x time |", flush=True)


if __name__ == "__main__":
    main()
