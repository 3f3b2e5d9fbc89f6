"""The fit loop: shuffling, mini-batches, validation, early stopping, history, callbacks.

Gradient descent comes in three modes that differ only in the batch the gradient is taken over
(seed 000: "神经网络大多采用随机梯度下降算法"):

* full batch (``batch_size=None``): one step per epoch on the whole training set;
* mini-batch (``batch_size=B``): ``ceil(N / B)`` steps per epoch on a fresh shuffle;
* online (``batch_size=1``): one step per sample.

An epoch is run by an *epoch runner*. :class:`PlainRunner` is the textbook loop (forward,
backward, update through :class:`~chainrule.nn.model.Sequential` and the optimiser); the fast runners
of :mod:`chainrule.accel.fast` do the same arithmetic with reused buffers and fused kernels, and are
used when they apply (tests prove they give the same weights).
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from chainrule.backend import namespace, to_numpy
from chainrule.nn.functional import count_correct
from chainrule.errors import ChainruleError, ConfigError, DataError, ShapeError
from chainrule.nn.model import Sequential
from chainrule.nn.regularizers import add_l2_grad, l2_penalty
from chainrule.optim import Optimizer, get_optimizer

__all__ = [
    "Callback",
    "EarlyStopping",
    "History",
    "PlainRunner",
    "TrainingDiverged",
    "evaluate",
    "fit",
]


class TrainingDiverged(ChainruleError, FloatingPointError):
    """The loss became NaN or infinite (usually: the learning rate is too large)."""


@dataclass
class History:
    """Per-epoch records: ``loss``, ``accuracy`` (running, on the training batches), and when a
    validation set is given ``val_loss`` / ``val_accuracy``; ``seconds`` is the wall time of the
    epoch's training steps alone (no evaluation)."""

    epochs: list[dict[str, float]] = field(default_factory=list)
    stopped_early: bool = False
    best_epoch: int | None = None
    runner: str = ""

    def __getitem__(self, key: str) -> list[float]:
        return [e[key] for e in self.epochs if key in e]

    @property
    def epoch_seconds(self) -> list[float]:
        return self["seconds"]

    @property
    def final_loss(self) -> float:
        return self.epochs[-1]["loss"] if self.epochs else math.nan

    def to_dict(self) -> dict[str, Any]:
        return {
            "epochs": self.epochs,
            "stopped_early": self.stopped_early,
            "best_epoch": self.best_epoch,
            "runner": self.runner,
        }


class Callback:
    """Hooks into :func:`fit`. ``on_epoch_end`` may return True to stop training."""

    def on_train_begin(self, trainer: TrainState) -> None:
        pass

    def on_epoch_begin(self, epoch: int) -> None:
        pass

    def on_step(self, step: int) -> None:
        """Called after every optimisation step with the global step count."""

    def on_epoch_end(self, epoch: int, logs: dict[str, float]) -> bool | None:
        return None

    def on_train_end(self, history: History) -> None:
        pass


@dataclass
class TrainState:
    """What callbacks can see: the network, optimiser, data (on the training backend)."""

    net: Sequential
    optimizer: Optimizer
    x: Any
    y: Any
    l2: float
    batch_size: int
    step: int = 0
    epoch: int = 0


class EarlyStopping(Callback):
    """Stop when ``monitor`` has not improved by ``min_delta`` for ``patience`` epochs and
    (by default) put back the weights of the best epoch."""

    def __init__(
        self, patience: int = 3, monitor: str = "val_loss", min_delta: float = 0.0, restore_best: bool = True
    ) -> None:
        if patience < 1:
            raise ConfigError("early stopping patience must be at least 1")
        self.patience, self.monitor, self.min_delta, self.restore_best = (
            patience,
            monitor,
            min_delta,
            restore_best,
        )
        self.best = math.inf
        self.best_epoch: int | None = None
        self.wait = 0
        self._best_weights: list[Any] | None = None
        self._state: TrainState | None = None

    def on_train_begin(self, trainer: TrainState) -> None:
        self._state = trainer

    def on_epoch_end(self, epoch: int, logs: dict[str, float]) -> bool:
        value = logs.get(self.monitor, logs.get("loss", math.inf))
        if value < self.best - self.min_delta:
            self.best, self.best_epoch, self.wait = value, epoch, 0
            if self.restore_best and self._state is not None:
                xp = namespace(self._state.net.params[0].value)
                self._best_weights = [xp.asarray(p.value, copy=True) for p in self._state.net.params]
            return False
        self.wait += 1
        return self.wait >= self.patience

    def on_train_end(self, history: History) -> None:
        history.best_epoch = self.best_epoch
        if self.restore_best and self._best_weights is not None and self._state is not None:
            for p, w in zip(self._state.net.params, self._best_weights, strict=True):
                p.value[...] = w


class EpochRunner(Protocol):
    name: str

    def run_epoch(
        self, x: Any, y: Any, order: np.ndarray, batch_size: int, on_step: Callable[[], None]
    ) -> tuple[float, float]:
        """Train one epoch over ``x[order]`` in batches; returns (mean data loss, running accuracy)
        without the L2 penalty, which :func:`fit` adds once at the end of the epoch."""
        ...


class PlainRunner:
    """The textbook step, through the driver: zero grads, forward, loss, backward, L2, update."""

    name = "plain"

    def __init__(self, net: Sequential, optimizer: Optimizer, l2: float = 0.0) -> None:
        self.net, self.optimizer, self.l2 = net, optimizer, l2

    def step(self, xb: Any, yb: Any) -> tuple[Any, Any]:
        """One update; returns the batch's *data* loss (fit adds the L2 penalty once per epoch)
        and its number of correct predictions."""
        cost = self.net.loss_and_grad(xb, yb)
        add_l2_grad(self.net.params, self.l2)
        self.optimizer.step(self.net.params)
        return cost, count_correct(self.net.output, yb)

    def run_epoch(
        self, x: Any, y: Any, order: np.ndarray, batch_size: int, on_step: Callable[[], None]
    ) -> tuple[float, float]:
        n = len(order)
        total_loss = 0.0
        total_correct = 0.0
        for start in range(0, n, batch_size):
            idx = order[start : start + batch_size]
            xb, yb = _take(x, idx), _take(y, idx)
            cost, correct = self.step(xb, yb)
            total_loss = total_loss + cost * len(idx)
            total_correct = total_correct + correct
            on_step()
        return float(total_loss) / n, float(total_correct) / n


def _take(a: Any, idx: np.ndarray) -> Any:
    if isinstance(a, np.ndarray):
        return a[idx]
    xp = namespace(a)
    return xp.take(a, xp.asarray(idx, device=a.device), axis=0)


def evaluate(net: Sequential, x: Any, y: Any, *, batch_size: int = 4096, l2: float = 0.0) -> dict[str, Any]:
    """Loss, accuracy and confusion matrix (rows: true class, columns: predicted) on ``(x, y)``."""
    if x.shape[0] == 0:
        raise DataError("cannot evaluate on an empty dataset")
    if y.shape[0] != x.shape[0]:
        raise DataError(f"{x.shape[0]} samples but {y.shape[0]} labels")
    scores = net.predict_scores(x, batch_size)
    loss = float(net.loss.forward(scores, y)) + (float(l2_penalty(net.params, l2)) if l2 else 0.0)
    s = to_numpy(scores)
    yt = to_numpy(y)
    if yt.ndim == 2:
        yt = np.argmax(yt, axis=1)
    pred = (s[:, 0] > 0).astype(np.int64) if s.shape[1] == 1 else np.argmax(s, axis=1)
    k = max(int(s.shape[1]) if s.shape[1] > 1 else 2, int(yt.max()) + 1)
    confusion = np.zeros((k, k), dtype=np.int64)
    np.add.at(confusion, (yt.astype(np.int64), pred), 1)
    return {
        "loss": loss,
        "accuracy": float(np.mean(pred == yt)),
        "confusion": confusion,
        "n": int(x.shape[0]),
    }


def _progress(total: int, desc: str, enabled: bool) -> Any:
    if not enabled:
        return None
    try:
        from tqdm.auto import tqdm
    except ImportError:
        return None
    return tqdm(total=total, desc=desc, unit="step", leave=False, file=sys.stderr, dynamic_ncols=True)


def _check_data(net: Sequential, x: Any, y: Any, where: str) -> None:
    if x.ndim != 2:
        raise ShapeError(f"{where}: x must be 2-D (samples, features), got shape {tuple(x.shape)}")
    if x.shape[0] == 0:
        raise DataError(f"{where}: no samples")
    if y.shape[0] != x.shape[0]:
        raise DataError(f"{where}: {x.shape[0]} samples but {y.shape[0]} labels")
    net.check_input(x)
    out_dim = net.output_dim()
    if y.ndim == 1 and out_dim is not None and out_dim > 1:
        yn = to_numpy(y)
        if yn.size and (yn.min() < 0 or yn.max() >= out_dim):
            raise DataError(
                f"{where}: labels must be in 0..{out_dim - 1} for a {out_dim}-output network, "
                f"found {int(yn.min())}..{int(yn.max())}"
            )


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
    progress: bool = True,
    fast: bool = True,
    verbose: bool = False,
    **optimizer_options: Any,
) -> History:
    """Train ``net`` on ``(x, y)`` and return its :class:`History`.

    ``x`` and ``y`` are moved once to the network's backend (the data stays resident there).
    ``batch_size=None`` is full-batch gradient descent, ``1`` online. ``validation_split`` holds
    out that fraction of the (shuffled) training set; ``early_stopping=P`` stops after ``P`` epochs
    without improvement of the validation loss (training loss if there is no validation set)
    and restores the best weights. The shuffle order comes from ``np.random.default_rng(seed)``.
    ``fast=False`` forces the textbook runner.
    """
    if net.loss is None:
        raise ConfigError("the network has no loss: build it with mlp(..., loss=...)")
    if epochs < 1:
        raise ConfigError(f"epochs must be at least 1, got {epochs}")
    if not 0 <= validation_split < 1:
        raise ConfigError(f"validation_split must be in [0, 1), got {validation_split}")
    if l2 < 0 or not math.isfinite(l2):
        raise ConfigError(f"l2 must be a non-negative number, got {l2}")
    backend = net.backend
    rng = np.random.default_rng(seed)
    x_np, y_np = x, y
    if validation_data is None and validation_split > 0:
        x_np, y_np = to_numpy(x), to_numpy(y)
        order = rng.permutation(x_np.shape[0])
        n_val = round(validation_split * len(order))
        if n_val == 0 or n_val == len(order):
            raise DataError(f"validation_split {validation_split} leaves an empty train or validation set")
        validation_data = (x_np[order[:n_val]], y_np[order[:n_val]])
        x_np, y_np = x_np[order[n_val:]], y_np[order[n_val:]]
    xd, yd = backend.asarray(x_np, dtype=net.dtype), backend.asarray(y_np)
    _check_data(net, xd, yd, "training data")
    val = None
    if validation_data is not None:
        val = (
            backend.asarray(validation_data[0], dtype=net.dtype),
            backend.asarray(validation_data[1]),
        )
        _check_data(net, *val, "validation data")
    n = xd.shape[0]
    bs = n if batch_size in (None, 0) else int(batch_size)
    if bs < 1:
        raise ConfigError(f"batch size must be positive, got {batch_size}")
    bs = min(bs, n)
    opt = get_optimizer(optimizer, lr, **optimizer_options)
    runner = make_runner(net, opt, l2, fast=fast)
    history = History(runner=runner.name)
    state = TrainState(net, opt, xd, yd, l2, bs)
    cbs = list(callbacks)
    if early_stopping:
        cbs.append(
            EarlyStopping(patience=int(early_stopping), monitor="val_loss" if val is not None else "loss")
        )
    for cb in cbs:
        cb.on_train_begin(state)
    steps_per_epoch = math.ceil(n / bs)
    for epoch in range(1, epochs + 1):
        state.epoch = epoch
        for cb in cbs:
            cb.on_epoch_begin(epoch)
        order = rng.permutation(n)
        bar = _progress(steps_per_epoch, f"epoch {epoch}/{epochs}", progress)

        def on_step(bar: Any = bar) -> None:
            state.step += 1
            if bar is not None:
                bar.update(1)
            for cb in cbs:
                cb.on_step(state.step)

        backend.synchronize()
        t0 = time.perf_counter()
        # a diverging run overflows; it is reported once, as TrainingDiverged, just below
        with np.errstate(over="ignore", invalid="ignore"):
            loss, acc = runner.run_epoch(xd, yd, order, bs, on_step)
        backend.synchronize()
        seconds = time.perf_counter() - t0
        if bar is not None:
            bar.close()
        if not math.isfinite(loss):
            raise TrainingDiverged(
                f"the training loss became {loss} in epoch {epoch}; lower the learning rate (now {opt.lr})"
            )
        if l2:
            loss += float(l2_penalty(net.params, l2))
        logs = {"epoch": epoch, "loss": loss, "accuracy": acc, "seconds": seconds}
        if val is not None:
            ev = evaluate(net, *val, l2=l2)
            logs["val_loss"], logs["val_accuracy"] = ev["loss"], ev["accuracy"]
        history.epochs.append(logs)
        if progress or verbose:
            extra = (
                f"  val_loss {logs['val_loss']:.4f}  val_acc {logs['val_accuracy']:.4f}"
                if val is not None
                else ""
            )
            print(
                f"epoch {epoch}/{epochs}  loss {loss:.4f}  acc {acc:.4f}{extra}  ({seconds:.2f}s)",
                file=sys.stderr,
            )
        stop = False
        for cb in cbs:
            stop = bool(cb.on_epoch_end(epoch, logs)) or stop
        if stop:
            history.stopped_early = epoch < epochs
            break
    for cb in cbs:
        cb.on_train_end(history)
    return history


def make_runner(net: Sequential, optimizer: Optimizer, l2: float, *, fast: bool = True) -> EpochRunner:
    """The fastest runner that applies to this network and optimiser (plain if none does).

    Hooks (a tracer) need the driver, so a network with hooks attached always runs plain.
    """
    if fast and not net.hooks:
        from chainrule.accel.fast import make_fast_runner

        runner = make_fast_runner(net, optimizer, l2)
        if runner is not None:
            return runner
    return PlainRunner(net, optimizer, l2)
