import subprocess
import sys

import numpy as np
import pytest

from kanlab.demo import grid_extension


def test_grid_extension_reaches_paper_accuracy():
    """[2,1,1] on exp(sin(pi x) + y^2), seed 0, no restarts: test RMSE falls with G and
    reaches <= 3e-6 at G=50 (the first grid stalled near 0.4 before fit probed a warm start)."""
    rows = list(grid_extension((2, 1, 1), grids=(3, 5, 10, 20, 50), steps=50, seed=0))
    rmse = [r.test_rmse for r in rows]
    assert all(b < a for a, b in zip(rmse, rmse[1:]))
    assert rmse[-1] <= 3e-6
    assert [r.grid_size for r in rows] == [3, 5, 10, 20, 50]


def test_cli_demo_help():
    out = subprocess.run([sys.executable, "-m", "kanlab.cli", "demo", "--help"], capture_output=True, text=True)
    assert out.returncode == 0 and "--steps" in out.stdout


@pytest.mark.slow
def test_paper_grid_extension_scaling_with_3000_points():
    """The KAN paper's scaling run: slope of log test RMSE vs log G over 5..50 <= -3, G=50 <= 1e-6."""
    rows = list(grid_extension((2, 1, 1), grids=(3, 5, 10, 20, 50), steps=100, n_train=3000, seed=0))
    g = np.log([r.grid_size for r in rows[1:]])
    e = np.log([r.test_rmse for r in rows[1:]])
    slope = np.polyfit(g, e, 1)[0]
    assert slope <= -3, slope
    assert rows[-1].test_rmse <= 1e-6
