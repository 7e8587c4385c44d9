"""Tables for the command line: CSV / Parquet in, validated float arrays out (needs pandas)."""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

__all__ = ["read_table", "table_arrays", "TABLE_SUFFIXES"]

TABLE_SUFFIXES = {".csv": "csv", ".tsv": "tsv", ".txt": "csv", ".parquet": "parquet", ".pq": "parquet"}


def read_table(path):
    """Read a CSV (``.csv``, ``.txt``), TSV or Parquet (``.parquet``, ``.pq``) file into a DataFrame.

    Raises:
        ValueError naming the file for a missing file, an unknown suffix, an unreadable or
        empty table.
    """
    import pandas as pd

    path = Path(path)
    if not path.is_file():
        raise ValueError(f"file not found: {str(path)!r}")
    kind = TABLE_SUFFIXES.get(path.suffix.lower())
    if kind is None:
        raise ValueError(f"{str(path)!r}: unknown table format {path.suffix!r} "
                         f"(use one of {sorted(TABLE_SUFFIXES)})")
    try:
        if kind == "parquet":
            frame = pd.read_parquet(path)
        else:
            frame = pd.read_csv(path, sep="\t" if kind == "tsv" else ",")
    except pd.errors.EmptyDataError:
        raise ValueError(f"{str(path)!r}: the table is empty") from None
    except Exception as err:  # parser errors come in many types; report them in one line
        raise ValueError(f"{str(path)!r}: cannot read the table ({type(err).__name__}: {err})") from None
    if frame.shape[0] == 0 or frame.shape[1] == 0:
        raise ValueError(f"{str(path)!r}: the table is empty ({frame.shape[0]} rows, {frame.shape[1]} columns)")
    frame.columns = [str(c) for c in frame.columns]
    return frame


def table_arrays(frame, columns: Sequence[str], name: str = "table") -> np.ndarray:
    """The named columns as a float64 array ``(n_rows, len(columns))``, checked.

    Raises:
        ValueError naming the column for a missing column, a non-numeric column or NaN / inf values.
    """
    import pandas as pd

    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ValueError(f"{name}: no column(s) {missing}; the table has {list(frame.columns)}")
    out = np.empty((frame.shape[0], len(columns)), dtype=np.float64)
    for j, col in enumerate(columns):
        series = frame[col]
        if not (pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series)):
            raise ValueError(f"{name}: column {col!r} is not numeric (dtype {series.dtype}); "
                             "encode it as numbers first")
        values = series.to_numpy(dtype=np.float64, na_value=np.nan)
        bad = ~np.isfinite(values)
        if bad.any():
            raise ValueError(f"{name}: column {col!r} has {int(bad.sum())} NaN or inf value(s) "
                             f"(first at row {int(np.argmax(bad))}); clean or impute them first")
        out[:, j] = values
    return out


def default_features(frame, targets: Sequence[str]) -> list[str]:
    """Every column except the targets (in table order)."""
    return [c for c in frame.columns if c not in set(targets)]
