"""The fast step's primitives on torch tensors (CPU and CUDA), and torch's kernel tables.

Tensors are used as plain arrays: autograd never runs (every tensor has ``requires_grad=False``
and the gradients are the hand-derived ones). ``out=`` / in-place kernels, ``addmm`` with the bias
(``_addmm_activation`` with ReLU, whose cuBLASLt epilogue adds the bias and clamps in the GEMM
itself), ``addmm_``/``addmv_`` for the one-kernel SGD updates. The losses and the optimisers'
updates are the shared NumPy-style kernels (:mod:`~chainrule.accel.loss_kernels`,
:mod:`~chainrule.accel.update_kernels`) with ``xp = torch``, plus a fused softmax cross-entropy
for class-index labels. Everything stays on the device (totals, Adam's step count) so that
:class:`~chainrule.accel.torch_graph.TorchGraphRunner` can capture the step as a CUDA graph.

Importing this module does not import torch; making a :class:`TorchOps` does.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

import numpy as np

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

__all__ = ["TORCH_ACTS", "TorchOps"]


# --------------------------------------------------------------------------------------------
# activation kernels: z ← f(z) after the bias, and d ← d ⊙ f' in the plain layer's order
# --------------------------------------------------------------------------------------------


def _relu_forward(ops: Any, z: Any, blk: Block, buf: dict[str, Any]) -> None:
    """``a = max(z, 0)``."""
    z.clamp_min_(0.0)


def _relu_linear(ops: Any, x: Any, w: Any, b: Any, z: Any) -> None:
    """``z ← max(x W + b, 0)`` in one call where torch has ``_addmm_activation``."""
    if ops.addmm_relu is None:
        ops.xp.addmm(b, x, w, out=z)
        z.clamp_min_(0.0)
    else:
        ops.addmm_relu(b, x, w, out=z)


def _relu_backward(ops: Any, d: Any, a: Any, blk: Block, buf: dict[str, Any]) -> None:
    """``d ← d ⊙ [z > 0]`` (``z > 0 ⇔ a > 0``) in one kernel."""
    ops.xp.ops.aten.threshold_backward.grad_input(d, a, 0.0, grad_input=d)


def _leaky_relu_forward(ops: Any, z: Any, blk: Block, buf: dict[str, Any]) -> None:
    """``a = z`` where ``z > 0``, ``α z`` elsewhere; the mask ``[z ≤ 0]`` is kept for the backward."""
    torch = ops.xp
    torch.le(z, 0.0, out=buf["mask"])
    torch.nn.functional.leaky_relu_(z, blk.alpha)


def _leaky_relu_backward(ops: Any, d: Any, a: Any, blk: Block, buf: dict[str, Any]) -> None:
    """``d ← d`` where ``z > 0``, ``α d`` where ``z ≤ 0``."""
    d.copy_(ops.xp.where(buf["mask"], d * blk.alpha, d))


def _tanh_forward(ops: Any, z: Any, blk: Block, buf: dict[str, Any]) -> None:
    """``a = tanh z``."""
    z.tanh_()


def _tanh_backward(ops: Any, d: Any, a: Any, blk: Block, buf: dict[str, Any]) -> None:
    """``d ← d ⊙ (1 − a·a)``."""
    t = buf["tmp"]
    ops.xp.mul(a, a, out=t)
    t.neg_().add_(1.0)
    d.mul_(t)


def _sigmoid_forward(ops: Any, z: Any, blk: Block, buf: dict[str, Any]) -> None:
    """``a = σ(z)`` (torch's own sigmoid)."""
    ops.xp.sigmoid(z, out=z)


def _sigmoid_backward(ops: Any, d: Any, a: Any, blk: Block, buf: dict[str, Any]) -> None:
    """``d ← d ⊙ (a ⊙ (1 − a))``."""
    t = buf["tmp"]
    ops.xp.neg(a, out=t)
    t.add_(1.0).mul_(a)
    d.mul_(t)


#: layer kind → torch's in-place kernels
TORCH_ACTS = {
    "identity": IDENTITY,
    "relu": ActKernel(_relu_forward, _relu_backward, linear=_relu_linear),
    "leaky_relu": ActKernel(_leaky_relu_forward, _leaky_relu_backward, ("mask",), slope_not_negative),
    "tanh": ActKernel(_tanh_forward, _tanh_backward, ("tmp",)),
    "sigmoid": ActKernel(_sigmoid_forward, _sigmoid_backward, ("tmp",)),
}


def _softmax_ce(ops: Any, out: Any, yb: Any, delta: Any, lb: dict[str, Any]) -> Any:
    """Class-index labels: ``log p = log_softmax(z)``; ``N·E = −Σ_n log p_{n,y_n}`` straight into
    the epoch's total; ``δ = (p − onehot(y))/N`` by a scatter. Other targets: the shared kernel."""
    if not lb["fused"]:
        return LOSS_KERNELS["softmax-ce"](ops, out, yb, delta, lb)
    torch, n, y = ops.xp, out.shape[0], yb.view(-1, 1)
    log_p = torch.log_softmax(out, dim=1)
    torch.exp(log_p, out=delta)
    ops.add_loss_sum(-log_p.gather(1, y).sum())
    delta.scatter_add_(1, y, lb["minus_one"])
    delta.div_(n)
    return None


# --------------------------------------------------------------------------------------------
# the ops
# --------------------------------------------------------------------------------------------


class TorchOps(TableDispatch):
    """The fast step's primitives on torch tensors (CPU or CUDA), in place or into ``out``."""

    name = "torch"
    HEADS: ClassVar[dict[str, HeadKernel]] = {"dense": DENSE}
    ACTS: ClassVar[dict[str, ActKernel]] = TORCH_ACTS
    LOSSES: ClassVar[dict[str, Callable[..., Any]]] = {**LOSS_KERNELS, "softmax-ce": _softmax_ce}
    UPDATES: ClassVar[dict[str, Callable[..., Any]]] = UPDATE_KERNELS

    def __init__(self, device: str) -> None:
        import torch  # optional: the torch extra; only a torch backend makes these ops

        self.xp = torch
        self.device = torch.device(device)
        self.bool_dtype = torch.bool
        self._loss = torch.zeros((), dtype=torch.float64, device=self.device)
        self._correct = torch.zeros((), dtype=torch.float64, device=self.device)
        #: the step count on the device, so that a captured graph sees it advance (Adam)
        self._t = torch.zeros((), dtype=torch.float64, device=self.device)
        self._ones: dict[int, Any] = {}
        aten = torch.ops.aten
        self.addmm_relu = aten._addmm_activation.out if hasattr(aten, "_addmm_activation") else None

    # -- memory ----------------------------------------------------------------------------
    def empty(self, shape: tuple[int, ...], dtype: Any) -> Any:
        return self.xp.empty(shape, dtype=dtype, device=self.device)

    def index_array(self, order: np.ndarray) -> Any:
        """The epoch's permutation on the device (one host-to-device copy per epoch)."""
        return self.xp.from_numpy(np.asarray(order, dtype=np.int64)).to(self.device)

    def take_rows(self, src: Any, idx: Any, out: Any) -> None:
        self.xp.index_select(src, 0, idx, out=out)

    def gather_batch(self, x: Any, y: Any, idx: Any, bufs: dict[str, Any]) -> None:
        self.take_rows(x, idx, bufs["x"])
        self.take_rows(y, idx, bufs["y"])

    def prepare(self, bufs: dict[str, Any], loss_kind: str) -> None:
        """Softmax-CE on class indices (more than one output) takes the fused path, and every
        batch size gets a ones vector for the bias ``gemv`` (made here, so that a graph capture
        finds it allocated)."""
        lb, yb, out = bufs["loss"], bufs["y"], bufs["layers"][-1]["a"]
        n = out.shape[0]
        lb["fused"] = loss_kind == "softmax-ce" and out.shape[1] > 1 and yb.ndim == 1
        lb["minus_one"] = self.xp.full((n, 1), -1.0, dtype=out.dtype, device=self.device)
        if n not in self._ones:
            self._ones[n] = self.xp.ones(n, dtype=out.dtype, device=self.device)

    # -- linear algebra --------------------------------------------------------------------
    def matmul(self, a: Any, b: Any, out: Any) -> None:
        self.xp.mm(a, b, out=out)

    def gemm_acc(self, a_t: Any, d: Any, w: Any, alpha: float, tmp: Any) -> None:
        """``w ← w + α (a_t @ d)``: one GEMM with ``beta = 1`` (``addmm_``)."""
        w.addmm_(a_t, d, alpha=alpha)

    def scale(self, w: Any, c: float) -> None:
        """``w ← c · w`` in place."""
        w.mul_(c)

    def col_sum(self, d: Any, out: Any) -> None:
        """``out = Σ_rows d`` (the bias gradient)."""
        self.xp.sum(d, dim=0, out=out)

    def bias_sgd(self, delta: Any, b: Any, lr: float, tmp: Any) -> None:
        """``b ← b − α Σ_rows δ`` as one ``gemv`` (``addmv_`` with a ones vector)."""
        n = delta.shape[0]
        ones = self._ones.get(n)
        if ones is None:
            ones = self._ones[n] = self.xp.ones(n, dtype=delta.dtype, device=self.device)
        b.value.addmv_(delta.T, ones, alpha=-lr)

    # -- layers ----------------------------------------------------------------------------
    def linear_act(self, x: Any, w: Any, b: Any, z: Any, blk: Block, buf: dict[str, Any]) -> None:
        """``z ← f(x W + b)``: bias and GEMM in one ``addmm``, then the activation in place (or
        the kernel's own fused call)."""
        kernel = blk.kernel
        if kernel.linear is not None:
            kernel.linear(self, x, w, b, z)
            return
        self.xp.addmm(b, x, w, out=z)
        kernel.forward(self, z, blk, buf)

    # -- running totals, on the device ------------------------------------------------------
    def reset_totals(self) -> None:
        self._loss.zero_()
        self._correct.zero_()

    def add_loss_sum(self, total: Any) -> None:
        """Add a batch's *summed* loss (a fused kernel's) to the epoch's total."""
        self._loss.add_(total)

    def add_totals(self, cost: Any, correct: Any, n: int) -> None:
        if cost is not None:  # None: the fused loss already added its sum
            self._loss.add_(cost, alpha=n)
        self._correct.add_(correct)

    def read_totals(self) -> tuple[float, float]:
        """The one synchronisation of an epoch."""
        return float(self._loss), float(self._correct)

    # -- updates ---------------------------------------------------------------------------
    def begin_step(self, opt: Any) -> None:
        """Advance the device step count (what a replayed graph's Adam reads)."""
        self._t.add_(1.0)

    def sync_step_count(self, opt: Any) -> None:
        """Set the device step count from ``opt.t`` (before an epoch)."""
        self._t.fill_(float(opt.t))

    def bias_corrections(self, opt: Any) -> tuple[Any, Any]:
        """Adam's ``(1 − β₁ᵗ, 1 − β₂ᵗ)`` from the device step count."""
        return 1 - self.xp.pow(opt.beta1, self._t), 1 - self.xp.pow(opt.beta2, self._t)

    def update(self, opt: Any, w: Any, g: Any, state: Any, tmp: Any, tmp2: Any) -> None:
        """One optimiser update of ``w`` from ``g``, by the ``UPDATES`` kernel of ``opt.name``."""
        self.UPDATES[opt.name](self, opt, w, g, state, tmp, tmp2)
