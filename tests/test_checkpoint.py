"""Checkpoints and interruptions: a killed-and-resumed run ends bitwise equal to an uninterrupted
one; Ctrl-C (also inside the L-BFGS line search) leaves the model at the last completed step."""
import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest
import torch

import kanlab
from kanlab import KAN
from kanlab.checkpoint import read_checkpoint

SRC = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "src")

# One script for the child and the parent: same data, model and arguments.
SETUP = textwrap.dedent("""
    import time, torch, kanlab
    torch.set_num_threads(1)
    def setup(optimizer):
        data = kanlab.datasets.from_function(lambda x: torch.sin(3 * x[:, :1]) * x[:, 1:], n_var=2,
                                             n_train=96, n_test=32, seed=3, dtype=torch.float64)
        model = kanlab.KAN([2, 3, 1], grid_size=4, seed=1, dtype=torch.float64)
        kw = dict(steps=12, optimizer=optimizer, progress=False, stop_grid_update_step=9, grid_update_num=3,
                  max_iter=4)
        if optimizer == "adam":
            kw.update(batch_size=20, lr=1e-2, lamb=1e-3)
        return model, data, kw
""")


def _setup(optimizer):
    scope = {}
    exec(SETUP, scope)  # noqa: S102 - the test's own fixed script
    return scope["setup"](optimizer)


def _same(a, b):
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys()
    for k in sa:
        assert torch.equal(sa[k], sb[k]), k


@pytest.mark.parametrize("optimizer", ["lbfgs", "lm", "adam"])
def test_sigkill_then_resume_is_bitwise_uninterrupted(tmp_path, optimizer):
    torch.set_num_threads(1)
    ckpt = tmp_path / "run.ckpt"
    child = SETUP + textwrap.dedent(f"""
        model, data, kw = setup({optimizer!r})
        slow = lambda step, model, history: time.sleep(0.15)  # room for the parent to kill mid-run
        model.fit(data, checkpoint={str(ckpt)!r}, checkpoint_every=2, callbacks=[slow], **kw)
        print("FINISHED")
    """)
    proc = subprocess.Popen([sys.executable, "-c", child], env=dict(os.environ, PYTHONPATH=SRC),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.time() + 120
        while not ckpt.exists() and time.time() < deadline and proc.poll() is None:
            time.sleep(0.02)
        proc.send_signal(signal.SIGKILL)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert b"FINISHED" not in out, "the child finished before it was killed"
    assert ckpt.exists(), err.decode()[-2000:]
    done = read_checkpoint(ckpt)["step"]
    assert 2 <= done < 12
    assert not [p for p in tmp_path.iterdir() if p.suffix == ".tmp" and p.name.startswith(".run")]

    resumed, data, kw = _setup(optimizer)
    hist = resumed.fit(data, resume=ckpt, **kw)
    straight, data, kw = _setup(optimizer)
    ref = straight.fit(data, **kw)
    _same(resumed, straight)
    assert hist.train_loss == ref.train_loss and hist.test_rmse == ref.test_rmse
    assert hist.grid_update_steps == ref.grid_update_steps


def test_resume_refuses_other_settings_and_models(tmp_path):
    model, data, kw = _setup("lbfgs")
    kw["steps"] = 2
    model.fit(data, checkpoint=tmp_path / "c.ckpt", **kw)
    other, data, _ = _setup("lbfgs")
    before = {k: v.clone() for k, v in other.state_dict().items()}
    with pytest.raises(ValueError, match="other fit settings.*max_iter"):
        other.fit(data, resume=tmp_path / "c.ckpt", **dict(kw, max_iter=5))
    with pytest.raises(ValueError, match="another architecture"):
        KAN([2, 4, 1], grid_size=4, dtype=torch.float64).fit(data, resume=tmp_path / "c.ckpt", **kw)
    with pytest.raises(ValueError, match="no such file"):
        other.fit(data, resume=tmp_path / "missing.ckpt", **kw)
    (tmp_path / "junk.ckpt").write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="junk.ckpt"):
        other.fit(data, resume=tmp_path / "junk.ckpt", **kw)
    for k, v in other.state_dict().items():
        assert torch.equal(v, before[k]), k
    with pytest.raises(TypeError, match="checkpoint"):
        other.fit(data, checkpoint=3, **kw)
    with pytest.raises(ValueError, match="checkpoint_every"):
        other.fit(data, checkpoint=tmp_path / "d.ckpt", checkpoint_every=0, **kw)


def test_resume_extends_a_finished_run(tmp_path):
    """A run of 6 steps resumed to 12 equals a run of 12 (steps may grow on resume; the warm
    start's length depends on steps, so it is off here)."""
    torch.set_num_threads(1)
    model, data, kw = _setup("lbfgs")
    kw["warm_start"] = False
    model.fit(data, checkpoint=tmp_path / "c.ckpt", **dict(kw, steps=6))
    assert read_checkpoint(tmp_path / "c.ckpt")["step"] == 6  # the last step is always written
    model2, data, _ = _setup("lbfgs")
    model2.fit(data, resume=tmp_path / "c.ckpt", **kw)
    ref, data, _ = _setup("lbfgs")
    ref.fit(data, **kw)
    _same(model2, ref)


def test_resume_keeps_the_optimizer_auto_chose(tmp_path):
    """auto gives a fresh deep KAN L-BFGS and a trained one Levenberg-Marquardt; a resumed run
    (its model is no longer fresh) must go on with what the first part chose."""
    torch.set_num_threads(1)

    def run(steps, **extra):
        data = kanlab.datasets.from_function(lambda x: torch.sin(3 * x[:, :1]) * x[:, 1:], n_var=2,
                                             n_train=64, n_test=16, seed=3, dtype=torch.float64)
        model = KAN([2, 2, 1, 1], grid_size=3, seed=1, dtype=torch.float64)
        hist = model.fit(data, steps=steps, warm_start=False, update_grid=False, progress=False, max_iter=4,
                         **extra)
        return model, hist

    _, first = run(4, checkpoint=tmp_path / "c.ckpt")
    resumed, hist = run(8, resume=tmp_path / "c.ckpt")
    ref, ref_hist = run(8)
    assert first.optimizer == hist.optimizer == ref_hist.optimizer == "lbfgs"
    _same(resumed, ref)


class _InterruptAt:
    """A loss that raises KeyboardInterrupt at its ``at``-th call (counting calls)."""

    def __init__(self, at=None):
        self.at, self.calls = at, 0

    def __call__(self, pred, y):
        self.calls += 1
        if self.calls == self.at:
            raise KeyboardInterrupt
        return torch.mean((pred - y) ** 2)


def test_ctrl_c_in_lbfgs_line_search_keeps_last_completed_step():
    torch.set_num_threads(1)
    model, data, kw = _setup("lbfgs")
    kw["warm_start"] = False  # its length depends on steps; the reference below takes fewer
    counter, calls_after = _InterruptAt(), []
    model.fit(data, loss=counter, callbacks=[lambda s, m, h: calls_after.append(counter.calls)], **kw)
    step = 5  # interrupt inside step 5, a few evaluations in (the line search of its first iteration or later)
    assert calls_after[step] - calls_after[step - 1] >= 3
    at = calls_after[step - 1] + 3
    model, data, _ = _setup("lbfgs")
    with pytest.raises(KeyboardInterrupt):
        model.fit(data, loss=_InterruptAt(at), **kw)
    ref, data, _ = _setup("lbfgs")
    ref.fit(data, loss=_InterruptAt(), **dict(kw, steps=step))  # exactly the completed steps
    _same(model, ref)


def test_checkpoint_file_is_a_valid_model(tmp_path):
    model, data, kw = _setup("adam")
    model.fit(data, checkpoint=tmp_path / "c.ckpt", **dict(kw, steps=3))
    state = read_checkpoint(tmp_path / "c.ckpt")
    back = kanlab.io.model_from_bytes(state["model"].numpy().tobytes())
    _same(back, model)
    assert len(state["history"]["train_loss"]) == 3 and state["optimizer"]["state"]
