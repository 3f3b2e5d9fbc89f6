"""The 2-D convolution layer, and how its backward pass "differs" from a dense layer's (seed 000).

Forward (a cross-correlation, as every deep-learning library computes it)::

    z[n, o, i, j] = Σ_{c, u, v} x_pad[n, c, s·i + u, s·j + v] · K[o, c, u, v] + b[o]

    x: (N, C, H, W)   K: (C_out, C, k, k)   b: (C_out,)   z: (N, C_out, OH, OW)
    OH = (H + 2p − k) // s + 1,  OW = (W + 2p − k) // s + 1        (s stride, p zero padding)

It is a dense layer whose weight is *shared* across positions and *local* (each output reads one
k×k window). The chain rule is the same as for a dense layer; what differs is that every weight
is used at every position, so its gradient sums over positions, and every input pixel feeds up to
k² outputs, so its δ sums over them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from chainrule.errors import ConfigError, ShapeError
from chainrule.nn.convolution import conv_backward, conv_forward, out_size
from chainrule.nn.init import init_weight
from chainrule.nn.layer import Layer, SpecContext, register_layer, spec_number
from chainrule.nn.layers.dense import positive_ints
from chainrule.nn.params import Param

__all__ = ["Conv2D", "image_shape"]


def image_shape(kind: str, input_shape: tuple[int, ...]) -> tuple[int, int, int]:
    """``(C, H, W)`` of image samples, or a :class:`ShapeError` saying the layer reads images."""
    if len(input_shape) != 3:
        raise ShapeError(f"{kind} reads images (C, H, W), got samples of shape {tuple(input_shape)}")
    c, h, w = (int(d) for d in input_shape)
    return c, h, w


@register_layer
class Conv2D(Layer):
    """``z = x ⋆ K + b`` with stride ``s`` and zero padding ``p``.

    Backward, given ``δ = ∂E/∂z`` of shape ``(N, C_out, OH, OW)``:

    * ``∂E/∂K`` is the **correlation of δ with the input**: every position (n, i, j) used
      ``K[o, c, u, v]`` once, with the input pixel under it::

          ∂E/∂K[o, c, u, v] = Σ_{n, i, j} δ[n, o, i, j] · x_pad[n, c, s·i + u, s·j + v]   (C_out, C, k, k)
          ∂E/∂b[o]          = Σ_{n, i, j} δ[n, o, i, j]                                     (C_out,)

    * ``∂E/∂x`` is the **full convolution of δ with the flipped kernel**: pixel ``x_pad[n, c, a, e]``
      fed every output whose window covers it, ``a = s·i + u``, so::

          ∂E/∂x_pad[n, c, a, e] = Σ_{o, u, v} δ[n, o, (a − u)/s, (e − v)/s] · K[o, c, u, v]
                                  (terms where (a − u)/s, (e − v)/s are integers inside δ)

      For ``s = 1`` substituting ``u → k − 1 − u`` turns this into a correlation of δ, padded with
      ``k − 1`` zeros, with ``K`` rotated by 180° (and its in/out channels swapped): the "full
      convolution with the flipped kernel"; for ``s > 1``, δ is first dilated with ``s − 1`` zeros.
      ``∂E/∂x`` is then the centre ``(H, W)`` of ``∂E/∂x_pad`` (the padding is not an input).

    As GEMMs over ``col = im2col(x) (N·OH·OW, C·k²)`` and ``Km = reshape(K, (C_out, C·k²))``
    (:mod:`chainrule.nn.convolution`), with ``D = reshape(δ, (N·OH·OW, C_out))``::

        z = col Kmᵀ + b        ∂E/∂Km = Dᵀ col        ∂E/∂x = col2im(D Km)

    which is the dense layer's ``x W``, ``xᵀ δ`` and ``δ Wᵀ`` with the windows as samples; col2im
    adds each window's share back onto the pixels it read (the same sum as the full convolution).
    """

    kind = "conv"
    spec = "conv:OUT:K[:STRIDE[:PAD]]"
    input_rank = 3
    symbol, symbol_latex = "conv", r"\operatorname{conv}"
    formula = "z^%(l)s = a^%(p)s ⋆ K^%(l)s + b^%(l)s"
    formula_latex = r"z^{%(l)s} = a^{%(p)s} \star K^{%(l)s} + b^{%(l)s}"
    derivative = "∂E/∂K = a ⋆ δ (correlation),  ∂E/∂a = δ ∗full rot180(K)"
    derivative_latex = (
        r"\frac{\partial E}{\partial K^{%(l)s}} = a^{%(p)s} \star \delta^{%(l)s},\quad "
        r"\frac{\partial E}{\partial a^{%(p)s}} = \delta^{%(l)s} \ast_{\mathrm{full}} "
        r"\operatorname{rot180}(K^{%(l)s})"
    )
    default_init = "he"

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        stride: int = 1,
        pad: int = 0,
        *,
        init: str = "xavier",
        rng: np.random.Generator | int | None = None,
        dtype: Any = np.float32,
        W: Any = None,
        b: Any = None,
    ) -> None:
        """``W (C_out, C, k, k)`` and ``b (C_out,)`` may be given; else ``W`` is drawn by ``init``
        with fan-in ``C·k²`` and fan-out ``C_out`` and ``b = 0``."""
        super().__init__()
        cfg = {"in_channels": in_channels, "out_channels": out_channels, "kernel_size": kernel_size}
        self.in_channels, self.out_channels, self.kernel_size = positive_ints(cfg, *cfg)
        self.stride, self.pad = int(stride), int(pad)
        if self.stride < 1 or self.pad < 0:
            raise ConfigError(f"conv needs stride ≥ 1 and padding ≥ 0, got {stride}, {pad}")
        shape = (self.out_channels, self.in_channels, self.kernel_size, self.kernel_size)
        if W is None:
            gen = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
            fan_in = self.in_channels * self.kernel_size**2
            W = np.ascontiguousarray(
                init_weight(init, fan_in, self.out_channels, gen).T.reshape(shape), dtype
            )
        if b is None:
            b = np.zeros(self.out_channels, dtype=np.asarray(W).dtype)
        if tuple(W.shape) != shape or tuple(b.shape) != (self.out_channels,):
            raise ShapeError(f"conv needs K {shape} and b {(self.out_channels,)}, got {W.shape}, {b.shape}")
        self.W, self.b = Param(W, "W", decay=True), Param(b, "b")
        self.params = [self.W, self.b]

    @classmethod
    def state_shapes(cls, cfg: dict[str, Any]) -> dict[str, tuple[int, ...]]:
        c, o, k = positive_ints(cfg, "in_channels", "out_channels", "kernel_size")
        return {"W": (o, c, k, k), "b": (o,)}

    @classmethod
    def from_config(cls, cfg: dict[str, Any], dtype: Any = np.float32, built: Sequence[Layer] = ()) -> Conv2D:
        shapes = cls.state_shapes(cfg)
        try:
            stride, pad = int(cfg.get("stride", 1)), int(cfg.get("pad", 0))
        except (TypeError, ValueError):
            raise ConfigError(f"conv needs integer stride and pad: {cfg}") from None
        o, c, k, _ = shapes["W"]
        return cls(c, o, k, stride, pad, W=np.zeros(shapes["W"], dtype), b=np.zeros(shapes["b"], dtype))

    @classmethod
    def example(cls, rng: np.random.Generator, dtype: Any = np.float64) -> tuple[Layer, tuple[int, ...]]:
        layer = cls(2, 3, 3, stride=2, pad=1, rng=rng, dtype=dtype)
        layer.b.value[...] = rng.standard_normal(3)
        return layer, (2, 7, 6)

    @classmethod
    def spec_config(cls, args: dict[str, str], input_shape: tuple[int, ...]) -> dict[str, Any]:
        c, h, w = image_shape(cls.kind, input_shape)
        cfg = {
            "type": cls.kind,
            "in_channels": c,
            "out_channels": spec_number(args, "out", lo=1),
            "kernel_size": spec_number(args, "k", lo=1),
            "stride": spec_number(args, "stride", default=1, lo=1),
            "pad": spec_number(args, "pad", default=0, lo=0),
        }
        for side in (h, w):
            if side + 2 * cfg["pad"] < cfg["kernel_size"]:
                raise ShapeError(
                    f"a {cfg['kernel_size']}×{cfg['kernel_size']} kernel is larger than its "
                    f"{h}×{w} input (padding {cfg['pad']})"
                )
        return cfg

    @classmethod
    def from_spec(cls, cfg: dict[str, Any], ctx: SpecContext) -> Layer:
        return cls(
            cfg["in_channels"],
            cfg["out_channels"],
            cfg["kernel_size"],
            cfg["stride"],
            cfg["pad"],
            init=ctx.init,
            rng=ctx.rng,
            dtype=ctx.dtype,
        )

    def forward(self, x: Any) -> tuple[Any, Any]:
        if x.ndim != 4 or x.shape[1] != self.in_channels:
            raise ShapeError(f"conv expects images (N, {self.in_channels}, H, W), got shape {tuple(x.shape)}")
        return conv_forward(x, self.W.value, self.b.value, self.stride, self.pad)

    def backward(self, dy: Any, ctx: Any, *, need_dx: bool = True) -> Any:
        dW, db, dx = conv_backward(dy, ctx, self.W.value, self.stride, self.pad, need_dx)
        self.W.grad += dW
        self.b.grad += db
        return dx

    def output_shape(self, input_shape: tuple[int, ...]) -> tuple[int, ...]:
        c, h, w = image_shape(self.kind, input_shape)
        if c != self.in_channels:
            raise ShapeError(f"conv expects {self.in_channels} input channels, got samples {input_shape}")
        k, s, p = self.kernel_size, self.stride, self.pad
        return (self.out_channels, out_size(h, k, s, p), out_size(w, k, s, p))

    def config(self) -> dict[str, Any]:
        keys = ("in_channels", "out_channels", "kernel_size", "stride", "pad")
        return {"type": self.kind, **{k: getattr(self, k) for k in keys}}

    def extra_repr(self) -> str:
        return (
            f"{self.in_channels} -> {self.out_channels}, {self.kernel_size}×{self.kernel_size}, "
            f"stride {self.stride}, pad {self.pad}"
        )
