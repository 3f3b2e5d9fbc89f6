"""Divergence and stall detection: stop early, with one line naming the likely cause and the fix.

:class:`DivergenceGuard` is a callback. Before the first step it measures two references on (up to
2,048 rows of) the training data:

* ``E₀``, the loss of the untrained network, and
* ``E_chance``, the loss of the best constant prediction: the entropy ``−Σ_k π_k log π_k`` of the
  class frequencies ``π`` for softmax cross-entropy, ``½ Var(y)`` for squared error on a regression
  target.

After each epoch with loss ``E``:

* **diverged** when ``E > factor · max(E₀, E_chance)`` (default ``factor = 10``): the steps are too
  large for the curvature. A NaN/Inf loss is caught by the loop itself.
* **stalled** when ``E ≥ 0.99 · E_chance``, the best loss of the last ``stall_epochs`` epochs is no
  better than 0.99 times the best before them, and (classification) the training accuracy is no
  better than always answering the most frequent class: the network has learnt nothing the class
  frequencies do not already tell, and is not getting there.

Either raises (:class:`~chainrule.train.loop.TrainingDiverged` / :class:`TrainingStalled`), so no
model is saved and an existing one is left as it was.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from chainrule.backend import to_numpy
from chainrule.errors import ChainruleError
from chainrule.train.callbacks import Callback, TrainState
from chainrule.train.loop import TrainingDiverged

__all__ = ["DivergenceGuard", "TrainingStalled"]


class TrainingStalled(ChainruleError, RuntimeError):
    """The loss stayed at the level of a constant prediction (the network learnt nothing)."""


class DivergenceGuard(Callback):
    """Raise on a loss far above its start, or one still at chance level after ``stall_epochs``.

    ``scaled`` says whether the features were scaled (it changes the suggested fix)."""

    def __init__(
        self, factor: float = 10.0, stall_epochs: int = 5, scaled: bool = True, rows: int = 2048
    ) -> None:
        self.factor, self.stall_epochs, self.scaled, self.rows = (
            float(factor),
            int(stall_epochs),
            scaled,
            rows,
        )
        self.initial = math.nan
        self.chance = math.nan
        self.majority = math.nan
        self.losses: list[float] = []
        self._state: TrainState | None = None

    def on_train_begin(self, trainer: TrainState) -> None:
        self._state = trainer
        net, x, y = trainer.net, trainer.x[: self.rows], trainer.y[: self.rows]
        was_training = net.training
        net.eval()
        try:
            with np.errstate(over="ignore", invalid="ignore"):
                self.initial = float(net.loss.value(net.predict_scores(x), y))
        finally:
            net.train(was_training)
        yn = to_numpy(trainer.y)
        if yn.ndim == 1 and yn.dtype.kind == "f":  # a regression target
            self.chance, self.majority = 0.5 * float(np.var(yn.astype(np.float64))), math.nan
        elif yn.ndim == 1:
            freq = np.bincount(yn.astype(np.int64)) / yn.shape[0]
            freq = freq[freq > 0]
            self.chance, self.majority = float(-(freq * np.log(freq)).sum()), float(freq.max())
        else:
            self.chance = math.nan

    def _fix(self) -> str:
        lr = self._state.optimizer.lr if self._state is not None else math.nan
        fix = f"lower the learning rate (now --lr {lr:g}, try --lr {lr / 10:g})"
        if not self.scaled:
            fix += " or scale the features (--scale standard)"
        return fix

    def on_epoch_end(self, epoch: int, logs: dict[str, float]) -> bool:
        loss = logs["loss"]
        ref = max(v for v in (self.initial, self.chance, 1e-12) if math.isfinite(v))
        if loss > self.factor * ref:
            raise TrainingDiverged(
                f"training diverged: the loss grew from {self.initial:.4g} to {loss:.4g} in epoch {epoch}; "
                f"{self._fix()}"
            )
        self.losses.append(float(loss))
        w = self.stall_epochs
        if len(self.losses) > w and math.isfinite(self.chance) and loss >= 0.99 * self.chance:
            acc = logs.get("accuracy", math.nan)
            flat = min(self.losses[-w:]) > 0.99 * min(self.losses[:-w])
            if flat and (math.isnan(self.majority) or acc <= self.majority + 0.01):
                lr = self._state.optimizer.lr if self._state is not None else math.nan
                raise TrainingStalled(
                    f"training stalled: after {epoch} epochs the loss {loss:.4g} is still at the level of a "
                    f"constant prediction ({self.chance:.4g}); the learning rate may be wrong (now --lr "
                    f"{lr:g}: try 10 times lower or higher)"
                    + ("" if self.scaled else " or the features unscaled (--scale standard)")
                    + ", or the target cannot be predicted from the features"
                )
        return False

    def state_dict(self) -> dict[str, Any]:
        return {"initial": self.initial, "chance": self.chance, "majority": self.majority, "losses": self.losses}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.initial, self.chance, self.majority = state["initial"], state["chance"], state["majority"]
        self.losses = list(state["losses"])
