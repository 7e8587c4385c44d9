"""(b) Scaling laws: test RMSE vs parameter count on the toy functions, KAN vs MLPs."""
from __future__ import annotations

from kanlab.datasets import TOY, toy_dataset

from .common import figure, grid_extension, loglog_slope, save, table, train_mlp

# The paper's KAN shapes (Sec. 3.1) and a seed per shape.
KAN_SHAPES = {"bessel_j0": ([1, 1], 0), "exp_sin_sq": ([2, 1, 1], 2), "product": ([2, 2, 1], 0),
              "exp_mean_sin_100d": ([100, 1, 1], 0), "exp_sin_4d": ([4, 4, 2, 1], 0)}


def run(s, outdir) -> str:
    results = {}
    for name in s.b_functions:
        data = toy_dataset(name, n_train=s.b_points, n_test=1000, seed=0)
        width, seed = KAN_SHAPES[name]
        _, kan = grid_extension(width, data, s.b_grids, s.b_steps, seed=seed)
        mlps = {}
        for depth in s.b_mlp_depths:
            mlps[depth] = [train_mlp((w,) * (depth - 1), data, s.b_mlp_steps, seed=0)[1] for w in s.b_mlp_widths]
        results[name] = (width, kan, mlps)
    figs = _plot(results, outdir)
    return _section(results, s, figs)


def _section(results, s, fig) -> str:
    out = ["## (b) Scaling laws on the toy functions\n",
           f"{s.b_points} training / 1000 test points. KAN: grid extension G = {list(s.b_grids)}, "
           f"{s.b_steps} LBFGS steps per grid (paper: 200, up to G = 1000). MLPs (SiLU): depths "
           f"{list(s.b_mlp_depths)} x widths {list(s.b_mlp_widths)}, {s.b_mlp_steps} LBFGS steps, same "
           "training loop (`kanlab.fit`). Slopes: least squares of log test RMSE vs log params. Paper: "
           "KANs follow the theoretical slope -4 (k = 3) until noise/precision; MLPs plateau, slopes "
           "much shallower.\n"]
    rows = []
    for name, (width, kan, mlps) in results.items():
        kan_slope = loglog_slope([r["params"] for r in kan], [r["test"] for r in kan])
        all_mlp = [r for rs in mlps.values() for r in rs]
        mlp_slope = loglog_slope([r["params"] for r in all_mlp], [r["test"] for r in all_mlp])
        best_kan, best_mlp = min(r["test"] for r in kan), min(r["test"] for r in all_mlp)
        rows.append((TOY[name].formula, str(width), f"{kan_slope:.2f}", best_kan, kan[-1]["params"],
                     f"{mlp_slope:.2f}", best_mlp,
                     min(all_mlp, key=lambda r: r["test"])["params"], "-4 (theory)"))
    out.append(table(["function", "KAN", "KAN slope", "best KAN test RMSE", "KAN params", "MLP slope",
                      "best MLP test RMSE", "its params", "paper KAN slope"], rows) + "\n")
    out.append("**Summary (b):** KAN slopes " + ", ".join(f"{r[0]}: {r[2]}" for r in rows) + "; MLP slopes "
               + ", ".join(f"{r[5]}" for r in rows) + ".\n")
    out.append("Every run:\n")
    detail = []
    for name, (width, kan, mlps) in results.items():
        detail += [(name, f"KAN {width} G={r['G']}", r["params"], r["train"], r["test"]) for r in kan]
        for rs in mlps.values():
            detail += [(name, f"MLP {list(r['hidden'])}", r["params"], r["train"], r["test"]) for r in rs]
    out.append(table(["function", "model", "params", "train RMSE", "test RMSE"], detail) + "\n")
    out.append(f"![scaling laws]({fig})\n")
    return "\n".join(out)


def _plot(results, outdir) -> str:
    plt = figure()
    n = len(results)
    fig, axes = plt.subplots(1, n, figsize=(4.2 * n, 3.8), squeeze=False)
    for ax, (name, (width, kan, mlps)) in zip(axes[0], results.items()):
        p = [r["params"] for r in kan]
        ax.loglog(p, [r["test"] for r in kan], "o-", label=f"KAN {width}")
        for depth, rs in mlps.items():
            ax.loglog([r["params"] for r in rs], [r["test"] for r in rs], "s--", label=f"MLP depth {depth}")
        if len(p) > 1:
            ax.loglog(p, [kan[0]["test"] * (x / p[0]) ** -4 for x in p], color="grey", lw=0.8, label="N^-4")
        ax.set(title=TOY[name].formula[:40], xlabel="parameters", ylabel="test RMSE")
        ax.legend(fontsize=7)
    return save(fig, outdir, "paper_b_scaling.png")
