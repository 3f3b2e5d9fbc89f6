"""Maxout (seed 002): each output unit is the largest of k affine pieces.

::

    z_{ij} = x W_{·ij} + b_{ij}         x: (N, D_in)   W: (D_in, D_out·k)   z: (N, D_out, k)
    h_i(x) = max_{j ∈ [1, k]} z_{ij}                                    h: (N, D_out)

The parameters grow k-fold, as the seed remarks.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from chainrule.backend import namespace
from chainrule.errors import ConfigError, ShapeError
from chainrule.nn.layer import Layer, register_layer
from chainrule.nn.layers.dense import affine_params
from chainrule.nn.params import Param


@register_layer
class Maxout(Layer):
    """``h = max_j (x W_j + b_j)`` over ``k`` pieces per output unit.

    Backward: ``max`` passes the gradient to its winning argument only, so with ``m`` the one-hot
    mask of the winning piece (first one on a tie)::

        ∂E/∂z = m ⊙ dy[..., None]                      (N, D_out, k)
        ∂E/∂W = xᵀ · ∂E/∂z (flattened to (N, D_out·k))  (D_in, D_out·k)
        ∂E/∂b = Σ_rows ∂E/∂z                            (D_out·k,)
        ∂E/∂x = ∂E/∂z · Wᵀ                              (N, D_in)
    """

    kind = "maxout"

    def __init__(
        self,
        in_features: int,
        out_features: int,
        k: int = 2,
        *,
        init: str = "xavier",
        scale: float = 1.0,
        rng: np.random.Generator | int | None = None,
        dtype: Any = np.float32,
        W: Any = None,
        b: Any = None,
    ) -> None:
        super().__init__()
        if int(k) < 1 or int(in_features) < 1 or int(out_features) < 1:
            raise ConfigError(f"Maxout needs positive sizes and k, got {in_features}, {out_features}, {k}")
        self.in_features, self.out_features, self.k = int(in_features), int(out_features), int(k)
        width = self.out_features * self.k
        W, b = affine_params(self.in_features, width, init, scale, rng, dtype, W, b)
        self.W = Param(W, "W", decay=True)
        self.b = Param(b, "b")
        self.params = [self.W, self.b]
        self._x: Any = None
        self._mask: Any = None

    @classmethod
    def from_config(cls, cfg: dict[str, Any], dtype: Any = np.float32) -> Maxout:
        try:
            d_in, d_out, k = int(cfg["in_features"]), int(cfg["out_features"]), int(cfg["k"])
        except (KeyError, TypeError, ValueError):
            raise ConfigError(f"maxout layer needs in_features, out_features, k: {cfg}") from None
        w = d_out * k
        return cls(d_in, d_out, k, W=np.zeros((d_in, w), dtype), b=np.zeros(w, dtype))

    def forward(self, x: Any) -> Any:
        xp = namespace(x)
        if x.shape[-1] != self.in_features:
            raise ShapeError(f"Maxout expects {self.in_features} input features, got {x.shape[-1]}")
        self._x = x
        z = xp.reshape(x @ self.W.value + self.b.value, (x.shape[0], self.out_features, self.k))
        winner = xp.argmax(z, axis=-1)
        self._mask = xp.astype(winner[..., None] == xp.arange(self.k, device=_device(x)), z.dtype)
        return xp.max(z, axis=-1)

    def backward(self, dy: Any, *, need_dx: bool = True) -> Any:
        xp = namespace(dy)
        dz = xp.reshape(self._mask * dy[..., None], (dy.shape[0], self.out_features * self.k))
        self.W.grad += self._x.T @ dz
        self.b.grad += xp.sum(dz, axis=0)
        return dz @ self.W.value.T if need_dx else None

    def output_dim(self, input_dim: int) -> int:
        return self.out_features

    def config(self) -> dict[str, Any]:
        return {
            "type": self.kind,
            "in_features": self.in_features,
            "out_features": self.out_features,
            "k": self.k,
        }

    def extra_repr(self) -> str:
        return f"{self.in_features} -> {self.out_features}, k={self.k}"


def _device(x: Any) -> Any:
    return getattr(x, "device", None) if type(x).__module__.split(".")[0] != "numpy" else None
