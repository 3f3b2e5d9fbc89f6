"""The fast step's primitives on NumPy arrays, and NumPy's kernel tables.

Every primitive works in place or into ``out``; each mirrors the operations of the plain layer,
loss or optimiser it replaces (same ufuncs, same order), so results agree bit for bit with the
plain path on the same BLAS, but for the one rounding the fused SGD update saves.

The methods are written against ``self.xp`` wherever NumPy's API is all they need, so
:class:`~chainrule.accel.cupy_ops.CupyOps` inherits them with ``xp = cupy`` and overrides only what
differs on the GPU (cuBLAS calls, fused kernels, device-side totals).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

import numpy as np

from chainrule.accel.cblas import cblas_gemm, gemm_at_d
from chainrule.accel.loss_kernels import LOSS_KERNELS
from chainrule.accel.plan import (
    DENSE,
    IDENTITY,
    ActKernel,
    Block,
    HeadKernel,
    TableDispatch,
    slope_not_negative,
)
from chainrule.accel.update_kernels import UPDATE_KERNELS
from chainrule.nn.functional import sigmoid

__all__ = ["NUMPY_ACTS", "NumpyOps"]


# --------------------------------------------------------------------------------------------
# activation kernels: z ← f(z) after the bias, and d ← d ⊙ f' in the plain layer's order
# --------------------------------------------------------------------------------------------


def _relu_forward(ops: Any, z: np.ndarray, blk: Block, buf: dict[str, Any]) -> None:
    """``a = max(z, 0)``."""
    np.maximum(z, 0.0, out=z)


def _relu_backward(ops: Any, d: np.ndarray, a: np.ndarray, blk: Block, buf: dict[str, Any]) -> None:
    """``d ← d ⊙ [z > 0]``, the mask read from the output (``z > 0 ⇔ a > 0``)."""
    m = buf["mask"]
    np.greater(a, 0.0, out=m)
    np.multiply(d, m, out=d)


def _leaky_relu_forward(ops: Any, z: np.ndarray, blk: Block, buf: dict[str, Any]) -> None:
    """``a = z`` where ``z > 0``, ``α z`` elsewhere: the ``z ≤ 0`` entries are scaled in place and
    their mask ``[z ≤ 0]`` is kept for the backward."""
    m = buf["mask"]
    np.less_equal(z, 0.0, out=m)
    np.multiply(z, blk.alpha, out=z, where=m)


def _leaky_relu_backward(ops: Any, d: np.ndarray, a: np.ndarray, blk: Block, buf: dict[str, Any]) -> None:
    """``d ← d`` where ``z > 0``, ``α d`` where ``z ≤ 0`` (the forward's mask)."""
    np.multiply(d, blk.alpha, out=d, where=buf["mask"])


def _tanh_forward(ops: Any, z: np.ndarray, blk: Block, buf: dict[str, Any]) -> None:
    """``a = tanh z``."""
    np.tanh(z, out=z)


def _tanh_backward(ops: Any, d: np.ndarray, a: np.ndarray, blk: Block, buf: dict[str, Any]) -> None:
    """``d ← d ⊙ (1 − a·a)``."""
    t = buf["tmp"]
    np.multiply(a, a, out=t)
    np.subtract(1.0, t, out=t)
    np.multiply(d, t, out=d)


def _sigmoid_forward(ops: Any, z: np.ndarray, blk: Block, buf: dict[str, Any]) -> None:
    """``a = σ(z)``: :func:`chainrule.nn.functional.sigmoid` in place, in the layer's scratch."""
    sigmoid(z, out=z, scratch=(buf["mask"], buf["tmp"], buf["tmp2"]))


def _sigmoid_backward(ops: Any, d: np.ndarray, a: np.ndarray, blk: Block, buf: dict[str, Any]) -> None:
    """``d ← d ⊙ (a ⊙ (1 − a))``."""
    t = buf["tmp"]
    np.subtract(1.0, a, out=t)
    np.multiply(a, t, out=t)
    np.multiply(d, t, out=d)


#: layer kind → NumPy's in-place kernels
NUMPY_ACTS = {
    "identity": IDENTITY,
    "relu": ActKernel(_relu_forward, _relu_backward, ("mask",)),
    "leaky_relu": ActKernel(_leaky_relu_forward, _leaky_relu_backward, ("mask",), slope_not_negative),
    "tanh": ActKernel(_tanh_forward, _tanh_backward, ("tmp",)),
    "sigmoid": ActKernel(_sigmoid_forward, _sigmoid_backward, ("mask", "tmp", "tmp2")),
}


# --------------------------------------------------------------------------------------------
# the ops
# --------------------------------------------------------------------------------------------


class NumpyOps(TableDispatch):
    """The fast step's primitives on NumPy arrays (``xp = numpy``), every one in place or into ``out``."""

    name = "numpy"
    xp: Any = np
    bool_dtype: Any = np.bool_
    HEADS: ClassVar[dict[str, HeadKernel]] = {"dense": DENSE}
    ACTS: ClassVar[dict[str, ActKernel]] = NUMPY_ACTS
    LOSSES: ClassVar[dict[str, Callable[..., Any]]] = LOSS_KERNELS
    UPDATES: ClassVar[dict[str, Callable[..., Any]]] = UPDATE_KERNELS

    def __init__(self) -> None:
        self._gemm = cblas_gemm()
        self._loss = 0.0
        self._correct = 0

    # -- memory ----------------------------------------------------------------------------
    def empty(self, shape: tuple[int, ...], dtype: Any) -> Any:
        return self.xp.empty(shape, dtype=dtype)

    def index_array(self, order: np.ndarray) -> Any:
        """The epoch's permutation where the gather runs (the host, here)."""
        return np.asarray(order, dtype=np.intp)

    def take_rows(self, src: np.ndarray, idx: np.ndarray, out: np.ndarray) -> None:
        """``out = src[idx]``. ``mode='clip'`` lets NumPy write straight into ``out``
        (``mode='raise'`` buffers); the indices come from a permutation, so nothing is clipped."""
        np.take(src, idx, axis=0, out=out, mode="clip")

    def gather_batch(self, x: Any, y: Any, idx: Any, bufs: dict[str, Any]) -> None:
        """The batch ``x[idx], y[idx]`` into ``bufs['x'], bufs['y']``."""
        self.take_rows(x, idx, bufs["x"])
        self.take_rows(y, idx, bufs["y"])

    def prepare(self, bufs: dict[str, Any], loss_kind: str) -> None:
        """Backend-specific set-up of a new buffer set (nothing for NumPy)."""

    # -- linear algebra --------------------------------------------------------------------
    def matmul(self, a: Any, b: Any, out: Any) -> None:
        """``out = a @ b``; ``a``/``b`` may be transposed views (BLAS reads them with a flag)."""
        self.xp.matmul(a, b, out=out)

    def gemm_acc(self, a_t: np.ndarray, d: np.ndarray, w: np.ndarray, alpha: float, tmp: np.ndarray) -> None:
        """``w ← w + α (a_t @ d)``, ``a_t`` being the transposed view ``aᵀ`` of a batch buffer.

        With the CBLAS entry point (:mod:`chainrule.accel.cblas`) this is one GEMM with
        ``beta = 1``. Otherwise ``tmp = a_t @ d; tmp ← α tmp; w ← w + tmp``, which for ``α = −lr``
        is exactly the plain ``W − lr·g``.
        """
        a = a_t.T
        fn = self._gemm.get(w.dtype) if self._gemm is not None else None
        if fn is not None and a.flags.c_contiguous and d.flags.c_contiguous and w.flags.c_contiguous:
            gemm_at_d(fn, a, d, w, alpha)
            return
        np.matmul(a_t, d, out=tmp)
        np.multiply(tmp, alpha, out=tmp)
        np.add(w, tmp, out=w)

    def scale(self, w: Any, c: float) -> None:
        """``w ← c · w`` in place."""
        self.xp.multiply(w, c, out=w)

    def col_sum(self, d: Any, out: Any) -> None:
        """``out = Σ_rows d`` (the bias gradient)."""
        self.xp.sum(d, axis=0, out=out)

    def bias_sgd(self, delta: Any, b: Any, lr: float, tmp: Any) -> None:
        """``∂E/∂b = Σ_rows δ`` into ``b.grad``, then ``b ← b − α ∂E/∂b``."""
        xp = self.xp
        xp.sum(delta, axis=0, out=b.grad)
        xp.multiply(b.grad, lr, out=tmp)
        xp.subtract(b.value, tmp, out=b.value)

    # -- layers ----------------------------------------------------------------------------
    def linear_act(self, x: Any, w: Any, b: Any, z: Any, blk: Block, buf: dict[str, Any]) -> None:
        """``z ← f(x W + b)``: the GEMM into the buffer, then bias and activation in place."""
        self.matmul(x, w, z)
        self.bias_act(z, b, blk, buf)

    def bias_act(self, z: Any, b: Any, blk: Block, buf: dict[str, Any]) -> None:
        """``z ← f(z + b)`` in place (``buf`` holds the masks and scratch of the block's kernel)."""
        self.xp.add(z, b, out=z)
        blk.kernel.forward(self, z, blk, buf)

    # -- running totals of an epoch (host numbers: reading a NumPy scalar costs nothing) -----
    def reset_totals(self) -> None:
        self._loss, self._correct = 0.0, 0

    def add_totals(self, cost: Any, correct: Any, n: int) -> None:
        """Add a batch's mean loss (weighted by its size ``n``) and its correct rows."""
        self._loss += float(cost) * n
        self._correct += int(correct)

    def read_totals(self) -> tuple[float, float]:
        """``(Σ batch loss × batch size, Σ correct)`` since :meth:`reset_totals`."""
        return self._loss, float(self._correct)

    # -- updates ---------------------------------------------------------------------------
    def begin_step(self, opt: Any) -> None:
        """Called once per update step, after the optimiser has counted it (no-op here)."""

    def bias_corrections(self, opt: Any) -> tuple[Any, Any]:
        """Adam's ``(1 − β₁ᵗ, 1 − β₂ᵗ)`` for the step being taken (``opt.t`` already counts it)."""
        return opt.bias_corrections()

    def update(self, opt: Any, w: Any, g: Any, state: Any, tmp: Any, tmp2: Any) -> None:
        """One optimiser update of ``w`` from ``g``, by the ``UPDATES`` kernel of ``opt.name``."""
        self.UPDATES[opt.name](self, opt, w, g, state, tmp, tmp2)
