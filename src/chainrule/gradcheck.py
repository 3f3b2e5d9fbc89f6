"""Central-difference gradient checking in float64.

For every parameter entry ``θ_i`` the numeric derivative is
``(E(θ_i + ε) − E(θ_i − ε)) / 2ε`` (error O(ε²)), compared with the hand-derived backward pass.
The agreement of a whole parameter is the norm-wise relative error
``‖g_analytic − g_numeric‖ / (‖g_analytic‖ + ‖g_numeric‖)``: well-derived gradients give ~1e-10 in
float64; a wrong formula gives ~1e-1.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .backend import to_numpy
from .core import Layer, Sequential
from .errors import ConfigError

__all__ = ["GradcheckResult", "gradcheck", "gradcheck_layer", "relative_error"]

TOLERANCE = 1e-7


def relative_error(a: np.ndarray, b: np.ndarray) -> float:
    """``‖a − b‖ / (‖a‖ + ‖b‖)``, 0 when both are (numerically) zero."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    denom = np.linalg.norm(a) + np.linalg.norm(b)
    if denom < 1e-12:
        return float(np.linalg.norm(a - b))
    return float(np.linalg.norm(a - b) / denom)


@dataclass
class GradcheckResult:
    """Per-parameter relative errors (``"2.W"`` → error) and the worst of them."""

    errors: dict[str, float] = field(default_factory=dict)
    tolerance: float = TOLERANCE

    @property
    def max_error(self) -> float:
        return max(self.errors.values(), default=0.0)

    @property
    def ok(self) -> bool:
        return self.max_error < self.tolerance

    def __str__(self) -> str:
        lines = [f"{name:>10}  rel. error {err:.2e}" for name, err in self.errors.items()]
        verdict = "PASS" if self.ok else "FAIL"
        lines.append(f"{verdict}: max relative error {self.max_error:.2e} (tolerance {self.tolerance:.0e})")
        return "\n".join(lines)


def _numeric(f: Callable[[], float], arr: np.ndarray, eps: float, idx: np.ndarray) -> np.ndarray:
    """Central differences of ``f`` with respect to the flat entries ``idx`` of ``arr``
    (``arr`` is modified and restored in place)."""
    flat = arr.reshape(-1)
    out = np.empty(len(idx))
    for j, i in enumerate(idx):
        old = flat[i]
        flat[i] = old + eps
        fp = f()
        flat[i] = old - eps
        fm = f()
        flat[i] = old
        out[j] = (fp - fm) / (2 * eps)
    return out


def _pick(size: int, limit: int | None, rng: np.random.Generator) -> np.ndarray:
    if limit is None or size <= limit:
        return np.arange(size)
    return np.sort(rng.choice(size, limit, replace=False))


def gradcheck(
    net: Sequential,
    x: Any,
    y: Any,
    *,
    l2: float = 0.0,
    eps: float = 1e-6,
    max_per_param: int | None = 200,
    check_input: bool = False,
    seed: int = 0,
    tolerance: float = TOLERANCE,
) -> GradcheckResult:
    """Compare ``net.loss_and_grad`` with central differences of ``net.cost``.

    The network must be float64 on the NumPy backend (``net.to(numpy_backend, "float64")``).
    At most ``max_per_param`` random entries of each parameter are probed (None: all).
    """
    if net.dtype != np.float64:
        raise ConfigError("gradcheck needs a float64 network: net.to(numpy_backend, 'float64')")
    x = np.array(to_numpy(x), dtype=np.float64)  # our own copy: perturbed for the input check
    y = to_numpy(y)
    rng = np.random.default_rng(seed)
    net.loss_and_grad(x, y, l2=l2)
    analytic = {name: p.grad.copy() for name, p in net.named_params()}
    result = GradcheckResult(tolerance=tolerance)

    def cost() -> float:
        return net.cost(x, y, l2=l2)

    for name, p in net.named_params():
        idx = _pick(p.value.size, max_per_param, rng)
        num = _numeric(cost, p.value, eps, idx)
        result.errors[name] = relative_error(analytic[name].reshape(-1)[idx], num)
    if check_input:
        net.zero_grad()
        out = net.forward(x)
        net.loss.forward(out, y)
        dx = net.backward(net.loss.backward(), need_dx=True)
        idx = _pick(x.size, max_per_param, rng)
        result.errors["input"] = relative_error(dx.reshape(-1)[idx], _numeric(cost, x, eps, idx))
    return result


def gradcheck_layer(
    layer: Layer, x: np.ndarray, *, eps: float = 1e-6, seed: int = 0, tolerance: float = TOLERANCE
) -> GradcheckResult:
    """Check one layer on its own, with the scalar ``E = Σ y ⊙ R`` for a fixed random ``R``.

    Then ``∂E/∂y = R``; the layer's ``backward(R)`` must match central differences for its input
    and every parameter.
    """
    x = np.array(x, dtype=np.float64)
    rng = np.random.default_rng(seed)
    y = layer.forward(x)
    r = rng.standard_normal(y.shape)

    def energy() -> float:
        return float(np.sum(layer.forward(x) * r))

    for p in layer.params:
        p.zero_grad()
    layer.forward(x)
    dx = layer.backward(r.copy(), need_dx=True)
    result = GradcheckResult(tolerance=tolerance)
    result.errors["input"] = relative_error(dx, _numeric(energy, x, eps, np.arange(x.size)).reshape(x.shape))
    for p in layer.params:
        g = p.grad.copy()
        result.errors[p.name] = relative_error(
            g.reshape(-1), _numeric(energy, p.value, eps, np.arange(p.value.size))
        )
    return result
