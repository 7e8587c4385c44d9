"""Two gloo processes on CPU train exactly like one process on the same global batches."""
import os

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

import kanlab
from kanlab import KAN

STEPS, BATCH = 12, 64
FIT = dict(steps=STEPS, optimizer="adam", lr=2e-2, grid_update_num=3, stop_grid_update_step=9,
           progress=False, seed=3)


def _data():
    return kanlab.datasets.from_function(lambda x: torch.exp(torch.sin(torch.pi * x[:, 0]) + x[:, 1] ** 2),
                                         n_var=2, n_train=256, n_test=64, seed=0, dtype=torch.float64)


def _global_batches():
    g = torch.Generator().manual_seed(5)
    data = _data()
    return [(data.train_input[idx], data.train_label[idx])
            for idx in (torch.randperm(256, generator=g)[:BATCH] for _ in range(STEPS))]


def _model(seed=0):
    return KAN(width=[2, 3, 1], grid_size=5, seed=seed, dtype=torch.float64)


def _worker(rank, world, init_file, out_dir):
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world)
    try:
        # Dataset path: fit splits every global batch; rank 1 starts from other parameters
        model = _model(seed=rank)
        history = model.fit(_data(), batch_size=BATCH, **FIT)
        assert kanlab.save(model, os.path.join(out_dir, "model.kan")) is (rank == 0)
        torch.save({k: v.clone() for k, v in model.state_dict().items()}, os.path.join(out_dir, f"ds{rank}.pt"))
        torch.save(history.train_loss, os.path.join(out_dir, f"loss{rank}.pt"))
        # DataLoader path: each rank gets its own half of every global batch
        model = _model()
        shards = [(x[rank::world], y[rank::world]) for x, y in _global_batches()]
        model.fit(shards, **FIT)
        torch.save(model.state_dict(), os.path.join(out_dir, f"dl{rank}.pt"))
        # full-batch LBFGS (one step = 20 iterations; over more steps LBFGS amplifies the last-bit
        # differences of summing gradients in another order): each rank takes half of the training set
        model = _model()
        model.fit(_data(), steps=1, optimizer="lbfgs", progress=False)
        torch.save(model.state_dict(), os.path.join(out_dir, f"lb{rank}.pt"))
    finally:
        dist.destroy_process_group()


def test_two_process_gloo_equals_single_process(tmp_path):
    mp.spawn(_worker, args=(2, str(tmp_path / "init"), str(tmp_path)), nprocs=2, join=True)
    assert sorted(p.name for p in tmp_path.glob("*.kan")) == ["model.kan"]  # only rank 0 wrote

    ref = _model()
    ref_history = ref.fit(_data(), batch_size=BATCH, **FIT)
    ref_loader = _model()
    ref_loader.fit(_global_batches(), **FIT)
    ref_lbfgs = _model()
    ref_lbfgs.fit(_data(), steps=1, optimizer="lbfgs", progress=False)
    # the shards' gradients are summed in another order than one process sums them (float64 round-off,
    # ~1e-16); Adam steps keep that at 1e-10, one L-BFGS step (20 line-searched iterations) amplifies it
    for name, reference, atol in (("ds", ref, 1e-10), ("dl", ref_loader, 1e-10), ("lb", ref_lbfgs, 1e-8)):
        states = [torch.load(tmp_path / f"{name}{r}.pt") for r in range(2)]
        for key, value in reference.state_dict().items():
            assert torch.equal(states[0][key], states[1][key]), f"{name}: ranks differ in {key}"
            diff = (states[0][key] - value).abs().max()
            assert torch.allclose(states[0][key], value, rtol=0, atol=atol), f"{name}: {key} differs by {diff}"
        assert not torch.equal(states[0]["layers.0.grid"], _model().layers[0].grid)  # grids were updated
    loss = torch.load(tmp_path / "loss0.pt")
    assert loss == pytest.approx(ref_history.train_loss, rel=1e-9)  # the logged loss is the global one
    saved = kanlab.load(tmp_path / "model.kan").state_dict()
    assert all(torch.equal(saved[k], v) for k, v in torch.load(tmp_path / "ds0.pt").items())
