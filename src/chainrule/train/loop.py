"""The fit loop: shuffling, mini-batches, validation, early stopping, history, callbacks.

Gradient descent comes in three modes that differ only in the batch the gradient is taken over
(seed 000: "神经网络大多采用随机梯度下降算法"):

* full batch (``batch_size=None``): one step per epoch on the whole training set;
* mini-batch (``batch_size=B``): ``ceil(N / B)`` steps per epoch on a fresh shuffle;
* online (``batch_size=1``): one step per sample.

An epoch is run by an *epoch runner* (:mod:`chainrule.train.step`): the textbook
:class:`~chainrule.train.step.PlainRunner`, or a fast runner of :mod:`chainrule.accel` that does the
same arithmetic with reused buffers and fused kernels (tests prove they give the same weights).
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from chainrule.backend import Backend, to_numpy
from chainrule.errors import ChainruleError, ConfigError, DataError
from chainrule.nn.model import Sequential
from chainrule.nn.regularizers import l2_penalty
from chainrule.optim import Optimizer, get_optimizer
from chainrule.train.callbacks import Callback, EarlyStopping, History, TrainState
from chainrule.train.checkpoint import Checkpoint, Resume
from chainrule.train.metrics import evaluate
from chainrule.train.step import EpochRunner, GradHook, make_runner

__all__ = ["TrainingDiverged", "evaluate", "fit"]


class TrainingDiverged(ChainruleError, FloatingPointError):
    """The loss became NaN or infinite (usually: the learning rate is too large)."""


def _progress(total: int, desc: str, enabled: bool) -> Any:
    if not enabled:
        return None
    try:
        from tqdm.auto import tqdm  # optional: the progress bar comes with the cli extra
    except ImportError:
        return None
    return tqdm(total=total, desc=desc, unit="step", leave=False, file=sys.stderr, dynamic_ncols=True)


def _check_data(net: Sequential, x: Any, y: Any, where: str) -> None:
    """Samples on the first axis, as many labels as samples, the network's input shape, and class
    labels inside the output range."""
    if x.ndim < 2:
        raise DataError(f"{where}: x must be a batch (samples, features...), got shape {tuple(x.shape)}")
    if x.shape[0] == 0:
        raise DataError(f"{where}: no samples")
    if y.shape[0] != x.shape[0]:
        raise DataError(f"{where}: {x.shape[0]} samples but {y.shape[0]} labels")
    net.as_batch(x)
    out_dim = net.output_dim()
    if y.ndim == 1 and out_dim is not None and out_dim > 1:
        yn = to_numpy(y)
        if yn.size and (yn.min() < 0 or yn.max() >= out_dim):
            raise DataError(
                f"{where}: labels must be in 0..{out_dim - 1} for a {out_dim}-output network, "
                f"found {int(yn.min())}..{int(yn.max())}"
            )


def _check_options(net: Sequential, epochs: int, validation_split: float, l2: float) -> None:
    if net.loss is None:
        raise ConfigError("the network has no loss: build it with mlp(..., loss=...)")
    if epochs < 1:
        raise ConfigError(f"epochs must be at least 1, got {epochs}")
    if not 0 <= validation_split < 1:
        raise ConfigError(f"validation_split must be in [0, 1), got {validation_split}")
    if l2 < 0 or not math.isfinite(l2):
        raise ConfigError(f"l2 must be a non-negative number, got {l2}")


def _split(
    x: Any, y: Any, validation_split: float, validation_data: Any, rng: np.random.Generator
) -> tuple[Any, Any, Any]:
    """Hold out ``validation_split`` of a shuffle of ``(x, y)`` unless validation data is given."""
    if validation_data is not None or validation_split <= 0:
        return x, y, validation_data
    x_np, y_np = to_numpy(x), to_numpy(y)
    order = rng.permutation(x_np.shape[0])
    n_val = round(validation_split * len(order))
    if n_val == 0 or n_val == len(order):
        raise DataError(f"validation_split {validation_split} leaves an empty train or validation set")
    return x_np[order[n_val:]], y_np[order[n_val:]], (x_np[order[:n_val]], y_np[order[:n_val]])


def _on_device(net: Sequential, backend: Backend, x: Any, y: Any, where: str) -> tuple[Any, Any]:
    xd, yd = backend.asarray(x, dtype=net.dtype), backend.asarray(y)
    _check_data(net, xd, yd, where)
    return xd, yd


@dataclass
class _Epochs:
    """What one epoch of :func:`fit` needs: the runner, data, callbacks and the progress settings."""

    net: Sequential
    runner: EpochRunner
    state: TrainState
    callbacks: list[Callback]
    val: tuple[Any, Any] | None
    l2: float
    progress: bool
    verbose: bool
    task: str = "classify"

    def run(self, epoch: int, epochs: int, order: np.ndarray) -> dict[str, float]:
        state, backend = self.state, self.net.backend
        for cb in self.callbacks:
            cb.on_epoch_begin(epoch)
        bar = _progress(math.ceil(len(order) / state.batch_size), f"epoch {epoch}/{epochs}", self.progress)

        def on_step() -> None:
            state.step += 1
            if bar is not None:
                bar.update(1)
            for cb in self.callbacks:
                cb.on_step(state.step)

        backend.synchronize()
        t0 = time.perf_counter()
        # a diverging run overflows; it is reported once, as TrainingDiverged, just below
        with np.errstate(over="ignore", invalid="ignore"):
            loss, acc = self.runner.run_epoch(state.x, state.y, order, state.batch_size, on_step)
        backend.synchronize()
        seconds = time.perf_counter() - t0
        if bar is not None:
            bar.close()
        if not math.isfinite(loss):
            raise TrainingDiverged(
                f"training diverged: the loss became {loss} in epoch {epoch}; lower the learning rate "
                f"(now --lr {state.optimizer.lr:g}) or scale the features (--scale standard)"
            )
        if self.l2:
            loss += float(l2_penalty(self.net.params, self.l2))
        regress = self.task == "regress"
        logs = {"epoch": epoch, "loss": loss, "seconds": seconds} | ({} if regress else {"accuracy": acc})
        if self.val is not None:
            ev = evaluate(self.net, *self.val, l2=self.l2, task=self.task)
            logs["val_loss"] = ev["loss"]
            logs["val_r2" if regress else "val_accuracy"] = ev["r2" if regress else "accuracy"]
        if self.progress or self.verbose:
            print(f"epoch {epoch}/{epochs}  {_shown(logs)}  ({seconds:.2f}s)", file=sys.stderr)
        return logs


def _shown(logs: dict[str, float]) -> str:
    """The per-epoch metrics as ``loss 0.1234  acc 0.9876  val_loss ...``."""
    short = {"accuracy": "acc", "val_accuracy": "val_acc"}
    return "  ".join(f"{short.get(k, k)} {v:.4f}" for k, v in logs.items() if k not in ("epoch", "seconds"))


def fit(
    net: Sequential,
    x: Any,
    y: Any,
    *,
    optimizer: str | Optimizer = "sgd",
    lr: float = 0.1,
    batch_size: int | None = 128,
    epochs: int = 5,
    l2: float = 0.0,
    seed: int = 0,
    validation_split: float = 0.0,
    validation_data: tuple[Any, Any] | None = None,
    early_stopping: int | None = None,
    callbacks: Sequence[Callback] = (),
    grad_hooks: Sequence[GradHook] = (),
    wrap_runner: Callable[[EpochRunner], EpochRunner] | None = None,
    progress: bool = True,
    fast: bool = True,
    verbose: bool = False,
    task: str = "classify",
    checkpoint: Checkpoint | None = None,
    resume: Resume | None = None,
    **optimizer_options: Any,
) -> History:
    """Train ``net`` on ``(x, y)`` and return its :class:`History`.

    ``x`` and ``y`` are moved once to the network's backend (the data stays resident there).
    ``batch_size=None`` is full-batch gradient descent, ``1`` online. ``validation_split`` holds
    out that fraction of the (shuffled) training set; ``early_stopping=P`` stops after ``P`` epochs
    without improvement of the validation loss (training loss if there is no validation set)
    and restores the best weights. The shuffle order comes from ``np.random.default_rng(seed)``.
    ``grad_hooks`` run between the gradients and the update of every step (all-reduce, clipping);
    ``wrap_runner`` wraps the epoch runner (data parallelism trains each rank on its shard of
    every batch: :func:`chainrule.parallel.fit_parallel`).
    ``fast=False`` forces the textbook runner. The network is in training mode throughout and
    left in evaluation mode. ``task="regress"`` reports R² instead of accuracy.

    ``checkpoint`` writes the whole state of the run after every ``checkpoint.every`` epochs
    (:mod:`chainrule.train.checkpoint`); ``resume`` (a loaded checkpoint of a run set up the same
    way: data, seed, network, optimiser, callbacks) continues it, and the result equals the
    uninterrupted run's bit for bit.
    """
    _check_options(net, epochs, validation_split, l2)
    rng = np.random.default_rng(seed)
    x, y, validation_data = _split(x, y, validation_split, validation_data, rng)
    xd, yd = _on_device(net, net.backend, x, y, "training data")
    val = (
        None if validation_data is None else _on_device(net, net.backend, *validation_data, "validation data")
    )
    n = xd.shape[0]
    bs = n if batch_size in (None, 0) else int(batch_size)
    if bs < 1:
        raise ConfigError(f"batch size must be positive, got {batch_size}")
    opt = get_optimizer(optimizer, lr, **optimizer_options)
    runner = make_runner(net, opt, l2, fast=fast, grad_hooks=grad_hooks)
    if wrap_runner is not None:
        runner = wrap_runner(runner)
    history = History(runner=runner.name)
    state = TrainState(net, opt, xd, yd, l2, min(bs, n))
    cbs = list(callbacks)
    if early_stopping:
        cbs.append(
            EarlyStopping(patience=int(early_stopping), monitor="val_loss" if val is not None else "loss")
        )
    loop = _Epochs(net, runner, state, cbs, val, l2, progress, verbose, task)
    for cb in cbs:
        cb.on_train_begin(state)
    first, stop = 1, False
    if resume is not None:
        resume.apply(net, opt, rng, history, cbs)
        first, stop = resume.epoch + 1, resume.stopped
    net.train()
    try:
        for epoch in range(first, epochs + 1):
            if stop:
                break
            state.epoch = epoch
            logs = loop.run(epoch, epochs, rng.permutation(n))
            history.epochs.append(logs)
            for cb in cbs:
                stop = bool(cb.on_epoch_end(epoch, logs)) or stop
            if stop:
                history.stopped_early = epoch < epochs
            if checkpoint is not None and checkpoint.due(epoch, stop or epoch == epochs):
                checkpoint.save(net, opt, rng, history, cbs, epoch=epoch, stopped=stop)
    finally:
        net.eval()
    for cb in cbs:
        cb.on_train_end(history)
    return history
