"""Speed and memory of one KAN layer, side by side with the dense limit and other implementations.

Run ``python benchmarks/layer_speed.py`` (``make bench``). For each shape (batch, in, out, G)
with cubic splines it prints forward and forward+backward (incl. the input gradient) median
times and the peak memory allocated during one forward+backward, for

* ``dense``   -- the dense limit: ``nn.Linear(in * (G + k + 1), out)`` on a precomputed input
  that requires grad (the three GEMMs any dense-basis KAN pays);
* ``kanlab``  -- ``kanlab.kernels.kan_linear`` (automatic path; the path is printed:
  ``fused_sparse`` when the optional C++ kernels built, else ``dense`` or ``sparse``);
* ``eager``   -- the eager-PyTorch path ``"auto"`` takes without the C++ kernels (``dense`` or
  ``sparse``), beside ``kanlab`` where that took them;
* ``fused``, ``sparse``, ``fsparse`` -- those paths, where they are not the automatic choice
  (``fused``: dense path with C++ basis kernels, ``fsparse``: ``fused_sparse``);
* ``ekan``    -- an efficient-kan-style layer (Cox-de Boor over all bases + one linear);
* ``pykan``   -- pykan's ``KANLayer`` when ``kan`` is importable,

and ratios to the dense limit. ``--crossover`` sweeps G for the dense and sparse paths;
the training-step benchmark (``benchmarks/train_step.py``) runs afterwards unless
``--no-train``. Times are medians; the machine may be shared, so compare ratios.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "src"))
from kanlab import splines  # noqa: E402
from kanlab.kernels import LayerParams, eager_path, fused, kan_linear, load_extension, resolve_path  # noqa: E402

SHAPES = [(1024, 64, 64, 5), (4096, 128, 128, 5), (256, 784, 64, 5), (1024, 64, 64, 50),
          (1024, 32, 32, 200), (8192, 2, 5, 5)]
K = 3
EXTRA_PATHS = ("fused", "sparse", "fused_sparse")  # also measured where not the automatic choice
SHORT = {"fused_sparse": "fsparse"}
CLOCK = {"wall": time.perf_counter, "cpu": time.process_time}
clock = time.perf_counter


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def median_times(fns, device, budget=1.0, min_reps=15, max_reps=40) -> list[float]:
    """Median seconds of each of ``fns``, run round-robin so load changes hit all alike.

    Each round starts one contender later, so none always runs right after the same one: on
    this machine the steps right after ekan's (which allocates and frees ~250 MB at G = 200)
    stalled by 10-20 ms in about one round of five, whichever contender came next. At least
    15 rounds even where ekan's ~0.25 s per step blows the budget: with 5, three stalled steps
    of a 2.5 ms contender moved its median 3x.
    """
    one = []
    for fn in fns:
        fn()
        sync(device)
        t0 = clock()
        fn()
        sync(device)
        one.append(max(clock() - t0, 1e-6))
    reps = int(min(max_reps, max(min_reps, budget / sum(one))))
    times = [[] for _ in fns]
    for rep in range(reps):
        for j in range(len(fns)):
            i = (rep + j) % len(fns)
            t0 = clock()
            fns[i]()
            sync(device)
            times[i].append(clock() - t0)
    return [statistics.median(ts) for ts in times]


def peak_bytes(fn, device) -> int:
    """Peak bytes allocated while ``fn()`` runs (tensors alive before it are not counted)."""
    if device.type == "cuda":
        torch.cuda.synchronize()
        base = torch.cuda.memory_allocated()
        torch.cuda.reset_peak_memory_stats()
        fn()
        torch.cuda.synchronize()
        return torch.cuda.max_memory_allocated() - base
    from torch.profiler import ProfilerActivity, profile
    best = 0
    for _ in range(2):  # the profiler occasionally misses the events of a run
        with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
            fn()
        events = sorted((e.start_ns(), e.nbytes()) for e in prof.profiler.kineto_results.events()
                        if e.name() == "[memory]")
        cur = 0
        for _, nbytes in events:
            cur += nbytes
            best = max(best, cur)
    return best


# ----------------------------------------------------------------------------- contenders
def make_params(n_in, n_out, g, device, dtype, seed=0):
    gen = torch.Generator().manual_seed(seed)
    grid = splines.uniform_grid(n_in, g, K, (-1.0, 1.0), dtype=dtype, device=device)
    coef = (torch.randn(n_out, n_in, g + K, generator=gen, dtype=dtype) * 0.1).to(device)
    sb = (torch.randn(n_out, n_in, generator=gen, dtype=dtype) * 0.1).to(device)
    ss = torch.ones(n_out, n_in, dtype=dtype, device=device)
    return grid, [p.requires_grad_() for p in (coef, sb, ss)]


def ekan_basis(x, grid, k):
    """efficient-kan's ``b_splines``: Cox-de Boor over all bases. (N, in) -> (N, in, G+k)."""
    x = x.unsqueeze(-1)
    bases = ((x >= grid[:, :-1]) & (x < grid[:, 1:])).to(x.dtype)
    for p in range(1, k + 1):
        bases = ((x - grid[:, : -(p + 1)]) / (grid[:, p:-1] - grid[:, : -(p + 1)]) * bases[..., :-1]
                 + (grid[:, p + 1:] - x) / (grid[:, p + 1:] - grid[:, 1:(-p)]) * bases[..., 1:])
    return bases


def auto_path(n, n_in, g, n_out=64, dtype=torch.float32) -> str:
    """The path ``kan_linear(path="auto")`` takes on a uniform CPU grid."""
    grid, params = make_params(n_in, n_out, g, torch.device("cpu"), dtype)
    return resolve_path(torch.zeros(n, n_in, dtype=dtype), LayerParams(grid, *params, K, "silu", True))


def contenders(n, n_in, n_out, g, device, dtype, path="auto"):
    """name -> (forward closure, forward+backward closure)."""
    gen = torch.Generator().manual_seed(1)
    x = (torch.rand(n, n_in, generator=gen, dtype=dtype) * 2.2 - 1.1).to(device).requires_grad_()
    grid, (coef, sb, ss) = make_params(n_in, n_out, g, device, dtype)
    params = [x, coef, sb, ss]
    out = {}

    def kan():
        return kan_linear(x, grid, coef, sb, ss, K, "silu", uniform=True, path=path)
    out["kanlab"] = kan, params
    if path == "auto" and auto_path(n, n_in, g, n_out, dtype) in ("fused", "fused_sparse"):  # eager beside it
        out["eager"] = (lambda: kan_linear(x, grid, coef, sb, ss, K, "silu", uniform=True,
                                           path=eager_path(g + K, K))), params
    for other in EXTRA_PATHS if path == "auto" else ():
        if other != auto_path(n, n_in, g, n_out, dtype) and not ("eager" in out and other == eager_path(g + K, K)):
            out[SHORT.get(other, other)] = (lambda other=other: kan_linear(
                x, grid, coef, sb, ss, K, "silu", uniform=True, path=other)), params

    width = n_in * (g + K + 1)
    lin = torch.nn.Linear(width, n_out, bias=False, device=device, dtype=dtype)
    a = torch.randn(n, width, device=device, dtype=dtype, requires_grad=True)
    out["dense"] = (lambda: lin(a)), [a, lin.weight]

    def ekan():
        base = F.linear(F.silu(x), sb)
        spl = F.linear(ekan_basis(x, grid, K).view(n, -1), (coef * ss.unsqueeze(-1)).view(n_out, -1))
        return base + spl
    out["ekan"] = ekan, params

    try:
        from kan import KANLayer as PyKANLayer  # optional
        layer = PyKANLayer(n_in, n_out, num=g, k=K, device=str(device)).to(dtype)
        layer(x[:2])  # fails here, not mid-benchmark, if this pykan version does not fit
        out["pykan"] = (lambda: layer(x)[0]), [x] + list(layer.parameters())
    except Exception:  # pykan missing or incompatible: skipped
        pass
    return out


def measure_all(named, device):
    """name -> (forward s, forward+backward s, peak bytes of one forward+backward, input bytes).

    Input bytes are those of the tensors a contender starts from (its inputs and
    parameters): the dense limit's precomputed input is large, a KAN's input is not.
    """
    fwds, fbs = [], []
    for fn, params in named.values():
        gy = torch.randn_like(fn().detach())

        def fwd(fn=fn):
            with torch.no_grad():
                fn()

        def fb(fn=fn, params=params, gy=gy):
            for p in params:
                p.grad = None
            fn().backward(gy)
        fwds.append(fwd)
        fbs.append(fb)
    tf, tfb = median_times(fwds, device), median_times(fbs, device)
    mem = [peak_bytes(fb, device) for fb in fbs]
    held = [sum(p.numel() * p.element_size() for p in params) for _, params in named.values()]
    return {name: v for name, v in zip(named, zip(tf, tfb, mem, held))}


# ----------------------------------------------------------------------------- reports
def layer_table(shapes, device, dtype):
    print(f"\nKAN layer, cubic, {dtype}, {device}, {torch.get_num_threads()} threads; "
          "times in ms (median); MB = peak MB allocated during one forward+backward, "
          "MB+in = that plus the inputs and parameters it starts from")
    head = f"{'shape (N,in,out,G)':<22}{'impl':<8}{'path':<8}{'fwd':>9}{'f+b':>9}{'MB':>8}{'MB+in':>8}" \
           f"{'fwd/dense':>10}{'f+b/dense':>10}{'MB/dense':>9}{'MB+in/dense':>12}"
    print(head)
    rows = []
    for shape in shapes:
        res = measure_all(contenders(*shape, device, dtype), device)
        d = res["dense"]
        for name, (tf, tfb, mem, held) in res.items():
            path = {"kanlab": auto_path(*shape[:2], shape[3], shape[2], dtype), "eager": eager_path(shape[3] + K, K)}.get(name, "")
            full, d_full = mem + held, d[2] + d[3]
            print(f"{str(shape):<22}{name:<8}{path:<8}{tf * 1e3:9.3f}{tfb * 1e3:9.3f}{mem / 2**20:8.1f}"
                  f"{full / 2**20:8.1f}{tf / d[0]:10.2f}{tfb / d[1]:10.2f}{mem / max(d[2], 1):9.2f}"
                  f"{full / d_full:12.2f}")
            rows.append((shape, name, tf / d[0], tfb / d[1], mem / max(d[2], 1), full / d_full))
    return rows


def crossover(device, dtype, n=1024, n_in=64, n_out=64, grids=(5, 10, 15, 20, 30, 50, 100)):
    paths = ["dense", "sparse"] + (["fused", "fused_sparse"] if load_extension() is not None else [])
    print(f"\nCrossover at (N, in, out) = ({n}, {n_in}, {n_out}): forward+backward ms per path")
    print(f"{'G':>5}" + "".join(f"{p:>14}" for p in paths) + f"{'sparse/dense':>14}{'eager auto':>12}")
    for g in grids:
        named = {path: contenders(n, n_in, n_out, g, device, dtype, path=path)["kanlab"] for path in paths}
        t = {path: v[1] for path, v in measure_all(named, device).items()}
        print(f"{g:5d}" + "".join(f"{t[p] * 1e3:14.3f}" for p in paths)
              + f"{t['sparse'] / t['dense']:14.2f}{eager_path(g + K, K):>12}")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    ap.add_argument("--timer", default="wall", choices=sorted(CLOCK),
                    help="cpu = process time: robust on a shared machine, but only with --threads 1")
    ap.add_argument("--shapes", nargs="*", metavar="N,IN,OUT,G", help="only these shapes")
    ap.add_argument("--recompute", choices=["auto", "always", "never"], default="auto",
                    help="fused path: rebuild the packed input in backward instead of saving it "
                         "(auto: when it takes >= FusedKAN.RECOMPUTE_BYTES)")
    ap.add_argument("--crossover", action="store_true", help="also sweep G for the dense/sparse crossover")
    ap.add_argument("--no-train", action="store_true", help="skip the training-step benchmark")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    fused.FusedKAN.RECOMPUTE = {"auto": None, "always": True, "never": False}[args.recompute]
    global clock
    clock = CLOCK[args.timer]
    device, dtype = torch.device(args.device), getattr(torch, args.dtype)
    shapes = SHAPES if not args.shapes else [tuple(int(v) for v in s.split(",")) for s in args.shapes]
    layer_table(shapes, device, dtype)
    if args.crossover:
        crossover(device, dtype)
    if not args.no_train:
        sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
        import train_step
        train_step.main(["--device", args.device, "--threads", str(args.threads), "--timer", args.timer])


if __name__ == "__main__":
    main()
