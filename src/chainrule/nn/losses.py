"""Losses: each returns the mean cost of a batch and the δ it sends back.

Costs are means over the N samples of a batch; the ``1/N`` lives here and only here (layers sum
over rows). Each loss is a small class in Nielsen's ``network2.py`` style, under the same contract
as a layer: ``forward(out, y) -> (E, ctx)`` is the cost, ``backward(ctx) -> ∂E/∂out`` its gradient.

* :class:`SquaredError` ``E = (1/N) Σ_n ½‖a_n − y_n‖²`` on outputs ``a`` (seed 001/002/004);
  ``δ = (a − y)/N`` with respect to ``a``. The network supplies its own output activation.
* :class:`SoftmaxCrossEntropy` ``E = −(1/N) Σ_n log softmax(z_n)_{y_n}`` fused with softmax on
  logits ``z`` (seed 000); ``δ = (p − y)/N``, because ``∂E/∂p`` and softmax's Jacobian cancel.
* :class:`SigmoidBinaryCrossEntropy` ``E = −(1/N) Σ_n Σ_k [y log a + (1 − y) log(1 − a)]``,
  ``a = σ(z)``, fused with the sigmoid on logits (seed 003); ``δ = (a − y)/N`` because
  ``(−y/a + (1 − y)/(1 − a)) · a(1 − a) = a − y``.

Targets may be class indices ``(N,)`` (turned into one-hot rows) or an ``(N, K)`` array.
"""

from __future__ import annotations

from typing import Any, ClassVar

from chainrule.backend import namespace
from chainrule.errors import ConfigError
from chainrule.nn.functional import log_softmax, sigmoid, softmax, softplus, targets_like

__all__ = [
    "LOSSES",
    "Loss",
    "SigmoidBinaryCrossEntropy",
    "SoftmaxCrossEntropy",
    "SquaredError",
    "get_loss",
    "register_loss",
]


class Loss:
    """``forward(out, y) -> (E, ctx)``, ``E`` a 0-d array (read it with ``float()`` only when needed,
    so a GPU step does not wait for it); ``backward(ctx) -> ∂E/∂out``.

    Class attributes (the loss's entry in the registry): ``name``; ``fused``, the activation
    fused into the loss (``"softmax"``, ``"sigmoid"``) or None; ``formula``/``formula_latex`` for
    ``E``; ``delta``/``delta_latex`` for ``∂E/∂out``; ``output_activation``, what a builder puts
    after the last Dense layer (seed 002's and Nielsen's sigmoid for squared error).

    Placeholder: the four templates may name ``%(o)s``, the network output the loss reads (``a^L``
    after an activation, ``z^L`` on logits; ``a^{L}`` in LaTeX), filled by the renderers with
    ``template % {"o": "a^2"}``. A template without it is shown as written; a literal ``%`` is
    written ``%%``.
    """

    name: ClassVar[str] = ""
    fused: ClassVar[str | None] = None
    formula: ClassVar[str] = ""
    formula_latex: ClassVar[str] = ""
    delta: ClassVar[str] = ""
    delta_latex: ClassVar[str] = ""
    output_activation: ClassVar[str] = "identity"

    def forward(self, out: Any, y: Any) -> tuple[Any, Any]:
        raise NotImplementedError

    def backward(self, ctx: Any) -> Any:
        raise NotImplementedError

    def value(self, out: Any, y: Any) -> Any:
        """``E`` alone (a 0-d array)."""
        return self.forward(out, y)[0]

    def probabilities(self, out: Any) -> Any:
        """Map network outputs to the values the loss compares with targets."""
        return out

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


LOSSES: dict[str, type[Loss]] = {}


def register_loss(cls: type[Loss]) -> type[Loss]:
    """Class decorator: make a loss buildable by name, saved by name, and covered by every
    registry-driven test and CLI choice."""
    if not cls.name:
        raise TypeError(f"{cls.__name__} needs a 'name' to be registered")
    LOSSES[cls.name] = cls
    return cls


@register_loss
class SquaredError(Loss):
    """``E = (1/N) Σ_n ½ ‖a_n − y_n‖²``; ``∂E/∂a = (a − y) / N``  (seed 002: dE/do = o − t)."""

    name = "squared"
    formula = "E = (1/N) Σ_n ½‖%(o)s_n − y_n‖²"
    formula_latex = r"E = \frac{1}{N}\sum_n \tfrac12 \lVert %(o)s_n - y_n \rVert^2"
    delta, delta_latex = "(%(o)s − y)/N", r"\frac{1}{N}(%(o)s - y)"
    output_activation = "sigmoid"

    def forward(self, out: Any, y: Any) -> tuple[Any, Any]:
        xp = namespace(out)
        diff = out - targets_like(out, y)
        return 0.5 * xp.sum(diff * diff) / out.shape[0], diff

    def backward(self, ctx: Any) -> Any:
        diff = ctx
        return diff / diff.shape[0]


@register_loss
class SoftmaxCrossEntropy(Loss):
    """Softmax and cross-entropy on logits ``z`` (N, K).

    ``log p = log_softmax(z)`` (log-sum-exp, never log(0)); ``E = −(1/N) Σ_n Σ_k y_nk log p_nk``;
    ``∂E/∂z = (p − y) / N``. Over sequences, logits ``(N, T, K)`` and ids ``(N, T)``, every step is a
    row: ``N`` above is ``N·T`` (the mean cost per token, nats per character for a character LM).
    """

    name = "softmax-ce"
    fused = "softmax"
    formula = "E = −(1/N) Σ_n Σ_k y_nk log softmax(%(o)s_n)_k"
    formula_latex = r"E = -\frac{1}{N}\sum_n \sum_k y_{nk} \log \operatorname{softmax}(%(o)s_n)_k"
    delta, delta_latex = "(softmax(%(o)s) − y)/N", r"\frac{1}{N}(\operatorname{softmax}(%(o)s) - y)"

    def forward(self, out: Any, y: Any) -> tuple[Any, Any]:
        xp = namespace(out)
        shape = tuple(out.shape)
        if out.ndim > 2:  # sequences (N, T, K): every step is a row; the mean runs over N·T
            out, y = xp.reshape(out, (-1, shape[-1])), xp.reshape(y, (-1, *y.shape[out.ndim - 1 :]))
        t = targets_like(out, y)
        log_p = log_softmax(out, axis=1)
        return -xp.sum(t * log_p) / out.shape[0], (xp.exp(log_p), t, shape)

    def backward(self, ctx: Any) -> Any:
        p, t, shape = ctx
        d = (p - t) / p.shape[0]
        return d if d.ndim == len(shape) else namespace(d).reshape(d, shape)

    def probabilities(self, out: Any) -> Any:
        return softmax(out)


@register_loss
class SigmoidBinaryCrossEntropy(Loss):
    """Sigmoid and binary cross-entropy on logits ``z`` (N, K), each column a yes/no target.

    ``−[y log σ(z) + (1 − y) log(1 − σ(z))] = softplus(z) − y z`` (no log(0), no overflow);
    ``E`` is its sum over columns, mean over rows; ``∂E/∂z = (σ(z) − y) / N``.
    """

    name = "bce"
    fused = "sigmoid"
    formula = "E = (1/N) Σ_n Σ_k −[y log σ(%(o)s) + (1 − y) log(1 − σ(%(o)s))]"
    formula_latex = (
        r"E = -\frac{1}{N}\sum_n \sum_k \left[y \log\sigma(%(o)s) + (1-y)\log(1-\sigma(%(o)s))\right]"
    )
    delta, delta_latex = "(σ(%(o)s) − y)/N", r"\frac{1}{N}(\sigma(%(o)s) - y)"

    def forward(self, out: Any, y: Any) -> tuple[Any, Any]:
        xp = namespace(out)
        t = targets_like(out, y)
        return xp.sum(softplus(out) - t * out) / out.shape[0], (sigmoid(out), t)

    def backward(self, ctx: Any) -> Any:
        a, t = ctx
        return (a - t) / a.shape[0]

    def probabilities(self, out: Any) -> Any:
        return sigmoid(out)


def get_loss(name: str | Loss) -> Loss:
    """A loss instance from its registered name (``squared``, ``softmax-ce``, ``bce`` ...) or an instance."""
    if isinstance(name, Loss):
        return name
    if name not in LOSSES:
        raise ConfigError(f"unknown loss {name!r}; choose {', '.join(LOSSES)}")
    return LOSSES[name]()
