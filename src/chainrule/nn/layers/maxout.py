"""Maxout (seed 002): each output unit is the largest of k affine pieces.

::

    z_{ij} = x W_{·ij} + b_{ij}         x: (N, D_in)   W: (D_in, D_out·k)   z: (N, D_out, k)
    h_i(x) = max_{j ∈ [1, k]} z_{ij}                                    h: (N, D_out)

The parameters grow k-fold, as the seed remarks.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from chainrule.backend import namespace
from chainrule.errors import ConfigError
from chainrule.nn.layer import Layer, SpecContext, register_layer, spec_number
from chainrule.nn.layers.dense import affine_params, check_features, positive_ints, rows_width

__all__ = ["Maxout"]


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
    spec = "maxout:OUT[:K]"
    input_rank = 1
    formula, formula_latex = (
        "h_i = max_j (x W_ij + b_ij)",
        r"h_i = \max_{j \in [1,k]} (a^{%(p)s} W_{\cdot ij} + b_{ij})",
    )
    derivative = "∂E/∂z_ij = dy_i [j wins]"
    derivative_latex = r"\frac{\partial E}{\partial z_{ij}} = \delta_i\,[j = \arg\max_j z_{ij}]"

    def __init__(self, in_features: int, out_features: int, k: int = 2, **affine: Any) -> None:
        """``affine``: ``init``, ``scale``, ``rng``, ``dtype``, ``W``, ``b``, as for
        :class:`~chainrule.nn.layers.dense.Dense` (here ``W`` is ``(D_in, D_out·k)``)."""
        super().__init__()
        if int(k) < 1 or int(in_features) < 1 or int(out_features) < 1:
            raise ConfigError(f"Maxout needs positive sizes and k, got {in_features}, {out_features}, {k}")
        self.in_features, self.out_features, self.k = int(in_features), int(out_features), int(k)
        try:
            self.W, self.b = affine_params(self.in_features, self.out_features * self.k, **affine)
        except TypeError as exc:
            raise ConfigError(f"Maxout: {exc}") from None
        self.params = [self.W, self.b]

    @classmethod
    def state_shapes(cls, cfg: dict[str, Any]) -> dict[str, tuple[int, ...]]:
        d_in, d_out, k = positive_ints(cfg, "in_features", "out_features", "k")
        return {"W": (d_in, d_out * k), "b": (d_out * k,)}

    @classmethod
    def from_config(cls, cfg: dict[str, Any], dtype: Any = np.float32, built: Sequence[Layer] = ()) -> Maxout:
        d_in, d_out, k = positive_ints(cfg, "in_features", "out_features", "k")
        w = d_out * k
        return cls(d_in, d_out, k, W=np.zeros((d_in, w), dtype), b=np.zeros(w, dtype))

    @classmethod
    def example(cls, rng: np.random.Generator, dtype: Any = np.float64) -> tuple[Layer, tuple[int, ...]]:
        return cls(5, 4, 3, rng=rng, dtype=dtype), (5,)

    @classmethod
    def spec_config(cls, args: dict[str, str], input_shape: tuple[int, ...]) -> dict[str, Any]:
        return {
            "type": cls.kind,
            "in_features": rows_width(cls.kind, input_shape),
            "out_features": spec_number(args, "out", lo=1),
            "k": spec_number(args, "k", default=2, lo=1),
        }

    @classmethod
    def from_spec(cls, cfg: dict[str, Any], ctx: SpecContext) -> Layer:
        return cls(
            cfg["in_features"], cfg["out_features"], cfg["k"], init=ctx.init, rng=ctx.rng, dtype=ctx.dtype
        )

    def forward(self, x: Any) -> tuple[Any, Any]:
        xp = namespace(x)
        check_features(self, x)
        z = xp.reshape(x @ self.W.value + self.b.value, (x.shape[0], self.out_features, self.k))
        winner = xp.argmax(z, axis=-1)
        pieces = xp.arange(self.k) if isinstance(x, np.ndarray) else xp.arange(self.k, device=x.device)
        mask = xp.astype(winner[..., None] == pieces, z.dtype)
        return xp.max(z, axis=-1), (x, mask)

    def backward(self, dy: Any, ctx: Any, *, need_dx: bool = True) -> Any:
        xp = namespace(dy)
        x, mask = ctx
        dz = xp.reshape(mask * dy[..., None], (dy.shape[0], self.out_features * self.k))
        self.W.grad += x.T @ dz
        self.b.grad += xp.sum(dz, axis=0)
        return dz @ self.W.value.T if need_dx else None

    def output_shape(self, input_shape: tuple[int, ...]) -> tuple[int, ...]:
        return (*tuple(input_shape)[:-1], self.out_features)

    def config(self) -> dict[str, Any]:
        return {
            "type": self.kind,
            "in_features": self.in_features,
            "out_features": self.out_features,
            "k": self.k,
        }

    def extra_repr(self) -> str:
        return f"{self.in_features} -> {self.out_features}, k={self.k}"
