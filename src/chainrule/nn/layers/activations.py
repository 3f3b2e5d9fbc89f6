"""Element-wise activations and softmax, each with its hand-derived derivative.

Each layer maps ``z -> a = f(z)`` element by element, so the chain rule is a Hadamard product:
``∂E/∂z = ∂E/∂a ⊙ f'(z)`` — seed 004's BP1/BP2 ``δ^l = (...) ⊙ σ'(z^l)``. Where ``f'`` is cheaper
written from the output it is (scikit-learn's habit): sigmoid ``a(1 − a)``, tanh ``1 − a²``.

Softmax is the exception: each output depends on every input of its row, so its backward is a
Jacobian-vector product rather than a Hadamard product.
"""

from __future__ import annotations

from typing import Any

from chainrule.backend import namespace
from chainrule.nn.functional import sigmoid, softmax, softplus
from chainrule.nn.layer import Layer, register_layer


class Activation(Layer):
    """An element-wise ``a = f(z)``; subclasses define :meth:`forward` and :meth:`backward`."""

    def __init__(self) -> None:
        super().__init__()
        self._z: Any = None
        self._a: Any = None


@register_layer
class Identity(Activation):
    """``a = z``; ``∂E/∂z = ∂E/∂a``."""

    kind = "identity"

    def forward(self, x: Any) -> Any:
        return x

    def backward(self, dy: Any, *, need_dx: bool = True) -> Any:
        return dy


@register_layer
class Sigmoid(Activation):
    """``a = σ(z) = 1 / (1 + e^{-z})``; ``σ'(z) = σ(z)(1 − σ(z))`` (seed 002), so
    ``∂E/∂z = dy ⊙ a ⊙ (1 − a)``. Since σ' ≤ 1/4, each sigmoid layer shrinks δ by at least 4×
    (seed 004's vanishing gradient)."""

    kind = "sigmoid"

    def forward(self, x: Any) -> Any:
        self._a = sigmoid(x)
        return self._a

    def backward(self, dy: Any, *, need_dx: bool = True) -> Any:
        a = self._a
        return dy * a * (1.0 - a)


@register_layer
class Tanh(Activation):
    """``a = tanh z = (e^z − e^{-z}) / (e^z + e^{-z})``; ``tanh'(z) = 1 − a²`` (seed 002, derived
    there under a heading that says "sigmoid"), so ``∂E/∂z = dy ⊙ (1 − a²)``."""

    kind = "tanh"

    def forward(self, x: Any) -> Any:
        xp = namespace(x)
        self._a = xp.tanh(x)
        return self._a

    def backward(self, dy: Any, *, need_dx: bool = True) -> Any:
        a = self._a
        return dy * (1.0 - a * a)


@register_layer
class ReLU(Activation):
    """``a = max(z, 0)``; ``f'(z) = 1`` for z > 0 else 0, so ``∂E/∂z = dy ⊙ [z > 0]``.

    NOTE: f'(0) is taken as 0, as seed 002 writes it (``0, h_L ≤ 0``) and as PyTorch does.
    """

    kind = "relu"

    def forward(self, x: Any) -> Any:
        xp = namespace(x)
        self._z = x
        return xp.maximum(x, 0.0)

    def backward(self, dy: Any, *, need_dx: bool = True) -> Any:
        return dy * (self._z > 0)


@register_layer
class LeakyReLU(Activation):
    """``a = z`` for z > 0, ``α z`` otherwise; ``∂E/∂z = dy`` where z > 0, ``α dy`` elsewhere.

    NOTE: f'(0) = α (the z ≤ 0 branch), as in PyTorch.
    """

    kind = "leaky_relu"

    def __init__(self, alpha: float = 0.01) -> None:
        super().__init__()
        self.alpha = float(alpha)

    def forward(self, x: Any) -> Any:
        xp = namespace(x)
        self._z = x
        return xp.where(x > 0, x, self.alpha * x)

    def backward(self, dy: Any, *, need_dx: bool = True) -> Any:
        xp = namespace(dy)
        return xp.where(self._z > 0, dy, self.alpha * dy)

    def config(self) -> dict[str, Any]:
        return {"type": self.kind, "alpha": self.alpha}

    def extra_repr(self) -> str:
        return f"alpha={self.alpha}"


@register_layer
class Softplus(Activation):
    """``a = ζ(z) = log(1 + e^z)`` (seed 002), a smooth ReLU; ``ζ'(z) = e^z / (1 + e^z) = σ(z)``,
    so ``∂E/∂z = dy ⊙ σ(z)``."""

    kind = "softplus"

    def forward(self, x: Any) -> Any:
        self._z = x
        return softplus(x)

    def backward(self, dy: Any, *, need_dx: bool = True) -> Any:
        return dy * sigmoid(self._z)


@register_layer
class Softmax(Activation):
    """``s_j = e^{z_j} / Σ_k e^{z_k}`` per row (seed 002).

    Its Jacobian is ``∂s_j/∂z_i = s_j (δ_ij − s_i)``, so the vector-Jacobian product is::

        ∂E/∂z_i = Σ_j dy_j s_j (δ_ij − s_i) = s_i (dy_i − Σ_j dy_j s_j)
        i.e.  dx = s ⊙ (dy − rowsum(dy ⊙ s))                      (N, K)

    Use it standalone only when the loss is not cross-entropy; with cross-entropy the fused
    :class:`~chainrule.nn.losses.SoftmaxCrossEntropy` gives the simpler, more exact ``(p − y)/N``.
    """

    kind = "softmax"

    def forward(self, x: Any) -> Any:
        self._a = softmax(x)
        return self._a

    def backward(self, dy: Any, *, need_dx: bool = True) -> Any:
        xp = namespace(dy)
        s = self._a
        return s * (dy - xp.sum(dy * s, axis=-1, keepdims=True))


ACTIVATIONS: dict[str, type[Activation]] = {
    cls.kind: cls for cls in (Identity, Sigmoid, Tanh, ReLU, LeakyReLU, Softplus, Softmax)
}
