"""What `kanlab predict / formula / plot / build-kernels` do (argument parsing lives in :mod:`kanlab.cli`,
`fit` in :mod:`kanlab.cli_fit`)."""
from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from .datasets.tables import read_table, table_arrays
from .network import KAN

__all__ = ["run_predict", "run_formula", "run_plot", "run_build_kernels", "format_formulas", "write_png",
           "write_table", "OUTPUT_FORMATS"]

# --out suffix -> format of `kanlab predict` (stdout: CSV)
OUTPUT_FORMATS = {".csv": "csv", ".txt": "csv", ".tsv": "tsv", ".parquet": "parquet", ".pq": "parquet",
                  ".json": "json"}


# ---------------------------------------------------------------------- shared
def format_formulas(model: KAN, features=None) -> tuple[str, str]:
    """``(text, latex)``: one line ``output = formula`` per output of a fully symbolic model."""
    import sympy

    names = list(features or model.config.input_names or [f"x{i}" for i in range(model.n_inputs)])
    exprs = model.symbolic_formula(var_names=names)
    exprs = list(exprs) if isinstance(exprs, (list, tuple)) else [exprs]
    outputs = model.config.output_names or [f"y{j}" for j in range(len(exprs))]
    text = "".join(f"{o} = {sympy.sstr(e)}\n" for o, e in zip(outputs, exprs))
    tex = "".join(f"{sympy.latex(sympy.Symbol(o))} = {sympy.latex(e)}\n" for o, e in zip(outputs, exprs))
    return text, tex


def write_png(model: KAN, x, path: Path, notes: list) -> None:
    """Draw the network on ``x`` into ``path``; a note instead when plotting is unavailable."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        fig = model.plot(x)
    except (ImportError, NotImplementedError) as err:
        notes.append(f"network.png not written: plotting unavailable ({err})")
        return
    fig.savefig(path, dpi=120, bbox_inches="tight")
    import matplotlib.pyplot as plt

    plt.close(fig)


def write_table(frame, out) -> None:
    """Write ``frame`` to ``out`` in the format its suffix names (atomically), or CSV to stdout
    when ``out`` is None. CSV floats are written with 17 digits (they read back exactly)."""
    if out is None:
        frame.to_csv(sys.stdout, index=False, float_format="%.17g")
        sys.stdout.flush()
        return
    out = Path(out)
    kind = OUTPUT_FORMATS.get(out.suffix.lower())
    if kind is None:
        raise ValueError(f"--out {str(out)!r}: unknown output format {out.suffix!r} (use one of "
                         f"{sorted(OUTPUT_FORMATS)})")
    if not out.parent.is_dir():
        raise ValueError(f"--out {str(out)!r}: directory {str(out.parent)!r} does not exist")
    fd, tmp = tempfile.mkstemp(dir=out.parent, prefix=f".{out.name}.", suffix=".tmp")
    os.close(fd)
    try:
        if kind == "parquet":
            frame.to_parquet(tmp, index=False)
        elif kind == "json":  # Python's float repr round-trips exactly (pandas' to_json stops at 15 digits)
            with open(tmp, "w") as f:
                json.dump(frame.to_dict(orient="records"), f)
        else:
            frame.to_csv(tmp, index=False, float_format="%.17g", sep="\t" if kind == "tsv" else ",")
        os.replace(tmp, out)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _model_inputs(model: KAN, data_path):
    frame = read_table(data_path)
    names = model.config.input_names
    if names is None:
        names = [c for c in frame.columns if c not in (model.config.output_names or ())][: model.n_inputs]
        if len(names) != model.n_inputs:
            raise ValueError(f"{data_path}: the model needs {model.n_inputs} input columns, the table has "
                             f"{len(names)}")
    dtype = next(model.parameters()).dtype
    return torch.tensor(table_arrays(frame, list(names), str(data_path)), dtype=dtype), frame


# ---------------------------------------------------------------------- predict / formula / plot
def run_predict(args) -> int:
    """Predictions of a saved model: numbers for regression; for a classifier the labels (and,
    with ``--proba``, one probability column ``proba_<class>`` per class)."""
    import pandas as pd

    from .io import load, read_metadata

    model = load(args.model)
    meta = read_metadata(args.model)
    x, _ = _model_inputs(model, args.data)
    with torch.no_grad():
        out = torch.cat([model(x[i:i + 65536]) for i in range(0, x.shape[0], 65536)]).double().numpy()
    if meta.get("task") == "classification":
        classes = meta["classes"]
        target = (meta.get("targets") or ["label"])[0]
        labels = np.empty(len(out), dtype=object)
        labels[:] = [classes[i] for i in out.argmax(axis=1)]
        frame = pd.DataFrame({target: labels})
        if args.proba:
            z = np.exp(out - out.max(axis=1, keepdims=True))
            proba = z / z.sum(axis=1, keepdims=True)
            for j, c in enumerate(classes):
                frame[f"proba_{c}"] = proba[:, j]
    else:
        if args.proba:
            raise ValueError(f"--proba needs a classifier; {args.model} is a regression model")
        names = list(model.config.output_names or [f"y{j}" for j in range(model.n_outputs)])
        frame = pd.DataFrame(out, columns=names)
    write_table(frame, args.out)
    return 0


def run_formula(args) -> int:
    from .io import load

    model = load(args.model)
    numeric = sum(int((layer.mask != 0).sum()) for layer in model.layers)
    if numeric:
        raise ValueError(f"{args.model} has no formula: {numeric} of its edges are numeric splines (`kanlab fit "
                         "--symbolic` keeps a formula only where it keeps the fit; see symbolic_report in "
                         "metrics.json)")
    text, tex = format_formulas(model)
    sys.stdout.write(tex if args.latex else text)
    return 0


def run_plot(args) -> int:
    from .io import load

    model = load(args.model)
    x, _ = _model_inputs(model, args.data)
    out = Path(args.out)
    if not out.parent.is_dir():
        raise ValueError(f"--out {str(out)!r}: directory {str(out.parent)!r} does not exist")
    notes: list = []
    write_png(model, x, out, notes)
    if notes:
        raise ImportError(notes[0])
    return 0


# ---------------------------------------------------------------------- build-kernels
def build_extension():
    """Build (or load from torch's cache) the C++ kernels: ``(module or None, reason or None)``."""
    from . import kernels

    module = kernels.load_extension()
    return module, (kernels.build_error() if module is None else None)


def run_build_kernels(args) -> int:
    """`kanlab build-kernels`: build the optional C++ kernels now (once per machine, ~2 min),
    so that no later fit pays for it. Exit 0 when they are available, 1 when they cannot be built."""
    start = time.perf_counter()
    module, error = build_extension()
    seconds = time.perf_counter() - start
    if module is None:
        print(f"kanlab: C++ kernels unavailable ({error}); kanlab runs on its eager PyTorch paths",
              file=sys.stderr)
        return 1
    print(f"kanlab: C++ kernels ready ({seconds:.1f} s; cached in torch's extension directory)")
    return 0
