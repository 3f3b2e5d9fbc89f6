"""One training step of any layer-spec network (a tiny CNN), checked entry by entry.

:func:`explain_spec` runs the driver once, records ``∂E/∂y`` of every layer's output (the δ that
flows into it from above; for a convolution that is ``δ = ∂E/∂z``, its pre-activation) through the
driver's backward hook, and checks each against central differences of ``E`` as a function of that
output alone (the layers above it re-run in extended precision); every parameter's gradient is
checked the same way. What a layer kind adds to the picture (a max-pool's routing, a convolution's
kernels beside their numeric gradients) comes from :mod:`chainrule.inspect.explain.views`, one
module per kind, not from a chain of cases here.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from chainrule.backend import numpy_backend
from chainrule.inspect.explain.data import EPS, LIMITS, NumericCheck, TooLargeError
from chainrule.inspect.explain.views import view_for
from chainrule.inspect.gradcheck import NUMERIC_DTYPE, numeric_gradient, relative_error, rewinder
from chainrule.nn.model import Sequential

__all__ = ["SPEC_LIMITS", "SpecExplanation", "SpecStep", "explain_spec"]

#: beyond these a spec network's step is unreadable in full
SPEC_LIMITS = {"params": LIMITS["params"], "batch": 2, "values": 512}


@dataclass
class SpecStep:
    """One layer of the step: its output ``y``, ``δ = ∂E/∂y`` with its check, and its parameters'
    gradients with theirs (``grads[name] = (analytic, check)``); ``extras`` from its kind's view."""

    index: int
    kind: str
    description: str
    in_shape: tuple[int, ...]
    out_shape: tuple[int, ...]
    y: np.ndarray
    delta: np.ndarray
    delta_check: NumericCheck
    grads: dict[str, tuple[np.ndarray, NumericCheck]] = field(default_factory=dict)
    extras: dict[str, Any] = field(default_factory=dict)


@dataclass
class SpecExplanation:
    spec: str
    input_shape: tuple[int, ...]
    x: np.ndarray
    target: np.ndarray
    loss: str
    E: float
    steps: list[SpecStep]
    notes: list[str] = field(default_factory=list)

    @property
    def checks(self) -> list[NumericCheck]:
        return [s.delta_check for s in self.steps] + [c for s in self.steps for _, c in s.grads.values()]

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.checks)

    @property
    def max_error(self) -> float:
        return max((c.rel_error for c in self.checks), default=0.0)


class _Recorder:
    """Driver hook: keeps ``∂E/∂y`` of every layer as the backward pass hands it down."""

    def __init__(self) -> None:
        self.dy: dict[int, np.ndarray] = {}

    def on_forward(self, index: int, layer: Any, x: Any, y: Any) -> None:
        pass

    def on_backward(self, index: int, layer: Any, dy: Any, dx: Any) -> None:
        self.dy[index] = np.array(dy, dtype=np.float64)


def check_spec_size(net: Sequential, batch: int) -> None:
    """Refuse a step too large to read: parameters, batch rows, values per layer output."""
    widest = 0
    shape = net.input_shape or ()
    for layer in net.layers:
        shape = layer.output_shape(shape)
        widest = max(widest, math.prod(shape))
    problems = [
        what
        for what, bad in (
            (
                f"{net.num_params()} parameters (limit {SPEC_LIMITS['params']})",
                net.num_params() > SPEC_LIMITS["params"],
            ),
            (f"a batch of {batch} (limit {SPEC_LIMITS['batch']})", batch > SPEC_LIMITS["batch"]),
            (
                f"a layer output of {widest} values (limit {SPEC_LIMITS['values']})",
                widest > SPEC_LIMITS["values"],
            ),
        )
        if bad
    ]
    if problems:
        raise TooLargeError("too large to explain step by step: " + "; ".join(problems))


def explain_spec(net: Sequential, x: np.ndarray, target: np.ndarray, *, spec: str = "") -> SpecExplanation:
    """Run and check one step of ``net`` (moved to float64 NumPy) on ``x``; parameters and buffers are
    left as they were (the step's gradients stay in ``param.grad``)."""
    net.to(numpy_backend, np.float64)
    check_spec_size(net, x.shape[0])
    saved = [b.value.copy() for _, b in net.named_buffers()]
    rewind = rewinder(net.layers)
    rec = _Recorder()
    net.hooks.append(rec)
    try:
        net.zero_grad()
        out = net.forward(x)
        E, ctx = net.loss.forward(out, target)
        net.backward(net.loss.backward(ctx), need_dx=True)
    finally:
        net.hooks.remove(rec)
    tape = list(net.tape)
    analytic = {id(p): p.grad.copy() for p in net.params}
    steps = []
    net.to(numpy_backend, NUMERIC_DTYPE)
    try:
        for entry in tape:
            steps.append(_step(net, entry, rec.dy[entry.index], analytic, x, target, rewind))
    finally:
        net.to(numpy_backend, np.float64)
        for p in net.params:
            p.grad[...] = analytic[id(p)]
        for (_, b), v in zip(net.named_buffers(), saved, strict=True):
            b.value[...] = v
    return SpecExplanation(spec, tuple(net.input_shape or ()), x, target, net.loss.name, float(E), steps)


def _step(
    net: Sequential, entry: Any, dy: np.ndarray, analytic: dict[int, np.ndarray], x, target, rewind
) -> SpecStep:
    i, layer = entry.index, entry.layer
    y_hi = np.array(entry.y, dtype=NUMERIC_DTYPE)

    def tail() -> Any:  # E as a function of this layer's output alone
        rewind()
        h = y_hi
        for upper in net.layers[i + 1 :]:
            h = upper.forward(h)[0]
        return net.loss.value(h, target)

    x_hi = np.array(x, dtype=NUMERIC_DTYPE)

    def full() -> Any:
        rewind()
        return net.loss.value(net.forward(x_hi), target)

    step = SpecStep(
        i,
        layer.kind,
        repr(layer),
        tuple(entry.x.shape[1:]),
        tuple(entry.y.shape[1:]),
        np.array(entry.y, dtype=np.float64),
        dy,
        _check(dy, numeric_gradient(tail, y_hi, EPS)),
    )
    for p in layer.params:
        g = analytic[id(p)]
        step.grads[p.name] = (g, _check(g, numeric_gradient(full, p.value, EPS)))
    view = view_for(layer.kind)
    if view is not None:
        step.extras = view.data(layer, entry, step)
    return step


def _check(analytic: np.ndarray, numeric: np.ndarray) -> NumericCheck:
    return NumericCheck(np.asarray(numeric, dtype=np.float64), relative_error(analytic, numeric))
