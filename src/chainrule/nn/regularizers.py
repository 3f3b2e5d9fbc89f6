"""L2 weight decay, exactly as seed 001 defines it.

Seed 001 writes the regularised cost and its gradient as::

    J(W, b) = [ (1/m) Σ_i J(W, b; x_i, y_i) ] + (λ/2) Σ_l Σ_i Σ_j (W^l_ji)²
    ∂J/∂W^l_ij = [ (1/m) Σ_i ∂J_i/∂W^l_ij ] + λ W^l_ij
    ∂J/∂b^l_i  =   (1/m) Σ_i ∂J_i/∂b^l_i                       (no λ term: biases are not decayed)

So ``λ`` is *not* divided by the batch or dataset size (Nielsen's book uses λ/2n instead; to
reproduce his runs pass ``λ_chainrule = λ_Nielsen / n``). The penalty is added to the reported cost
and ``λW`` to every weight gradient (``Param.decay`` is True for weights, False for biases).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from chainrule.backend import namespace
from chainrule.nn.params import Param

__all__ = ["add_l2_grad", "l2_penalty"]


def l2_penalty(params: Iterable[Param], lam: float) -> Any:
    """``(λ/2) Σ W²`` over the decayed parameters (a 0-d array; 0.0 when ``λ == 0``)."""
    if lam == 0:
        return 0.0
    total = 0.0
    for p in params:
        if p.decay:
            xp = namespace(p.value)
            total = total + xp.sum(p.value * p.value)
    return 0.5 * lam * total


def add_l2_grad(params: Iterable[Param], lam: float) -> None:
    """``grad += λ W`` for every decayed parameter (weights only)."""
    if lam == 0:
        return
    for p in params:
        if p.decay:
            p.grad += lam * p.value
