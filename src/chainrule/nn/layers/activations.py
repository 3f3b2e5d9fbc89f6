"""Element-wise activations and softmax, each with its hand-derived derivative.

Each element-wise layer maps ``z -> a = f(z)`` entry by entry and defines just ``f`` and ``f'``;
the chain rule ``∂E/∂z = ∂E/∂a ⊙ f'(z)`` (seed 004's BP1/BP2 ``δ^l = (...) ⊙ σ'(z^l)``) is written
once, in :class:`~chainrule.nn.layer.Elementwise`. Where ``f'`` is cheaper from the output it is
(scikit-learn's habit): sigmoid ``a(1 − a)``, tanh ``1 − a²``.

Softmax is the exception: each output depends on every input of its row, so its backward is a
Jacobian-vector product rather than a Hadamard product.
"""

from __future__ import annotations

from typing import Any

from chainrule.backend import namespace
from chainrule.nn.functional import sigmoid, softmax, softplus
from chainrule.nn.layer import Elementwise, Layer, register_layer, spec_number

__all__ = ["Identity", "LeakyReLU", "ReLU", "Sigmoid", "Softmax", "Softplus", "Tanh"]


@register_layer
class Identity(Elementwise):
    """``a = z``; ``∂E/∂z = ∂E/∂a``."""

    kind = "identity"
    symbol, symbol_latex = "id", r"\operatorname{id}"
    formula, formula_latex = "a = z", "a = z"
    derivative, derivative_latex = "1", "1"

    def f(self, z: Any) -> Any:
        return z

    def fprime(self, z: Any, a: Any) -> Any:
        return 1.0

    def backward(self, dy: Any, ctx: Any, *, need_dx: bool = True) -> Any:
        return dy  # NOTE: f' = 1, so δ passes through unchanged (and unallocated)


@register_layer
class Sigmoid(Elementwise):
    """``a = σ(z) = 1 / (1 + e^{-z})``; ``σ'(z) = σ(z)(1 − σ(z))`` (seed 002), so
    ``∂E/∂z = dy ⊙ a ⊙ (1 − a)``. Since σ' ≤ 1/4, each sigmoid layer shrinks δ by at least 4×
    (seed 004's vanishing gradient)."""

    kind = "sigmoid"
    symbol, symbol_latex = "σ", r"\sigma"
    formula, formula_latex = "a = σ(z) = 1 / (1 + e^(−z))", r"a = \sigma(z) = \frac{1}{1 + e^{-z}}"
    derivative, derivative_latex = "a^%(l)s ⊙ (1 − a^%(l)s)", r"a^{%(l)s} \odot (1 - a^{%(l)s})"

    def f(self, z: Any) -> Any:
        return sigmoid(z)

    def fprime(self, z: Any, a: Any) -> Any:
        return a * (1.0 - a)


@register_layer
class Tanh(Elementwise):
    """``a = tanh z = (e^z − e^{-z}) / (e^z + e^{-z})``; ``tanh'(z) = 1 − a²`` (seed 002, derived
    there under a heading that says "sigmoid"), so ``∂E/∂z = dy ⊙ (1 − a²)``."""

    kind = "tanh"
    symbol, symbol_latex = "tanh", r"\tanh"
    formula, formula_latex = "a = tanh(z)", r"a = \tanh z"
    derivative, derivative_latex = "1 − (a^%(l)s)²", r"1 - (a^{%(l)s})^{2}"

    def f(self, z: Any) -> Any:
        return namespace(z).tanh(z)

    def fprime(self, z: Any, a: Any) -> Any:
        return 1.0 - a * a


@register_layer
class ReLU(Elementwise):
    """``a = max(z, 0)``; ``f'(z) = 1`` for z > 0 else 0, so ``∂E/∂z = dy ⊙ [z > 0]``.

    NOTE: f'(0) is taken as 0, as seed 002 writes it (``0, h_L ≤ 0``) and as PyTorch does.
    """

    kind = "relu"
    symbol, symbol_latex = "ReLU", r"\operatorname{ReLU}"
    formula, formula_latex = "a = max(z, 0)", r"a = \max(z, 0)"
    derivative, derivative_latex = "[z^%(l)s > 0]", r"[z^{%(l)s} > 0]"
    default_init = "he"

    def f(self, z: Any) -> Any:
        return namespace(z).maximum(z, 0.0)

    def fprime(self, z: Any, a: Any) -> Any:
        return z > 0


@register_layer
class LeakyReLU(Elementwise):
    """``a = z`` for z > 0, ``α z`` otherwise; ``∂E/∂z = dy`` where z > 0, ``α dy`` elsewhere.

    NOTE: f'(0) = α (the z ≤ 0 branch), as in PyTorch.
    """

    kind = "leaky_relu"
    spec = "leaky_relu[:ALPHA]"
    symbol, symbol_latex = "LeakyReLU", r"\operatorname{LeakyReLU}"
    formula, formula_latex = (
        "a = z if z > 0 else α z",
        r"a = \begin{cases} z & z > 0 \\ \alpha z & z \le 0 \end{cases}",
    )
    derivative = "[z^%(l)s > 0] + α [z^%(l)s ≤ 0]"
    derivative_latex = r"[z^{%(l)s} > 0] + \alpha [z^{%(l)s} \le 0]"
    default_init = "he"

    def __init__(self, alpha: float = 0.01) -> None:
        super().__init__()
        self.alpha = float(alpha)

    @classmethod
    def spec_config(cls, args: dict[str, str], input_shape: tuple[int, ...]) -> dict[str, Any]:
        return {"type": cls.kind, "alpha": spec_number(args, "alpha", float, 0.01, lo=0.0)}

    @classmethod
    def example(cls, rng: Any, dtype: Any = None) -> tuple[Layer, tuple[int, ...]]:
        return cls(0.1), (4,)

    def f(self, z: Any) -> Any:
        return namespace(z).where(z > 0, z, self.alpha * z)

    def fprime(self, z: Any, a: Any) -> Any:
        one = namespace(z).ones_like(z)  # z's dtype on every backend (a bare 0.1 may be float32)
        return namespace(z).where(z > 0, one, self.alpha * one)

    def config(self) -> dict[str, Any]:
        return {"type": self.kind, "alpha": self.alpha}

    def extra_repr(self) -> str:
        return f"alpha={self.alpha}"


@register_layer
class Softplus(Elementwise):
    """``a = ζ(z) = log(1 + e^z)`` (seed 002), a smooth ReLU; ``ζ'(z) = e^z / (1 + e^z) = σ(z)``,
    so ``∂E/∂z = dy ⊙ σ(z)``."""

    kind = "softplus"
    symbol, symbol_latex = "softplus", r"\operatorname{softplus}"
    formula, formula_latex = "a = ζ(z) = log(1 + e^z)", r"a = \zeta(z) = \log(1 + e^{z})"
    derivative, derivative_latex = "σ(z^%(l)s)", r"\sigma(z^{%(l)s})"

    def f(self, z: Any) -> Any:
        return softplus(z)

    def fprime(self, z: Any, a: Any) -> Any:
        return sigmoid(z)


@register_layer
class Softmax(Layer):
    """``s_j = e^{z_j} / Σ_k e^{z_k}`` per row (seed 002).

    Its Jacobian is ``∂s_j/∂z_i = s_j (δ_ij − s_i)``, so the vector-Jacobian product is::

        ∂E/∂z_i = Σ_j dy_j s_j (δ_ij − s_i) = s_i (dy_i − Σ_j dy_j s_j)
        i.e.  dx = s ⊙ (dy − rowsum(dy ⊙ s))                      (N, K)

    Use it standalone only when the loss is not cross-entropy; with cross-entropy the fused
    :class:`~chainrule.nn.losses.SoftmaxCrossEntropy` gives the simpler, more exact ``(p − y)/N``.
    """

    kind = "softmax"
    spec = "softmax"
    symbol, symbol_latex = "softmax", r"\operatorname{softmax}"
    formula, formula_latex = "s = e^z / Σ_k e^(z_k)", r"s_j = \frac{e^{z_j}}{\sum_k e^{z_k}}"
    derivative = "s ⊙ (dy − Σ_j dy_j s_j)"
    derivative_latex = r"s \odot (\delta - \textstyle\sum_j \delta_j s_j)"

    def forward(self, x: Any) -> tuple[Any, Any]:
        s = softmax(x)
        return s, s

    def backward(self, dy: Any, ctx: Any, *, need_dx: bool = True) -> Any:
        s = ctx
        return s * (dy - namespace(dy).sum(dy * s, axis=-1, keepdims=True))
