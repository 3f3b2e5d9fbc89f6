"""Parameters: a trainable array and the gradient accumulated into it."""

from __future__ import annotations

from typing import Any

from chainrule.backend import namespace

__all__ = ["Param"]


class Param:
    """A trainable array and the gradient accumulated into it.

    ``value`` is owned by the parameter (a copy is taken at construction, so a caller's array is
    never modified by training). ``decay`` marks weights that L2 regularises; biases have
    ``decay=False`` (seed 001 never regularises ``b``).
    """

    __slots__ = ("decay", "grad", "name", "value")

    def __init__(self, value: Any, name: str, *, decay: bool = False) -> None:
        xp = namespace(value)
        self.value = xp.asarray(value, copy=True)
        self.grad = xp.zeros_like(self.value)
        self.name = name
        self.decay = decay

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.value.shape)

    def zero_grad(self) -> None:
        self.grad[...] = 0

    def __repr__(self) -> str:
        return f"Param({self.name}, shape={self.shape}, dtype={self.value.dtype})"
