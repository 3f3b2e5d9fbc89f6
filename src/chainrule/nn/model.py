"""Parameters, the layer contract, and the forward/backward driver.

Layout: rows are samples. A batch ``x`` has shape ``(N, D_in)``, a weight ``W`` has shape
``(D_in, D_out)`` and a dense layer computes ``z = x W + b``. The seeds write the same thing in
column form, ``z = W a + b`` with ``W`` of shape ``(D_out, D_in)``; every docstring that cites a
seed translates it.

The layer contract (micrograd / deep-learning-from-scratch style):

* ``forward(x) -> y`` computes the formula and caches privately what backward needs;
* ``backward(dy) -> dx`` takes ``dy = ∂E/∂y`` (shape of ``y``), returns ``dx = ∂E/∂x`` (shape of
  ``x``) by the chain rule, and *accumulates* ``∂E/∂θ`` into ``param.grad`` with ``+=`` so a
  parameter used twice is right. It never mutates ``dy`` or the caller's ``x``.

:class:`Sequential` is the one place that walks the layers. Tracing (see :mod:`chainrule.inspect.trace`)
and gradient-flow statistics attach to it as hooks; layers themselves never print or log.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

import numpy as np

from chainrule.backend import Backend, namespace, numpy_backend, to_numpy
from chainrule.errors import ConfigError, ShapeError
from chainrule.nn.layer import Hook, Layer
from chainrule.nn.params import Param

__all__ = ["Sequential"]


class Sequential:
    """A stack of layers, and the driver that runs forward and backward through it.

    ``forward`` applies each layer in order; ``backward`` applies the chain rule in reverse:
    for the stack ``y = f_L(... f_1(x))``, ``∂E/∂x_l = backward_l(∂E/∂y_l)`` with
    ``∂E/∂y_l = ∂E/∂x_{l+1}``. Hooks (tracer, gradient-flow monitor) are called here and only
    here.
    """

    def __init__(self, layers: Iterable[Layer], *, loss: Any = None, input_dim: int | None = None) -> None:
        self.layers: list[Layer] = list(layers)
        if not self.layers:
            raise ConfigError("a network needs at least one layer")
        for layer in self.layers:
            if not isinstance(layer, Layer):
                raise ConfigError(f"{layer!r} is not a chainrule Layer")
        self.input_dim = input_dim if input_dim is not None else self._infer_input_dim()
        self.hooks: list[Hook] = []
        self.loss = _as_loss(loss)
        #: the last forward pass's output (a reference, not a copy)
        self.output: Any = None

    def _infer_input_dim(self) -> int | None:
        for layer in self.layers:
            d = getattr(layer, "in_features", None)
            if d is not None:
                return int(d)
        return None

    # -- parameters ------------------------------------------------------------------------
    @property
    def params(self) -> list[Param]:
        return [p for layer in self.layers for p in layer.params]

    def named_params(self) -> Iterator[tuple[str, Param]]:
        """``("3.W", param)`` pairs: layer index, then the parameter's own name."""
        for i, layer in enumerate(self.layers):
            for p in layer.params:
                yield f"{i}.{p.name}", p

    def zero_grad(self) -> None:
        for p in self.params:
            p.zero_grad()

    @property
    def dtype(self) -> Any:
        ps = self.params
        return ps[0].value.dtype if ps else None

    @property
    def backend(self) -> Backend:
        from chainrule.backend import backend_of

        ps = self.params
        return backend_of(ps[0].value) if ps else numpy_backend

    def to(self, backend: Backend, dtype: Any = None) -> Sequential:
        """Move every parameter to ``backend`` (and ``dtype``) in place; returns ``self``."""
        for layer in self.layers:
            layer.to(backend, dtype)
        return self

    def output_dim(self) -> int | None:
        d = self.input_dim
        if d is None:
            return None
        for layer in self.layers:
            d = layer.output_dim(d)
        return d

    # -- the driver ------------------------------------------------------------------------
    def check_input(self, x: Any) -> None:
        """Raise :class:`ShapeError` unless ``x`` is a 2-D batch with the right feature count."""
        shape = tuple(getattr(x, "shape", ()))
        if len(shape) != 2:
            raise ShapeError(f"input must be a 2-D batch (N, features), got shape {shape}")
        if self.input_dim is not None and shape[1] != self.input_dim:
            raise ShapeError(f"input has {shape[1]} features but the network expects {self.input_dim}")

    def forward(self, x: Any) -> Any:
        """Run every layer in order; returns the last layer's output."""
        self.check_input(x)
        for i, layer in enumerate(self.layers):
            y = layer.forward(x)
            for hook in self.hooks:
                hook.on_forward(i, layer, x, y)
            x = y
        self.output = x
        return x

    __call__ = forward

    def backward(self, dy: Any, *, need_dx: bool = False) -> Any:
        """Chain rule from the output back to the input; parameter gradients accumulate.

        The first layer's input gradient is skipped unless ``need_dx`` (nobody trains the data).
        """
        last = len(self.layers) - 1
        for i in range(last, -1, -1):
            layer = self.layers[i]
            dx = layer.backward(dy, need_dx=need_dx or i > 0)
            for hook in self.hooks:
                hook.on_backward(i, layer, dy, dx)
            dy = dx
        return dy

    def loss_and_grad(self, x: Any, y: Any, *, l2: float = 0.0) -> Any:
        """One forward and backward pass: returns the cost ``E`` (a 0-d array) and leaves
        ``∂E/∂θ`` in every ``param.grad``.

        ``E`` is the batch-mean loss plus the L2 penalty ``(λ/2) Σ W²`` of seed 001, and the
        weight gradients include ``λ W`` (see :mod:`chainrule.nn.regularizers`).
        """
        from chainrule.nn.regularizers import add_l2_grad, l2_penalty

        if self.loss is None:
            raise ConfigError("this network has no loss; pass loss=... to Sequential or mlp()")
        self.zero_grad()
        out = self.forward(x)
        cost = self.loss.forward(out, y)
        self.backward(self.loss.backward())
        if l2:
            cost = cost + l2_penalty(self.params, l2)
            add_l2_grad(self.params, l2)
        return cost

    def cost(self, x: Any, y: Any, *, l2: float = 0.0) -> float:
        """``E`` without touching gradients (forward only), as a Python float."""
        from chainrule.nn.regularizers import l2_penalty

        if self.loss is None:
            raise ConfigError("this network has no loss; pass loss=... to Sequential or mlp()")
        cost = self.loss.forward(self.predict_scores(x), y)
        return float(cost + l2_penalty(self.params, l2)) if l2 else float(cost)

    def predict_proba(self, x: Any, batch_size: int = 4096) -> np.ndarray:
        """Outputs mapped through the loss's fused activation (softmax / sigmoid), on the host."""
        scores = self.predict_scores(x, batch_size)
        return to_numpy(self.loss.probabilities(scores) if self.loss is not None else scores)

    # -- conveniences ----------------------------------------------------------------------
    def predict_scores(self, x: Any, batch_size: int = 4096) -> Any:
        """Forward pass in batches (no gradients needed); returns the last layer's output."""
        self.check_input(x)
        xp = namespace(x)
        n = x.shape[0]
        if n <= batch_size:
            return self.forward(x)
        parts = [self.forward(x[i : i + batch_size]) for i in range(0, n, batch_size)]
        return xp.concat(parts, axis=0)

    def predict(self, x: Any, batch_size: int = 4096) -> np.ndarray:
        """Class index per row (argmax of the output; threshold 0 for a single logit)."""
        scores = to_numpy(self.predict_scores(x, batch_size))
        if scores.shape[1] == 1:
            return (scores[:, 0] > 0).astype(np.int64)
        return np.argmax(scores, axis=1)

    def config(self) -> dict[str, Any]:
        return {
            "input_dim": self.input_dim,
            "loss": None if self.loss is None else self.loss.name,
            "layers": [layer.config() for layer in self.layers],
        }

    def num_params(self) -> int:
        return int(sum(int(np.prod(p.shape)) for p in self.params))

    def __repr__(self) -> str:
        inner = ",\n  ".join(repr(layer) for layer in self.layers)
        return f"Sequential(\n  {inner}\n)"

    def __len__(self) -> int:
        return len(self.layers)

    def __getitem__(self, i: int) -> Layer:
        return self.layers[i]


def _as_loss(loss: Any) -> Any:
    if loss is None:
        return None
    from chainrule.nn.losses import get_loss

    return get_loss(loss)
