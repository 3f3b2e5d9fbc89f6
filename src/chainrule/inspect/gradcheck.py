"""Central-difference gradient checking in float64.

For every parameter entry ``θ_i`` the numeric derivative is the central difference
``D(h) = (E(θ_i + h) − E(θ_i − h)) / 2h`` (error O(h²)), Richardson-extrapolated:
``(4 D(h) − D(2h)) / 3`` (error O(h⁴)). That allows a step of h = 1e-4, where float64 cancellation
costs ~1e-16·|E|/h ≈ 1e-12 instead of the ~1e-10 of a plain difference at h = 1e-6, which is
what a gradient of size 1e-4 needs to be checked to 1e-7. (A step that crosses a kink of ReLU or
maxout measures nothing useful at any h; checks use inputs away from kinks.)

The analytic gradients are computed in float64. The numerical side is evaluated in extended
precision (``np.longdouble``, ε ≈ 1e-19 on x86) where the platform has it, so that rounding in the
cost itself (≈ 10 ulp of E) does not swamp tiny gradients: a leaky-ReLU chain can have
``‖∂E/∂W‖ ≈ 1e-6`` at ``E ≈ 0.25``, which float64 differences resolve only to ~1e-7. Elsewhere
(``longdouble`` = float64) the check runs in float64 with that limit.
The agreement of a whole parameter is the norm-wise relative error
``‖g_analytic − g_numeric‖ / (‖g_analytic‖ + ‖g_numeric‖)``: well-derived gradients give ~1e-10 in
float64; a wrong formula gives ~1e-1.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from chainrule.backend import numpy_backend, to_numpy
from chainrule.errors import ConfigError
from chainrule.nn.builders import hidden_activations, mlp
from chainrule.nn.layer import LAYERS, Layer
from chainrule.nn.losses import LOSSES
from chainrule.nn.model import Sequential
from chainrule.nn.regularizers import l2_penalty

__all__ = [
    "GradcheckResult",
    "check_network",
    "check_registry",
    "gradcheck",
    "gradcheck_layer",
    "numeric_gradient",
    "relative_error",
    "rewinder",
]

TOLERANCE = 1e-7
#: the dtype the numerical derivatives are evaluated in
NUMERIC_DTYPE = np.longdouble if np.finfo(np.longdouble).eps < np.finfo(np.float64).eps else np.float64


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


def numeric_gradient(
    f: Callable[[], Any], arr: np.ndarray, eps: float = 1e-4, idx: np.ndarray | None = None
) -> np.ndarray:
    """∂f/∂arr by Richardson-extrapolated central differences, ``(4 D(h) − D(2h)) / 3``.

    ``arr`` is perturbed in place and restored exactly. With ``idx`` (flat indices) only those
    entries are differentiated and a flat array is returned; without it, every entry, in
    ``arr``'s shape.
    """
    flat = arr.reshape(-1)
    entries = np.arange(flat.size) if idx is None else idx
    out = np.empty(len(entries))

    def central(i: int, h: float) -> Any:
        old = flat[i]
        flat[i] = old + h
        fp = f()
        flat[i] = old - h
        fm = f()
        flat[i] = old
        return (fp - fm) / (2 * h)

    for j, i in enumerate(entries):
        out[j] = (4 * central(i, eps) - central(i, 2 * eps)) / 3
    return out.reshape(arr.shape) if idx is None else out


def rewinder(layers: Sequence[Layer]) -> Callable[[], None]:
    """A function that puts every random layer's generator (``layer.rng``: dropout) back where it is
    now, so that each evaluation of the cost draws the same masks as the analytic pass did."""
    rngs = [layer.rng for layer in layers if isinstance(getattr(layer, "rng", None), np.random.Generator)]
    states = [r.bit_generator.state for r in rngs]

    def rewind() -> None:
        for r, st in zip(rngs, states, strict=True):
            r.bit_generator.state = st

    return rewind


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
    eps: float = 1e-4,
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
    x = np.array(to_numpy(x), dtype=np.float64)  # our own copy
    y = to_numpy(y)
    rng = np.random.default_rng(seed)
    rewind = rewinder(net.layers)
    net.loss_and_grad(x, y, l2=l2)
    analytic = {name: p.grad.copy() for name, p in net.named_params()}
    dx = None
    if check_input:
        net.zero_grad()
        rewind()
        _, ctx = net.loss.forward(net.forward(x), y)
        dx = net.backward(net.loss.backward(ctx), need_dx=True)
    result = GradcheckResult(tolerance=tolerance)
    x_hi = x.astype(NUMERIC_DTYPE)  # perturbed in place by the input check

    def cost() -> Any:  # kept in NUMERIC_DTYPE: float() would round it back to float64
        rewind()
        out = net.loss.value(net.forward(x_hi), y)
        return out + l2_penalty(net.params, l2) if l2 else out

    net.to(numpy_backend, NUMERIC_DTYPE)
    try:
        for name, p in net.named_params():
            idx = _pick(p.value.size, max_per_param, rng)
            num = numeric_gradient(cost, p.value, eps, idx)
            result.errors[name] = relative_error(analytic[name].reshape(-1)[idx], num)
        if dx is not None:
            idx = _pick(x.size, max_per_param, rng)
            result.errors["input"] = relative_error(
                dx.reshape(-1)[idx], numeric_gradient(cost, x_hi, eps, idx)
            )
    finally:
        net.to(numpy_backend, np.float64)  # exact: every perturbation was undone
        for name, p in net.named_params():
            p.grad[...] = analytic[name]  # leave the analytic gradients where loss_and_grad put them
    return result


def gradcheck_layer(
    layer: Layer, x: np.ndarray, *, eps: float = 1e-4, seed: int = 0, tolerance: float = TOLERANCE
) -> GradcheckResult:
    """Check one layer on its own, with the scalar ``E = Σ y ⊙ R`` for a fixed random ``R``.

    Then ``∂E/∂y = R``; the layer's ``backward(R, ctx)`` must match central differences for its
    input and every parameter.
    """
    x = np.array(x, dtype=np.float64)
    rng = np.random.default_rng(seed)
    layer.to(numpy_backend, np.float64)
    rewind = rewinder([layer])
    y, ctx = layer.forward(x)
    r = rng.standard_normal(y.shape)
    for p in layer.params:
        p.zero_grad()
    dx = layer.backward(r.copy(), ctx, need_dx=True)
    grads = [p.grad.copy() for p in layer.params]
    x_hi, r_hi = x.astype(NUMERIC_DTYPE), r.astype(NUMERIC_DTYPE)

    def energy() -> Any:
        rewind()
        return np.sum(layer.forward(x_hi)[0] * r_hi)

    result = GradcheckResult(tolerance=tolerance)
    layer.to(numpy_backend, NUMERIC_DTYPE)
    try:
        if not layer.index_input:  # token ids have no gradient
            result.errors["input"] = relative_error(dx, numeric_gradient(energy, x_hi, eps))
        for p, g in zip(layer.params, grads, strict=True):
            num = numeric_gradient(energy, p.value, eps).reshape(-1)
            result.errors[p.name] = relative_error(g.reshape(-1), num)
    finally:
        layer.to(numpy_backend, np.float64)
        for p, g in zip(layer.params, grads, strict=True):
            p.grad[...] = g
    return result


def check_network(net: Sequential, *, batch: int = 4, seed: int = 0, l2: float = 0.0) -> GradcheckResult:
    """Gradient-check ``net`` (moved to float64 NumPy) on ``batch`` random inputs and labels,
    input gradient included."""
    rng = np.random.default_rng(seed)
    net.to(numpy_backend, np.float64)
    shape, k = net.input_shape, net.output_dim()
    if shape is None or k is None:
        raise ConfigError("gradcheck needs a network whose input shape is known")
    x = rng.standard_normal((batch, *shape))
    y = rng.integers(0, k, batch) if k > 1 else rng.integers(0, 2, batch)
    return gradcheck(net, x, y, l2=l2, check_input=True, seed=seed)


def check_registry(
    sizes: Sequence[int] = (4, 5, 3), *, batch: int = 4, seed: int = 0, l2: float = 0.0
) -> dict[str, GradcheckResult]:
    """Everything the registry holds, checked in float64: every layer kind on its own
    (``layer:<kind>``, from the class's :meth:`~chainrule.nn.layer.Layer.example`), and a network
    ``sizes`` for every hidden activation × every loss (``<activation>/<loss>``, with L2 ``l2``)."""
    results: dict[str, GradcheckResult] = {}
    for kind, cls in sorted(LAYERS.items()):
        rng = np.random.default_rng(seed)
        layer, shape = cls.example(rng)
        results[f"layer:{kind}"] = gradcheck_layer(
            layer, layer.example_input(rng, shape, batch), seed=seed
        )
    for act in hidden_activations():
        for loss in LOSSES:
            net = mlp(list(sizes), act, loss=loss, seed=seed, dtype=np.float64)
            results[f"{act}/{loss}"] = check_network(net, batch=batch, seed=seed, l2=l2)
    return results
