"""Smoke test of benchmarks/paper on tiny sizes: every experiment runs and writes its report."""
import sys
from pathlib import Path

import pytest
import torch

pytest.importorskip("matplotlib")
pytest.importorskip("scipy")
ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks.paper.__main__ import main  # noqa: E402
from benchmarks.paper.common import TINY, loglog_slope  # noqa: E402


def test_loglog_slope_recovers_power_law():
    g = [5, 10, 20, 50]
    assert loglog_slope(g, [3.0 * x ** -4 for x in g]) == pytest.approx(-4.0)
    assert loglog_slope([1], [1]) != loglog_slope([1], [1])  # NaN with one point


def test_paper_benchmark_tiny_run_writes_report(tmp_path):
    path = main(["--out", str(tmp_path)], settings=TINY)
    text = path.read_text()
    for heading in ("(a) Grid extension", "(b) Scaling laws", "(c) Special functions", "(d) Poisson PINN",
                    "(e) Continual learning"):
        assert heading in text
    # every row of (c) is named, with the paper's number beside ours
    assert "I.16.6" in text and "1.19e-03" in text and "jv" in text and "4.93e-03" in text
    pngs = sorted(p.name for p in tmp_path.glob("*.png"))
    assert pngs == ["paper_a_grid_extension.png", "paper_a_rmse_vs_G.png", "paper_b_scaling.png",
                    "paper_c_tables.png", "paper_d_pinn.png", "paper_e_continual.png"]


def test_sections_run_one_at_a_time_are_assembled_and_other_modes_ignored(tmp_path):
    import dataclasses
    import json

    main(["--out", str(tmp_path), "--only", "e"], settings=TINY)
    text = main(["--out", str(tmp_path), "--only", "a"], settings=TINY).read_text()
    assert "(a) Grid extension" in text and "(e) Continual learning" in text  # (e) was kept
    assert "(b) Scaling laws" not in text
    other = dataclasses.replace(TINY, name="other")
    text = main(["--out", str(tmp_path), "--only", "a"], settings=other).read_text()
    assert "(a) Grid extension" in text and "(e) Continual learning" not in text  # tiny's (e) is not "other"
    assert json.loads((tmp_path / "section_a.json").read_text())["mode"] == "other"
    assert not list(tmp_path.glob("*.tmp"))


def test_only_flag_rejects_unknown_experiment(tmp_path):
    with pytest.raises(SystemExit):
        main(["--out", str(tmp_path), "--only", "z"], settings=TINY)


@pytest.mark.slow
def test_continual_learning_kan_keeps_first_peak():
    """Acceptance (e): after the fifth phase the KAN's RMSE on the first peak's region < 1e-2,
    while the MLP forgets it."""
    import dataclasses

    from benchmarks.paper import continual
    from benchmarks.paper.common import QUICK
    from kanlab.datasets import continual_peaks
    s = dataclasses.replace(QUICK, e_steps=20)
    phases = continual_peaks(n_per_phase=s.e_points, n_test=200, seed=0)
    kan_err, _ = continual.run_phases(continual.make_kan(), phases, s.e_steps, dict(update_grid=False))
    mlp = continual.MLP(1, s.e_mlp_hidden, 1, seed=0)
    mlp_err, _ = continual.run_phases(mlp, phases, s.e_steps, dict(update_grid=False))
    assert kan_err[-1][0] < 1e-2
    assert mlp_err[-1][0] > 10 * kan_err[-1][0]


def test_table_rows_in_worker_processes_match_the_serial_run():
    import dataclasses

    from benchmarks.paper import tables

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # the workers' share: the same summation order on both sides
    try:
        serial = tables.run_rows(TINY)
        parallel = tables.run_rows(dataclasses.replace(TINY, jobs=2))
    finally:
        torch.set_num_threads(threads)
    assert [r["name"] for r in parallel] == [r["name"] for r in serial] == [r[1] for r in tables.rows(TINY)]
    for a, b in zip(serial, parallel):
        assert b["kan"]["test"] == pytest.approx(a["kan"]["test"], rel=1e-6)
        assert b["mlp"]["test"] == pytest.approx(a["mlp"]["test"], rel=1e-6)


def test_jobs_flag_rejects_non_positive(tmp_path):
    with pytest.raises(SystemExit):
        main(["--out", str(tmp_path), "--jobs", "0"], settings=TINY)


def test_grid_extension_restarts_extend_the_seed_with_lowest_training_rmse():
    from benchmarks.paper.common import grid_extension
    from kanlab.datasets import FEYNMAN, sample_function
    data = sample_function(FEYNMAN["I.16.6"], n_train=64, n_test=64, seed=0)
    alone = [grid_extension([2, 2, 1], data, (3, 5), 3, seed=s)[1] for s in (0, 1, 2)]
    best = min(alone, key=lambda recs: recs[0]["train"])
    picked = grid_extension([2, 2, 1], data, (3, 5), 3, seed=0, restarts=3)[1]
    assert [r["G"] for r in picked] == [3, 5]
    for got, want in zip(picked, best):
        assert got["train"] == pytest.approx(want["train"], rel=1e-9)
        assert got["test"] == pytest.approx(want["test"], rel=1e-9)
    assert len({round(recs[0]["train"], 12) for recs in alone}) > 1  # the seeds do differ
