"""Flatten: from images or sequences to the rows a dense layer reads.

::

    y = reshape(x, (N, C·H·W))          x: (N, C, H, W)   (any per-sample shape)
    ∂E/∂x = reshape(dy, x.shape)        nothing is mixed, so the gradient is only reshaped back
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from chainrule.backend import namespace
from chainrule.nn.layer import Layer, register_layer

__all__ = ["Flatten"]


@register_layer
class Flatten(Layer):
    """``y = x`` with each sample's axes collapsed into one: ``(N, *shape) -> (N, prod(shape))``;
    ``dx = dy`` reshaped back to ``(N, *shape)``."""

    kind = "flatten"
    spec = "flatten"
    symbol, symbol_latex = "flatten", r"\operatorname{vec}"
    formula, formula_latex = "y = vec(x)", r"y_n = \operatorname{vec}(x_n)"
    derivative, derivative_latex = (
        "dx = reshape(dy, x.shape)",
        r"\frac{\partial E}{\partial x} = \operatorname{reshape}(\delta)",
    )

    @classmethod
    def example(cls, rng: np.random.Generator, dtype: Any = np.float64) -> tuple[Layer, tuple[int, ...]]:
        return cls(), (2, 3, 2)

    def forward(self, x: Any) -> tuple[Any, Any]:
        return namespace(x).reshape(x, (x.shape[0], -1)), tuple(x.shape)

    def backward(self, dy: Any, ctx: Any, *, need_dx: bool = True) -> Any:
        return namespace(dy).reshape(dy, ctx) if need_dx else None

    def output_shape(self, input_shape: tuple[int, ...]) -> tuple[int, ...]:
        return (math.prod(input_shape),)
