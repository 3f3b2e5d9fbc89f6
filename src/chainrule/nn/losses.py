"""Losses: each returns the mean cost of a batch and the δ it sends back.

Costs are means over the N samples of a batch; the ``1/N`` lives here and only here (layers sum
over rows). Each loss is a small class in Nielsen's ``network2.py`` style: ``forward`` is the cost
``E``, ``backward`` returns ``∂E/∂(its input)``.

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
from chainrule.errors import ConfigError, ShapeError
from chainrule.nn.functional import sigmoid, softmax, targets_like

__all__ = ["LOSSES", "Loss", "SigmoidBinaryCrossEntropy", "SoftmaxCrossEntropy", "SquaredError", "get_loss"]


class Loss:
    """``forward(out, y) -> E`` (a 0-d array: read it with ``float()`` only when needed, so a GPU
    step does not wait for it) and ``backward() -> ∂E/∂out``."""

    name: ClassVar[str] = ""
    #: the activation fused into the loss ("softmax", "sigmoid") or None; predictions apply it
    fused: ClassVar[str | None] = None

    def forward(self, out: Any, y: Any) -> Any:
        raise NotImplementedError

    def backward(self) -> Any:
        raise NotImplementedError

    def probabilities(self, out: Any) -> Any:
        """Map network outputs to the values the loss compares with targets."""
        return out

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class SquaredError(Loss):
    """``E = (1/N) Σ_n ½ ‖a_n − y_n‖²``; ``∂E/∂a = (a − y) / N``  (seed 002: dE/do = o − t)."""

    name = "squared"

    def forward(self, out: Any, y: Any) -> Any:
        xp = namespace(out)
        self._diff = out - targets_like(out, y)
        self._n = out.shape[0]
        return 0.5 * xp.sum(self._diff * self._diff) / self._n

    def backward(self) -> Any:
        return self._diff / self._n


class SoftmaxCrossEntropy(Loss):
    """Softmax and cross-entropy on logits ``z`` (N, K).

    ``log p = z − max z − log Σ e^{z − max z}`` (log-sum-exp, never log(0));
    ``E = −(1/N) Σ_n Σ_k y_nk log p_nk``; ``∂E/∂z = (p − y) / N``.
    """

    name = "softmax-ce"
    fused = "softmax"

    def forward(self, out: Any, y: Any) -> Any:
        xp = namespace(out)
        t = targets_like(out, y)
        shifted = out - xp.max(out, axis=1, keepdims=True)
        log_p = shifted - xp.log(xp.sum(xp.exp(shifted), axis=1, keepdims=True))
        self._p, self._t, self._n = xp.exp(log_p), t, out.shape[0]
        return -xp.sum(t * log_p) / self._n

    def backward(self) -> Any:
        return (self._p - self._t) / self._n

    def probabilities(self, out: Any) -> Any:
        return softmax(out)


class SigmoidBinaryCrossEntropy(Loss):
    """Sigmoid and binary cross-entropy on logits ``z`` (N, K), each column a yes/no target.

    ``−[y log σ(z) + (1 − y) log(1 − σ(z))] = softplus(z) − y z = max(z, 0) − y z + log1p(e^{−|z|})``
    (no log(0), no overflow); ``E`` is its sum over columns, mean over rows;
    ``∂E/∂z = (σ(z) − y) / N``.
    """

    name = "bce"
    fused = "sigmoid"

    def forward(self, out: Any, y: Any) -> Any:
        xp = namespace(out)
        t = targets_like(out, y)
        per = xp.maximum(out, 0.0) - t * out + xp.log1p(xp.exp(-xp.abs(out)))
        self._a, self._t, self._n = sigmoid(out), t, out.shape[0]
        return xp.sum(per) / self._n

    def backward(self) -> Any:
        return (self._a - self._t) / self._n

    def probabilities(self, out: Any) -> Any:
        return sigmoid(out)


LOSSES: dict[str, type[Loss]] = {
    cls.name: cls for cls in (SquaredError, SoftmaxCrossEntropy, SigmoidBinaryCrossEntropy)
}


def get_loss(name: str | Loss) -> Loss:
    """A loss instance from its name (``squared``, ``softmax-ce``, ``bce``) or an instance."""
    if isinstance(name, Loss):
        return name
    if name not in LOSSES:
        raise ConfigError(f"unknown loss {name!r}; choose {', '.join(LOSSES)}")
    return LOSSES[name]()
