"""The forward/backward driver: :class:`Sequential` and the tape it keeps.

Layout: rows are samples. A batch ``x`` has shape ``(N, *input_shape)``; for a dense network
``(N, D_in)``, with ``W`` of shape ``(D_in, D_out)`` and ``z = x W + b``. The seeds write the same
thing in column form, ``z = W a + b`` with ``W`` of shape ``(D_out, D_in)``; every docstring that
cites a seed translates it.

The driver owns the tape. ``forward`` calls each layer's ``forward(x) -> (y, ctx)`` and appends a
:class:`TapeEntry`; ``backward`` walks the tape in reverse, handing each layer its own context.
A layer that appears twice gets two entries and back-propagates correctly through both; the
tracer and the gradient-flow probe read the same tape through hooks. Layers never print or log.

Parameters are unique by identity: a weight shared by two layers (tied weights) is listed, stepped,
decayed and saved once.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from chainrule.backend import Backend, backend_of, namespace, numpy_backend, to_numpy
from chainrule.errors import ConfigError, ShapeError
from chainrule.nn.functional import predicted_class
from chainrule.nn.layer import Hook, Layer
from chainrule.nn.losses import Loss, get_loss
from chainrule.nn.params import Buffer, Param
from chainrule.nn.regularizers import add_l2_grad, l2_penalty

__all__ = ["LayerGroup", "Sequential", "TapeEntry"]


@dataclass
class TapeEntry:
    """One layer application in a forward pass: which layer, its input, output and context."""

    index: int
    layer: Layer
    x: Any
    y: Any
    ctx: Any


@dataclass
class LayerGroup:
    """Seed-style "layer l": a layer with parameters and the parameter-free layers after it
    (``Dense + sigmoid`` is one layer of the seeds). ``indices`` are positions in the stack."""

    l: int
    indices: tuple[int, ...]
    head: Layer
    activations: list[Layer] = field(default_factory=list)

    @property
    def activation(self) -> str:
        """``"sigmoid"``, ``"relu+softmax"``, or ``"none"``."""
        return "+".join(a.kind for a in self.activations) or "none"


class Sequential:
    """A stack of layers, and the driver that runs forward and backward through it.

    ``forward`` applies each layer in order; ``backward`` applies the chain rule in reverse:
    for the stack ``y = f_L(... f_1(x))``, ``∂E/∂x_l = backward_l(∂E/∂y_l, ctx_l)`` with
    ``∂E/∂y_l = ∂E/∂x_{l+1}``. Hooks (tracer, gradient-flow probe) are called here and only here.
    """

    def __init__(
        self,
        layers: Iterable[Layer],
        *,
        loss: str | Loss | None = None,
        input_dim: int | None = None,
        input_shape: tuple[int, ...] | None = None,
    ) -> None:
        self.layers: list[Layer] = list(layers)
        if not self.layers:
            raise ConfigError("a network needs at least one layer")
        for layer in self.layers:
            if not isinstance(layer, Layer):
                raise ConfigError(f"{layer!r} is not a chainrule Layer")
        if input_shape is None and input_dim is not None:
            input_shape = (int(input_dim),)
        self.input_shape = tuple(input_shape) if input_shape is not None else self._infer_input_shape()
        self.hooks: list[Hook] = []
        self.loss = None if loss is None else get_loss(loss)
        self.tape: list[TapeEntry] = []
        #: the last forward pass's output (a reference, not a copy)
        self.output: Any = None
        self.training = True

    def _infer_input_shape(self) -> tuple[int, ...] | None:
        """The first layer with a known input width fixes it, if only shape-preserving (element-wise)
        layers come before it; anything else (a flatten, a convolution) leaves it unknown."""
        for layer in self.layers:
            d = getattr(layer, "in_features", None)
            if d is not None:
                return (int(d),)
            if not layer.elementwise:
                return None
        return None

    @property
    def input_dim(self) -> int | None:
        """Features per sample for a flat input (``None`` when unknown or not flat)."""
        return self.input_shape[0] if self.input_shape is not None and len(self.input_shape) == 1 else None

    # -- parameters and state ----------------------------------------------------------------
    def named_params(self) -> Iterator[tuple[str, Param]]:
        """``("3.W", param)`` pairs, each parameter once (named after its first owner)."""
        seen: set[int] = set()
        for i, layer in enumerate(self.layers):
            for p in layer.params:
                if id(p) not in seen:
                    seen.add(id(p))
                    yield f"{i}.{p.name}", p

    @property
    def params(self) -> list[Param]:
        """Every parameter once, by identity (tied weights are one parameter)."""
        return [p for _, p in self.named_params()]

    def named_buffers(self) -> Iterator[tuple[str, Buffer]]:
        seen: set[int] = set()
        for i, layer in enumerate(self.layers):
            for b in layer.buffers:
                if id(b) not in seen:
                    seen.add(id(b))
                    yield f"{i}.{b.name}", b

    def zero_grad(self) -> None:
        for p in self.params:
            p.zero_grad()

    def train(self, mode: bool = True) -> Sequential:
        """Training mode for every layer (dropout on, batch statistics); returns ``self``."""
        self.training = bool(mode)
        for layer in self.layers:
            layer.train(mode)
        return self

    def eval(self) -> Sequential:
        return self.train(False)

    @property
    def dtype(self) -> Any:
        ps = self.params
        return ps[0].value.dtype if ps else None

    @property
    def backend(self) -> Backend:
        ps = self.params
        return backend_of(ps[0].value) if ps else numpy_backend

    def to(self, backend: Backend, dtype: Any = None) -> Sequential:
        """Move every parameter and buffer to ``backend`` (and ``dtype``) in place."""
        moved: set[int] = set()
        for layer in self.layers:
            if id(layer) not in moved:
                moved.add(id(layer))
                layer.to(backend, dtype)
        return self

    # -- structure ---------------------------------------------------------------------------
    def groups(self) -> list[LayerGroup]:
        """The stack as the seeds' layers ``l = 1 .. L``: each layer with parameters starts a group,
        and the parameter-free layers after it (its activation) join it."""
        groups: list[LayerGroup] = []
        for i, layer in enumerate(self.layers):
            if layer.params or not groups:
                groups.append(LayerGroup(len(groups) + 1, (i,), layer))
            else:
                g = groups[-1]
                g.indices = (*g.indices, i)
                g.activations.append(layer)
        return groups

    def output_shape(self) -> tuple[int, ...] | None:
        """Per-sample output shape, from each layer's ``output_shape`` (None if the input is unknown)."""
        shape = self.input_shape
        if shape is None:
            return None
        for layer in self.layers:
            shape = layer.output_shape(shape)
        return shape

    def output_dim(self) -> int | None:
        shape = self.output_shape()
        return None if shape is None else int(shape[-1])

    def check_input(self, x: Any) -> None:
        """Raise :class:`ShapeError` unless ``x`` is a batch ``(N, *input_shape)``."""
        shape = tuple(getattr(x, "shape", ()))
        if len(shape) < 2:
            raise ShapeError(f"input must be a batch (N, features...), got shape {shape}")
        want = self.input_shape
        if want is not None and shape[1:] != want:
            if len(want) == 1 and len(shape) == 2:
                raise ShapeError(f"input has {shape[1]} features but the network expects {want[0]}")
            raise ShapeError(f"input samples have shape {shape[1:]} but the network expects {want}")

    def as_batch(self, x: Any) -> Any:
        """``x`` as a batch ``(N, *input_shape)``: flat rows ``(N, C·H·W)`` are viewed as images
        ``(N, C, H, W)`` (or sequences) when the sizes agree, without a copy; anything else is
        checked by :meth:`check_input`."""
        want = self.input_shape
        shape = tuple(getattr(x, "shape", ()))
        if want is not None and len(want) > 1 and len(shape) == 2 and shape[1] == math.prod(want):
            return namespace(x).reshape(x, (shape[0], *want))
        if want is not None and len(want) > 1 and len(shape) == 2:
            raise ShapeError(
                f"data of {shape[1]} features does not factor into the sample shape {want} the network "
                f"expects ({math.prod(want)} values)"
            )
        self.check_input(x)
        return x

    # -- the driver --------------------------------------------------------------------------
    def forward(self, x: Any) -> Any:
        """Run every layer in order, recording the tape; returns the last layer's output."""
        x = self.as_batch(x)
        self.tape = []
        for i, layer in enumerate(self.layers):
            y, ctx = layer.forward(x)
            self.tape.append(TapeEntry(i, layer, x, y, ctx))
            for hook in self.hooks:
                hook.on_forward(i, layer, x, y)
            x = y
        self.output = x
        return x

    __call__ = forward

    def backward(self, dy: Any, *, need_dx: bool = False) -> Any:
        """Chain rule from the output back to the input along the tape; parameter gradients
        accumulate. The first layer's input gradient is skipped unless ``need_dx``."""
        if not self.tape:
            raise ConfigError("backward needs a forward pass first")
        floor = self._first_differentiable()
        for entry in reversed(self.tape):
            dx = entry.layer.backward(dy, entry.ctx, need_dx=need_dx or entry.index > floor)
            for hook in self.hooks:
                hook.on_backward(entry.index, entry.layer, dy, dx)
            dy = dx
        return dy

    def _first_differentiable(self) -> int:
        """The index of the first layer whose input gradient anyone reads: 0, or one past a leading
        run of parameter-free layers ending in one that reads token ids (``onehot``)."""
        floor = 0
        for i, layer in enumerate(self.layers):
            if layer.params:
                break
            if getattr(layer, "index_input", False):
                floor = i + 1
        return floor

    def _loss(self) -> Loss:
        if self.loss is None:
            raise ConfigError("this network has no loss; pass loss=... to Sequential or mlp()")
        return self.loss

    def gradients(self, x: Any, y: Any, *, l2: float = 0.0) -> Any:
        """Stage one of a training step: zero the gradients, forward, loss, backward, and the L2
        term ``λW`` of seed 001 (the one place it is added). Returns the *data* cost (a 0-d array,
        without the penalty); every ``param.grad`` holds ``∂E/∂θ``."""
        loss = self._loss()
        self.zero_grad()
        cost, ctx = loss.forward(self.forward(x), y)
        self.backward(loss.backward(ctx))
        if l2:
            add_l2_grad(self.params, l2)
        return cost

    def loss_and_grad(self, x: Any, y: Any, *, l2: float = 0.0) -> Any:
        """One forward and backward pass: returns the cost ``E`` (a 0-d array) and leaves
        ``∂E/∂θ`` in every ``param.grad``.

        ``E`` is the batch-mean loss plus the L2 penalty ``(λ/2) Σ W²`` of seed 001, and the
        weight gradients include ``λ W`` (see :mod:`chainrule.nn.regularizers`).
        """
        cost = self.gradients(x, y, l2=l2)
        return cost + l2_penalty(self.params, l2) if l2 else cost

    def cost(self, x: Any, y: Any, *, l2: float = 0.0) -> float:
        """``E`` without touching gradients (forward only), as a Python float."""
        cost = self._loss().value(self.predict_scores(x), y)
        return float(cost + l2_penalty(self.params, l2)) if l2 else float(cost)

    # -- predictions ---------------------------------------------------------------------------
    def predict_scores(self, x: Any, batch_size: int = 4096) -> Any:
        """Forward pass in batches (no gradients needed); returns the last layer's output."""
        x = self.as_batch(x)
        n = x.shape[0]
        if n <= batch_size:
            return self.forward(x)
        parts = [self.forward(x[i : i + batch_size]) for i in range(0, n, batch_size)]
        return namespace(x).concat(parts, axis=0)

    def predict_proba(self, x: Any, batch_size: int = 4096) -> np.ndarray:
        """Outputs mapped through the loss's fused activation (softmax / sigmoid), on the host."""
        scores = self.predict_scores(x, batch_size)
        return to_numpy(self.loss.probabilities(scores) if self.loss is not None else scores)

    def predict(self, x: Any, batch_size: int = 4096) -> np.ndarray:
        """Class index per row (argmax of the output; threshold 0 for a single logit)."""
        return to_numpy(predicted_class(self.predict_scores(x, batch_size))).astype(np.int64)

    # -- description ---------------------------------------------------------------------------
    def config(self) -> dict[str, Any]:
        cfg: dict[str, Any] = {
            "input_dim": self.input_dim,
            "loss": None if self.loss is None else self.loss.name,
            "layers": [layer.config() for layer in self.layers],
        }
        if self.input_shape is not None and len(self.input_shape) != 1:
            cfg["input_shape"] = list(self.input_shape)
        return cfg

    def num_params(self) -> int:
        return int(sum(int(np.prod(p.shape)) for p in self.params))

    def __repr__(self) -> str:
        inner = ",\n  ".join(repr(layer) for layer in self.layers)
        return f"Sequential(\n  {inner}\n)"

    def __len__(self) -> int:
        return len(self.layers)

    def __getitem__(self, i: int) -> Layer:
        return self.layers[i]
