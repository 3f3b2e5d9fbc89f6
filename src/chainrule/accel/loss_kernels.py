"""The fast step's loss kernels: ``E`` and ``δ = ∂E/∂out`` into a reused buffer, on any backend.

Each kernel mirrors its registered loss (:mod:`chainrule.nn.losses`) operation for operation, so
its numbers are the plain path's; the named functions (targets, log-softmax, softplus, sigmoid)
are :mod:`chainrule.nn.functional`'s own. They are written with NumPy-style ufuncs that take
``out=`` (``ops.xp``: NumPy, CuPy and torch all accept them), so one kernel serves every
backend; a backend with a fused kernel for a common case puts that in its own ``LOSSES`` table.

Signature: ``kernel(ops, out, yb, delta, lb) -> E`` with ``out`` the network's output ``(N, K)``,
``yb`` the batch's targets, ``delta`` the buffer for ``∂E/∂out`` and ``lb`` the loss's scratch
buffers (``"s"``, ``"tmp"`` of ``out``'s shape and dtype, ``"mask"`` of bools). ``E`` is the
batch-mean loss as a 0-d array (``None`` when the kernel added it to the running totals itself).
"""

from __future__ import annotations

from typing import Any

from chainrule.nn.functional import log_softmax, softplus, targets_like

__all__ = ["LOSS_KERNELS", "bce", "softmax_ce", "squared"]


def softmax_ce(ops: Any, out: Any, yb: Any, delta: Any, lb: dict[str, Any]) -> Any:
    """``E = −(1/N) Σ t ⊙ log p`` with ``log p = log_softmax(z)``; ``δ = (p − t)/N``."""
    xp, n, tmp = ops.xp, out.shape[0], lb["tmp"]
    t = targets_like(out, yb)
    log_p = log_softmax(out, axis=1)
    xp.exp(log_p, out=delta)  # p
    xp.multiply(t, log_p, out=tmp)
    cost = -xp.sum(tmp) / n
    xp.subtract(delta, t, out=delta)
    xp.divide(delta, n, out=delta)
    return cost


def bce(ops: Any, out: Any, yb: Any, delta: Any, lb: dict[str, Any]) -> Any:
    """``E = (1/N) Σ (softplus(z) − t z)`` (the binary cross-entropy of ``σ(z)``); ``δ = (σ(z) − t)/N``."""
    xp, n, tmp = ops.xp, out.shape[0], lb["tmp"]
    t = targets_like(out, yb)
    xp.multiply(t, out, out=tmp)
    xp.subtract(softplus(out), tmp, out=tmp)
    cost = xp.sum(tmp) / n
    ops.fill_sigmoid(out, delta, lb)  # σ(z)
    xp.subtract(delta, t, out=delta)
    xp.divide(delta, n, out=delta)
    return cost


def squared(ops: Any, out: Any, yb: Any, delta: Any, lb: dict[str, Any]) -> Any:
    """``E = ½ Σ (a − t)² / N``; ``δ = (a − t)/N``."""
    xp, n, s, tmp = ops.xp, out.shape[0], lb["s"], lb["tmp"]
    xp.subtract(out, targets_like(out, yb), out=s)
    xp.multiply(s, s, out=tmp)
    cost = 0.5 * xp.sum(tmp) / n
    xp.divide(s, n, out=delta)
    return cost


#: loss name (:data:`chainrule.nn.losses.LOSSES`) → kernel, as every backend starts its table
LOSS_KERNELS = {"softmax-ce": softmax_ce, "bce": bce, "squared": squared}
