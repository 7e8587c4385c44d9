"""Train sparse, prune, refine: the KAN paper's exp(sin(pi x) + y^2) example.

    python examples/pruning.py [OUT_DIR] [--seed 0]

[2,5,1] is trained sparse in float64 with kanlab.sparse_fit.fit_sparse (50 steps with lamb=1e-3,
then 50 steps with lamb=1e-2, grid updates in both), pruned to [2,1,1] (9 of seeds 0-9),
trained again, refined to a 10-interval grid and trained once more. The network figures before
and after pruning are written to OUT_DIR (default ./out).
"""
import argparse
import math
from pathlib import Path

import torch

import kanlab
from kanlab.datasets import from_function
from kanlab.sparse_fit import fit_sparse


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", nargs="?", default="out", help="folder for the figures (default ./out)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--steps", type=int, default=50, help="LBFGS steps per phase")
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    f = lambda x: torch.exp(torch.sin(math.pi * x[:, 0]) + x[:, 1] ** 2)  # noqa: E731
    data = from_function(f, n_var=2, ranges=(-1, 1), n_train=1000, n_test=1000, seed=args.seed,
                         dtype=torch.float64)
    x = data.train_input

    model = kanlab.KAN(width=[2, 5, 1], grid_size=3, spline_order=3, seed=args.seed, dtype=torch.float64,
                       input_names=["x", "y"], output_names=["f"])
    hist = fit_sparse(model, data, steps=args.steps, lamb=1e-3, sparse_lamb=1e-2, progress=False)
    print(f"[2,5,1] sparse fit: test RMSE {hist.test_rmse[-1]:.2e}")
    print("node scores:", [f"{v:.3f}" for v in model.attribute(x).nodes[1].tolist()])
    title = "[2,5,1] trained sparse (lamb 1e-3, then 1e-2)"
    model.plot(x, title=title).savefig(out / "before_pruning.png", dpi=120)

    pruned = model.prune(x)
    with torch.no_grad():
        change = float((pruned(data.test_input) - model(data.test_input)).pow(2).mean().sqrt())
    print(f"pruned to {pruned.width}; RMS change of the output from pruning {change:.2e}")
    hist = pruned.fit(data, steps=args.steps, progress=False)
    print(f"{pruned.width} retrained: test RMSE {hist.test_rmse[-1]:.2e}")
    refined = pruned.refine(10)
    hist = refined.fit(data, steps=args.steps, progress=False)
    print(f"{refined.width} at G=10: test RMSE {hist.test_rmse[-1]:.2e}")
    refined.plot(x, title=f"pruned {refined.width}, G=10").savefig(out / "pruned.png", dpi=120)
    print(f"figures written to {out}/before_pruning.png and {out}/pruned.png")


if __name__ == "__main__":
    main()
