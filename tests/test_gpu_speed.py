"""benchmarks/gpu_speed.py --dry-run: the GPU benchmark's script runs end to end (tiny shapes,
CPU tensors, the Triton kernels in Triton's interpreter) and reports every contender."""
import os
import subprocess
import sys

import pytest

pytest.importorskip("triton", reason="the benchmark's Triton rows need the optional dependency triton")

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
CONTENDERS = ["kanlab auto", "kanlab triton:tile", "kanlab triton:scatter", "kanlab dense", "kanlab sparse",
              "kanlab reference", "dense limit", "efficient-kan", "MLP"]


def test_dry_run_prints_the_table_with_every_contender(tmp_path):
    out = tmp_path / "table.md"
    env = dict(os.environ, TRITON_INTERPRET="1", KANLAB_NO_CPP="1", OMP_NUM_THREADS="1")
    run = subprocess.run([sys.executable, os.path.join(ROOT, "benchmarks", "gpu_speed.py"), "--dry-run",
                          "--out", str(out)], env=env, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    text = out.read_text()
    assert text.strip() == run.stdout.strip()
    rows = [line.split("|")[1:-1] for line in text.splitlines() if line.startswith("| (")]
    assert [r[1].strip() for r in rows] == CONTENDERS
    for r in rows:
        assert all(float(v) > 0 for v in r[2:4]), r  # fwd and f+b times
        if r[1].strip().startswith("kanlab"):
            assert float(r[-1]) < 1e-4, r  # error against the float64 reference
