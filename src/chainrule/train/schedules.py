"""Learning-rate schedules, as callbacks that set ``optimizer.lr`` (every runner reads it live).

With ``α₀`` the base rate and ``e`` the 1-based epoch of ``E`` epochs:

* ``step``:    ``α_e = α₀ · γ^⌊(e − 1)/s⌋`` (default ``γ = 0.1``, ``s = ⌈E/3⌉``);
* ``cosine``:  ``α_e = α_min + ½ (α₀ − α_min)(1 + cos(π (e − 1)/E))`` (``α_min = 0``);
* ``plateau``: ``α ← max(γ α, α_min)`` when the monitored loss (``val_loss`` when there is a
  validation set) has not improved for ``patience`` epochs (Keras' ReduceLROnPlateau, ``γ = 0.1``).

Each has ``state_dict``/``load_state_dict`` so a resumed run continues with the same rate.
"""

from __future__ import annotations

import math
from typing import Any

from chainrule.errors import ConfigError
from chainrule.train.callbacks import Callback, TrainState

__all__ = ["SCHEDULES", "CosineDecay", "ReduceOnPlateau", "Schedule", "StepDecay", "make_schedule"]

SCHEDULES = ("none", "step", "cosine", "plateau")


class Schedule(Callback):
    """Base: remembers the optimiser and its base rate ``α₀``."""

    def __init__(self) -> None:
        self.base_lr = math.nan
        self._state: TrainState | None = None

    def on_train_begin(self, trainer: TrainState) -> None:
        self._state = trainer
        self.base_lr = trainer.optimizer.lr

    def set_lr(self, lr: float) -> None:
        if self._state is not None:
            self._state.optimizer.lr = float(lr)

    def state_dict(self) -> dict[str, Any]:
        return {"base_lr": self.base_lr}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.base_lr = state["base_lr"]


class StepDecay(Schedule):
    def __init__(self, step_size: int, gamma: float = 0.1) -> None:
        super().__init__()
        if step_size < 1 or not 0 < gamma <= 1:
            raise ConfigError("step schedule needs step_size >= 1 and 0 < gamma <= 1")
        self.step_size, self.gamma = int(step_size), float(gamma)

    def on_epoch_begin(self, epoch: int) -> None:
        self.set_lr(self.base_lr * self.gamma ** ((epoch - 1) // self.step_size))


class CosineDecay(Schedule):
    def __init__(self, epochs: int, min_lr: float = 0.0) -> None:
        super().__init__()
        self.epochs, self.min_lr = max(int(epochs), 1), float(min_lr)

    def on_epoch_begin(self, epoch: int) -> None:
        frac = (epoch - 1) / self.epochs
        self.set_lr(self.min_lr + 0.5 * (self.base_lr - self.min_lr) * (1 + math.cos(math.pi * frac)))


class ReduceOnPlateau(Schedule):
    def __init__(self, factor: float = 0.1, patience: int = 5, min_lr: float = 1e-7) -> None:
        super().__init__()
        if not 0 < factor < 1 or patience < 1:
            raise ConfigError("plateau schedule needs 0 < factor < 1 and patience >= 1")
        self.factor, self.patience, self.min_lr = float(factor), int(patience), float(min_lr)
        self.best, self.wait = math.inf, 0

    def on_epoch_end(self, epoch: int, logs: dict[str, float]) -> bool:
        value = logs.get("val_loss", logs["loss"])
        if value < self.best:
            self.best, self.wait = value, 0
        else:
            self.wait += 1
            if self.wait >= self.patience and self._state is not None:
                self.set_lr(max(self._state.optimizer.lr * self.factor, self.min_lr))
                self.wait = 0
        return False

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "best": self.best, "wait": self.wait}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.best, self.wait = state["best"], state["wait"]


def make_schedule(name: str, epochs: int) -> Schedule | None:
    """The schedule called ``name`` for a run of ``epochs`` epochs (None for ``none``)."""
    if name == "none":
        return None
    if name == "step":
        return StepDecay(step_size=math.ceil(epochs / 3))
    if name == "cosine":
        return CosineDecay(epochs)
    if name == "plateau":
        return ReduceOnPlateau()
    raise ConfigError(f"unknown schedule {name!r}; choose {', '.join(SCHEDULES)}")
