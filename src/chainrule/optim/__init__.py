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
        """``p.value`` from ``p.grad`` by :meth:`apply`, with fresh scratch arrays."""
        xp = namespace(p.value)
        self.apply(xp, p.value, p.grad, state, xp.empty_like(p.value), xp.empty_like(p.value))

    def apply(
        self, xp: Any, w: Any, g: Any, state: Any, tmp: Any, tmp2: Any, corrections: Any = None
    ) -> None:
        """The update rule, in place: ``w`` from the gradient ``g`` and this parameter's ``state``,
        with two scratch arrays of ``w``'s shape. Written with ufuncs that take ``out=`` (``xp`` is
        NumPy, CuPy or torch), so the plain step and the fast runners share this one formula.
        ``corrections`` is Adam's ``(1 − β₁ᵗ, 1 − β₂ᵗ)`` when a runner keeps ``t`` on a device."""
        raise NotImplementedError

    def config(self) -> dict[str, Any]:
        return {"name": self.name, "lr": self.lr}

    def __repr__(self) -> str:
        return f"{type(self).__name__}(lr={self.lr})"


class SGD(Optimizer):
    """``W ← W − α g``."""

    name = "sgd"

    def apply(
        self, xp: Any, w: Any, g: Any, state: Any, tmp: Any, tmp2: Any, corrections: Any = None
    ) -> None:
        xp.multiply(g, self.lr, out=tmp)
        xp.subtract(w, tmp, out=w)


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

    def apply(self, xp: Any, w: Any, g: Any, v: Any, tmp: Any, tmp2: Any, corrections: Any = None) -> None:
        xp.multiply(v, self.momentum, out=v)
        xp.add(v, g, out=v)  # v ← μ v + g
        xp.multiply(v, self.lr, out=tmp)
        xp.subtract(w, tmp, out=w)  # W ← W − α v

    def config(self) -> dict[str, Any]:
        return {**super().config(), "momentum": self.momentum}


class Nesterov(Momentum):
    """``v ← μ v + g``; ``W ← W − α (g + μ v)``."""

    name = "nesterov"

    def apply(self, xp: Any, w: Any, g: Any, v: Any, tmp: Any, tmp2: Any, corrections: Any = None) -> None:
        xp.multiply(v, self.momentum, out=v)
        xp.add(v, g, out=v)  # v ← μ v + g
        xp.multiply(v, self.momentum, out=tmp)
        xp.add(g, tmp, out=tmp)
        xp.multiply(tmp, self.lr, out=tmp)
        xp.subtract(w, tmp, out=w)  # W ← W − α (g + μ v)


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

    def bias_corrections(self) -> tuple[float, float]:
        """``(1 − β₁ᵗ, 1 − β₂ᵗ)`` for the step being taken (``t`` already counts it)."""
        return 1 - self.beta1**self.t, 1 - self.beta2**self.t

    def apply(
        self, xp: Any, w: Any, g: Any, state: Any, tmp: Any, tmp2: Any, corrections: Any = None
    ) -> None:
        m, s = state
        c1, c2 = corrections if corrections is not None else self.bias_corrections()
        xp.multiply(m, self.beta1, out=m)
        xp.multiply(g, 1 - self.beta1, out=tmp)
        xp.add(m, tmp, out=m)  # m ← β₁m + (1−β₁)g
        xp.multiply(s, self.beta2, out=s)
        xp.multiply(g, 1 - self.beta2, out=tmp)
        xp.multiply(tmp, g, out=tmp)
        xp.add(s, tmp, out=s)  # s ← β₂s + (1−β₂)g²
        xp.divide(s, c2, out=tmp2)  # ŝ = s / (1 − β₂ᵗ)
        xp.sqrt(tmp2, out=tmp2)
        xp.add(tmp2, self.eps, out=tmp2)
        xp.divide(m, c1, out=tmp)  # m̂ = m / (1 − β₁ᵗ)
        xp.multiply(tmp, self.lr, out=tmp)
        xp.divide(tmp, tmp2, out=tmp)
        xp.subtract(w, tmp, out=w)  # W ← W − α m̂ / (√ŝ + ε)

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
