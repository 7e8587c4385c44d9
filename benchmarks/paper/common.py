"""Shared machinery: settings per mode, a plain MLP, grid-extension training, slopes, figures."""
from __future__ import annotations

import math
import multiprocessing
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from functools import partial

import numpy as np
import torch
from torch import nn

import kanlab

DTYPE = torch.float64


@dataclass(frozen=True)
class Settings:
    """Sizes of every experiment. QUICK runs in minutes on 2 cores; FULL uses the paper's sizes."""

    name: str
    # (a) grid extension
    a_points: int = 3000
    a_grids: tuple[int, ...] = (3, 5, 10, 20, 50)
    a_steps: int = 100
    # (b) scaling laws
    b_functions: tuple[str, ...] = ("bessel_j0", "exp_sin_sq", "product")
    b_points: int = 1000
    b_grids: tuple[int, ...] = (3, 5, 10, 20, 50)
    b_steps: int = 20
    b_mlp_depths: tuple[int, ...] = (2, 3)
    b_mlp_widths: tuple[int, ...] = (5, 20)
    b_mlp_steps: int = 80
    # (c) special functions and Feynman
    c_rows: tuple[str, ...] | None = None  # None = every row
    c_points: int = 400
    c_grids: tuple[int, ...] = (3, 5, 10)
    c_steps: int = 10
    c_restarts: int = 1  # seeds tried on the first grid (lowest training RMSE is extended)
    c_mlp_shapes: tuple[tuple[int, ...], ...] = ((32, 32),)
    c_mlp_steps: int = 30
    # (d) Poisson PINN
    d_interior: int = 1000
    d_boundary: int = 200
    d_steps: int = 15
    d_kan_grids: tuple[int, ...] = (5, 10, 20)
    d_mlps: tuple[tuple[int, ...], ...] = ((100, 100, 100),)  # hidden widths of each MLP compared
    d_eval_every: int = 5
    # (e) continual learning
    e_points: int = 200
    e_steps: int = 20
    e_mlp_hidden: tuple[int, ...] = (64, 64)
    jobs: int = 1  # worker processes for (c)'s rows and (d)'s models (each with its share of the threads)
    extra: dict = field(default_factory=dict)


QUICK = Settings("quick")
FULL = Settings(  # the paper's recipe (200 / 100 LBFGS steps per grid, 1000-3000 points), ~3 core-hours
    "full", a_points=3000, a_grids=(3, 5, 10, 20, 50, 100), a_steps=200,
    b_functions=("bessel_j0", "exp_sin_sq", "product", "exp_mean_sin_100d", "exp_sin_4d"),
    b_points=1000, b_grids=(3, 5, 10, 20, 50), b_steps=50, b_mlp_depths=(2, 3),
    b_mlp_widths=(5, 20, 100), b_mlp_steps=200,
    c_points=1000, c_grids=(3, 5, 10, 20, 50, 100), c_steps=100, c_restarts=3,
    c_mlp_shapes=((20, 20), (50, 50)), c_mlp_steps=500,
    d_interior=3000, d_boundary=400, d_steps=50, d_kan_grids=(5, 10, 20),
    d_mlps=((100, 100, 100), (200, 200, 200)),
    d_eval_every=10, e_points=200, e_steps=100)
TINY = Settings(  # for the smoke test: seconds
    "tiny", a_points=64, a_grids=(3, 5), a_steps=2, b_functions=("product",), b_points=64, b_grids=(3, 5),
    b_steps=2, b_mlp_depths=(2,), b_mlp_widths=(4,), b_mlp_steps=2, c_rows=("I.16.6", "jv"), c_points=64,
    c_grids=(3, 5), c_steps=2, c_mlp_shapes=((4,),), c_mlp_steps=2, d_interior=32, d_boundary=16, d_steps=2,
    d_kan_grids=(5,), d_mlps=((8,), (4, 4)), d_eval_every=1, e_points=32, e_steps=2, e_mlp_hidden=(8,))


class MLP(nn.Module):
    """Fully connected network ``n_in -> hidden... -> n_out`` with a smooth activation.

    Exposes ``n_inputs`` / ``n_outputs`` so :func:`kanlab.fit` trains it exactly like a KAN
    (pass ``update_grid=False``)."""

    def __init__(self, n_in: int, hidden: tuple[int, ...], n_out: int = 1, activation: str = "silu",
                 seed: int = 0, dtype=DTYPE):
        super().__init__()
        sizes = [n_in, *hidden, n_out]
        act = {"silu": nn.SiLU, "tanh": nn.Tanh}[activation]
        layers: list[nn.Module] = []
        with torch.random.fork_rng(devices=[]):  # nn.Linear draws from the global RNG; leave it as found
            torch.manual_seed(seed)
            for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
                layers.append(nn.Linear(a, b, dtype=dtype))
                if i < len(sizes) - 2:
                    layers.append(act())
        self.net = nn.Sequential(*layers)
        self.n_inputs, self.n_outputs = n_in, n_out

    def forward(self, x):
        return self.net(x)

    def n_params(self) -> int:
        return sum(p.numel() for p in self.parameters())


def parallel_map(fn, items, jobs: int) -> list:
    """``[fn(item) for item in items]``, in ``jobs`` spawned processes when ``jobs > 1``.

    Each worker gets ``torch.get_num_threads() // jobs`` threads (at least one); ``fn`` and the
    items must pickle. Seeded work gives the serial results up to the summation order that the
    thread count changes."""
    items = list(items)
    if jobs <= 1 or len(items) <= 1:
        return [fn(item) for item in items]
    threads = max(1, torch.get_num_threads() // jobs)
    spawn = multiprocessing.get_context("spawn")  # fork after OpenMP start-up can hang
    with ProcessPoolExecutor(max_workers=min(jobs, len(items)), mp_context=spawn) as pool:
        return list(pool.map(partial(_with_threads, fn, threads), items))


def _with_threads(fn, threads, item):
    torch.set_num_threads(threads)
    return fn(item)


def n_params(model) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def grid_extension(width, data, grids, steps, seed=0, restarts=1, **kan_kwargs):
    """Train a KAN on each grid in turn (refining between), the paper's recipe.

    Returns ``(model, records)``; each record: G, params, train/test RMSE at the end of that
    grid's stage, the per-step train/test curves and seconds. Every stage adapts the grids to
    the data (fit's default schedule) and refining places the finer grids on the training
    inputs' activations (as ``kanlab demo`` does). ``restarts > 1`` trains the first grid from
    seeds ``seed, seed + 1, ...`` and extends the one with the lowest *training* RMSE (small
    KANs trained from scratch land in very different minima; the test data play no part).
    """
    start = time.perf_counter()
    candidates = [_first_stage(width, data, grids[0], steps, seed + r, kan_kwargs) for r in range(restarts)]
    model, first = min(candidates, key=lambda c: c[1]["train"] if c[1] else math.inf)
    if first is None:
        return model, []
    first["seconds"] = time.perf_counter() - start
    records = [first]
    for g in grids[1:]:
        model = model.refine(g, data.train_input)
        start = time.perf_counter()
        record = _stage(model, data, steps, g)
        if record is None:
            break
        records.append(dict(record, seconds=time.perf_counter() - start))
    return model, records


def _first_stage(width, data, grid, steps, seed, kan_kwargs):
    model = kanlab.KAN(width, grid_size=grid, seed=seed, dtype=DTYPE, **kan_kwargs)
    return model, _stage(model, data, steps, grid)


def _stage(model, data, steps, grid) -> dict | None:
    """LBFGS on the current grid; the end-of-stage record, or None when training diverged."""
    try:
        hist = model.fit(data, steps=steps, optimizer="lbfgs", progress=False)
    except kanlab.TrainingDiverged:
        return None
    return dict(G=grid, params=n_params(model), train=hist.train_rmse[-1],
                test=hist.test_rmse[-1], train_curve=hist.train_rmse, test_curve=hist.test_rmse)


def train_mlp(hidden, data, steps, seed=0, activation="silu"):
    """An MLP trained with the same LBFGS loop as the KANs; returns ``(model, record)``."""
    n_in, n_out = data.train_input.shape[1], data.train_label.shape[1]
    model = MLP(n_in, tuple(hidden), n_out, activation=activation, seed=seed)
    start = time.perf_counter()
    try:
        hist = kanlab.fit(model, data, steps=steps, optimizer="lbfgs", progress=False, update_grid=False)
        train, test = hist.train_rmse[-1], hist.test_rmse[-1]
    except kanlab.TrainingDiverged:
        train = test = float("nan")
    return model, dict(hidden=tuple(hidden), params=model.n_params(), train=train, test=test,
                       seconds=time.perf_counter() - start)


def loglog_slope(x, y) -> float:
    """Least-squares slope of log y against log x (NaN with fewer than two finite points)."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    ok = np.isfinite(x) & np.isfinite(y) & (x > 0) & (y > 0)
    if ok.sum() < 2:
        return float("nan")
    return float(np.polyfit(np.log(x[ok]), np.log(y[ok]), 1)[0])


def fmt(v) -> str:
    """A number for a Markdown table."""
    if v is None:
        return "-"
    if isinstance(v, str):
        return v
    if isinstance(v, (int, np.integer)):
        return str(v)
    if not math.isfinite(v):
        return "nan"
    return f"{v:.2e}"


def table(header, rows) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(fmt(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def figure():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _null_formatter():
    from matplotlib.ticker import NullFormatter

    return NullFormatter()


def save(fig, outdir, name: str) -> str:
    path = outdir / name
    for ax in fig.axes:  # log axes: label decades only, so labels never overlap
        if ax.get_xscale() == "log":
            ax.xaxis.set_minor_formatter(_null_formatter())
    fig.tight_layout()
    fig.savefig(path, dpi=110, bbox_inches="tight")
    figure().close(fig)
    return name
