"""fit(model, data, ...) -> History: LBFGS or Adam(W), grid updates, regularization, callbacks."""
from __future__ import annotations

import time
from collections.abc import Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, Callable

import torch
from torch import Tensor

from .checkpoint import Checkpointer
from .datasets.core import Dataset, as_dataset, is_array_tuple
from .distributed import data_parallel
from .fit_checks import check_batch, check_fit_args, check_loss_value, grid_samples
from .history import History
from .levenberg import LevenbergMarquardt, choose_optimizer, probe_redraws
from .losses import check_labels, evaluate, prepare_labels, resolve_loss
from .network import snapshot
from .optim import LBFGS
from .regularization import regularization
from .validation import check_finite, check_input
from .warm_start import LinearReadout, choose_start, probe_steps

if TYPE_CHECKING:
    from .network import KAN

__all__ = ["fit", "History", "TrainingDiverged", "OPTIMIZERS"]

OPTIMIZERS = ("auto", "lm", "lbfgs", "adam", "adamw")


class TrainingDiverged(FloatingPointError):
    """The loss or the parameters became NaN/inf; the model holds the last good parameters."""


def fit(model: KAN, data, steps: int = 100, optimizer: str = "auto", lr: float | None = None,
        batch_size: int | None = None, loss="mse", lamb: float = 0.0, lamb_l1: float = 1.0,
        lamb_entropy: float = 2.0, lamb_coef: float = 0.0, lamb_coefdiff: float = 0.0,
        update_grid: bool = True, grid_update_num: int = 10, start_grid_update_step: int = -1,
        stop_grid_update_step: int | None = None, weight_decay: float = 0.0, test_data=None,
        callbacks: Iterable[Callable] = (), progress: bool = True, seed: int = 0,
        eval_every: int = 1, max_iter: int = 20, checkpoint=None, checkpoint_every: int = 10,
        resume=None, warm_start="auto") -> History:
    """Train ``model`` in place.

    Args:
        data: a :class:`~kanlab.Dataset`, a pykan-style dict, a tuple ``(x, y)`` or
            ``(x, y, x_test, y_test)`` (tensors or numpy arrays), or any iterable of
            ``(input, label)`` batches (e.g. a ``torch.utils.data.DataLoader``; cycled).
            Floating inputs and labels of another dtype are cast to the model's.
        steps: optimizer steps (an LBFGS step runs up to ``max_iter`` iterations, an LM step
            one damped Gauss-Newton iteration).
        optimizer: ``"auto"`` (default), ``"lm"`` (Levenberg-Marquardt,
            :mod:`kanlab.levenberg`), ``"lbfgs"`` (strong Wolfe line search, history 10),
            ``"adam"`` or ``"adamw"`` (any case). ``"auto"`` is ``"lm"`` for the squared error
            without penalty (``lamb=0``) on one full batch on one process, without ``lr``, on
            a KAN of at most ``LM_MAX_PARAMS`` trainable parameters and ``LM_MAX_ENTRIES``
            Jacobian entries that is either trained already or at most ``LM_MAX_DEPTH`` layers
            deep (:mod:`kanlab.levenberg`), ``"lbfgs"`` otherwise (``History.optimizer`` says
            which). Where Levenberg-Marquardt runs (or will, once a fresh deep model is
            trained), a fresh model's start probe also tries redraws 2 .. ``LM_PROBE_REDRAWS``
            of the initialisation, from the plain and the warm start each, and every candidate
            runs all but the last fifth of ``steps`` before fit keeps one (``warm_start``).
        lr: learning rate (default 1.0 for LBFGS, 1e-3 for Adam/AdamW; not taken by LM).
        batch_size: mini-batch size for a Dataset (None = full batch).
        loss: ``"mse"``, ``"cross_entropy"`` or ``callable(pred, label) -> scalar``.
        lamb, lamb_l1, lamb_entropy, lamb_coef, lamb_coefdiff: sparsity regularization
            (see :func:`kanlab.regularization.regularization`); off when ``lamb == 0``.
        update_grid, grid_update_num, start_grid_update_step, stop_grid_update_step: the
            grid is adapted to the data every ``stop // grid_update_num`` steps while
            ``start <= step < stop``. ``stop`` defaults to ``min(50, steps // 2)``: the KAN
            paper's schedule for its 100-step fits (every 5 steps until 50), and for shorter
            fits the same share of clean steps at the end. Each grid update restarts L-BFGS's
            curvature estimate; with updates until the last steps (the paper's ``stop=50`` in
            a 50-step fit) L-BFGS never gets more than 5 steps in a row, and fits from
            different seeds end 2-5x apart on exp(sin(pi x) + y^2) at G = 3 (within 1.4x with
            the default).
        test_data: evaluation data when ``data`` is a batch iterable (Dataset or (x, y)).
        callbacks: ``cb(step, model, history)``; a callback returning True stops training.
        progress: show a tqdm progress bar.
        seed: drives mini-batch order (the same seed gives the same History).
        checkpoint, checkpoint_every: write an atomic checkpoint file (model, optimizer
            state, step, History) to ``checkpoint`` every ``checkpoint_every`` steps and
            after the last one (see :mod:`kanlab.checkpoint`).
        resume: a checkpoint to continue from; with the same data and arguments the run
            ends bitwise equal to one that was never interrupted (``steps`` may be larger).
        warm_start: ``"auto"`` (default), True or False. A fresh KAN's output layer bends to
            its random hidden features before they mean anything and can fold into a local
            minimum (:mod:`kanlab.warm_start`). With ``"auto"``, the first fit of a model that
            has never been trained (:meth:`KAN.is_fresh`, full-batch data) tries three starts
            for ``min(20, steps // 2)`` steps each (where Levenberg-Marquardt runs, seven starts
            for all but the last fifth of ``steps``; see ``optimizer``): the plain start and the
            warm start (the last layer held linear for the first half of the probe, so the
            layers below learn features for a linear read-out first) from the same initial
            parameters, and the warm start from a second draw of the initialisation; it
            continues the one with the lower training objective. The History says which
            (``start`` = ``"cold"``, ``"warm"``, ``"warm_redrawn"``, ...; ``start_losses``,
            ``warm_start_steps``); the total number of steps is ``steps`` plus the discarded
            probes'. True: the warm start alone (any data); False: the plain start. Callbacks
            and checkpoints see the steps after the probe.

    A grid update that falls on a batch with fewer than 2 samples (a DataLoader's short last
    batch) uses the last batch that had 2 or more. An exception or KeyboardInterrupt during a
    step (the L-BFGS line search included) leaves the model at the last completed step.

    Returns:
        :class:`History`. Raises :class:`TrainingDiverged` on a non-finite loss, after
        restoring the parameters of the last good step.
    """
    optimizer = optimizer.lower() if isinstance(optimizer, str) else optimizer  # "LBFGS" as pykan spells it
    callbacks = check_fit_args(**{k: v for k, v in locals().items() if k in _CHECKED}, optimizers=OPTIMIZERS)
    if warm_start not in (True, False, "auto"):
        raise ValueError(f"warm_start must be True, False or 'auto', got {warm_start!r}")
    ckpt = Checkpointer(checkpoint, checkpoint_every, resume, _settings(locals()))
    kind, loss_fn = resolve_loss(loss)
    fresh = resume is None and getattr(model, "is_fresh", lambda: False)()  # a KAN never trained
    first = ckpt.restore_model(model)
    source = _BatchSource(model, data, kind, batch_size, seed, test_data)
    ddp = data_parallel()  # None unless running under torch.distributed with > 1 rank
    if ddp is not None:
        ddp.prepare(model, source)
    if stop_grid_update_step is None:
        stop_grid_update_step = min(50, max(1, steps // 2))
    n_full = source.train[0].shape[0] if source.full_batch and source.train is not None else None
    redraws = probe_redraws(optimizer, model, n_full, ddp is not None, kind, lamb, lr)
    # a resumed run keeps the optimizer its first part chose (auto's choice depends on freshness)
    optimizer = (ckpt.history_value("optimizer", None)
                 or choose_optimizer(optimizer, model, n_full, ddp is not None, kind, lamb, lr, fresh=fresh))
    run = _Run(model, source, ddp, kind, loss_fn, optimizer, lr, weight_decay, max_iter, lamb,
               (lamb_l1, lamb_entropy, lamb_coef, lamb_coefdiff), update_grid, grid_update_num,
               (start_grid_update_step, stop_grid_update_step), eval_every)
    start = time.perf_counter()
    bar = _progress(steps, progress and (ddp is None or ddp.rank == 0))
    try:
        comparable = fresh and source.full_batch and ddp is None
        probe = probe_steps(model, warm_start, steps, comparable, long=redraws > 1) if first == 0 else 0
        if probe:
            first, opt, history = choose_start(run, probe, both=warm_start == "auto", redraws=redraws)
            bar.update(first)
        else:
            opt, history = run.optimizer(), History()
        history.optimizer = optimizer
        grid_x = ckpt.restore_run(opt, history, source)  # last batch with >= 2 rows
        run.loop(first, steps, opt, history, grid_x, bar=bar, ckpt=ckpt, callbacks=callbacks)
    finally:
        bar.close()
    history.seconds = time.perf_counter() - start
    return history


class _Run:
    """One call of :func:`fit`: its settings, and the training loop over a range of steps."""

    def __init__(self, model, source, ddp, kind, loss_fn, optimizer, lr, weight_decay, max_iter, lamb,
                 reg_weights, update_grid, grid_update_num, grid_window, eval_every):
        self.model, self.source, self.ddp, self.kind, self.loss_fn = model, source, ddp, kind, loss_fn
        self.opt_args = (optimizer.lower(), lr, weight_decay, max_iter)
        self.lamb, self.reg_weights, self.update_grid, self.eval_every = lamb, reg_weights, update_grid, eval_every
        self.grid_window = grid_window
        self.grid_every = max(1, grid_window[1] // max(1, grid_update_num))

    def optimizer(self):
        return _make_optimizer(self.model, *self.opt_args)

    def loop(self, first: int, last: int, opt, history: History, grid_x: Tensor | None = None,
             readout: LinearReadout | None = None, bar=None, ckpt=None, callbacks=()):
        """Steps ``first .. last - 1``; with ``readout``, the last layer is freed at step
        ``history.warm_start_steps``. Returns the optimizer as the last step left it."""
        model, source, ddp = self.model, self.source, self.ddp
        params = [p for p in model.parameters() if p.requires_grad]
        for step in range(first, last):
            x, y = next(source)
            if ddp is not None:
                x, y = ddp.local_batch(source, x, y)
            if step == first:
                check_loss_value(model, self.loss_fn, x, y)
            grid_x = grid_samples(x, grid_x)
            if readout is not None and step == history.warm_start_steps:
                readout.finish(_grid_input(source, ddp, grid_x))
                params, opt = [p for p in model.parameters() if p.requires_grad], self.optimizer()
            start, stop = self.grid_window
            update = self.update_grid and start <= step < stop and step % self.grid_every == 0
            samples = _grid_input(source, ddp, grid_x) if update else None
            if samples is not None:  # None: no batch so far had 2 rows, the update is skipped
                model.update_grid(samples)
                history.grid_update_steps.append(step)
                opt = self.optimizer()  # stale curvature
            last_step = _step(model, opt, params, x, y, self.loss_fn, self.lamb, self.reg_weights, ddp, step)
            _record(history, model, self.kind, self.loss_fn, source, last_step, step, self.eval_every)
            if bar is not None:
                bar.update(1)
                if history.test_rmse or history.test_loss:
                    bar.set_postfix(_postfix(history), refresh=False)
            if ckpt is not None:
                ckpt.step_done(step, last, model, opt, history)
            if any(cb(step, model, history) for cb in callbacks):
                break
        return opt


def _grid_input(source, ddp, grid_x: Tensor | None) -> Tensor | None:
    """What grid updates see (the whole training input, or the batch; all ranks' under DDP);
    None when there is no training input and no batch so far had at least 2 rows."""
    if grid_x is None and source.train is None:
        return None
    return source.grid_input(grid_x) if ddp is None else ddp.grid_input(source, grid_x)


def _step(model: KAN, opt, params, x, y, loss_fn, lamb, reg_weights, ddp, step: int) -> dict:
    """One optimizer step; returns the step's fit loss and penalty. A failed step (exception,
    KeyboardInterrupt, non-finite loss or parameters) leaves the parameters it started from."""
    state = snapshot(model)
    last: dict = {}

    def closure():
        opt.zero_grad(set_to_none=True)
        if lamb > 0:
            pred, inputs = model.forward_with_inputs(x)
            reg = regularization(model, inputs, *reg_weights)
        else:
            pred, reg = model(x), None
        fit_loss = loss_fn(pred, y)
        objective = fit_loss + lamb * reg if reg is not None else fit_loss
        objective.backward()
        if ddp is not None:  # gradients and logged values averaged over the ranks
            fit_loss, objective = ddp.average_gradients(params, x.shape[0], fit_loss.detach(), objective.detach())
        last["loss"], last["reg"] = fit_loss.detach(), reg.detach() if reg is not None else None
        return objective

    try:
        if isinstance(opt, LevenbergMarquardt):  # squared error only, no penalty (see choose_optimizer)
            last["loss"], last["reg"] = opt.step(model, x, y), None
        else:
            opt.step(closure)
    except BaseException:  # KeyboardInterrupt (also in the line search) or an error: last completed step
        model.load_state_dict(state)
        raise
    if not (torch.isfinite(last["loss"]) and all(bool(torch.isfinite(p).all()) for p in params)):
        model.load_state_dict(state)
        raise TrainingDiverged(f"training diverged at step {step}: the loss became "
                               f"{float(last['loss'])}; the parameters of step {step - 1} were kept. "
                               "Try a smaller lr, float64, or normalised inputs.")
    return last


# ---------------------------------------------------------------------- helpers
_CHECKED = ("steps", "optimizer", "lr", "batch_size", "eval_every", "lamb", "lamb_l1", "lamb_entropy", "lamb_coef",
            "lamb_coefdiff", "update_grid", "grid_update_num", "start_grid_update_step", "stop_grid_update_step",
            "weight_decay", "callbacks", "progress", "seed", "max_iter")


def _settings(args: dict) -> dict:
    """The fit arguments a resumed run must share with the checkpoint (all but steps and I/O)."""
    skip = {"model", "data", "test_data", "steps", "callbacks", "progress", "checkpoint", "checkpoint_every",
            "resume", "eval_every"}
    return {k: (v if v is None or isinstance(v, (bool, int, float, str)) else getattr(v, "__qualname__", repr(v)))
            for k, v in args.items() if k not in skip and not k.startswith("_")}


def _make_optimizer(model: KAN, name: str, lr, weight_decay: float, max_iter: int):
    params = [p for p in model.parameters() if p.requires_grad]
    if name == "lm":
        return LevenbergMarquardt(params)
    if name == "lbfgs":
        return LBFGS(params, lr=lr or 1.0, max_iter=max_iter, history_size=10)
    cls = torch.optim.Adam if name == "adam" else torch.optim.AdamW
    return cls(params, lr=lr or 1e-3, weight_decay=weight_decay)


class _BatchSource:
    """Yields training batches; knows the full training/test tensors when there are any."""

    def __init__(self, model, data, kind: str, batch_size, seed: int, test_data):
        self.model, self.kind = model, kind
        self.gen = torch.Generator().manual_seed(seed)
        param = next(model.parameters())
        device, self._dtype = param.device, param.dtype
        self.train: tuple[Tensor, Tensor] | None  # the whole training set, when there is one
        self.test: tuple[Tensor, Tensor] | None
        if isinstance(data, (Dataset, Mapping)) or is_array_tuple(data):
            ds = as_dataset(data, dtype=param.dtype, device=device)
            self._check(ds.train_input, ds.train_label, "data['train_input']", "data['train_label']")
            self._check(ds.test_input, ds.test_label, "data['test_input']", "data['test_label']")
            self.train = (ds.train_input, prepare_labels(kind, ds.train_label))
            self.test = (ds.test_input, prepare_labels(kind, ds.test_label))
            n = ds.train_input.shape[0]
            self.batch_size = None if batch_size is None or batch_size >= n else batch_size
            self._iter = self._tensor_batches()
        elif isinstance(data, Iterable):
            self.train, self.batch_size = None, batch_size
            self.test = None
            if test_data is not None:
                tx, ty = (test_data.test_input, test_data.test_label) if isinstance(test_data, Dataset) else test_data
                tx, ty = self._cast(tx), self._cast(ty)
                self._check(tx, ty, "test_data input", "test_data label")
                self.test = (tx.to(device), prepare_labels(kind, ty.to(device)))
            self._loader, self._device = data, device
            self._iter = self._loader_batches()
        else:
            raise TypeError("data must be a kanlab.Dataset, a pykan-style dict or an iterable of "
                            f"(input, label) batches, got {type(data).__name__}")

    @property
    def full_batch(self) -> bool:
        return self.train is not None and self.batch_size is None

    def _check(self, x: Tensor, y: Tensor, x_name: str, y_name: str) -> None:
        check_input(x, self.model.n_inputs, x_name)
        check_finite(x, x_name)
        check_finite(y, y_name)
        if x.shape[0] == 0:
            raise ValueError(f"{x_name} is empty; at least one sample is needed")
        if y.shape[0] != x.shape[0]:
            raise ValueError(f"{y_name} has {y.shape[0]} samples but {x_name} has {x.shape[0]}")
        check_labels(self.kind, y, self.model.n_outputs, y_name)

    def _cast(self, t):
        """Arrays to tensors; floating tensors to the model's dtype."""
        t = t if isinstance(t, Tensor) else torch.as_tensor(t)
        return t.to(self._dtype) if t.is_floating_point() and t.dtype != self._dtype else t

    def _tensor_batches(self) -> Iterator[tuple[Tensor, Tensor]]:
        assert self.train is not None  # only built from a training set
        x, y = self.train
        while True:
            if self.batch_size is None:
                yield x, y
                continue
            order = torch.randperm(x.shape[0], generator=self.gen).to(x.device)
            for i in range(0, x.shape[0] - self.batch_size + 1, self.batch_size):
                idx = order[i:i + self.batch_size]
                yield x[idx], y[idx]

    def _loader_batches(self) -> Iterator[tuple[Tensor, Tensor]]:
        while True:
            empty = True
            for batch in self._loader:
                empty = False
                bx, by = (self._cast(t).to(self._device) for t in check_batch(batch))
                self._check(bx, by, "batch input", "batch label")
                yield bx, prepare_labels(self.kind, by)
            if empty:
                raise ValueError("data yielded no batches (empty DataLoader)")

    def __next__(self) -> tuple[Tensor, Tensor]:
        return next(self._iter)

    def grid_input(self, batch_x: Tensor | None) -> Tensor | None:
        """What grid updates see: the whole training input when there is one, else the batch."""
        return self.train[0] if self.train is not None else batch_x


def _record(history: History, model, kind, loss_fn, source: _BatchSource, last, step: int,
            eval_every: int) -> None:
    if source.full_batch and source.train is not None:
        train = evaluate(model, kind, loss_fn, *source.train)
    else:
        train = {"loss": float(last["loss"])}
        if kind == "mse":
            train["rmse"] = float(last["loss"]) ** 0.5
    history.train_loss.append(train["loss"])
    if "rmse" in train:
        history.train_rmse.append(train["rmse"])
    if "accuracy" in train:
        history.train_accuracy.append(train["accuracy"])
    if last["reg"] is not None:
        history.reg.append(float(last["reg"]))
    if source.test is not None and (step % eval_every == 0):
        test = evaluate(model, kind, loss_fn, *source.test)
        history.test_loss.append(test["loss"])
        if "rmse" in test:
            history.test_rmse.append(test["rmse"])
        if "accuracy" in test:
            history.test_accuracy.append(test["accuracy"])


def _postfix(history: History) -> dict[str, str]:
    out = {}
    if history.train_rmse:
        out["train_rmse"] = f"{history.train_rmse[-1]:.2e}"
    if history.test_rmse:
        out["test_rmse"] = f"{history.test_rmse[-1]:.2e}"
    if history.test_accuracy:
        out["test_acc"] = f"{history.test_accuracy[-1]:.3f}"
    return out


def _progress(steps: int, enabled: bool):
    from tqdm.auto import tqdm

    return tqdm(total=steps, disable=not enabled, desc="fit", leave=False)
