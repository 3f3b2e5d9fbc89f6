"""Inverted dropout: in training, keep each unit with probability ``1 − p`` and scale it up.

::

    m_i ~ Bernoulli(1 − p) / (1 − p)          (one draw per unit and sample, any shape)
    y = x ⊙ m           (training)             y = x   (evaluation)
    ∂E/∂x = δ ⊙ m       (training)             ∂E/∂x = δ   (evaluation)

The scale ``1/(1 − p)`` keeps ``E[y] = x``, so evaluation needs no correction (the "inverted" form;
Nielsen's chapter 3 halves the weights at test time instead, which is the same in expectation).

Each layer draws its masks from its own NumPy ``Generator`` (seeded from the network's build seed,
or ``seed``), so training is deterministic under a seed and on every backend the masks are the
same: they are drawn on the host and moved to the input's device.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from chainrule.backend import backend_of
from chainrule.errors import ConfigError
from chainrule.nn.layer import Layer, SpecContext, register_layer, spec_number

__all__ = ["Dropout"]


@register_layer
class Dropout(Layer):
    """``y = x ⊙ m`` with ``m = [u ≥ p] / (1 − p)``, ``u ~ U[0, 1)``, in training mode; the identity
    in evaluation mode. The context is the mask ``m`` (``None`` in evaluation)."""

    kind = "dropout"
    spec = "dropout:P"
    symbol, symbol_latex = "dropout", r"\operatorname{dropout}"
    formula = "y = x ⊙ m,  m_i = [u_i ≥ p] / (1 − p)"
    formula_latex = r"y = x \odot m,\quad m_i = \frac{[u_i \ge p]}{1 - p}"
    derivative = "∂E/∂x = δ ⊙ m"
    derivative_latex = r"\frac{\partial E}{\partial x} = \delta \odot m"

    def __init__(self, p: float = 0.5, seed: int | None = 0) -> None:
        super().__init__()
        self.p = float(p)
        if not 0 <= self.p < 1:
            raise ConfigError(f"dropout probability must be in [0, 1), got {p}")
        self.seed = None if seed is None else int(seed)
        #: the layer's own generator: masks are reproducible under the seed
        self.rng = np.random.default_rng(self.seed)

    @classmethod
    def example(cls, rng: np.random.Generator, dtype: Any = np.float64) -> tuple[Layer, tuple[int, ...]]:
        return cls(0.5, seed=3), (2, 3, 2)

    @classmethod
    def spec_config(cls, args: dict[str, str], input_shape: tuple[int, ...]) -> dict[str, Any]:
        p = spec_number(args, "p", float, lo=0.0)
        if p >= 1:
            raise ConfigError(f"P must be below 1, got {args['p']!r}")
        return {"type": cls.kind, "p": p}

    @classmethod
    def from_spec(cls, cfg: dict[str, Any], ctx: SpecContext) -> Layer:
        return cls(cfg["p"], seed=int(ctx.rng.integers(2**31)))

    @classmethod
    def from_config(
        cls, cfg: dict[str, Any], dtype: Any = np.float32, built: Sequence[Layer] = ()
    ) -> Dropout:
        try:
            return cls(float(cfg.get("p", 0.5)), seed=cfg.get("seed", 0))
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"bad options for layer 'dropout': {exc}") from None

    def mask(self, shape: tuple[int, ...], like: Any) -> Any:
        """A fresh mask ``[u ≥ p] / (1 − p)`` of ``shape``, on ``like``'s backend and dtype."""
        keep = self.rng.random(shape) >= self.p
        m = keep / (1.0 - self.p)
        if isinstance(like, np.ndarray):
            return m.astype(like.dtype, copy=False)
        return backend_of(like).asarray(m, dtype=like.dtype)

    def forward(self, x: Any) -> tuple[Any, Any]:
        if not self.training or self.p == 0:
            return x, None
        m = self.mask(tuple(x.shape), x)
        return x * m, m

    def backward(self, dy: Any, ctx: Any, *, need_dx: bool = True) -> Any:
        return dy if ctx is None else dy * ctx

    def config(self) -> dict[str, Any]:
        return {"type": self.kind, "p": self.p, "seed": self.seed}

    def extra_repr(self) -> str:
        return f"p={self.p}"
