"""Data-parallel training on ``torch.distributed`` (DDP-style, e.g. launched with ``torchrun``).

:func:`kanlab.fit` calls :func:`data_parallel` and, when the process group has more than one
rank, uses the returned :class:`DataParallel` to

* start every rank from rank 0's parameters and buffers,
* split each global batch of a :class:`~kanlab.Dataset` across the ranks (the batch order
  comes from ``fit``'s ``seed``, the same on every rank); a DataLoader is taken as already
  sharded (e.g. by a ``DistributedSampler``),
* average the gradients (weighted by each rank's batch share, so the step equals the step on
  the global batch for mean-reduced losses) and the logged loss after every backward pass,
* update the grids on identical data everywhere: the whole training input of a Dataset (which
  must be the same on every rank; checked), or the gathered batches of all ranks.

The sparsity regularizer (``lamb > 0``) is computed on each rank's share of the batch, as
DDP does for batch statistics. Only rank 0 shows progress and writes files
(:func:`kanlab.io.save` checks :func:`is_rank_zero`).

Example (2 processes on one machine)::

    torchrun --nproc_per_node 2 train.py    # train.py: dist.init_process_group("gloo"); model.fit(...)
"""
from __future__ import annotations

import os

import torch
from torch import Tensor

__all__ = ["DataParallel", "data_parallel", "init_from_env", "is_distributed", "is_rank_zero", "rank"]


def is_distributed() -> bool:
    """True inside an initialised process group with more than one rank."""
    import torch.distributed as dist

    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def rank() -> int:
    """This process's rank (0 outside torch.distributed)."""
    import torch.distributed as dist

    return dist.get_rank() if dist.is_available() and dist.is_initialized() else 0


def is_rank_zero() -> bool:
    """True for the process that writes files and shows progress."""
    return rank() == 0


def init_from_env(backend: str | None = None) -> bool:
    """Join the process group that ``torchrun`` describes (``WORLD_SIZE > 1`` in the environment),
    unless already joined. Returns True when this call initialised it (the caller then owns it).
    ``backend`` defaults to nccl with CUDA, gloo otherwise."""
    import torch.distributed as dist

    if int(os.environ.get("WORLD_SIZE", "1")) <= 1 or not dist.is_available() or dist.is_initialized():
        return False
    dist.init_process_group(backend or ("nccl" if torch.cuda.is_available() else "gloo"))
    return True


def data_parallel() -> DataParallel | None:
    """The helper :func:`kanlab.fit` uses under torch.distributed, None otherwise."""
    return DataParallel() if is_distributed() else None


class DataParallel:
    """Collective operations of one data-parallel training run (the default process group)."""

    def __init__(self):
        import torch.distributed as dist

        self.dist = dist
        self.rank, self.world_size = dist.get_rank(), dist.get_world_size()

    # ------------------------------------------------------------------ set-up
    @torch.no_grad()
    def prepare(self, model, source) -> None:
        """Copy rank 0's parameters and buffers everywhere; check a Dataset is the same on all ranks."""
        for t in model.state_dict().values():
            self.dist.broadcast(t, src=0)
        if source.train is not None:
            self._check_same(source.train[0], "data['train_input']")
            self._check_same(source.train[1], "data['train_label']")

    def _check_same(self, t: Tensor, name: str) -> None:
        d = t.detach().to(torch.float64)
        summary = torch.tensor([float(d.shape[0]), float(d.sum()), float((d * d).sum())], dtype=torch.float64,
                               device=t.device)
        lo, hi = summary.clone(), summary.clone()
        self.dist.all_reduce(lo, op=self.dist.ReduceOp.MIN)
        self.dist.all_reduce(hi, op=self.dist.ReduceOp.MAX)
        if not torch.equal(lo, hi):
            raise ValueError(f"{name} differs between ranks; under torch.distributed every rank must pass the "
                             "same Dataset (or pass each rank its own DataLoader shard)")

    # ------------------------------------------------------------------ per step
    def local_batch(self, source, x: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
        """This rank's contiguous share of a Dataset batch; a DataLoader batch is already local.

        Shape: ``(B, ...)`` -> ``(~B / world_size, ...)``.
        """
        if source.train is None:
            return x, y
        if x.shape[0] < self.world_size:
            raise ValueError(f"a batch of {x.shape[0]} samples cannot be split over {self.world_size} ranks; "
                             "use a larger batch_size")
        return x.tensor_split(self.world_size)[self.rank], y.tensor_split(self.world_size)[self.rank]

    def grid_input(self, source, x: Tensor) -> Tensor:
        """Samples for a grid update, identical on every rank: the Dataset's training input, or
        every rank's batch gathered (rank order). Shape: ``(N_total, n_in)``."""
        return source.grid_input(x) if source.train is not None else self.gather_rows(x)

    @torch.no_grad()
    def average_gradients(self, params, n_local: int, *values: Tensor) -> list[Tensor]:
        """Replace each gradient by the batch-size-weighted mean over ranks, in one all-reduce.

        ``values`` (scalars such as the loss) are averaged the same way and returned.
        """
        grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in params]
        ref = grads[0] if grads else values[0]
        flat = torch.cat([g.reshape(-1) for g in grads] + [v.reshape(1).to(ref.dtype) for v in values]
                         + [ref.new_ones(1)])
        flat.mul_(n_local)  # last entry: the sample count
        self.dist.all_reduce(flat)
        flat[:-1].div_(flat[-1])
        offset = 0
        for p, g in zip(params, grads):
            g.copy_(flat[offset:offset + g.numel()].view_as(g))
            p.grad = g
            offset += g.numel()
        return [flat[offset + i].to(v.dtype) for i, v in enumerate(values)]

    def gather_rows(self, x: Tensor) -> Tensor:
        """Concatenate every rank's rows (ranks may hold different counts), in rank order.

        Shape: ``(n_r, d)`` on rank r -> ``(sum_r n_r, d)`` on every rank.
        """
        n = torch.tensor([x.shape[0]], dtype=torch.long, device=x.device)
        counts = [torch.zeros_like(n) for _ in range(self.world_size)]
        self.dist.all_gather(counts, n)
        rows = [int(c) for c in counts]
        padded = x.new_zeros((max(rows), *x.shape[1:]))
        padded[: x.shape[0]] = x
        parts = [torch.empty_like(padded) for _ in range(self.world_size)]
        self.dist.all_gather(parts, padded.contiguous())
        return torch.cat([p[:c] for p, c in zip(parts, rows)])
