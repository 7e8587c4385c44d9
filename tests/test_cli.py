"""The `kanlab` command: end to end through a subprocess, and its one-line errors (exit 2)."""
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import kanlab
from kanlab.cli import main
from conftest import has_module

pd = pytest.importorskip("pandas")
SRC = str(Path(__file__).resolve().parents[1] / "src")



def _table(n=200, seed=0):
    rng = np.random.default_rng(seed)
    x, y = rng.uniform(-1, 1, n), rng.uniform(-1, 1, n)
    return pd.DataFrame({"x": x, "y": y, "f": np.exp(np.sin(np.pi * x) + y ** 2)})


def _run(*argv, cwd):
    env = dict(os.environ, PYTHONPATH=SRC + os.pathsep + os.environ.get("PYTHONPATH", ""), OMP_NUM_THREADS="1")
    return subprocess.run([sys.executable, "-m", "kanlab", *argv], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=300)


def test_fit_predict_end_to_end(tmp_path):
    _table().to_csv(tmp_path / "data.csv", index=False)
    r = _run("fit", "data.csv", "--target", "f", "--width", "3", "--grid", "3,6", "--steps", "10",
             "--out", "run", "--quiet", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "regression of f" in r.stdout and "wrote run" in r.stdout and "model.kan" in r.stdout  # the summary
    run = tmp_path / "run"
    names = {p.name for p in run.iterdir()}
    assert {"model.kan", "metrics.json", "formula.txt", "formula.tex"} <= names
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["features"] == ["x", "y"] and metrics["targets"] == ["f"] and metrics["grid_size"] == 6
    assert metrics["task"] == "regression" and metrics["n_test"] == 40
    assert metrics["test_rmse"] < 0.1, metrics  # the target spreads over [0.37, 7.4]
    assert ("network.png" in names) == has_module("kanlab.plotting")
    if "network.png" not in names:
        assert any("network.png" in note for note in metrics["notes"])
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp dirs left

    fresh = _table(50, seed=1)
    fresh.to_csv(tmp_path / "new.csv", index=False)
    r = _run("predict", "run/model.kan", "new.csv", "--out", "preds.csv", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    preds = pd.read_csv(tmp_path / "preds.csv")
    model = kanlab.load(run / "model.kan")
    assert model.config.input_names == ("x", "y") and list(preds.columns) == ["f"]
    expect = model(torch.tensor(fresh[["x", "y"]].to_numpy())).detach().numpy()[:, 0]
    assert np.array_equal(preds["f"].to_numpy(), expect)  # %.17g round-trips float64 exactly
    np.testing.assert_allclose(expect, fresh["f"], atol=0.2)
    code = main(["plot", str(run / "model.kan"), str(tmp_path / "new.csv"), "--out", str(tmp_path / "net.png")])
    assert code == (0 if has_module("kanlab.plotting") else 2)
    assert (tmp_path / "net.png").exists() == (code == 0)


def test_parquet_in_process_and_rerun_into_existing_dir(tmp_path, monkeypatch):
    pytest.importorskip("pyarrow")
    _table(60).to_parquet(tmp_path / "data.parquet")
    out = tmp_path / "out"
    args = ["fit", str(tmp_path / "data.parquet"), "--target", "f", "--features", "x,y", "--width", "2",
            "--grid", "3", "--steps", "2", "--out", str(out), "--quiet"]
    assert main(args) == 0
    first = (out / "model.kan").read_bytes()
    (out / "network.png").write_bytes(b"stale")  # an output of an older run
    assert main(args[:-3] + ["--seed", "1", "--out", str(out), "--quiet"]) == 0
    assert (out / "model.kan").read_bytes() != first
    if not has_module("kanlab.plotting"):
        assert not (out / "network.png").exists()  # the stale figure does not survive

    # a failure while writing leaves the existing directory exactly as it was
    before = {p.name: p.read_bytes() for p in out.iterdir()}

    def broken_png(*a, **k):
        raise OSError("disk full")

    monkeypatch.setattr("kanlab.cli_fit.write_png", broken_png)
    assert main(args) == 2
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    assert main(args[:-3] + ["--out", str(tmp_path / "new_out"), "--quiet"]) == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data.parquet", "out"]


@pytest.mark.parametrize("case,pattern", [
    ("missing_file", "file not found"),
    ("missing_column", "no column"),
    ("text_column", "not numeric"),
    ("nan", "NaN"),
    ("empty", "empty"),
    ("header_only", "empty"),
    ("unknown_format", "unknown table format"),
])
def test_errors_one_line_exit_2(tmp_path, capsys, case, pattern):
    frame = _table(20)
    path = tmp_path / "data.csv"
    target = "f"
    if case == "missing_column":
        target = "g"
    elif case == "text_column":
        frame["x"] = ["a"] * 20
    elif case == "nan":
        frame.loc[3, "y"] = np.nan
    elif case == "header_only":
        frame = frame.iloc[:0]
    elif case == "unknown_format":
        path = tmp_path / "data.xlsx"
    if case == "empty":
        path.write_text("")
    elif case != "missing_file":
        frame.to_csv(path, index=False)
    code = main(["fit", str(path), "--target", target, "--steps", "1", "--grid", "3", "--out",
                 str(tmp_path / "out"), "--quiet"])
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1 and err.startswith("kanlab: error:") and pattern in err, err
    assert not (tmp_path / "out").exists()


def test_predict_errors(tmp_path, capsys):
    assert main(["predict", str(tmp_path / "nope.kan"), str(tmp_path / "d.csv")]) == 2
    assert "nope.kan" in capsys.readouterr().err
    model = kanlab.KAN(width=[2, 2, 1], input_names=["a", "b"])
    model.save(tmp_path / "m.kan")
    _table(5).to_csv(tmp_path / "d.csv", index=False)
    assert main(["predict", str(tmp_path / "m.kan"), str(tmp_path / "d.csv")]) == 2
    assert "no column" in capsys.readouterr().err


def test_fit_prune_drops_an_unused_column(tmp_path):
    rng = np.random.default_rng(0)
    x, y, noise = (rng.uniform(-1, 1, 300) for _ in range(3))
    pd.DataFrame({"x": x, "y": y, "unused": noise, "f": np.sin(np.pi * x) + y ** 2}).to_csv(
        tmp_path / "data.csv", index=False)
    code = main(["fit", str(tmp_path / "data.csv"), "--target", "f", "--width", "4", "--grid", "3,5",
                 "--steps", "40", "--prune", "--out", str(tmp_path / "run"), "--quiet"])
    assert code == 0
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["pruned"] and metrics["grid_size"] == 5
    # the options actually used: fit_sparse's two penalties on the first grid, none afterwards
    assert metrics["options"]["prune"]["lamb"] == 1e-3 and metrics["options"]["prune"]["sparse_lamb"] == 1e-2
    assert metrics["options"]["lamb"] == 0.0
    assert metrics["width"] == [3, 1, 1], metrics["width"]  # additive target: one hidden node is enough
    model = kanlab.load(tmp_path / "run" / "model.kan")
    scores = model.feature_scores(torch.tensor(np.stack([x, y, noise], 1)))
    assert float(scores[2]) < 0.05 * float(scores.max()), scores  # the noise column is cut
    assert metrics["test_rmse"] < 0.05, metrics
