"""Pooling: max-pooling routes δ to the arg-max, average-pooling spreads it evenly.

Both slide a ``k×k`` window at stride ``s`` (default ``s = k``) over each channel separately, with
no padding::

    y[n, c, i, j] = pool_{u, v < k} x[n, c, s·i + u, s·j + v]
    x: (N, C, H, W)   y: (N, C, OH, OW)   OH = (H − k) // s + 1,  OW = (W − k) // s + 1

Neither has parameters. The code walks the k² window offsets ``(u, v)``; offset ``(u, v)`` of every
window at once is the strided view ``x[:, :, u::s, v::s]`` (cut to ``OH × OW``), so forward and
backward are k² whole-array operations, on any array backend.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from chainrule.backend import namespace
from chainrule.errors import ConfigError, ShapeError
from chainrule.nn.convolution import out_size, route_max_numpy
from chainrule.nn.layer import Layer, register_layer, spec_number
from chainrule.nn.layers.conv import image_shape

__all__ = ["AvgPool2D", "MaxPool2D"]


def _offsets(k: int, s: int, oh: int, ow: int) -> list[tuple[slice, slice]]:
    """For each window offset ``(u, v)`` (row-major), the slices that pick it in every window."""
    return [
        (slice(u, u + s * (oh - 1) + 1, s), slice(v, v + s * (ow - 1) + 1, s))
        for u in range(k)
        for v in range(k)
    ]


class _Pool(Layer):
    """What max- and average-pooling share: the window, the spec word's arguments, shapes."""

    input_rank = 3

    def __init__(self, kernel_size: int, stride: int | None = None) -> None:
        super().__init__()
        self.kernel_size = int(kernel_size)
        self.stride = self.kernel_size if stride is None else int(stride)
        if self.kernel_size < 1 or self.stride < 1:
            raise ConfigError(f"{self.kind} needs a positive window and stride, got {kernel_size}, {stride}")

    @classmethod
    def example(cls, rng: np.random.Generator, dtype: Any = np.float64) -> tuple[Layer, tuple[int, ...]]:
        return cls(3, 2), (2, 7, 6)  # overlapping windows, an odd size, a leftover column

    @classmethod
    def spec_config(cls, args: dict[str, str], input_shape: tuple[int, ...]) -> dict[str, Any]:
        _, h, w = image_shape(cls.kind, input_shape)
        k = spec_number(args, "k", lo=1)
        s = spec_number(args, "stride", default=k, lo=1)
        if k > min(h, w):
            raise ShapeError(f"a {k}×{k} pooling window does not fit a {h}×{w} input (pooling below 1×1)")
        return {"type": cls.kind, "kernel_size": k, "stride": s}

    def _grid(self, x: Any) -> tuple[int, int]:
        if x.ndim != 4:
            raise ShapeError(f"{self.kind} expects images (N, C, H, W), got shape {tuple(x.shape)}")
        k, s = self.kernel_size, self.stride
        return out_size(x.shape[2], k, s), out_size(x.shape[3], k, s)

    def output_shape(self, input_shape: tuple[int, ...]) -> tuple[int, ...]:
        c, h, w = image_shape(self.kind, input_shape)
        k, s = self.kernel_size, self.stride
        return (c, out_size(h, k, s), out_size(w, k, s))

    def config(self) -> dict[str, Any]:
        return {"type": self.kind, "kernel_size": self.kernel_size, "stride": self.stride}

    def extra_repr(self) -> str:
        return f"{self.kernel_size}×{self.kernel_size}, stride {self.stride}"


@register_layer
class MaxPool2D(_Pool):
    """``y = max over each window``; δ goes to the position that won.

    The max is a switch: ``y[n, c, i, j] = x[n, c, s·i + u*, s·j + v*]`` for the winning offset
    ``(u*, v*)`` (the first one, in row-major order, on a tie), so its Jacobian is one-hot::

        ∂E/∂x[n, c, s·i + u, s·j + v] += δ[n, c, i, j] · [(u, v) = (u*, v*)]     (N, C, H, W)

    (``+=``: with overlapping windows, ``s < k``, one pixel may win several). Pixels that never win
    get zero. The context is ``(x, y)``, both on the tape anyway; backward finds each window's
    winner again as the first offset where ``x == y``. Forward is ``k² − 1`` element-wise maxima.
    """

    kind = "maxpool"
    spec = "maxpool:K[:STRIDE]"
    symbol, symbol_latex = "maxpool", r"\operatorname{maxpool}"
    formula = "y_ij = max_{(u,v) in window(i,j)} x_uv"
    formula_latex = r"y_{ij} = \max_{(u,v) \in \mathcal{W}_{ij}} x_{uv}"
    derivative = "∂E/∂x_uv = δ_ij if (u, v) is the arg-max of window (i, j), else 0"
    derivative_latex = (
        r"\frac{\partial E}{\partial x_{uv}} = \sum_{ij} \delta_{ij}\,"
        r"[(u,v) = \arg\max_{\mathcal{W}_{ij}} x]"
    )

    def forward(self, x: Any) -> tuple[Any, Any]:
        xp = namespace(x)
        oh, ow = self._grid(x)
        offsets = _offsets(self.kernel_size, self.stride, oh, ow)
        y = x[:, :, offsets[0][0], offsets[0][1]] * 1  # a copy of offset (0, 0)
        for rows, cols in offsets[1:]:
            y = xp.maximum(y, x[:, :, rows, cols])
        return y, (x, y)  # both are on the tape already: the context costs no memory

    def winners(self, ctx: Any) -> Any:
        """For each window offset ``(u, v)`` in row-major order, the mask of windows it won
        (``x == y`` there and at no earlier offset: the first maximum keeps a tie)."""
        x, y = ctx
        xp = namespace(y)
        taken = xp.zeros(y.shape, dtype=xp.bool, **({} if xp is np else {"device": y.device}))
        for rows, cols in _offsets(self.kernel_size, self.stride, *y.shape[2:]):
            won = (x[:, :, rows, cols] == y) & ~taken
            taken = taken | won
            yield rows, cols, won

    def backward(self, dy: Any, ctx: Any, *, need_dx: bool = True) -> Any:
        if not need_dx:
            return None
        if isinstance(dy, np.ndarray):  # the same arithmetic, in place (nn/convolution.py)
            return route_max_numpy(*ctx, dy, self.kernel_size, self.stride)
        xp = namespace(dy)
        dx = xp.zeros(ctx[0].shape, dtype=dy.dtype, **({} if xp is np else {"device": dy.device}))
        for rows, cols, won in self.winners(ctx):
            dx[:, :, rows, cols] += dy * xp.astype(won, dy.dtype)
        return dx

    def routes(self, ctx: Any) -> np.ndarray:
        """The input position ``(row, col)`` each window routed its δ to: ``(N, C, OH, OW, 2)``
        (what ``chainrule explain`` shows)."""
        y = ctx[1]
        out = np.zeros((*y.shape, 2), dtype=np.int64)
        k, s = self.kernel_size, self.stride
        i = np.arange(y.shape[2])[:, None]
        j = np.arange(y.shape[3])[None, :]
        for n, (_, _, won) in enumerate(self.winners(ctx)):
            won = np.asarray(won) if isinstance(won, np.ndarray) else won.cpu().numpy()
            out[..., 0] = np.where(won, s * i + n // k, out[..., 0])
            out[..., 1] = np.where(won, s * j + n % k, out[..., 1])
        return out


@register_layer
class AvgPool2D(_Pool):
    """``y = mean over each window``; every pixel of the window gets ``δ / k²``::

    y[n, c, i, j] = (1/k²) Σ_{u, v} x[n, c, s·i + u, s·j + v]
    ∂E/∂x[n, c, s·i + u, s·j + v] += δ[n, c, i, j] / k²                     (N, C, H, W)
    """

    kind = "avgpool"
    spec = "avgpool:K[:STRIDE]"
    symbol, symbol_latex = "avgpool", r"\operatorname{avgpool}"
    formula = "y_ij = (1/k²) Σ_{(u,v) in window(i,j)} x_uv"
    formula_latex = r"y_{ij} = \frac{1}{k^2} \sum_{(u,v) \in \mathcal{W}_{ij}} x_{uv}"
    derivative = "∂E/∂x_uv = Σ_{windows (i,j) holding (u,v)} δ_ij / k²"
    derivative_latex = r"\frac{\partial E}{\partial x_{uv}} = \frac{1}{k^2} \sum_{ij:\,(u,v) \in \mathcal{W}_{ij}} \delta_{ij}"

    def forward(self, x: Any) -> tuple[Any, Any]:
        oh, ow = self._grid(x)
        offsets = _offsets(self.kernel_size, self.stride, oh, ow)
        y = x[:, :, offsets[0][0], offsets[0][1]] * 1
        for rows, cols in offsets[1:]:
            y += x[:, :, rows, cols]
        return y / self.kernel_size**2, tuple(x.shape)

    def backward(self, dy: Any, ctx: Any, *, need_dx: bool = True) -> Any:
        if not need_dx:
            return None
        xp = namespace(dy)
        dx = xp.zeros(ctx, dtype=dy.dtype, **({} if xp is np else {"device": dy.device}))
        share = dy / self.kernel_size**2
        for rows, cols in _offsets(self.kernel_size, self.stride, *dy.shape[2:]):
            dx[:, :, rows, cols] += share
        return dx
