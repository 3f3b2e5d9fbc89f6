"""Parameters (trained) and buffers (state that is saved but not trained).

A :class:`Param` is identified by the object, not by its name: two layers that hold the same
``Param`` share one weight (tied weights). The driver de-duplicates by identity, so a shared weight
is updated once per step, decayed once by L2, and saved once.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from chainrule.backend import namespace

__all__ = ["Buffer", "Param"]


class Param:
    """A trainable array and the gradient accumulated into it.

    ``value`` is owned by the parameter (a copy is taken at construction, so a caller's array is
    never modified by training). ``decay`` marks weights that L2 regularises; biases have
    ``decay=False`` (seed 001 never regularises ``b``). Layer backward passes *add* into ``grad``
    (``+=``), so a parameter used twice, or shared by two layers, gets the sum of both paths.
    """

    __slots__ = ("decay", "grad", "name", "value")

    def __init__(self, value: Any, name: str, *, decay: bool = False) -> None:
        xp = namespace(value)
        self.value = xp.asarray(value, copy=True)
        # NumPy: calloc'd zeros, whose pages stay untouched until the first backward (zeros_like
        # writes every page), so building or loading a model holds one copy of its weights
        v = self.value
        self.grad = np.zeros(v.shape, v.dtype) if isinstance(v, np.ndarray) else xp.zeros_like(v)
        self.name = name
        self.decay = decay

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.value.shape)

    def zero_grad(self) -> None:
        self.grad[...] = 0

    def __repr__(self) -> str:
        return f"Param({self.name}, shape={self.shape}, dtype={self.value.dtype})"


class Buffer:
    """Non-trained layer state that is saved and loaded with the weights (running statistics).

    Layers update a buffer's ``value`` in place during training-mode forward passes only.
    """

    __slots__ = ("name", "value")

    def __init__(self, value: Any, name: str) -> None:
        self.value = namespace(value).asarray(value, copy=True)
        self.name = name

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.value.shape)

    def __repr__(self) -> str:
        return f"Buffer({self.name}, shape={self.shape}, dtype={self.value.dtype})"
