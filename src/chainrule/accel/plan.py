"""The network as the fast step sees it, and the tables that say what a backend's fast step covers.

Every backend's ops class carries four tables, keyed by the registry's names:

* ``HEADS``: layer ``kind`` of a group's head (the layer with parameters): ``"dense"``;
* ``ACTS``: layer ``kind`` of an element-wise activation (``"relu"``, ``"sigmoid"`` ...) to its
  in-place forward and backward kernels (:class:`ActKernel`);
* ``LOSSES``: loss ``name`` (:data:`chainrule.nn.losses.LOSSES`) to its fused cost-and-δ kernel;
* ``UPDATES``: optimiser ``name`` to its in-place update kernel.

The planner walks :meth:`Sequential.groups` (the seeds' "layer l": a head and the parameter-free
layers after it) and accepts the network only if every head, activation, the loss and the
optimiser have an entry in that backend's tables. Anything else (a newly registered activation
without a fast kernel, maxout, a standalone softmax) gets ``None`` and trains on the plain path.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from chainrule.nn.functional import count_correct

__all__ = [
    "DENSE",
    "IDENTITY",
    "ActKernel",
    "Block",
    "HeadKernel",
    "TableDispatch",
    "plan_blocks",
    "plan_step",
    "slope_not_negative",
]


def _always(layer: Any) -> bool:
    return True


def slope_not_negative(layer: Any) -> bool:
    """leaky ReLU's ``accepts``: the kernels keep ``[z ≤ 0]`` or read ``[a > 0]``, and
    ``a > 0 ⇔ z > 0`` holds only for ``α ≥ 0``."""
    return float(layer.alpha) >= 0


@dataclass(frozen=True)
class ActKernel:
    """One element-wise activation on one backend, in place over the step's buffers.

    ``forward(ops, z, blk, buf)``: ``z ← f(z)`` (the bias is already in ``z``);
    ``backward(ops, d, a, blk, buf)``: ``d ← d ⊙ f'``, written from the output ``a`` (or a mask
    the forward kept in ``buf``), in the plain layer's operation order. ``scratch`` names the
    per-layer buffers the kernels use (``"mask"``: bool; ``"tmp"``, ``"tmp2"``: the layer's
    dtype); ``accepts(layer)`` says whether this instance is covered (e.g. ``α ≥ 0``).
    Backends whose kernels fuse more than this carry it too: ``code`` selects the branch of
    CuPy's fused bias + activation kernels, ``linear(ops, x, w, b, z)`` computes
    ``z ← f(x W + b)`` in one library call (torch's ``_addmm_activation`` for ReLU).
    """

    forward: Callable[..., None] | None = None
    backward: Callable[..., None] | None = None
    scratch: tuple[str, ...] = ()
    accepts: Callable[[Any], bool] = _always
    code: int = 0
    linear: Callable[..., None] | None = None


@dataclass(frozen=True)
class HeadKernel:
    """A head layer kind the fast step covers: where its weight and bias live (``z = x W + b``)."""

    weight: str = "W"
    bias: str = "b"
    accepts: Callable[[Any], bool] = _always


def _nothing(ops: Any, *arrays: Any) -> None:
    """``a = z`` and ``f' = 1``: nothing to do either way."""


#: the identity's kernels on every backend
IDENTITY = ActKernel(_nothing, _nothing)

#: the one head every backend covers: :class:`chainrule.nn.layers.Dense`
DENSE = HeadKernel()


@dataclass
class Block:
    """One group of the network on the fast path: ``a = f(x W + b)``.

    ``head`` is the layer with the parameters, ``act`` its element-wise activation (``None``:
    identity), ``kind`` the activation's registry kind and ``kernel`` that kind's entry in the
    backend's ``ACTS`` table. ``alpha`` is leaky ReLU's slope (0 otherwise).
    """

    head: Any
    act: Any
    kind: str
    kernel: ActKernel
    W: Any
    b: Any
    alpha: float = 0.0

    @property
    def in_features(self) -> int:
        return int(self.W.value.shape[0])

    @property
    def out_features(self) -> int:
        return int(self.W.value.shape[1])


def plan_blocks(net: Any, ops: Any) -> list[Block] | None:
    """``net.groups()`` as :class:`Block` objects for the backend whose tables ``ops`` (an ops
    class or instance) carries, or ``None`` if a head or an activation has no entry there.

    A group may hold identity layers anywhere after its head, and at most one other activation.
    """
    blocks: list[Block] = []
    for group in net.groups():
        head = ops.HEADS.get(group.head.kind)
        if head is None or not head.accepts(group.head):
            return None
        acts = [a for a in group.activations if a.kind != "identity"]
        if len(acts) > 1:
            return None
        act = acts[0] if acts else None
        kind = act.kind if act is not None else "identity"
        kernel = ops.ACTS.get(kind)
        if kernel is None or not kernel.accepts(act):
            return None
        W, b = getattr(group.head, head.weight), getattr(group.head, head.bias)
        blocks.append(Block(group.head, act, kind, kernel, W, b, float(getattr(act, "alpha", 0.0))))
    return blocks or None


def plan_step(net: Any, optimizer: Any, l2: float, ops: Any) -> list[Block] | None:
    """The blocks of ``net`` if ``ops``'s backend covers the whole step: no driver hooks (a tracer
    needs the driver), flat inputs, the loss and the optimiser in its tables, one dtype, a finite
    ``λ ≥ 0``. ``None`` otherwise."""
    if getattr(net, "hooks", None) or net.loss is None:
        return None
    if net.input_shape is not None and len(net.input_shape) != 1:
        return None
    if net.loss.name not in ops.LOSSES or getattr(optimizer, "name", None) not in ops.UPDATES:
        return None
    if not (math.isfinite(l2) and l2 >= 0) or len({str(p.value.dtype) for p in net.params}) != 1:
        return None
    blocks = plan_blocks(net, ops)
    if blocks is None or len(net.params) != 2 * len(blocks):
        return None  # (a parameter outside the heads' W and b would not be trained)
    return blocks


class TableDispatch:
    """What every backend's ops class does the same way: look the kernel up in its tables.

    ``act_backward`` runs the block's activation kernel, ``loss_grad`` the ``LOSSES`` kernel of the
    loss, and ``count_correct`` :func:`chainrule.nn.functional.count_correct`. Backends whose
    kernels differ (CuPy's fused ones) override a method; the rest inherit it."""

    LOSSES: dict[str, Callable[..., Any]]

    def act_backward(self, d: Any, a: Any, blk: Block, buf: dict[str, Any]) -> None:
        """``d ← d ⊙ f'`` in place, by the block's kernel."""
        blk.kernel.backward(self, d, a, blk, buf)

    def loss_grad(self, kind: str, out: Any, yb: Any, delta: Any, lb: dict[str, Any]) -> Any:
        """The batch-mean loss ``E`` (0-d, or ``None`` if added to the totals) and ``delta ← ∂E/∂out``."""
        return self.LOSSES[kind](self, out, yb, delta, lb)

    def count_correct(self, out: Any, yb: Any, lb: dict[str, Any]) -> Any:
        """Rows whose predicted class equals the label (a 0-d array/tensor: no synchronisation)."""
        return count_correct(out, yb)
