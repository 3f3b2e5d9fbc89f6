"""The fully connected layer, seed 002's matrix form.

Forward (rows are samples)::

    z = x W + b          x: (N, D_in)   W: (D_in, D_out)   b: (D_out,)   z: (N, D_out)

Seed 000/001/004 write it per column as ``z^{l} = W^{l} a^{l-1} + b^{l}``; transposing that gives the
row form above. Seed 002 derives the backward pass entry by entry (``∂J/∂w_11 = ∂J/∂o_11·z_11 +
∂J/∂o_21·z_21``) and collects it into three matrix products.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from chainrule.backend import namespace
from chainrule.errors import ConfigError, ShapeError
from chainrule.nn.init import init_weight
from chainrule.nn.layer import Layer, register_layer
from chainrule.nn.params import Param


def affine_params(
    d_in: int, width: int, init: str, scale: float, rng: Any, dtype: Any, W: Any, b: Any
) -> tuple[Any, Any]:
    """``W (d_in, width)`` and ``b (width,)`` for an affine map ``x W + b``: the given ones, checked
    for shape, or ``W`` from initialiser ``init`` (NumPy's generator ``rng``, a seed or a Generator)
    and ``b = 0``. Shared by :class:`Dense` and :class:`~chainrule.nn.layers.maxout.Maxout`."""
    if W is None:
        gen = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
        W = init_weight(init, d_in, width, gen, scale).astype(dtype)
    if b is None:
        b = np.zeros(width, dtype=np.asarray(W).dtype if dtype is None else dtype)
    if tuple(W.shape) != (d_in, width):
        raise ShapeError(f"W must have shape {(d_in, width)}, got {tuple(W.shape)}")
    if tuple(b.shape) != (width,):
        raise ShapeError(f"b must have shape {(width,)}, got {tuple(b.shape)}")
    return W, b


@register_layer
class Dense(Layer):
    """``z = x W + b``.

    Backward, given ``dy = ∂E/∂z`` of shape ``(N, D_out)`` (the δ of seed 004, one row per sample)::

        ∂E/∂W = xᵀ · dy        (D_in, N) · (N, D_out)  -> (D_in, D_out)   [seed 004: a^{l-1}_k δ^l_j]
        ∂E/∂b = Σ_rows dy      (D_out,)                                     [seed 004: δ^l_j]
        ∂E/∂x = dy · Wᵀ        (N, D_out) · (D_out, D_in) -> (N, D_in)   [seed 004: (W^{l})ᵀ δ^{l}]

    The sums over rows are where a batch's per-sample gradients add up; the 1/N of a mean loss is
    already inside ``dy`` (it is applied once, in the loss).
    """

    kind = "dense"

    def __init__(
        self,
        in_features: int,
        out_features: int,
        *,
        init: str = "xavier",
        scale: float = 1.0,
        rng: np.random.Generator | int | None = None,
        dtype: Any = np.float32,
        W: Any = None,
        b: Any = None,
    ) -> None:
        super().__init__()
        if int(in_features) < 1 or int(out_features) < 1:
            raise ConfigError(f"Dense needs positive sizes, got {in_features} -> {out_features}")
        self.in_features, self.out_features = int(in_features), int(out_features)
        W, b = affine_params(self.in_features, self.out_features, init, scale, rng, dtype, W, b)
        self.W = Param(W, "W", decay=True)
        self.b = Param(b, "b")
        self.params = [self.W, self.b]
        self._x: Any = None

    @classmethod
    def from_config(cls, cfg: dict[str, Any], dtype: Any = np.float32) -> Dense:
        try:
            d_in, d_out = int(cfg["in_features"]), int(cfg["out_features"])
        except (KeyError, TypeError, ValueError):
            raise ConfigError(f"dense layer needs integer in_features/out_features: {cfg}") from None
        return cls(d_in, d_out, W=np.zeros((d_in, d_out), dtype), b=np.zeros(d_out, dtype))

    def forward(self, x: Any) -> Any:
        if x.shape[-1] != self.in_features:
            raise ShapeError(f"Dense expects {self.in_features} input features, got {x.shape[-1]}")
        self._x = x
        return x @ self.W.value + self.b.value

    def backward(self, dy: Any, *, need_dx: bool = True) -> Any:
        xp = namespace(dy)
        x = self._x
        self.W.grad += x.T @ dy
        self.b.grad += xp.sum(dy, axis=0)
        return dy @ self.W.value.T if need_dx else None

    def output_dim(self, input_dim: int) -> int:
        return self.out_features

    def config(self) -> dict[str, Any]:
        return {"type": self.kind, "in_features": self.in_features, "out_features": self.out_features}

    def extra_repr(self) -> str:
        return f"{self.in_features} -> {self.out_features}"
