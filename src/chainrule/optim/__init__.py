"""Update rules. Each ``step(params)`` changes ``param.value`` in place from ``param.grad``.

* :class:`SGD`: ``W ← W − α ∂E/∂W`` (seed 000, 002, 003). Full-batch, mini-batch or online
  (batch size 1) gradient descent differ only in the batch the gradient is taken over; see
  :func:`chainrule.train.loop.fit`.
* :class:`Momentum`: ``v ← μ v + g``; ``W ← W − α v``.
* :class:`Nesterov`: ``v ← μ v + g``; ``W ← W − α (g + μ v)`` (the look-ahead written at the current
  point, as PyTorch's ``SGD(nesterov=True)``).
* :class:`Adam`: ``m ← β₁m + (1−β₁)g``, ``s ← β₂s + (1−β₂)g²``, ``W ← W − α m̂ / (√ŝ + ε)`` with the
  bias corrections ``m̂ = m/(1−β₁ᵗ)``, ``ŝ = s/(1−β₂ᵗ)``.

The velocity/moment conventions match PyTorch's, so the oracle tests can follow trajectories.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, ClassVar

from chainrule.backend import namespace
from chainrule.errors import ConfigError
from chainrule.nn.params import Param

__all__ = ["OPTIMIZERS", "SGD", "Adam", "Momentum", "Nesterov", "Optimizer", "get_optimizer"]


class Optimizer:
    name: ClassVar[str] = ""

    def __init__(self, lr: float) -> None:
        if not (lr > 0 and math.isfinite(lr)):
            raise ConfigError(f"learning rate must be a positive number, got {lr}")
        self.lr = float(lr)
        self.t = 0
        self._state: list[Any] | None = None

    def state_for(self, params: Sequence[Param]) -> list[Any]:
        """The per-parameter state (velocities, moments), created on first use.

        The plain and fast runners share it, so they can take turns on one training run.
        """
        if self._state is None or len(self._state) != len(params):
            self._state = [self.init_state(p) for p in params]
        return self._state

    def tick(self, steps: int = 1) -> int:
        """Advance the step count by ``steps`` and return it. :meth:`step` calls it; a fast runner
        that applies this optimiser's update with its own kernels calls it once per update (or
        once for a replayed graph of ``steps`` updates) instead. Nothing else changes ``t``."""
        if steps < 0:
            raise ConfigError(f"the step count only moves forward, got {steps}")
        self.t += int(steps)
        return self.t

    def step(self, params: Sequence[Param]) -> None:
        """Update every parameter from its ``grad`` (the last stage of a training step)."""
        state = self.state_for(params)
        self.tick()
        for p, s in zip(params, state, strict=True):
            self.update(p, s)

    def init_state(self, p: Param) -> Any:
        return None

    def update(self, p: Param, state: Any) -> None:
        raise NotImplementedError

    def config(self) -> dict[str, Any]:
        return {"name": self.name, "lr": self.lr}

    def __repr__(self) -> str:
        return f"{type(self).__name__}(lr={self.lr})"


class SGD(Optimizer):
    """``W ← W − α g``."""

    name = "sgd"

    def update(self, p: Param, state: Any) -> None:
        p.value -= self.lr * p.grad


class Momentum(Optimizer):
    """``v ← μ v + g``; ``W ← W − α v``."""

    name = "momentum"

    def __init__(self, lr: float, momentum: float = 0.9) -> None:
        super().__init__(lr)
        if not 0 <= momentum < 1:
            raise ConfigError(f"momentum must be in [0, 1), got {momentum}")
        self.momentum = float(momentum)

    def init_state(self, p: Param) -> Any:
        return namespace(p.value).zeros_like(p.value)

    def update(self, p: Param, v: Any) -> None:
        v *= self.momentum
        v += p.grad
        p.value -= self.lr * v

    def config(self) -> dict[str, Any]:
        return {**super().config(), "momentum": self.momentum}


class Nesterov(Momentum):
    """``v ← μ v + g``; ``W ← W − α (g + μ v)``."""

    name = "nesterov"

    def update(self, p: Param, v: Any) -> None:
        v *= self.momentum
        v += p.grad
        p.value -= self.lr * (p.grad + self.momentum * v)


class Adam(Optimizer):
    """Adam with bias correction (Kingma & Ba), PyTorch's ε placement."""

    name = "adam"

    def __init__(self, lr: float = 1e-3, beta1: float = 0.9, beta2: float = 0.999, eps: float = 1e-8) -> None:
        super().__init__(lr)
        if not (0 <= beta1 < 1 and 0 <= beta2 < 1 and eps > 0):
            raise ConfigError("Adam needs 0 <= beta1, beta2 < 1 and eps > 0")
        self.beta1, self.beta2, self.eps = float(beta1), float(beta2), float(eps)

    def init_state(self, p: Param) -> Any:
        xp = namespace(p.value)
        return (xp.zeros_like(p.value), xp.zeros_like(p.value))

    def update(self, p: Param, state: Any) -> None:
        xp = namespace(p.value)
        m, s = state
        g = p.grad
        m *= self.beta1
        m += (1 - self.beta1) * g
        s *= self.beta2
        s += (1 - self.beta2) * g * g
        m_hat = m / (1 - self.beta1**self.t)
        s_hat = s / (1 - self.beta2**self.t)
        p.value -= self.lr * m_hat / (xp.sqrt(s_hat) + self.eps)

    def config(self) -> dict[str, Any]:
        return {**super().config(), "beta1": self.beta1, "beta2": self.beta2, "eps": self.eps}


OPTIMIZERS: dict[str, type[Optimizer]] = {cls.name: cls for cls in (SGD, Momentum, Nesterov, Adam)}


def get_optimizer(name: str | Optimizer, lr: float, **kwargs: Any) -> Optimizer:
    """An optimiser from its name (``sgd``, ``momentum``, ``nesterov``, ``adam``)."""
    if isinstance(name, Optimizer):
        return name
    if name not in OPTIMIZERS:
        raise ConfigError(f"unknown optimizer {name!r}; choose {', '.join(OPTIMIZERS)}")
    return OPTIMIZERS[name](lr, **kwargs)
