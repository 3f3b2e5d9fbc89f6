"""Each formula written once, for any array namespace (NumPy, CuPy, torch through array-api-compat).

Layers, losses, the fast runners and the studies all call these; nothing else in the package
writes a sigmoid, softmax or log-softmax for arrays (CUDA kernel source strings aside).

Numerics (DESIGN.md): softmax and log-softmax subtract the row maximum, so every exponent is ≤ 0;
the sigmoid evaluates ``e^{-|z|} ≤ 1`` on both branches, so it never overflows; softplus is
``max(z, 0) + log1p(e^{-|z|})``; cross-entropy goes through log-softmax and never takes log(0).

NumPy callers on a hot path may pass ``out=`` (and ``scratch=``) to :func:`sigmoid` to compute in
place without allocating; the arithmetic is the same.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from chainrule.backend import namespace
from chainrule.errors import ShapeError

__all__ = [
    "count_correct",
    "log_softmax",
    "predicted_class",
    "sigmoid",
    "softmax",
    "softplus",
    "targets_like",
]


def sigmoid(z: Any, *, out: Any = None, scratch: tuple[Any, Any, Any] | None = None) -> Any:
    """σ(z) = 1 / (1 + e^{-z}), computed as ``1/(1+e)`` for z ≥ 0 and ``e/(1+e)`` for z < 0 with
    ``e = e^{-|z|} ≤ 1``: no overflow on either branch.

    With ``out`` (NumPy only) the result is written there without allocating; ``scratch`` is
    ``(mask, t1, t2)``: a bool array and two float arrays of ``z``'s shape. ``out`` may be ``z``.
    """
    if out is None:
        xp = namespace(z)
        e = xp.exp(-xp.abs(z))
        return xp.where(z >= 0, 1.0 / (1.0 + e), e / (1.0 + e))
    mask, e, den = (
        scratch if scratch is not None else (np.empty(z.shape, bool), np.empty_like(z), np.empty_like(z))
    )
    np.greater_equal(z, 0.0, out=mask)  # before z may be overwritten (out is z)
    np.abs(z, out=e)
    np.negative(e, out=e)
    np.exp(e, out=e)  # e = e^{-|z|}
    np.add(e, 1.0, out=den)  # 1 + e
    np.copyto(out, e)
    np.copyto(out, 1.0, where=mask)  # numerator: 1 where z ≥ 0, e elsewhere
    np.divide(out, den, out=out)
    return out


def softplus(z: Any) -> Any:
    """ζ(z) = log(1 + e^z) = max(z, 0) + log1p(e^{-|z|}), stable for large |z|."""
    xp = namespace(z)
    return xp.maximum(z, 0.0) + xp.log1p(xp.exp(-xp.abs(z)))


def log_softmax(z: Any, axis: int = -1) -> Any:
    """``log s_j = (z_j − max z) − log Σ_k e^{z_k − max z}``: log-sum-exp, never log(0)."""
    xp = namespace(z)
    shifted = z - xp.max(z, axis=axis, keepdims=True)
    return shifted - xp.log(xp.sum(xp.exp(shifted), axis=axis, keepdims=True))


def softmax(z: Any, axis: int = -1) -> Any:
    """``s_j = e^{z_j − max z} / Σ_k e^{z_k − max z}`` (the shift changes nothing but keeps every
    exponent ≤ 0)."""
    xp = namespace(z)
    e = xp.exp(z - xp.max(z, axis=axis, keepdims=True))
    return e / xp.sum(e, axis=axis, keepdims=True)


def targets_like(out: Any, y: Any) -> Any:
    """Targets as an ``(N, K)`` array of ``out``'s dtype: class indices become one-hot rows; with
    one output unit a label is its own target (the binary case)."""
    xp = namespace(out, y)
    n, k = out.shape
    if y.shape[0] != n:
        raise ShapeError(f"{y.shape[0]} targets for {n} outputs")
    if y.ndim == 1:
        if k == 1:
            return xp.reshape(xp.astype(y, out.dtype), (n, 1))
        classes = xp.arange(k) if isinstance(out, np.ndarray) else xp.arange(k, device=out.device)
        return xp.astype(y[:, None] == classes, out.dtype)
    if tuple(y.shape) != (n, k):
        raise ShapeError(f"targets have shape {tuple(y.shape)}, outputs {tuple(out.shape)}")
    return xp.astype(y, out.dtype)


def predicted_class(out: Any) -> Any:
    """Class index per row: argmax of the outputs, or ``logit > 0`` for a single output unit."""
    xp = namespace(out)
    if out.shape[1] == 1:
        return xp.astype(out[:, 0] > 0, xp.int64)
    return xp.argmax(out, axis=1)


def count_correct(out: Any, y: Any) -> Any:
    """Rows whose predicted class equals the label (a 0-d array, so a GPU step need not wait)."""
    xp = namespace(out)
    if y.ndim == 2:  # one-hot or real-valued targets: compare argmaxes
        y = xp.argmax(y, axis=1)
    return xp.count_nonzero(predicted_class(out) == y)  # integer labels compare as they are: no copies
