"""The layer contract, the element-wise activation contract, and the registry of layer kinds.

Layout: rows are samples. A batch ``x`` has shape ``(N, *input_shape)``: ``(N, D)`` for dense
layers, ``(N, C, H, W)`` for images, ``(N, T, D)`` for sequences. Shapes that layers answer about
(``output_shape``, ``state_shapes``) leave out the batch axis ``N``.

The contract (the driver, :class:`~chainrule.nn.model.Sequential`, owns the tape):

* ``forward(x) -> (y, ctx)`` computes the formula and returns, beside the output, a context
  holding what backward needs. Nothing is cached on the layer, so one layer may be applied twice,
  or once per time step, and each application back-propagates through its own context.
* ``backward(dy, ctx, need_dx=True) -> dx`` takes ``dy = ∂E/∂y`` (shape of ``y``), returns
  ``dx = ∂E/∂x`` (shape of ``x``) by the chain rule and *accumulates* ``∂E/∂θ`` into every
  ``param.grad`` with ``+=``. It never mutates ``dy``, ``x`` or anything in ``ctx``.

One source per formula: a layer class carries its formula and derivative as text and LaTeX,
whether it is element-wise, and its default initialiser. Trace, explain, the CLI's choices,
gradcheck, serialisation and the fast runners read these from :data:`LAYERS`; adding a layer is one
class in one file.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol

import numpy as np

from chainrule.backend import Backend, namespace
from chainrule.errors import ConfigError
from chainrule.nn.params import Buffer, Param

__all__ = [
    "LAYERS",
    "Elementwise",
    "Hook",
    "Layer",
    "SpecContext",
    "activation_kinds",
    "layer_from_config",
    "register_layer",
    "spec_number",
]

Shape = tuple[int, ...]


@dataclass
class SpecContext:
    """What :meth:`Layer.from_spec` may use besides the layer's config: the weight generator, the
    dtype, and the initialiser chosen for it (``"auto"`` already resolved by the spec builder)."""

    rng: np.random.Generator
    dtype: Any = np.float32
    init: str = "xavier"


def spec_number(
    args: dict[str, str],
    name: str,
    kind: type = int,
    default: float | None = None,
    *,
    lo: float | None = None,
    hi: float | None = None,
) -> Any:
    """Argument ``name`` of a spec word as ``kind`` (int or float) within ``[lo, hi]``, or ``default``
    when absent; a :class:`ConfigError` names the argument otherwise."""
    raw = args.get(name)
    if raw is None:
        if default is None:
            raise ConfigError(f"missing {name.upper()}")
        return kind(default)
    try:
        value = kind(raw) if kind is float else int(raw, 10)
    except (TypeError, ValueError):
        raise ConfigError(
            f"{name.upper()} must be {'an integer' if kind is int else 'a number'}, got {raw!r}"
        ) from None
    if kind is float and not math.isfinite(value):
        raise ConfigError(f"{name.upper()} must be finite, got {raw!r}")
    if (lo is not None and value < lo) or (hi is not None and value > hi):
        bound = f"at least {lo}" if hi is None else f"at most {hi}" if lo is None else f"in [{lo}, {hi}]"
        raise ConfigError(f"{name.upper()} must be {bound}, got {raw!r}")
    return value


class Layer:
    """Base class of every layer. Subclasses implement ``forward`` and ``backward``.

    Class attributes (the layer's entry in the registry):
        kind: the registry name used in saved architectures (``"dense"``, ``"relu"`` ...).
        symbol, symbol_latex: the layer's name inside a formula, as in ``a^l = σ(z^l)`` (``"σ"``,
            ``r"\\sigma"``). Empty means the kind (``\\operatorname{kind}`` in LaTeX).
        formula, formula_latex: the forward map, as text and as LaTeX.
        derivative, derivative_latex: the local derivative the backward pass applies (for an
            element-wise activation, ``f'(z)``: what ``δ = ∂E/∂a ⊙ f'(z)`` multiplies by).
        elementwise: True when ``y_i = f(x_i)`` (a diagonal Jacobian: ``dx = dy ⊙ f'``).
        default_init: the weight initialiser that suits the activation after a Dense layer.
        spec: the layer's word in the layer-spec language (:mod:`chainrule.nn.spec`), as a
            signature: ``"dense:OUT"``, ``"conv:OUT:K[:STRIDE[:PAD]]"``. Empty: not in the language.
        input_rank: the per-sample rank the layer reads (1 rows, 2 sequences ``(T, D)``, 3 images
            ``(C, H, W)``); ``None`` for any shape.
        index_input: the layer reads integer token ids (``onehot``, ``embed``): no gradient flows
            into its input, and :meth:`example_input` draws ids.

    Placeholders: the text and LaTeX templates may name ``%(l)s`` (this layer's index ``l``, as
    in ``a^%(l)s`` or ``a^{%(l)s}``) and ``%(p)s`` (the previous layer's, ``l − 1``); renderers fill
    them with ``template % {"l": 2, "p": 1}``. A template without placeholders is shown as
    written; a literal ``%`` is written ``%%``.
    """

    kind: ClassVar[str] = ""
    symbol: ClassVar[str] = ""
    symbol_latex: ClassVar[str] = ""
    formula: ClassVar[str] = ""
    formula_latex: ClassVar[str] = ""
    derivative: ClassVar[str] = ""
    derivative_latex: ClassVar[str] = ""
    elementwise: ClassVar[bool] = False
    default_init: ClassVar[str] = "xavier"
    spec: ClassVar[str] = ""
    input_rank: ClassVar[int | None] = None
    index_input: ClassVar[bool] = False

    params: list[Param]
    buffers: list[Buffer]

    def __init__(self) -> None:
        self.params = []
        self.buffers = []
        self.training = True

    # -- the contract ----------------------------------------------------------------------
    def forward(self, x: Any) -> tuple[Any, Any]:
        """Return ``(y, ctx)``: the output and what :meth:`backward` needs."""
        raise NotImplementedError

    def backward(self, dy: Any, ctx: Any, *, need_dx: bool = True) -> Any:
        """Return ``∂E/∂x`` given ``dy = ∂E/∂y`` and the forward's ``ctx``; accumulate ``∂E/∂θ``.

        ``need_dx=False`` lets the first layer of a network skip a gradient nobody reads (it then
        returns ``None``); layers without that saving ignore it.
        """
        raise NotImplementedError

    # -- modes -----------------------------------------------------------------------------
    def train(self, mode: bool = True) -> Layer:
        """Training mode (dropout drops, batch norm uses batch statistics); returns ``self``."""
        self.training = bool(mode)
        return self

    def eval(self) -> Layer:
        """Evaluation mode: ``train(False)``."""
        return self.train(False)

    # -- shapes and serialisation ----------------------------------------------------------
    def output_shape(self, input_shape: Shape) -> Shape:
        """Per-sample output shape for a per-sample input shape (identity by default)."""
        return tuple(input_shape)

    def output_dim(self, input_dim: int) -> int:
        """Feature count of a flat output for a flat input of ``input_dim`` features."""
        return int(self.output_shape((input_dim,))[-1])

    @classmethod
    def state_shapes(cls, cfg: dict[str, Any]) -> dict[str, Shape]:
        """Shapes of the parameters and buffers a config would allocate, computed *without*
        allocating (the model-file size guard reads this). No state by default."""
        return {}

    @classmethod
    def example(cls, rng: np.random.Generator, dtype: Any = np.float64) -> tuple[Layer, Shape]:
        """A small instance and a per-sample input shape to check it on (``gradcheck --all`` and the
        registry-driven tests use it). The default builds ``cls()`` on 4 features."""
        return cls(), (4,)

    def example_input(self, rng: np.random.Generator, shape: Shape, batch: int) -> np.ndarray:
        """A batch of inputs to check the layer on: ``2·N(0, 1)`` values, or ids for a layer that
        reads them (it overrides this)."""
        return rng.standard_normal((batch, *shape)) * 2.0

    def config(self) -> dict[str, Any]:
        """JSON-safe description from which :func:`layer_from_config` rebuilds the layer."""
        return {"type": self.kind}

    @classmethod
    def from_config(cls, cfg: dict[str, Any], dtype: Any = np.float32, built: Sequence[Layer] = ()) -> Layer:
        """Rebuild from :meth:`config` (parameters zeroed; loading fills them). ``built`` holds the
        layers rebuilt so far, for layers that share another layer's parameters."""
        try:
            return cls(**cfg)
        except TypeError as exc:
            raise ConfigError(f"bad options for layer {cls.kind!r}: {exc}") from None

    @classmethod
    def spec_config(cls, args: dict[str, str], input_shape: Shape) -> dict[str, Any]:
        """The :meth:`config` a spec word's arguments give for samples of ``input_shape`` (no
        allocation: the builder bounds the parameter count from it with :meth:`state_shapes`).
        The default is a layer without arguments."""
        if args:
            raise ConfigError(f"{cls.kind} takes no arguments")
        return {"type": cls.kind}

    @classmethod
    def from_spec(cls, cfg: dict[str, Any], ctx: SpecContext) -> Layer:
        """Build the layer :meth:`spec_config` described, with fresh weights from ``ctx``. The default
        passes the config to the constructor (layers with weights add ``init``/``rng``/``dtype``)."""
        return cls.from_config({k: v for k, v in cfg.items() if k != "type"}, ctx.dtype)

    def extra_repr(self) -> str:
        return ""

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.extra_repr()})"

    def to(self, backend: Backend, dtype: Any = None) -> Layer:
        """Move parameters (and their gradients) and buffers to ``backend`` in place."""
        for p in self.params:
            p.value = backend.asarray(p.value, dtype=dtype)
            p.grad = backend.xp.zeros_like(p.value)
        for b in self.buffers:
            b.value = backend.asarray(b.value, dtype=dtype)
        return self


class Elementwise(Layer):
    """An element-wise activation ``a = f(z)``: define :meth:`f` and :meth:`fprime`, nothing else.

    Its Jacobian is diagonal, so the chain rule is a Hadamard product (seed 004's BP1/BP2)::

        ∂E/∂z = ∂E/∂a ⊙ f'(z)          dy, z, a: (N, *shape)

    ``fprime(z, a)`` may use the input ``z`` or the output ``a``, whichever is cheaper
    (scikit-learn's habit: sigmoid ``a(1 − a)``, tanh ``1 − a²``). The context is ``(z, a)``.
    """

    elementwise = True

    def __init_subclass__(cls, **kwargs: Any) -> None:
        """An activation is a word of the layer-spec language under its own kind (``relu``)."""
        super().__init_subclass__(**kwargs)
        if cls.kind and "spec" not in cls.__dict__:
            cls.spec = cls.kind

    def f(self, z: Any) -> Any:
        raise NotImplementedError

    def fprime(self, z: Any, a: Any) -> Any:
        raise NotImplementedError

    def forward(self, x: Any) -> tuple[Any, Any]:
        a = self.f(x)
        return a, (x, a)

    def backward(self, dy: Any, ctx: Any, *, need_dx: bool = True) -> Any:
        z, a = ctx
        return dy * self.fprime(z, a)

    def local_derivative(self, ctx: Any) -> Any:
        """``f'(z)`` for the pass that produced ``ctx`` (what the trace shows)."""
        z, a = ctx
        return namespace(z).ones_like(z) * self.fprime(z, a)  # broadcast to z's shape and dtype


LAYERS: dict[str, type[Layer]] = {}


def register_layer(cls: type[Layer]) -> type[Layer]:
    """Class decorator: make a layer buildable from its config and covered by every registry-driven
    test, CLI choice and explanation."""
    if not cls.kind:
        raise TypeError(f"{cls.__name__} needs a 'kind' to be registered")
    LAYERS[cls.kind] = cls
    return cls


def activation_kinds() -> list[str]:
    """The registered element-wise activations (the CLI's ``--activation`` choices)."""
    return [k for k, cls in LAYERS.items() if cls.elementwise]


def layer_from_config(cfg: dict[str, Any], dtype: Any = np.float32, built: Sequence[Layer] = ()) -> Layer:
    """Rebuild a layer (with zeroed parameters) from :meth:`Layer.config`."""
    if not isinstance(cfg, dict) or "type" not in cfg:
        raise ConfigError(f"a layer description must be an object with a 'type', got {cfg!r}")
    kind = cfg["type"]
    if kind not in LAYERS:
        raise ConfigError(f"unknown layer type {kind!r}; known: {', '.join(sorted(LAYERS))}")
    kwargs = {k: v for k, v in cfg.items() if k != "type"}
    return LAYERS[kind].from_config(kwargs, dtype, built)


class Hook(Protocol):
    """Something that watches the driver (the tracer, the gradient-flow probe)."""

    def on_forward(self, index: int, layer: Layer, x: Any, y: Any) -> None: ...

    def on_backward(self, index: int, layer: Layer, dy: Any, dx: Any) -> None: ...
