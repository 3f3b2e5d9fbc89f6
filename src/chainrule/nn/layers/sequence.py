"""Sequence plumbing around the recurrent layers: token ids in (one-hot or an embedding), the last
step out.

::

    onehot:V   y[n, t, v] = [x[n, t] = v]          x: (N, T) ids   y: (N, T, V)   no parameters
    embed:V:D  y[n, t] = E[x[n, t]]                 E: (V, D)       y: (N, T, D)
    last       y = x[:, T−1]                        x: (N, T, H)    y: (N, H)

A time-distributed dense layer is :class:`~chainrule.nn.layers.dense.Dense` itself: on ``(N, T, H)``
it applies ``z = x W + b`` at every step, and its weight gradient sums over the ``N·T`` rows.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from chainrule.backend import namespace
from chainrule.errors import ConfigError, DataError, ShapeError
from chainrule.nn.layer import Layer, SpecContext, register_layer, spec_number
from chainrule.nn.params import Param

__all__ = ["Embed", "Last", "OneHot", "token_ids"]


def token_ids(x: Any, vocab: int, kind: str) -> Any:
    """``x`` as integer ids in ``0..vocab−1`` (a :class:`DataError` otherwise)."""
    xp = namespace(x)
    ids = xp.astype(x, xp.int64)
    if x.ndim != 2:
        raise ShapeError(f"{kind} expects token ids of shape (N, T), got {tuple(x.shape)}")
    if ids.shape[0] * ids.shape[1] and (int(xp.min(ids)) < 0 or int(xp.max(ids)) >= vocab):
        raise DataError(f"{kind}: token ids must be in 0..{vocab - 1}")
    if not bool(xp.all(ids == x)):
        raise DataError(f"{kind}: token ids must be whole numbers")
    return ids


def _zeros(shape: tuple[int, ...], like: Any) -> Any:
    xp = namespace(like)
    if isinstance(like, np.ndarray):
        return np.zeros(shape, like.dtype)
    return xp.zeros(shape, dtype=like.dtype, device=like.device)


def _check_ids_shape(kind: str, input_shape: tuple[int, ...]) -> None:
    if len(input_shape) != 1:
        raise ShapeError(f"{kind} reads sequences of token ids (T,), got samples of shape {input_shape}")


@register_layer
class OneHot(Layer):
    """Token ids ``(N, T)`` to one-hot vectors ``(N, T, V)``. No gradient flows into ids: the
    layer above may skip its ``∂E/∂x`` (the driver reads :attr:`index_input`)."""

    kind = "onehot"
    spec = "onehot:V"
    input_rank = 1
    index_input = True
    formula, formula_latex = "y_{t,v} = [x_t = v]", r"y_{t,v} = [x_t = v]"
    derivative, derivative_latex = "none (ids are not differentiable)", r"\text{none}"

    def __init__(self, vocab: int, *, dtype: Any = np.float32) -> None:
        super().__init__()
        if int(vocab) < 1:
            raise ConfigError(f"onehot needs a positive vocabulary size, got {vocab}")
        self.vocab = int(vocab)
        self.dtype = np.dtype(dtype).name

    @classmethod
    def from_config(cls, cfg: dict[str, Any], dtype: Any = np.float32, built: Sequence[Layer] = ()) -> Layer:
        try:
            return cls(int(cfg["vocab"]), dtype=dtype)
        except (KeyError, TypeError, ValueError):
            raise ConfigError(f"onehot needs an integer vocab: {cfg}") from None

    @classmethod
    def example(cls, rng: np.random.Generator, dtype: Any = np.float64) -> tuple[Layer, tuple[int, ...]]:
        return cls(5, dtype=dtype), (3,)

    @classmethod
    def spec_config(cls, args: dict[str, str], input_shape: tuple[int, ...]) -> dict[str, Any]:
        _check_ids_shape(cls.kind, input_shape)
        return {"type": cls.kind, "vocab": spec_number(args, "v", lo=1)}

    @classmethod
    def from_spec(cls, cfg: dict[str, Any], ctx: SpecContext) -> Layer:
        return cls(cfg["vocab"], dtype=ctx.dtype)

    def example_input(self, rng: np.random.Generator, shape: tuple[int, ...], batch: int) -> np.ndarray:
        return rng.integers(0, self.vocab, (batch, *shape)).astype(np.float64)

    def to(self, backend: Any, dtype: Any = None) -> Layer:
        if dtype is not None:
            self.dtype = np.dtype(dtype).name
        return self

    def forward(self, x: Any) -> tuple[Any, Any]:
        xp = namespace(x)
        ids = token_ids(x, self.vocab, self.kind)
        classes = (
            xp.arange(self.vocab) if isinstance(x, np.ndarray) else xp.arange(self.vocab, device=x.device)
        )
        return xp.astype(ids[:, :, None] == classes, getattr(xp, self.dtype)), tuple(x.shape)

    def backward(self, dy: Any, ctx: Any, *, need_dx: bool = True) -> Any:
        return _zeros(ctx, dy) if need_dx else None

    def output_shape(self, input_shape: tuple[int, ...]) -> tuple[int, ...]:
        return (*tuple(input_shape), self.vocab)

    def config(self) -> dict[str, Any]:
        return {"type": self.kind, "vocab": self.vocab}

    def extra_repr(self) -> str:
        return f"{self.vocab}"


@register_layer
class Embed(Layer):
    """``y[n, t] = E[x[n, t]]``, a lookup table ``E (V, D)`` (one-hot times ``E``, without the
    product). Backward scatters ``dy`` into the rows it read: ``∂E/∂E_v = Σ_{(n,t): x=v} dy[n, t]``."""

    kind = "embed"
    spec = "embed:V:D"
    input_rank = 1
    index_input = True
    formula, formula_latex = "y_t = E[x_t]", r"y_t = E_{x_t}"
    derivative = "∂E/∂E_v = Σ_{t: x_t = v} δ_t"
    derivative_latex = r"\frac{\partial E}{\partial E_v} = \sum_{t: x_t = v} \delta_t"

    def __init__(
        self,
        vocab: int,
        dim: int,
        *,
        rng: np.random.Generator | int | None = None,
        dtype: Any = np.float32,
        E: Any = None,
    ) -> None:
        super().__init__()
        self.vocab, self.dim = int(vocab), int(dim)
        if self.vocab < 1 or self.dim < 1:
            raise ConfigError(f"embed needs positive sizes, got {vocab}:{dim}")
        if E is None:
            gen = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
            E = gen.standard_normal((self.vocab, self.dim)).astype(dtype)  # PyTorch's N(0, 1)
        if tuple(E.shape) != (self.vocab, self.dim):
            raise ShapeError(f"E must have shape {(self.vocab, self.dim)}, got {tuple(E.shape)}")
        self.E = Param(E, "E")
        self.params = [self.E]

    @classmethod
    def state_shapes(cls, cfg: dict[str, Any]) -> dict[str, tuple[int, ...]]:
        try:
            return {"E": (int(cfg["vocab"]), int(cfg["dim"]))}
        except (KeyError, TypeError, ValueError):
            raise ConfigError(f"embed needs integer vocab and dim: {cfg}") from None

    @classmethod
    def from_config(cls, cfg: dict[str, Any], dtype: Any = np.float32, built: Sequence[Layer] = ()) -> Layer:
        shape = cls.state_shapes(cfg)["E"]
        return cls(*shape, E=np.zeros(shape, dtype))

    @classmethod
    def example(cls, rng: np.random.Generator, dtype: Any = np.float64) -> tuple[Layer, tuple[int, ...]]:
        return cls(5, 3, rng=rng, dtype=dtype), (4,)

    @classmethod
    def spec_config(cls, args: dict[str, str], input_shape: tuple[int, ...]) -> dict[str, Any]:
        _check_ids_shape(cls.kind, input_shape)
        return {"type": cls.kind, "vocab": spec_number(args, "v", lo=1), "dim": spec_number(args, "d", lo=1)}

    @classmethod
    def from_spec(cls, cfg: dict[str, Any], ctx: SpecContext) -> Layer:
        return cls(cfg["vocab"], cfg["dim"], rng=ctx.rng, dtype=ctx.dtype)

    example_input = OneHot.example_input

    def forward(self, x: Any) -> tuple[Any, Any]:
        ids = token_ids(x, self.vocab, self.kind)
        return self.E.value[ids], ids

    def backward(self, dy: Any, ctx: Any, *, need_dx: bool = True) -> Any:
        ids = ctx
        xp = namespace(dy)
        flat_ids = xp.reshape(ids, (-1,))
        flat_dy = xp.reshape(dy, (-1, self.dim))
        if isinstance(dy, np.ndarray):
            np.add.at(self.E.grad, flat_ids, flat_dy)
        else:
            self.E.grad.index_add_(0, flat_ids, flat_dy)  # torch: the same scatter-add
        return _zeros(tuple(ids.shape), dy) if need_dx else None

    def output_shape(self, input_shape: tuple[int, ...]) -> tuple[int, ...]:
        return (*tuple(input_shape), self.dim)

    def config(self) -> dict[str, Any]:
        return {"type": self.kind, "vocab": self.vocab, "dim": self.dim}

    def extra_repr(self) -> str:
        return f"{self.vocab} -> {self.dim}"


@register_layer
class Last(Layer):
    """The last time step: ``y = x[:, T−1]``, ``(N, T, H) -> (N, H)``. Backward scatters ``δ`` to
    step ``T``: ``∂E/∂x[:, T−1] = dy`` and zero at every other step."""

    kind = "last"
    spec = "last"
    formula, formula_latex = "y = x_T", r"y = x_{T}"
    derivative = "∂E/∂x_t = δ if t = T else 0"
    derivative_latex = r"\frac{\partial E}{\partial x_t} = [t = T]\,\delta"

    @classmethod
    def example(cls, rng: np.random.Generator, dtype: Any = np.float64) -> tuple[Layer, tuple[int, ...]]:
        return cls(), (3, 4)

    def forward(self, x: Any) -> tuple[Any, Any]:
        if x.ndim != 3:
            raise ShapeError(f"last expects sequences (N, T, H), got shape {tuple(x.shape)}")
        return x[:, -1], tuple(x.shape)

    def backward(self, dy: Any, ctx: Any, *, need_dx: bool = True) -> Any:
        if not need_dx:
            return None
        dx = _zeros(ctx, dy)
        dx[:, -1] = dy
        return dx

    def output_shape(self, input_shape: tuple[int, ...]) -> tuple[int, ...]:
        if len(input_shape) != 2:
            raise ShapeError(f"last reads sequences (T, H), got samples of shape {tuple(input_shape)}")
        return (int(input_shape[1]),)
