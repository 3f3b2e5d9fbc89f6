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

from chainrule.nn.layers.recurrent import Recurrent, recurrent_layers
from chainrule.nn.model import Sequential
from chainrule.optim import Optimizer
from chainrule.train.step import GradHook

__all__ = ["carry_state", "reset_state", "tbptt_step"]


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
