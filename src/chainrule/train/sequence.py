"""Stateful truncated BPTT: a training step over one window of ``T`` steps whose recurrent layers
start from the state the previous window ended in.

::

    h_0 of window k+1  =  h_T of window k        (carried as values: the gradient stops here)

A step is the usual three stages (:mod:`chainrule.train.step`): gradients through the ``T``
unrolled steps, gradient hooks (clipping), the update; then every recurrent layer's
``initial_state`` is set to its final state for the next window.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from chainrule.backend import to_numpy
from chainrule.errors import ConfigError
from chainrule.nn.functional import softmax
from chainrule.nn.layers.recurrent import Recurrent, recurrent_layers
from chainrule.nn.model import Sequential
from chainrule.optim import Optimizer
from chainrule.train.step import GradHook

__all__ = ["carry_state", "generate", "reset_state", "tbptt_step", "window_nats"]


def carry_state(net: Sequential) -> None:
    """Each recurrent layer's next initial state is the final state of its last application."""
    for entry in net.tape:
        if isinstance(entry.layer, Recurrent):
            entry.layer.initial_state = entry.layer.final_state(entry.ctx)


def reset_state(net: Sequential) -> None:
    """Back to zero initial states (a new stream, another batch size)."""
    for layer in recurrent_layers(net.layers):
        layer.initial_state = None


def tbptt_step(
    net: Sequential, x: Any, y: Any, optimizer: Optimizer, grad_hooks: Sequence[GradHook] = ()
) -> Any:
    """One window: gradients, hooks, update, carry the state. Returns the window's mean loss."""
    params = net.params
    cost = net.gradients(x, y)  # 1. through the whole window
    for hook in grad_hooks:  # 2. e.g. ClipGradNorm
        hook(params)
    optimizer.step(params)  # 3.
    carry_state(net)
    return cost


def window_nats(net: Sequential, windows: Any) -> float:
    """Mean cross-entropy per step (nats per character for a character LM) over ``(x, y)``
    windows fed in order with the state carried, in evaluation mode, from zero states; the layers'
    initial states are put back afterwards (training streams carry on), and no gradient is touched."""
    loss = net._loss()
    layers = recurrent_layers(net.layers)
    saved = [layer.initial_state for layer in layers]
    reset_state(net)
    net.eval()
    total, count = 0.0, 0
    try:
        for x, y in windows:
            xb = net.backend.asarray(x, dtype=net.dtype)
            cost, _ = loss.forward(net.forward(xb), net.backend.asarray(y))
            carry_state(net)
            total += float(cost) * y.size
            count += y.size
    finally:
        for layer, state in zip(layers, saved, strict=True):
            layer.initial_state = state
    return total / max(count, 1)


def generate(
    net: Sequential, prime: np.ndarray, length: int, temperature: float, rng: np.random.Generator
) -> np.ndarray:
    """``length`` ids drawn one at a time after feeding ``prime`` (ids, at least one): each from
    ``softmax(z / temperature)`` of the last output, then fed back in, the state carried."""
    if not temperature > 0:
        raise ConfigError(f"the temperature must be positive, got {temperature}")
    if len(prime) < 1:
        raise ConfigError("the prime needs at least one character")
    reset_state(net)
    net.eval()
    out = np.empty(length, dtype=np.int64)
    x = np.asarray(prime, dtype=np.float64)[None, :]
    try:
        for k in range(length):
            logits = to_numpy(net.forward(net.backend.asarray(x, dtype=net.dtype)))[0, -1]
            carry_state(net)
            p = softmax(logits.astype(np.float64) / temperature)
            out[k] = rng.choice(p.shape[0], p=p / p.sum())
            x = np.array([[out[k]]], dtype=np.float64)
    finally:
        reset_state(net)
    return out
