"""kanlab.discover on the Feynman equations of kanlab.datasets (and gplearn beside it where installed).

    python -m benchmarks.discovery                 # every equation, noiseless and 1% noise
    python -m benchmarks.discovery --quick         # a few equations (what `make test` runs, smaller)
    python -m benchmarks.discovery --noise 0 --only I.12.11,II.38.3 --budget 60

For each equation: the paper's ranges, ``--n`` points (noiseless, then with Gaussian noise of
``--noise`` times the target's standard deviation), ``kanlab.discover`` with ``--budget`` seconds.
"exact": the found formula's relative RMSE against the *noiseless* truth on 2000 fresh points is
<= 1e-6 (equivalent to the truth after rounding; a formula with a fitted-but-unrounded constant
does not pass). Prints a markdown table per noise level and the count; ``--out`` writes it to a file.
"""
from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

import numpy as np
import torch

import kanlab
from kanlab.datasets import FEYNMAN
from kanlab.symbolic.formula import to_numpy

QUICK = ("II.38.3", "I.12.11", "III.10.19")


def fresh_error(formula, names, func, seed: int = 123, n: int = 2000) -> float:
    """Relative RMSE of ``formula`` against the noiseless ``func`` on fresh points in its ranges."""
    import sympy

    gen = torch.Generator().manual_seed(seed)
    lo = torch.tensor([r[0] for r in func.ranges], dtype=torch.float64)
    hi = torch.tensor([r[1] for r in func.ranges], dtype=torch.float64)
    x = lo + (hi - lo) * torch.rand(n, len(lo), generator=gen, dtype=torch.float64)
    truth = func(x).numpy()
    try:
        with np.errstate(all="ignore"):
            pred = to_numpy(formula, [sympy.Symbol(v) for v in names])(x.numpy())
    except Exception:  # noqa: BLE001 - an unevaluable formula is simply not exact
        return math.inf
    if not np.isfinite(pred).all():
        return math.inf
    return float(np.sqrt(np.mean((pred - truth) ** 2)) / truth.std())


def data_for(func, n: int, noise: float, seed: int):
    gen = torch.Generator().manual_seed(seed)
    lo = torch.tensor([r[0] for r in func.ranges], dtype=torch.float64)
    hi = torch.tensor([r[1] for r in func.ranges], dtype=torch.float64)
    x = lo + (hi - lo) * torch.rand(n, len(lo), generator=gen, dtype=torch.float64)
    y = func(x)
    if noise > 0:
        y = y + noise * y.std() * torch.randn(y.shape, generator=gen, dtype=torch.float64)
    return x, y


def run_kanlab(func, x, y, budget: float, seed: int):
    start = time.perf_counter()
    try:
        result = kanlab.discover(x, y, names=func.variables, time_budget=budget, seed=seed)
        formula = result.formula
    except Exception as err:  # noqa: BLE001 - a row that fails is reported, the table goes on
        formula = f"error: {type(err).__name__}: {err}"
    return formula, time.perf_counter() - start


def run_gplearn(func, x, y, seed: int, population: int = 1000, generations: int = 10):
    """gplearn's SymbolicRegressor (defaults plus sin/cos/sqrt/log); None when not installed."""
    try:
        from gplearn.genetic import SymbolicRegressor
    except ImportError:
        return None
    import sympy

    start = time.perf_counter()
    est = SymbolicRegressor(population_size=population, generations=generations, init_depth=(2, 4), function_set=(
        "add", "sub", "mul", "div", "sqrt", "log", "sin", "cos", "neg", "inv"), parsimony_coefficient=0.001,
        random_state=seed, n_jobs=1)
    est.fit(x.numpy(), y.numpy())
    symbols = [sympy.Symbol(v) for v in func.variables]
    formula = _gplearn_to_sympy(est._program.program, symbols)
    return formula, time.perf_counter() - start


def _gplearn_to_sympy(program, symbols):
    """gplearn's prefix-order program (functions, feature indices, floats) as sympy."""
    import sympy

    ops = {"add": lambda a, b: a + b, "sub": lambda a, b: a - b, "mul": lambda a, b: a * b,
           "div": lambda a, b: a / b, "sqrt": lambda a: sympy.sqrt(sympy.Abs(a)),
           "log": lambda a: sympy.log(sympy.Abs(a)), "sin": sympy.sin, "cos": sympy.cos, "neg": lambda a: -a,
           "inv": lambda a: 1 / a}

    def parse(i):
        node = program[i]
        if isinstance(node, (int, np.integer)):
            return symbols[int(node)], i + 1
        if isinstance(node, (float, np.floating)):
            return sympy.Float(float(node)), i + 1
        args, j = [], i + 1
        for _ in range(node.arity):
            arg, j = parse(j)
            args.append(arg)
        return ops[node.name](*args), j

    return parse(0)[0]


def table(rows, with_gp: bool) -> str:
    head = "| equation | truth | kanlab formula | exact | s |" + (" gplearn formula | exact | s |" if with_gp else "")
    sep = "|---|---|---|---|---|" + ("---|---|---|" if with_gp else "")
    lines = [head, sep]
    for r in rows:
        exact = "yes" if r["exact"] else "no"
        line = f"| {r['name']} | {r['truth']} | `{r['formula']}` | {exact} | {r['seconds']:.0f} |"
        if with_gp:
            gp = r.get("gp")
            line += (f" `{gp[0]}` | {'yes' if gp[2] else 'no'} | {gp[1]:.0f} |" if gp else " - | - | - |")
        lines.append(line)
    n_exact = sum(r["exact"] for r in rows)
    lines.append("")
    lines.append(f"kanlab exact: {n_exact} of {len(rows)} ({100 * n_exact / max(1, len(rows)):.0f}%), "
                 f"median {np.median([r['seconds'] for r in rows]):.0f} s, max {max(r['seconds'] for r in rows):.0f} s")
    if with_gp:
        gp_exact = sum(bool(r.get("gp") and r["gp"][2]) for r in rows)
        lines.append(f"gplearn exact: {gp_exact} of {len(rows)}")
    return "\n".join(lines)


def run(names, noise: float, n: int, budget: float, seed: int, gplearn: bool, log=print,
        gp_size: tuple[int, int] = (1000, 10)) -> list:
    rows = []
    for name in names:
        func = FEYNMAN[name]
        x, y = data_for(func, n, noise, seed)
        formula, seconds = run_kanlab(func, x, y, budget, seed)
        exact = not isinstance(formula, str) and fresh_error(formula, func.variables, func) <= 1e-6
        row = dict(name=name, truth=func.formula.split("   [")[0], formula=formula, exact=exact, seconds=seconds)
        if gplearn:
            gp = run_gplearn(func, x, y, seed, *gp_size)
            if gp is not None:
                row["gp"] = (gp[0], gp[1], fresh_error(gp[0], func.variables, func) <= 1e-6)
        log(f"{name} noise={noise}: {formula}  exact={exact}  {seconds:.0f}s", file=sys.stderr, flush=True)
        rows.append(row)
    return rows


def main(argv=None) -> str:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help=f"only {', '.join(QUICK)}")
    parser.add_argument("--only", default=None, help="comma-separated equation ids")
    parser.add_argument("--noise", type=float, nargs="*", default=[0.0, 0.01], help="noise levels (default 0 0.01)")
    parser.add_argument("--n", type=int, default=1000, help="points per equation (default 1000)")
    parser.add_argument("--budget", type=float, default=100.0, help="discover's time_budget, s (default 100)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--gplearn", action="store_true", help="run gplearn beside (where installed)")
    parser.add_argument("--gp-size", type=int, nargs=2, default=[1000, 10], metavar=("POPULATION", "GENERATIONS"),
                        help="gplearn's population and generations (default 1000 10)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", default=None, help="write the tables to this markdown file")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    names = list(QUICK) if args.quick else args.only.split(",") if args.only else list(FEYNMAN)
    unknown = [v for v in names if v not in FEYNMAN]
    if unknown:
        parser.error(f"unknown equation(s) {unknown}; known: {list(FEYNMAN)}")
    parts = [f"kanlab.discover on {len(names)} Feynman equations, {args.n} points, time_budget {args.budget:.0f} s, "
             f"{args.threads} thread(s), seed {args.seed}"]
    for noise in args.noise:
        rows = run(names, noise, args.n, args.budget, args.seed, args.gplearn, gp_size=tuple(args.gp_size))
        parts += ["", f"### noise {noise:g}", "", table(rows, args.gplearn and any("gp" in r for r in rows))]
    text = "\n".join(parts) + "\n"
    print(text)
    if args.out:
        path = Path(args.out)
        tmp = path.with_suffix(path.suffix + ".tmp")
        tmp.write_text(text)
        tmp.replace(path)
    return text


if __name__ == "__main__":
    main()
