"""Whole training steps of small KANs: kanlab (fast kernels) vs the reference path vs efficient-kan style.

Run ``python benchmarks/train_step.py``. For widths [2, 5, 1] and [4, 8, 8, 1] (G = 5,
cubic, 1000 samples, float32) it prints the median time of one Adam step and of one LBFGS
step (``max_iter=20``, strong Wolfe line search, as pykan uses), and ratios to kanlab.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from contextlib import contextmanager

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "src"))
import kanlab  # noqa: E402
from kanlab import layer as layer_module  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from layer_speed import ekan_basis  # noqa: E402


class EKANStyle(torch.nn.Module):
    """efficient-kan's layer stack: Cox-de Boor over all bases, then two linears per layer."""

    def __init__(self, width, g=5, k=3, seed=0):
        super().__init__()
        gen = torch.Generator().manual_seed(seed)
        self.k = k
        self.grids = [kanlab.splines.uniform_grid(i, g, k) for i in width[:-1]]
        pairs = list(zip(width, width[1:]))
        self.base = torch.nn.ParameterList(
            [torch.nn.Parameter(torch.randn(o, i, generator=gen) / i ** 0.5) for i, o in pairs])
        self.spline = torch.nn.ParameterList(
            [torch.nn.Parameter(torch.randn(o, i * (g + k), generator=gen) * 0.1) for i, o in pairs])

    def forward(self, x):
        for grid, wb, ws in zip(self.grids, self.base, self.spline):
            x = F.linear(F.silu(x), wb) + F.linear(ekan_basis(x, grid, self.k).flatten(1), ws)
        return x


clock = time.perf_counter


@contextmanager
def reference_kernels():
    """Make KANLayer use the plain reference path (for the comparison only)."""
    fast = layer_module.kernels.kan_linear

    def ref(*args, **kwargs):
        kwargs["path"] = "reference"
        return fast(*args, **kwargs)
    layer_module.kernels.kan_linear = ref
    try:
        yield
    finally:
        layer_module.kernels.kan_linear = fast


def step_time(model, x, y, optimizer: str, reps: int) -> float:
    if optimizer == "adam":
        opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    else:
        opt = torch.optim.LBFGS(model.parameters(), lr=1.0, max_iter=20, history_size=10,
                                line_search_fn="strong_wolfe", tolerance_grad=1e-32,
                                tolerance_change=1e-32)

    def closure():
        opt.zero_grad()
        loss = F.mse_loss(model(x), y)
        loss.backward()
        return loss
    opt.step(closure)  # warm-up
    times = []
    for _ in range(reps):
        t0 = clock()
        opt.step(closure)
        times.append(clock() - t0)
    return statistics.median(times)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--timer", default="wall", choices=["wall", "cpu"])
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    global clock
    clock = time.process_time if args.timer == "cpu" else time.perf_counter
    print(f"\nTraining step, G=5 cubic, 1000 samples, float32, {args.threads} threads: median ms per step")
    print(f"{'width':<16}{'optimizer':<10}{'kanlab':>10}{'reference':>11}{'ekan':>10}"
          f"{'ref/kanlab':>12}{'ekan/kanlab':>13}")
    gen = torch.Generator().manual_seed(0)
    for width in ([2, 5, 1], [4, 8, 8, 1]):
        x = torch.rand(1000, width[0], generator=gen) * 2 - 1
        y = torch.sin(3 * x).sum(1, keepdim=True)
        for optimizer in ("adam", "lbfgs"):
            reps = args.reps if optimizer == "lbfgs" else 10 * args.reps
            t_fast = step_time(kanlab.KAN(width=width, grid_size=5, seed=0), x, y, optimizer, reps)
            with reference_kernels():
                t_ref = step_time(kanlab.KAN(width=width, grid_size=5, seed=0), x, y, optimizer, reps)
            t_ekan = step_time(EKANStyle(width), x, y, optimizer, reps)
            print(f"{str(width):<16}{optimizer:<10}{t_fast * 1e3:10.2f}{t_ref * 1e3:11.2f}"
                  f"{t_ekan * 1e3:10.2f}{t_ref / t_fast:12.2f}{t_ekan / t_fast:13.2f}")


if __name__ == "__main__":
    main()
