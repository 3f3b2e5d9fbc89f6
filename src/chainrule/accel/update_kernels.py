"""The optimisers' updates on the fast path: each optimiser's own in-place rule.

The formulas live once, in :meth:`chainrule.optim.Optimizer.apply`, written with NumPy-style
ufuncs that take ``out=``; NumPy and torch ops run them with their own ``xp`` on the runner's
scratch buffers. CuPy's table holds fused ``ElementwiseKernel`` versions instead (kernel source).
"""

from __future__ import annotations

from typing import Any

from chainrule.optim import OPTIMIZERS, Adam

__all__ = ["UPDATE_KERNELS", "optimizer_update"]


def optimizer_update(ops: Any, opt: Any, w: Any, g: Any, state: Any, tmp: Any, tmp2: Any) -> None:
    """``opt.apply`` on ``ops.xp``; Adam's bias corrections come from the ops (host numbers, or
    device scalars inside a CUDA graph)."""
    corrections = ops.bias_corrections(opt) if isinstance(opt, Adam) else None
    opt.apply(ops.xp, w, g, state, tmp, tmp2, corrections)


#: optimiser name (:data:`chainrule.optim.OPTIMIZERS`) → kernel
UPDATE_KERNELS = dict.fromkeys(OPTIMIZERS, optimizer_update)
