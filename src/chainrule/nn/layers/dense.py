"""The fully connected layer, seed 002's matrix form, and its transposed twin for tied weights.

Forward (rows are samples)::

    z = x W + b          x: (N, D_in)   W: (D_in, D_out)   b: (D_out,)   z: (N, D_out)

Seed 000/001/004 write it per column as ``z^{l} = W^{l} a^{l-1} + b^{l}``; transposing that gives the
row form above. Seed 002 derives the backward pass entry by entry (``∂J/∂w_11 = ∂J/∂o_11·z_11 +
∂J/∂o_21·z_21``) and collects it into three matrix products.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from chainrule.backend import namespace
from chainrule.errors import ConfigError, ShapeError
from chainrule.nn.init import init_weight
from chainrule.nn.layer import Layer, SpecContext, register_layer, spec_number
from chainrule.nn.params import Param

__all__ = ["Dense", "TiedDense", "affine_params", "positive_ints", "rows_width"]


def positive_ints(cfg: dict[str, Any], *keys: str) -> tuple[int, ...]:
    """``cfg[key]`` for each key as a positive int, or :class:`ConfigError` naming the layer's need."""
    try:
        vals = tuple(int(cfg[k]) for k in keys)
    except (KeyError, TypeError, ValueError):
        raise ConfigError(f"layer needs integer {', '.join(keys)}: {cfg}") from None
    if min(vals) < 1:
        raise ConfigError(f"layer sizes must be positive: {cfg}")
    return vals


def affine_params(
    d_in: int,
    width: int,
    *,
    init: str = "xavier",
    scale: float = 1.0,
    rng: np.random.Generator | int | None = None,
    dtype: Any = np.float32,
    W: Any = None,
    b: Any = None,
) -> tuple[Param, Param]:
    """``W (d_in, width)`` and ``b (width,)`` for an affine map ``x W + b``: the given ones, checked
    for shape, or ``W`` from initialiser ``init`` (NumPy's generator ``rng``, a seed or a Generator)
    times ``scale``, and ``b = 0``. Shared by :class:`Dense` and
    :class:`~chainrule.nn.layers.maxout.Maxout`, whose keyword options are exactly these."""
    if W is None:
        gen = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
        W = init_weight(init, d_in, width, gen, scale).astype(dtype)
    if b is None:
        b = np.zeros(width, dtype=np.asarray(W).dtype if dtype is None else dtype)
    if tuple(W.shape) != (d_in, width):
        raise ShapeError(f"W must have shape {(d_in, width)}, got {tuple(W.shape)}")
    if tuple(b.shape) != (width,):
        raise ShapeError(f"b must have shape {(width,)}, got {tuple(b.shape)}")
    return Param(W, "W", decay=True), Param(b, "b")


def rows_width(kind: str, input_shape: tuple[int, ...]) -> int:
    """The feature count ``D`` of rows ``(D,)``; any other per-sample shape is a :class:`ShapeError`
    that says how to get rows (``flatten`` after images, ``last`` after a sequence)."""
    if len(input_shape) != 1:
        raise ShapeError(
            f"{kind} reads rows (D,), got samples of shape {tuple(input_shape)}: put "
            f"'flatten' (images) or 'last' (sequences) before it"
        )
    return int(input_shape[0])


def check_features(layer: Any, x: Any) -> None:
    if x.shape[-1] != layer.in_features:
        raise ShapeError(
            f"{type(layer).__name__} expects {layer.in_features} input features, got {x.shape[-1]}"
        )


@register_layer
class Dense(Layer):
    """``z = x W + b``.

    Backward, given ``dy = ∂E/∂z`` of shape ``(N, D_out)`` (the δ of seed 004, one row per sample)::

        ∂E/∂W = xᵀ · dy        (D_in, N) · (N, D_out)  -> (D_in, D_out)   [seed 004: a^{l-1}_k δ^l_j]
        ∂E/∂b = Σ_rows dy      (D_out,)                                     [seed 004: δ^l_j]
        ∂E/∂x = dy · Wᵀ        (N, D_out) · (D_out, D_in) -> (N, D_in)   [seed 004: (W^{l})ᵀ δ^{l}]

    The sums over rows are where a batch's per-sample gradients add up; the 1/N of a mean loss is
    already inside ``dy`` (it is applied once, in the loss).

    On sequences ``x: (N, T, D_in)`` the layer is time-distributed: the same ``W`` at every step,
    and the ``N·T`` rows are folded into one batch for the two gradient products.
    """

    kind = "dense"
    formula, formula_latex = (
        "z^%(l)s = a^%(p)s W^%(l)s + b^%(l)s",
        r"z^{%(l)s} = a^{%(p)s} W^{%(l)s} + b^{%(l)s}",
    )
    derivative = "∂E/∂W = xᵀ δ,  ∂E/∂b = Σ_rows δ,  ∂E/∂x = δ Wᵀ"
    derivative_latex = r"\frac{\partial E}{\partial W^{%(l)s}} = (a^{%(p)s})^{\top} \delta^{%(l)s}"
    spec = "dense:OUT"
    input_rank = 1

    def __init__(self, in_features: int, out_features: int, **affine: Any) -> None:
        """``affine``: ``init`` (default ``"xavier"``), ``scale``, ``rng`` (a seed or NumPy Generator),
        ``dtype`` (default float32), or the arrays ``W (D_in, D_out)`` and ``b (D_out,)`` themselves;
        see :func:`affine_params`."""
        super().__init__()
        if int(in_features) < 1 or int(out_features) < 1:
            raise ConfigError(f"Dense needs positive sizes, got {in_features} -> {out_features}")
        self.in_features, self.out_features = int(in_features), int(out_features)
        try:
            self.W, self.b = affine_params(self.in_features, self.out_features, **affine)
        except TypeError as exc:
            raise ConfigError(f"Dense: {exc}") from None
        self.params = [self.W, self.b]

    @classmethod
    def state_shapes(cls, cfg: dict[str, Any]) -> dict[str, tuple[int, ...]]:
        d_in, d_out = positive_ints(cfg, "in_features", "out_features")
        return {"W": (d_in, d_out), "b": (d_out,)}

    @classmethod
    def from_config(cls, cfg: dict[str, Any], dtype: Any = np.float32, built: Sequence[Layer] = ()) -> Dense:
        shapes = cls.state_shapes(cfg)
        return cls(*shapes["W"], W=np.zeros(shapes["W"], dtype), b=np.zeros(shapes["b"], dtype))

    @classmethod
    def example(cls, rng: np.random.Generator, dtype: Any = np.float64) -> tuple[Layer, tuple[int, ...]]:
        return cls(5, 4, rng=rng, dtype=dtype), (5,)

    @classmethod
    def spec_config(cls, args: dict[str, str], input_shape: tuple[int, ...]) -> dict[str, Any]:
        return {
            "type": cls.kind,
            # sequences (T, D): time-distributed, the same W at every step
            "in_features": input_shape[1] if len(input_shape) == 2 else rows_width(cls.kind, input_shape),
            "out_features": spec_number(args, "out", lo=1),
        }

    @classmethod
    def from_spec(cls, cfg: dict[str, Any], ctx: SpecContext) -> Layer:
        return cls(cfg["in_features"], cfg["out_features"], init=ctx.init, rng=ctx.rng, dtype=ctx.dtype)

    def forward(self, x: Any) -> tuple[Any, Any]:
        check_features(self, x)
        return x @ self.W.value + self.b.value, x

    def backward(self, dy: Any, ctx: Any, *, need_dx: bool = True) -> Any:
        x = ctx
        if x.ndim != 2:  # time-distributed: fold (N, T) into rows
            xp = namespace(dy)
            x, dy2 = xp.reshape(x, (-1, self.in_features)), xp.reshape(dy, (-1, self.out_features))
            self.W.grad += x.T @ dy2
            self.b.grad += xp.sum(dy2, axis=0)
            return dy @ self.W.value.T if need_dx else None
        self.W.grad += x.T @ dy
        self.b.grad += namespace(dy).sum(dy, axis=0)
        return dy @ self.W.value.T if need_dx else None

    def output_shape(self, input_shape: tuple[int, ...]) -> tuple[int, ...]:
        if tuple(input_shape)[-1:] != (self.in_features,):
            raise ShapeError(
                f"Dense expects {self.in_features} input features, got shape {tuple(input_shape)}"
            )
        return (*tuple(input_shape)[:-1], self.out_features)

    def config(self) -> dict[str, Any]:
        return {"type": self.kind, "in_features": self.in_features, "out_features": self.out_features}

    def extra_repr(self) -> str:
        return f"{self.in_features} -> {self.out_features}"


@register_layer
class TiedDense(Layer):
    """``z = x Wᵀ + c`` with ``W`` *shared* with another :class:`Dense` (a tied autoencoder decoder).

    ``W`` is the source layer's own :class:`Param` (the same object), so its gradient collects
    both uses and the driver steps it once. Given ``dy`` of shape ``(N, D_in)``::

        ∂E/∂W += (xᵀ dy)ᵀ = dyᵀ x     (D_in, N) · (N, D_out) -> (D_in, D_out)
        ∂E/∂c  = Σ_rows dy            (D_in,)
        ∂E/∂x  = dy W                 (N, D_in) · (D_in, D_out) -> (N, D_out)
    """

    kind = "dense_tied"
    formula = "z^%(l)s = a^%(p)s (W^t)ᵀ + c^%(l)s"
    formula_latex = r"z^{%(l)s} = a^{%(p)s} (W^{t})^{\top} + c^{%(l)s}"
    derivative = "∂E/∂W += δᵀ x,  ∂E/∂c = Σ_rows δ,  ∂E/∂x = δ W"
    derivative_latex = r"\frac{\partial E}{\partial W^{t}} \mathrel{+}= (\delta^{%(l)s})^{\top} a^{%(p)s}"

    def __init__(self, source: Dense, *, tied_to: int | None = None, c: Any = None) -> None:
        super().__init__()
        if not isinstance(source, Dense):
            raise ConfigError(f"a tied layer needs a Dense source, got {type(source).__name__}")
        self.source, self.tied_to = source, tied_to
        self.W = source.W
        self.in_features, self.out_features = source.out_features, source.in_features
        if c is None:
            c = namespace(self.W.value).zeros(self.out_features, dtype=self.W.value.dtype)
        self.c = Param(c, "c")
        self.params = [self.W, self.c]

    @classmethod
    def from_config(
        cls, cfg: dict[str, Any], dtype: Any = np.float32, built: Sequence[Layer] = ()
    ) -> TiedDense:
        i = cfg.get("tied_to")
        if not isinstance(i, int) or not 0 <= i < len(built) or not isinstance(built[i], Dense):
            raise ConfigError(f"dense_tied must name an earlier dense layer by index, got tied_to={i!r}")
        return cls(built[i], tied_to=i)  # type: ignore[arg-type]

    @classmethod
    def example(cls, rng: np.random.Generator, dtype: Any = np.float64) -> tuple[Layer, tuple[int, ...]]:
        c = rng.standard_normal(5).astype(dtype)
        return cls(Dense(5, 4, rng=rng, dtype=dtype), tied_to=0, c=c), (4,)

    def forward(self, x: Any) -> tuple[Any, Any]:
        check_features(self, x)
        return x @ self.W.value.T + self.c.value, x

    def backward(self, dy: Any, ctx: Any, *, need_dx: bool = True) -> Any:
        x = ctx
        self.W.grad += dy.T @ x
        self.c.grad += namespace(dy).sum(dy, axis=0)
        return dy @ self.W.value if need_dx else None

    def output_shape(self, input_shape: tuple[int, ...]) -> tuple[int, ...]:
        return (*tuple(input_shape)[:-1], self.out_features)

    def config(self) -> dict[str, Any]:
        return {"type": self.kind, "tied_to": self.tied_to}

    def extra_repr(self) -> str:
        return f"{self.in_features} -> {self.out_features}, W tied to layer {self.tied_to}"
