"""The optimisers' updates (:mod:`chainrule.optim`'s formulas) in place, on any backend.

Signature: ``kernel(ops, opt, w, g, state, tmp, tmp2)`` updates ``w`` from the gradient ``g`` with
the optimiser's own per-parameter ``state`` (velocity, or Adam's moments) and two scratch arrays
of ``w``'s shape. Each mirrors the plain ``Optimizer.update`` operation for operation. Written with
NumPy-style ufuncs that take ``out=`` (``ops.xp``), so NumPy and torch share them; CuPy's table
holds fused ``ElementwiseKernel`` versions instead.
"""

from __future__ import annotations

from typing import Any

__all__ = ["UPDATE_KERNELS", "adam", "momentum", "nesterov", "sgd"]


def sgd(ops: Any, opt: Any, w: Any, g: Any, state: Any, tmp: Any, tmp2: Any) -> None:
    """``W ← W − α g``."""
    xp = ops.xp
    xp.multiply(g, opt.lr, out=tmp)
    xp.subtract(w, tmp, out=w)


def momentum(ops: Any, opt: Any, w: Any, g: Any, v: Any, tmp: Any, tmp2: Any) -> None:
    """``v ← μ v + g``;  ``W ← W − α v``."""
    xp = ops.xp
    xp.multiply(v, opt.momentum, out=v)
    xp.add(v, g, out=v)
    xp.multiply(v, opt.lr, out=tmp)
    xp.subtract(w, tmp, out=w)


def nesterov(ops: Any, opt: Any, w: Any, g: Any, v: Any, tmp: Any, tmp2: Any) -> None:
    """``v ← μ v + g``;  ``W ← W − α (g + μ v)``."""
    xp = ops.xp
    xp.multiply(v, opt.momentum, out=v)
    xp.add(v, g, out=v)
    xp.multiply(v, opt.momentum, out=tmp)
    xp.add(g, tmp, out=tmp)
    xp.multiply(tmp, opt.lr, out=tmp)
    xp.subtract(w, tmp, out=w)


def adam(ops: Any, opt: Any, w: Any, g: Any, state: Any, tmp: Any, tmp2: Any) -> None:
    """``m ← β₁m + (1−β₁)g``;  ``s ← β₂s + (1−β₂)g²``;  ``W ← W − α m̂ / (√ŝ + ε)`` with
    ``m̂ = m / (1 − β₁ᵗ)``, ``ŝ = s / (1 − β₂ᵗ)``; ``ops.bias_corrections(opt)`` gives the two
    denominators for the step ``t`` being taken (host numbers, or device scalars in a CUDA graph)."""
    xp, (m, s) = ops.xp, state
    c1, c2 = ops.bias_corrections(opt)
    xp.multiply(m, opt.beta1, out=m)
    xp.multiply(g, 1 - opt.beta1, out=tmp)
    xp.add(m, tmp, out=m)
    xp.multiply(s, opt.beta2, out=s)
    xp.multiply(g, 1 - opt.beta2, out=tmp)
    xp.multiply(tmp, g, out=tmp)
    xp.add(s, tmp, out=s)
    xp.divide(s, c2, out=tmp2)  # ŝ
    xp.sqrt(tmp2, out=tmp2)
    xp.add(tmp2, opt.eps, out=tmp2)
    xp.divide(m, c1, out=tmp)  # m̂
    xp.multiply(tmp, opt.lr, out=tmp)
    xp.divide(tmp, tmp2, out=tmp)
    xp.subtract(w, tmp, out=w)


#: optimiser name (:data:`chainrule.optim.OPTIMIZERS`) → kernel
UPDATE_KERNELS = {"sgd": sgd, "momentum": momentum, "nesterov": nesterov, "adam": adam}
