"""Record a forward/backward pass as data: the "See the backward pass" trace.

A :class:`Tracer` is a hook on :class:`~chainrule.nn.model.Sequential` (the driver calls
``on_forward(index, layer, x, y)`` after each ``layer.forward`` and ``on_backward(index, layer, dy,
dx)`` after each ``layer.backward``). It copies what an explanation needs and nothing else; layers
never print, and neither does the tracer. Use it as a context manager::

    with trace(net) as tr:
        E = net.loss_and_grad(x, y)
        tr.step(SGD(0.1))                     # optional: record θ before/after one update
    for lt in tr.layers():                    # seed-style layers l = 1 .. L
        print(lt.l, lt.z, lt.delta, lt.dW)

What is recorded, per chainrule layer (:class:`StepRecord`): its input ``x``, output ``y`` (``z`` for
a Dense, ``a`` for an activation), ``dy = ∂E/∂y`` and ``dx = ∂E/∂x``, the parameter values seen by
the forward pass and the parameter gradients (read after backward, so an L2 term added by
``loss_and_grad`` is included). For element-wise activations, ``f'(z)`` is also recorded, computed by
the layer's own ``backward`` applied to ones (the library's derivative, not a second copy of it).

:meth:`Tracer.layers` groups a parameter layer with the activations that follow it into the
seeds' "layer l" (:class:`LayerTrace`): ``a^{l-1}``, ``z^l``, ``a^l``, ``∂E/∂a^l``, ``δ^l = ∂E/∂z^l``,
``∂E/∂W^l``, ``∂E/∂b^l`` and ``∂E/∂a^{l-1}``, with shapes and norms. Row layout throughout:
``z^l = a^{l-1} W^l + b^l`` is the transpose of the seeds' ``z^l = W^l a^{l-1} + b^l``.

The trace holds the *last* pass run inside the block (a new forward through layer 0 starts a new
one). All arrays are host NumPy copies.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from chainrule.backend import to_numpy
from chainrule.nn.layer import Layer
from chainrule.nn.model import Sequential
from chainrule.nn.params import Param

__all__ = [
    "LayerTrace",
    "ParamUpdate",
    "StepRecord",
    "Tracer",
    "trace",
]


def _copy(a: Any) -> np.ndarray | None:
    if a is None:
        return None
    return np.array(to_numpy(a), copy=True)


def _norm(a: np.ndarray | None) -> float | None:
    return None if a is None else float(np.linalg.norm(np.asarray(a, dtype=np.float64)))


@dataclass
class StepRecord:
    """One chainrule layer's share of a pass (all host copies)."""

    index: int
    kind: str
    label: str
    x: np.ndarray
    y: np.ndarray
    params: dict[str, np.ndarray] = field(default_factory=dict)
    dy: np.ndarray | None = None
    dx: np.ndarray | None = None
    fprime: np.ndarray | None = None
    grads: dict[str, np.ndarray] = field(default_factory=dict)


@dataclass
class LayerTrace:
    """Seed-style layer ``l``: a parameter layer plus the activation(s) after it.

    ``a_prev`` is ``a^{l-1}`` (the network input for l = 1), ``z`` the parameter layer's output,
    ``a`` the group's output (``z`` itself when no activation follows). ``dE_da`` is ``∂E/∂a^l``
    (None for the last layer of a fused loss, whose backward starts at ``z``), ``delta`` is
    ``δ^l = ∂E/∂z^l`` and ``dE_da_prev`` is ``∂E/∂a^{l-1}`` (None for l = 1: the driver skips it).
    """

    l: int
    indices: tuple[int, ...]
    kind: str
    activation: str
    label: str
    a_prev: np.ndarray
    z: np.ndarray
    a: np.ndarray
    W: np.ndarray | None = None
    b: np.ndarray | None = None
    dE_da: np.ndarray | None = None
    delta: np.ndarray | None = None
    dE_da_prev: np.ndarray | None = None
    fprime: np.ndarray | None = None
    dW: np.ndarray | None = None
    db: np.ndarray | None = None

    @property
    def units(self) -> int:
        return int(self.a.shape[-1])

    @property
    def shapes(self) -> dict[str, tuple[int, ...]]:
        names = ("a_prev", "z", "a", "W", "b", "delta", "dW", "db")
        return {n: tuple(getattr(self, n).shape) for n in names if getattr(self, n) is not None}

    @property
    def norms(self) -> dict[str, float]:
        names = ("a_prev", "z", "a", "W", "b", "dE_da", "delta", "dW", "db")
        return {n: _norm(getattr(self, n)) for n in names if getattr(self, n) is not None}  # type: ignore[misc]


@dataclass
class ParamUpdate:
    """One parameter through one optimiser step: ``after = before − α g`` for plain SGD."""

    name: str
    l: int | None
    before: np.ndarray
    grad: np.ndarray
    after: np.ndarray

    @property
    def delta(self) -> np.ndarray:
        return self.after - self.before

    @property
    def relative_change(self) -> float:
        """``‖Δθ‖ / ‖θ‖`` (∞ when θ was zero and moved)."""
        n0, d = float(np.linalg.norm(self.before)), float(np.linalg.norm(self.delta))
        if n0 == 0:
            return 0.0 if d == 0 else float("inf")
        return d / n0


class Tracer:
    """A hook that records the latest forward/backward pass of ``net`` (see module docstring)."""

    def __init__(self, net: Sequential) -> None:
        self.net = net
        self.records: dict[int, StepRecord] = {}
        self.updates: list[ParamUpdate] = []
        self.loss: float | None = None
        self.target: np.ndarray | None = None
        self._grads_pending = False

    # -- the hook protocol ----------------------------------------------------------------
    def on_forward(self, index: int, layer: Layer, x: Any, y: Any) -> None:
        if index == 0:
            self.records = {}
        self.records[index] = StepRecord(
            index=index,
            kind=layer.kind or type(layer).__name__.lower(),
            label=repr(layer),
            x=_copy(x),  # type: ignore[arg-type]
            y=_copy(y),  # type: ignore[arg-type]
            params={p.name: _copy(p.value) for p in layer.params},  # type: ignore[misc]
        )

    def on_backward(self, index: int, layer: Layer, dy: Any, dx: Any) -> None:
        rec = self.records.get(index)
        if rec is None:  # backward without a traced forward: nothing to attach it to
            return
        rec.dy = _copy(dy)
        rec.dx = _copy(dx)
        local = getattr(layer, "local_derivative", None)
        if local is not None and index < len(self.net.tape) and self.net.tape[index].layer is layer:
            # f'(z) by the layer's own derivative, for the context of the pass just run
            rec.fprime = _copy(local(self.net.tape[index].ctx))
        self._grads_pending = True

    # -- after the pass -------------------------------------------------------------------
    def capture_grads(self) -> None:
        """Copy every parameter's ``grad`` into the records (done automatically when needed)."""
        if not self._grads_pending:
            return
        for i, layer in enumerate(self.net.layers):
            rec = self.records.get(i)
            if rec is not None and layer.params:
                rec.grads = {p.name: _copy(p.grad) for p in layer.params}  # type: ignore[misc]
        self._grads_pending = False

    def record_loss(self, value: Any, target: Any = None) -> None:
        """Attach the cost ``E`` (and the targets) the pass was run for."""
        self.loss = float(to_numpy(value))
        self.target = None if target is None else _copy(target)

    def step(self, optimizer: Any, params: Sequence[Param] | None = None) -> list[ParamUpdate]:
        """Run ``optimizer.step`` on the network's parameters and record each value before/after."""
        self.capture_grads()
        return self.record_update(lambda: optimizer.step(list(params or self.net.params)))

    def record_update(self, do_step: Any) -> list[ParamUpdate]:
        """Call ``do_step()`` (any in-place update of the parameters) and record before/after."""
        self.capture_grads()
        group_of = {i: g.l for g in self.net.groups() for i in g.indices}
        owner = {id(p): (name, group_of.get(int(name.split(".")[0]))) for name, p in self.net.named_params()}
        before = [(p, _copy(p.value), _copy(p.grad)) for p in self.net.params]
        do_step()
        updates = []
        for p, old, g in before:
            name, l = owner[id(p)]
            updates.append(ParamUpdate(name=name, l=l, before=old, grad=g, after=_copy(p.value)))  # type: ignore[arg-type]
        self.updates = updates
        return updates

    # -- seed-style grouping --------------------------------------------------------------
    def _groups(self) -> list[list[int]]:
        return [list(g.indices) for g in self.net.groups()]

    def layers(self) -> list[LayerTrace]:
        """The pass as seed-style layers ``l = 1 .. L`` (empty before any traced forward)."""
        self.capture_grads()
        out = []
        for l, idx in enumerate(self._groups(), start=1):
            recs = [self.records.get(i) for i in idx]
            if any(r is None for r in recs):
                continue
            head, acts = recs[0], recs[1:]
            assert head is not None
            kinds = [r.kind for r in acts if r is not None]
            last = acts[-1] if acts else head
            assert last is not None
            lt = LayerTrace(
                l=l,
                indices=tuple(idx),
                kind=head.kind,
                activation="+".join(kinds) if kinds else "none",
                label=" + ".join(r.label for r in recs if r is not None),
                a_prev=head.x,
                z=head.y,
                a=last.y,
                W=head.params.get("W"),
                b=head.params.get("b"),
                delta=head.dy,
                dE_da=last.dy if acts else None,
                dE_da_prev=head.dx,
                fprime=acts[0].fprime if len(acts) == 1 and acts[0] is not None else None,
                dW=head.grads.get("W"),
                db=head.grads.get("b"),
            )
            out.append(lt)
        return out


@contextmanager
def trace(net: Sequential) -> Iterator[Tracer]:
    """Attach a :class:`Tracer` to ``net.hooks`` for the ``with`` block; removed on exit."""
    tr = Tracer(net)
    net.hooks.append(tr)
    try:
        yield tr
    finally:
        tr.capture_grads()
        net.hooks.remove(tr)
