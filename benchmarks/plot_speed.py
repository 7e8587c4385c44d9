"""How long plotting a trained [4,8,8,1] KAN takes (target: < 2 s for the figure).

    PYTHONPATH=src OMP_NUM_THREADS=1 python benchmarks/plot_speed.py

Prints the median over repeats of building the figure (``model.plot(x)``) and of
building plus rendering it to PNG in memory, and the first call (matplotlib import included).
"""
import io
import math
import statistics
import time

import torch

import kanlab
from kanlab.datasets import from_function


def main(repeats: int = 5) -> None:
    f = lambda x: torch.exp(0.5 * (torch.sin(math.pi * (x[:, 0] ** 2 + x[:, 1] ** 2))  # noqa: E731
                                   + torch.sin(math.pi * (x[:, 2] ** 2 + x[:, 3] ** 2))))
    data = from_function(f, n_var=4, n_train=1000, n_test=200, seed=0)
    model = kanlab.KAN([4, 8, 8, 1], grid_size=5, seed=0)
    t = time.perf_counter()
    model.fit(data, steps=5, lamb=1e-3, progress=False)
    print(f"trained [4,8,8,1] for 5 LBFGS steps in {time.perf_counter() - t:.1f} s")
    x = data.train_input

    t = time.perf_counter()
    model.plot(x)
    first = time.perf_counter() - t
    build, render = [], []
    for _ in range(repeats):
        t = time.perf_counter()
        fig = model.plot(x)
        build.append(time.perf_counter() - t)
        fig.savefig(io.BytesIO(), format="png", dpi=100)
        render.append(time.perf_counter() - t)
    n_edges = sum(layer.in_features * layer.out_features for layer in model.layers)
    print(f"{n_edges} edges, {x.shape[0]} samples, {torch.get_num_threads()} thread(s)")
    print(f"first call (imports matplotlib): {first:.3f} s")
    print(f"build figure, median of {repeats}: {statistics.median(build):.3f} s  (target < 2 s: "
          f"{2 / statistics.median(build):.1f}x headroom)")
    print(f"build + render PNG, median of {repeats}: {statistics.median(render):.3f} s")


if __name__ == "__main__":
    main()
