"""Batch normalisation (Ioffe & Szegedy, 2015) for dense and convolutional layers.

Each feature ``c`` (a column of rows ``(N, D)``, a channel of images ``(N, C, H, W)``) is
normalised over the ``M`` values it takes in the batch (``M = N`` for rows, ``N·H·W`` for images)::

    μ = (1/M) Σ x            σ² = (1/M) Σ (x − μ)²             (per feature, shape (C,))
    x̂ = (x − μ) / √(σ² + ε)  y = γ x̂ + β                       γ, β: (C,)   x, x̂, y: like x

In evaluation mode ``μ, σ²`` are the running averages (buffers, saved with the model), updated in
every training-mode forward pass: ``μ_run ← (1 − m) μ_run + m μ``, ``σ²_run ← (1 − m) σ²_run +
m σ² M/(M − 1)`` (the unbiased variance, as PyTorch keeps it), ``m = 0.1``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from chainrule.backend import namespace
from chainrule.errors import ConfigError, ShapeError
from chainrule.nn.layer import Layer, SpecContext, register_layer
from chainrule.nn.params import Buffer, Param

__all__ = ["BatchNorm"]


@register_layer
class BatchNorm(Layer):
    """``y = γ (x − μ)/√(σ² + ε) + β`` per feature, batch statistics in training mode.

    Backward in training mode, where μ and σ² depend on every x of the feature (sums ``Σ`` and
    means ``⟨·⟩`` run over the feature's ``M`` values; ``δ = ∂E/∂y``)::

        ∂E/∂γ = Σ δ ⊙ x̂                                  (C,)
        ∂E/∂β = Σ δ                                      (C,)
        ∂E/∂x̂ = γ δ
        ∂E/∂x = (γ / √(σ² + ε)) · (δ − ⟨δ⟩ − x̂ ⟨δ ⊙ x̂⟩)   (like x)

    The last line collects three paths, ``x → x̂`` directly, ``x → μ → x̂`` and ``x → σ² → x̂``:
    ``∂x̂_i/∂x_j = (1/√(σ²+ε)) ([i = j] − 1/M − x̂_i x̂_j / M)``, summed against ``γ δ_i``.
    In evaluation mode μ and σ² are constants, so ``∂E/∂x = γ δ / √(σ²_run + ε)``.
    """

    kind = "batchnorm"
    spec = "batchnorm"
    symbol, symbol_latex = "BN", r"\operatorname{BN}"
    formula = "y = γ (x − μ_B) / √(σ²_B + ε) + β"
    formula_latex = r"y = \gamma \frac{x - \mu_B}{\sqrt{\sigma_B^2 + \epsilon}} + \beta"
    derivative = "∂E/∂x = γ/√(σ²+ε) · (δ − ⟨δ⟩ − x̂ ⟨δ x̂⟩)"
    derivative_latex = (
        r"\frac{\partial E}{\partial x} = \frac{\gamma}{\sqrt{\sigma_B^2+\epsilon}}"
        r"\left(\delta - \langle \delta \rangle - \hat{x} \langle \delta \hat{x} \rangle\right)"
    )

    def __init__(
        self, num_features: int, *, momentum: float = 0.1, eps: float = 1e-5, dtype: Any = np.float32
    ) -> None:
        super().__init__()
        self.num_features = int(num_features)
        self.momentum, self.eps = float(momentum), float(eps)
        if self.num_features < 1 or not 0 <= self.momentum <= 1 or not self.eps > 0:
            raise ConfigError(f"batchnorm needs features ≥ 1, momentum in [0, 1], eps > 0: {num_features}")
        c = self.num_features
        self.gamma, self.beta = Param(np.ones(c, dtype), "gamma"), Param(np.zeros(c, dtype), "beta")
        self.running_mean = Buffer(np.zeros(c, dtype), "running_mean")
        self.running_var = Buffer(np.ones(c, dtype), "running_var")
        self.params = [self.gamma, self.beta]
        self.buffers = [self.running_mean, self.running_var]

    @classmethod
    def state_shapes(cls, cfg: dict[str, Any]) -> dict[str, tuple[int, ...]]:
        try:
            c = int(cfg["num_features"])
        except (KeyError, TypeError, ValueError):
            raise ConfigError(f"batchnorm needs an integer num_features: {cfg}") from None
        if c < 1:
            raise ConfigError(f"batchnorm needs num_features ≥ 1: {cfg}")
        return {"gamma": (c,), "beta": (c,), "running_mean": (c,), "running_var": (c,)}

    @classmethod
    def from_config(
        cls, cfg: dict[str, Any], dtype: Any = np.float32, built: Sequence[Layer] = ()
    ) -> BatchNorm:
        cls.state_shapes(cfg)
        try:
            return cls(
                int(cfg["num_features"]),
                momentum=cfg.get("momentum", 0.1),
                eps=cfg.get("eps", 1e-5),
                dtype=dtype,
            )
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"bad options for layer 'batchnorm': {exc}") from None

    @classmethod
    def example(cls, rng: np.random.Generator, dtype: Any = np.float64) -> tuple[Layer, tuple[int, ...]]:
        layer = cls(3, dtype=dtype)
        layer.gamma.value[...] = rng.uniform(0.5, 1.5, 3)
        layer.beta.value[...] = rng.standard_normal(3)
        return layer, (3, 4, 5)

    @classmethod
    def spec_config(cls, args: dict[str, str], input_shape: tuple[int, ...]) -> dict[str, Any]:
        if args:
            raise ConfigError("batchnorm takes no arguments")
        if len(input_shape) not in (1, 3):
            raise ShapeError(
                f"batchnorm reads rows (D,) or images (C, H, W), got samples of shape {input_shape}"
            )
        return {"type": cls.kind, "num_features": int(input_shape[0])}

    @classmethod
    def from_spec(cls, cfg: dict[str, Any], ctx: SpecContext) -> Layer:
        return cls(cfg["num_features"], dtype=ctx.dtype)

    def _axes(self, x: Any) -> tuple[tuple[int, ...], tuple[int, ...]]:
        """The axes a feature's values lie along, and the shape that broadcasts ``(C,)`` over x."""
        if x.ndim not in (2, 4) or x.shape[1] != self.num_features:
            raise ShapeError(
                f"batchnorm expects (N, {self.num_features}) or (N, {self.num_features}, H, W), "
                f"got {tuple(x.shape)}"
            )
        return ((0,), (1, -1)) if x.ndim == 2 else ((0, 2, 3), (1, -1, 1, 1))

    def forward(self, x: Any) -> tuple[Any, Any]:
        xp = namespace(x)
        axes, col = self._axes(x)
        m = math.prod(x.shape) // self.num_features
        if self.training:
            if m < 2:
                raise ShapeError(
                    "batchnorm in training mode needs more than one value per feature (batch ≥ 2)"
                )
            mu = xp.mean(x, axis=axes)
            var = xp.mean((x - xp.reshape(mu, col)) ** 2, axis=axes)
            k = self.momentum
            self.running_mean.value[...] = (1 - k) * self.running_mean.value + k * mu
            self.running_var.value[...] = (1 - k) * self.running_var.value + k * var * (m / (m - 1))
        else:
            mu, var = self.running_mean.value, self.running_var.value
        inv_std = 1.0 / xp.sqrt(var + self.eps)  # (C,)
        xhat = (x - xp.reshape(mu, col)) * xp.reshape(inv_std, col)
        y = xhat * xp.reshape(self.gamma.value, col) + xp.reshape(self.beta.value, col)
        return y, (xhat, inv_std, self.training)

    def backward(self, dy: Any, ctx: Any, *, need_dx: bool = True) -> Any:
        xp = namespace(dy)
        xhat, inv_std, training = ctx
        axes, col = self._axes(dy)
        self.gamma.grad += xp.sum(dy * xhat, axis=axes)
        self.beta.grad += xp.sum(dy, axis=axes)
        if not need_dx:
            return None
        scale = xp.reshape(self.gamma.value * inv_std, col)
        if not training:
            return dy * scale
        mean_dy = xp.mean(dy, axis=axes, keepdims=True)
        mean_dy_xhat = xp.mean(dy * xhat, axis=axes, keepdims=True)
        return scale * (dy - mean_dy - xhat * mean_dy_xhat)

    def output_shape(self, input_shape: tuple[int, ...]) -> tuple[int, ...]:
        if tuple(input_shape)[:1] != (self.num_features,) or len(input_shape) not in (1, 3):
            raise ShapeError(
                f"batchnorm expects {self.num_features} features, got samples {tuple(input_shape)}"
            )
        return tuple(input_shape)

    def config(self) -> dict[str, Any]:
        return {"type": self.kind, **{k: getattr(self, k) for k in ("num_features", "momentum", "eps")}}

    def extra_repr(self) -> str:
        return f"{self.num_features}, momentum={self.momentum}, eps={self.eps}"
