"""Callbacks: hooks into :func:`~chainrule.train.loop.fit`, the per-epoch history, early stopping."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from chainrule.backend import namespace
from chainrule.errors import ConfigError
from chainrule.nn.model import Sequential
from chainrule.optim import Optimizer

__all__ = ["Callback", "EarlyStopping", "History", "TrainState"]


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

    def state_dict(self) -> dict[str, Any]:
        """What a checkpoint must keep to continue exactly (the best weights included)."""
        return {
            "best": self.best,
            "best_epoch": self.best_epoch,
            "wait": self.wait,
            "weights": self._best_weights,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.best, self.best_epoch, self.wait = state["best"], state["best_epoch"], state["wait"]
        self._best_weights = state["weights"]

    def on_train_end(self, history: History) -> None:
        history.best_epoch = self.best_epoch
        if self.restore_best and self._best_weights is not None and self._state is not None:
            for p, w in zip(self._state.net.params, self._best_weights, strict=True):
                p.value[...] = w
