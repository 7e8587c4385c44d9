"""Every README code block runs as written, with small sizes.

All ```python blocks run in order in one namespace (later blocks use what earlier ones define),
in a temporary working directory. The ```bash lines that call `kanlab` run there too, on a small
generated ``data.csv`` (columns x0, x1, y) and ``new.csv``. Sizes are shrunk by the substitutions
in :data:`SHRINK` (and ``--steps 2`` is added to ``kanlab fit`` lines without ``--steps``), so
the blocks run in seconds; nothing else in them is changed. Lines that need more than one process
(``torchrun``: covered by tests/test_distributed.py) or are not kanlab (``make``) are skipped.
"""
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from conftest import has_module

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"

# (pattern, replacement): steps and sample counts in the python blocks, --steps in the bash lines
SHRINK = [
    (r"\bsteps=\d+", "steps=2"),
    (r"\bsparse_steps=\d+", "sparse_steps=2"),
    (r"\bn_train=\d+", "n_train=200"),
    (r"\bn_test=\d+", "n_test=100"),
    (r"--steps \d+", "--steps 2"),
]
# `kanlab` commands that may answer with exit 2 and this one-line message when the shrunk run
# legitimately ends elsewhere (--symbolic keeps a formula only when it keeps the fit)
ALLOWED_REFUSALS = {"kanlab formula": "has no formula"}


def blocks(language: str) -> list[str]:
    """The README's fenced code blocks of ``language``, in order."""
    return re.findall(rf"^```{language}\n(.*?)^```", README.read_text(), flags=re.S | re.M)


def shrink(code: str) -> str:
    for pattern, replacement in SHRINK:
        code = re.sub(pattern, replacement, code)
    return code


def test_shrink_changes_only_sizes():
    assert shrink("model.fit(data, steps=50, lr=1e-3, n_train=1000)") == "model.fit(data, steps=2, lr=1e-3, n_train=200)"
    assert shrink("kanlab fit d.csv --steps 300 --grid 3,5") == "kanlab fit d.csv --steps 2 --grid 3,5"
    assert blocks("python") and blocks("bash")


@pytest.mark.skipif(not (has_module("sympy") and has_module("sklearn") and has_module("matplotlib")),
                    reason="the README uses the optional extras")
def test_python_blocks_run(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # blocks write model.kan etc. into the working directory
    import matplotlib

    matplotlib.use("Agg")
    namespace = {"__name__": "__readme__"}
    for i, code in enumerate(blocks("python")):
        try:
            exec(compile(shrink(code), f"README.md python block {i + 1}", "exec"), namespace)
        except Exception as err:  # name the block: the traceback alone points at exec
            raise AssertionError(f"README python block {i + 1} failed: {type(err).__name__}: {err}\n"
                                 f"{shrink(code)}") from err


def _kanlab_lines() -> list[str]:
    lines = [line.split("#")[0].strip() for block in blocks("bash") for line in block.splitlines()]
    return [line for line in lines if line.startswith("kanlab ")]


@pytest.mark.skipif(not has_module("pandas"), reason="the CLI reads tables with pandas")
def test_bash_kanlab_lines_run(tmp_path):
    import pandas as pd

    rng = np.random.default_rng(0)
    for name, n in (("data.csv", 200), ("new.csv", 20)):
        x0, x1 = rng.uniform(-1, 1, n), rng.uniform(-1, 1, n)
        pd.DataFrame({"x0": x0, "x1": x1, "y": np.exp(np.sin(np.pi * x0) + x1 ** 2)}).to_csv(tmp_path / name,
                                                                                             index=False)
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src") + os.pathsep + os.environ.get("PYTHONPATH", ""),
               OMP_NUM_THREADS="1")
    lines = _kanlab_lines()
    assert any(line.startswith("kanlab fit") for line in lines)
    for line in lines:
        line = shrink(line)
        if line.startswith("kanlab fit") and "--steps" not in line:
            line += " --steps 2"
        argv = shlex.split(line)
        r = subprocess.run([sys.executable, "-m", "kanlab", *argv[1:], *(["--quiet"] if argv[1] == "fit" else [])],
                           cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
        refusal = next((msg for cmd, msg in ALLOWED_REFUSALS.items() if line.startswith(cmd)), None)
        if r.returncode == 2 and refusal is not None and refusal in r.stderr:
            assert r.stderr.count("\n") == 1, r.stderr
            continue
        assert r.returncode == 0, f"{line}\n{r.stderr}"
