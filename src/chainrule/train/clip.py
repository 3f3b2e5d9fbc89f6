"""Global gradient-norm clipping: a gradient hook (stage two of a training step).

::

    ‖g‖ = sqrt(Σ_θ Σ_i g_θi²)              over every parameter at once
    g ← g · min(1, c / (‖g‖ + 10⁻⁶))        every g_θ by the same factor: the direction is kept

PyTorch's ``clip_grad_norm_`` (same ``10⁻⁶``), so trajectories can be compared step by step. Recurrent
nets need it: a gradient through ``T`` steps is a product of ``T`` Jacobians and can explode.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from chainrule.backend import namespace
from chainrule.errors import ConfigError
from chainrule.nn.params import Param

__all__ = ["ClipGradNorm", "global_norm"]


def global_norm(params: Sequence[Param]) -> Any:
    """``sqrt(Σ_θ ‖g_θ‖²)`` (a float for NumPy, a 0-d array elsewhere, so a GPU need not wait)."""
    grads = [p.grad for p in params]
    if all(isinstance(g, np.ndarray) for g in grads):
        return math.sqrt(sum(float(np.dot(g.reshape(-1), g.reshape(-1))) for g in grads))
    xp = namespace(*grads)
    return xp.sqrt(sum(xp.sum(g * g) for g in grads))


class ClipGradNorm:
    """The hook ``g ← g · min(1, c / (‖g‖ + 10⁻⁶))``; ``last_norm`` is the norm before clipping."""

    def __init__(self, max_norm: float) -> None:
        if not (max_norm > 0 and math.isfinite(max_norm)):
            raise ConfigError(f"the clipping norm must be a positive number, got {max_norm}")
        self.max_norm = float(max_norm)
        self.last_norm: Any = None

    def __call__(self, params: Sequence[Param]) -> None:
        norm = global_norm(params)
        self.last_norm = norm
        if isinstance(norm, float):
            if norm > self.max_norm:
                coef = self.max_norm / (norm + 1e-6)
                for p in params:
                    p.grad *= coef
            return
        xp = namespace(norm)
        coef = xp.clip(self.max_norm / (norm + 1e-6), max=1.0)
        for p in params:
            p.grad *= coef
