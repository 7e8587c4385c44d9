"""`kanlab fit` classification, the --symbolic gate, output formats, --version, closed pipes, errors."""
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
from kanlab.io import read_metadata
from conftest import has_module

pd = pytest.importorskip("pandas")
SRC = str(Path(__file__).resolve().parents[1] / "src")
FAST = ["--width", "2", "--grid", "3", "--steps", "3", "--quiet"]


def _env():
    return dict(os.environ, PYTHONPATH=SRC + os.pathsep + os.environ.get("PYTHONPATH", ""), OMP_NUM_THREADS="1")


def _classes(n=150, seed=0):
    """Three classes split by x + y: learnable in a few steps."""
    rng = np.random.default_rng(seed)
    x, y = rng.uniform(-1, 1, n), rng.uniform(-1, 1, n)
    s = x + y
    label = np.where(s < -0.5, "low", np.where(s < 0.5, "mid", "high"))
    return pd.DataFrame({"x": x, "y": y, "kind": label})


def _one_line_error(capsys, code, pattern):
    err = capsys.readouterr().err
    assert code == 2, err
    assert err.count("\n") == 1 and err.startswith("kanlab: error:") and pattern in err, err


def test_fit_classifies_text_labels_and_predict_writes_them(tmp_path, capsys):
    _classes().to_csv(tmp_path / "d.csv", index=False)
    out = tmp_path / "run"
    assert main(["fit", str(tmp_path / "d.csv"), "--target", "kind", "--width", "3", "--grid", "3",
                 "--steps", "15", "--out", str(out), "--quiet"]) == 0
    printed = capsys.readouterr().out
    assert "3-class classification of kind" in printed and "accuracy" in printed and str(out) in printed
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["task"] == "classification" and metrics["classes"] == ["high", "low", "mid"]
    assert metrics["test_accuracy"] >= 0.85 and metrics["train_log_loss"] < 0.5, metrics
    assert "test_rmse" not in metrics
    model = kanlab.load(out / "model.kan")
    assert model.width[-1] == 3 and read_metadata(out / "model.kan")["classes"] == metrics["classes"]

    fresh = _classes(40, seed=1)
    fresh.to_csv(tmp_path / "new.csv", index=False)
    assert main(["predict", str(out / "model.kan"), str(tmp_path / "new.csv"), "--proba",
                 "--out", str(tmp_path / "p.csv")]) == 0
    pred = pd.read_csv(tmp_path / "p.csv")
    logits = model(torch.tensor(fresh[["x", "y"]].to_numpy())).detach()
    expect = np.array(metrics["classes"])[logits.argmax(1).numpy()]
    assert list(pred.columns) == ["kind", "proba_high", "proba_low", "proba_mid"]
    assert list(pred["kind"]) == list(expect)
    proba = pred[["proba_high", "proba_low", "proba_mid"]].to_numpy()
    np.testing.assert_allclose(proba, torch.softmax(logits, 1).numpy(), rtol=1e-12)
    assert (pred["kind"] == fresh["kind"]).mean() >= 0.8


def test_integer_labels_are_classes_unless_told(tmp_path):
    frame = _classes(80)
    frame["kind"] = (frame["x"] > 0).astype(int)  # 0/1: classification, not a regression onto 1.089
    frame.to_csv(tmp_path / "d.csv", index=False)
    for task, expect in (("auto", "classification"), ("regression", "regression")):
        out = tmp_path / task
        assert main(["fit", str(tmp_path / "d.csv"), "--target", "kind", "--task", task, *FAST,
                     "--out", str(out)]) == 0
        assert json.loads((out / "metrics.json").read_text())["task"] == expect
    assert main(["predict", str(tmp_path / "auto" / "model.kan"), str(tmp_path / "d.csv"),
                 "--out", str(tmp_path / "p.csv")]) == 0
    assert set(pd.read_csv(tmp_path / "p.csv")["kind"]) <= {0, 1}


def test_test_size_zero_reports_no_test_metrics(tmp_path):
    _classes(60).drop(columns="kind").assign(f=lambda d: d.x * d.y).to_csv(tmp_path / "d.csv", index=False)
    assert main(["fit", str(tmp_path / "d.csv"), "--target", "f", "--test-size", "0", *FAST,
                 "--out", str(tmp_path / "run")]) == 0
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["n_train"] == 60 and metrics["n_test"] == 0
    assert "train_rmse" in metrics and not [k for k in metrics if k.startswith("test_")]


@pytest.mark.skipif(not has_module("sympy"), reason="sympy absent")
def test_symbolic_formula_kept_when_it_fits(tmp_path, capsys):
    rng = np.random.default_rng(0)
    x, y = rng.uniform(-1, 1, 120), rng.uniform(-1, 1, 120)
    pd.DataFrame({"x": x, "y": y, "f": x + 2 * y}).to_csv(tmp_path / "d.csv", index=False)
    out = tmp_path / "run"
    assert main(["fit", str(tmp_path / "d.csv"), "--target", "f", "--width", "1", "--grid", "3", "--steps", "5",
                 "--symbolic", "--quiet", "--out", str(out)]) == 0
    assert "formula kept" in capsys.readouterr().out
    metrics = json.loads((out / "metrics.json").read_text())
    rep = metrics["symbolic_report"]
    assert metrics["symbolic"] and rep["kept"] and rep["snapped"] == rep["edges"] == 3
    assert rep["symbolic_scores"]["rmse"] <= 2.0 * rep["numeric_scores"]["rmse"]
    assert metrics["test_rmse"] == pytest.approx(rep["symbolic_scores"]["rmse"])  # the saved model is the formula
    import sympy

    text = (out / "formula.txt").read_text()
    f = sympy.lambdify(sympy.symbols("x y"), sympy.sympify(text.split("=", 1)[1]))
    model = kanlab.load(out / "model.kan")
    np.testing.assert_allclose(f(x, y), model(np.stack([x, y], 1)).detach().numpy()[:, 0], atol=1e-6)
    assert main(["formula", str(out / "model.kan")]) == 0
    assert capsys.readouterr().out == text


@pytest.mark.skipif(not has_module("sympy"), reason="sympy absent")
def test_symbolic_formula_refused_when_it_loses_the_fit(tmp_path, capsys):
    rng = np.random.default_rng(0)
    x, y = rng.uniform(-1, 1, 150), rng.uniform(-1, 1, 150)
    # a bump plus a line on the same input: no single library function c f(a x + b) + d fits it
    pd.DataFrame({"x": x, "y": y, "f": np.exp(-8 * x ** 2) + x + y}).to_csv(tmp_path / "d.csv", index=False)
    out = tmp_path / "run"
    args = ["fit", str(tmp_path / "d.csv"), "--target", "f", "--width", "1", "--grid", "5", "--steps", "10",
            "--symbolic", "--quiet", "--out", str(out)]
    assert main(args + ["--symbolic-r2", "0"]) == 0  # every edge snaps; the whole formula is worse
    assert "numeric model kept" in capsys.readouterr().out
    metrics = json.loads((out / "metrics.json").read_text())
    rep = metrics["symbolic_report"]
    assert not metrics["symbolic"] and not rep["kept"]
    assert rep["symbolic_scores"]["rmse"] > 2.0 * rep["numeric_scores"]["rmse"]
    assert metrics["test_rmse"] == pytest.approx(rep["numeric_scores"]["rmse"])  # the saved model is numeric
    assert (out / "formula.txt").read_text().startswith("# no formula: numeric model kept")
    _one_line_error(capsys, main(["formula", str(out / "model.kan")]), "no formula")
    assert main(args) == 0  # the default r^2 gate stops before snapping
    rep = json.loads((out / "metrics.json").read_text())["symbolic_report"]
    assert not rep["kept"] and rep["snapped"] < rep["edges"] and "symbolic_scores" not in rep


def test_predict_output_format_by_suffix(tmp_path):
    model = kanlab.KAN([2, 2, 1], input_names=["x", "y"], output_names=["f"], dtype=torch.float64)
    model.save(tmp_path / "m.kan")
    frame = _classes(30).drop(columns="kind")
    frame.to_csv(tmp_path / "d.csv", index=False)
    expect = model(frame.to_numpy()).detach().numpy()[:, 0]
    readers = {"p.csv": pd.read_csv, "p.tsv": lambda p: pd.read_csv(p, sep="\t"), "p.json": lambda p: pd.read_json(p, precise_float=True)}
    if has_module("pyarrow"):
        readers["p.parquet"] = pd.read_parquet
    for name, read in readers.items():
        assert main(["predict", str(tmp_path / "m.kan"), str(tmp_path / "d.csv"), "--out", str(tmp_path / name)]) == 0
        np.testing.assert_allclose(read(tmp_path / name)["f"].to_numpy(), expect, rtol=1e-14, err_msg=name)
    if has_module("pyarrow"):
        assert (tmp_path / "p.parquet").read_bytes()[:4] == b"PAR1"  # Parquet, not CSV text


def test_version_and_closed_pipe(tmp_path):
    r = subprocess.run([sys.executable, "-m", "kanlab", "--version"], env=_env(), capture_output=True, text=True)
    assert r.returncode == 0 and r.stdout.strip() == f"kanlab {kanlab.__version__}"
    model = kanlab.KAN([2, 2, 1], input_names=["x", "y"], dtype=torch.float64)
    model.save(tmp_path / "m.kan")
    _classes(8000).drop(columns="kind").to_csv(tmp_path / "d.csv", index=False)  # ~170 kB out: past the pipe buffer
    env = dict(_env(), KANLAB_NO_CPP="1")  # no C++ build inside this test
    proc = subprocess.Popen([sys.executable, "-m", "kanlab", "predict", "m.kan", "d.csv"], cwd=tmp_path, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdout.readline().strip() == b"y0"
    proc.stdout.close()  # what `| head -1` does
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=120) == 141 and err == "", err


@pytest.mark.parametrize("case, pattern", [
    ("huge_target", "diverged"),
    ("huge_grid", "exceed the"),
    ("proba_regression", "--proba needs a classifier"),
    ("bad_suffix", "unknown output format"),
    ("one_class", "single class"),
    ("two_targets_classification", "one target column"),
    ("bad_tolerance", "--symbolic-tolerance"),
])
def test_user_errors_are_one_line_exit_2(tmp_path, capsys, case, pattern):
    frame = _classes(40)
    frame["f"] = frame["x"] - frame["y"]
    args = ["fit", str(tmp_path / "d.csv"), "--target", "f", "--features", "x,y", *FAST, "--out", str(tmp_path / "run")]
    if case == "huge_target":
        frame["f"] *= 1e200
    elif case == "huge_grid":
        args[args.index("--grid") + 1] = "1000000"
    elif case == "one_class":
        frame["kind"] = "same"
        args[3] = "kind"
    elif case == "two_targets_classification":
        args[3] = "kind,f"
        args += ["--task", "classification"]
    elif case == "bad_tolerance":
        args += ["--symbolic", "--symbolic-tolerance", "0.5"]
    frame.to_csv(tmp_path / "d.csv", index=False)
    if case in ("proba_regression", "bad_suffix"):
        kanlab.KAN([2, 2, 1], input_names=["x", "y"]).save(tmp_path / "m.kan")
        out = "p.csv" if case == "proba_regression" else "p.xlsx"
        args = ["predict", str(tmp_path / "m.kan"), str(tmp_path / "d.csv"), "--out", str(tmp_path / out),
                *(["--proba"] if case == "proba_regression" else [])]
    _one_line_error(capsys, main(args), pattern)
    assert not (tmp_path / "run").exists()


def test_build_kernels_and_the_demo_builds_before_timing(monkeypatch, capsys):
    import kanlab.cli_commands as commands
    import kanlab.demo as demo
    import kanlab.kernels

    events = []
    monkeypatch.setattr(kanlab.kernels, "load_extension", lambda: events.append("build") or object())
    assert main(["build-kernels"]) == 0 and events == ["build"]
    assert "C++ kernels ready" in capsys.readouterr().out

    def fake_grid_extension(width, steps, progress):
        events.append("timed fit")
        yield demo.DemoRow(tuple(width), 0, 3, 10, 1e-2, 1e-2, 0.5)

    monkeypatch.setattr(demo, "grid_extension", fake_grid_extension)
    events.clear()
    assert main(["demo", "--quiet", "--steps", "1"]) == 0
    assert events == ["build", "timed fit", "timed fit"]  # the build happens before any timed row
    monkeypatch.setattr(commands, "build_extension", lambda: (None, "no compiler"))
    assert main(["build-kernels"]) == 1
    assert "no compiler" in capsys.readouterr().err
