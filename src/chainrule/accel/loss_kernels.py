"""The fast step's loss kernels: ``E`` and ``δ = ∂E/∂out`` into the reused ``delta`` buffer.

The shared kernel is the registered loss itself (:mod:`chainrule.nn.losses`): its ``forward`` and
``backward``, with ``δ`` written into the step's buffer, so the formulas exist once and the fast
path's numbers are the plain path's. A backend with a fused kernel for a common case (torch's and
CuPy's softmax cross-entropy on class labels) puts that in its own ``LOSSES`` table.

Signature: ``kernel(ops, out, yb, delta, lb) -> E`` with ``out`` the network's output ``(N, K)``,
``yb`` the batch's targets, ``delta`` the buffer for ``∂E/∂out`` and ``lb`` the loss's buffers.
``E`` is the batch-mean loss as a 0-d array (``None`` when a fused kernel added it to the running
totals itself).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from chainrule.nn.losses import LOSSES

__all__ = ["LOSS_KERNELS", "registered_loss"]


def registered_loss(name: str) -> Callable[..., Any]:
    """The kernel of the registered loss ``name``: ``E, ctx = loss.forward(out, y)``;
    ``delta ← loss.backward(ctx)``."""
    loss = LOSSES[name]()

    def kernel(ops: Any, out: Any, yb: Any, delta: Any, lb: dict[str, Any]) -> Any:
        cost, ctx = loss.forward(out, yb)
        delta[...] = loss.backward(ctx)
        return cost

    kernel.__name__ = kernel.__qualname__ = f"registered_loss[{name}]"
    return kernel


#: loss name (:data:`chainrule.nn.losses.LOSSES`) → kernel, as every backend starts its table
LOSS_KERNELS = {name: registered_loss(name) for name in ("softmax-ce", "bce", "squared")}
