"""One training step in three stages, and the epoch runners that repeat it.

A step is: (1) gradients, (2) gradient hooks, (3) the update::

    E = net.gradients(x_b, y_b, l2)      # forward, loss, backward, + λW: every param.grad = ∂E/∂θ
    for hook in grad_hooks: hook(params) # e.g. all-reduce across processes, gradient clipping
    optimizer.step(params)               # W ← W − α g (or momentum, Nesterov, Adam)

The fast runners of :mod:`chainrule.accel` fuse (1) and (3) for plain SGD (the weight gradient is
never written out); they do so only when no hook is attached, since a hook needs the gradients.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Protocol

import numpy as np

from chainrule.accel import make_fast_runner
from chainrule.accel.conv import make_conv_runner
from chainrule.accel.recurrent import install as install_recurrent
from chainrule.backend import namespace
from chainrule.backend.memory import reuse_freed_memory
from chainrule.nn.functional import count_correct
from chainrule.nn.model import Sequential
from chainrule.nn.params import Param
from chainrule.optim import Optimizer

__all__ = ["EpochRunner", "GradHook", "PlainRunner", "make_runner", "take_rows"]


class GradHook(Protocol):
    """Stage two of a step: sees (and may change) every ``param.grad`` before the update.

    A hook may also define ``grads_ready(positions)``: the fast runner then calls it during
    backward with the positions (in ``net.params``) of each layer's finished gradients, so that
    an all-reduce can start sending them early (:class:`chainrule.parallel.GradAllreduce`).
    """

    def __call__(self, params: Sequence[Param]) -> None: ...


class EpochRunner(Protocol):
    name: str

    def run_epoch(
        self, x: Any, y: Any, order: np.ndarray, batch_size: int, on_step: Callable[[], None]
    ) -> tuple[float, float]:
        """Train one epoch over ``x[order]`` in batches; returns (mean data loss, running accuracy)
        without the L2 penalty, which :func:`~chainrule.train.loop.fit` adds once per epoch."""
        ...


def take_rows(a: Any, idx: np.ndarray) -> Any:
    """``a[idx]`` along the first axis on any backend (indices come from the host)."""
    if isinstance(a, np.ndarray):
        return a[idx]
    xp = namespace(a)
    return xp.take(a, xp.asarray(idx, device=a.device), axis=0)


class PlainRunner:
    """The textbook step, through the driver: gradients, hooks, update."""

    name = "plain"

    def __init__(
        self, net: Sequential, optimizer: Optimizer, l2: float = 0.0, grad_hooks: Sequence[GradHook] = ()
    ) -> None:
        self.net, self.optimizer, self.l2 = net, optimizer, l2
        self.grad_hooks = list(grad_hooks)

    def step(self, xb: Any, yb: Any) -> tuple[Any, Any]:
        """One update; returns the batch's *data* loss and its number of correct predictions."""
        params = self.net.params
        cost = self.net.gradients(xb, yb, l2=self.l2)  # 1. gradients
        for hook in self.grad_hooks:  # 2. hooks
            hook(params)
        self.optimizer.step(params)  # 3. update
        return cost, count_correct(self.net.output, yb)

    def run_epoch(
        self, x: Any, y: Any, order: np.ndarray, batch_size: int, on_step: Callable[[], None]
    ) -> tuple[float, float]:
        n = len(order)
        total_loss = 0.0
        total_correct = 0.0
        for start in range(0, n, batch_size):
            idx = order[start : start + batch_size]
            cost, correct = self.step(take_rows(x, idx), take_rows(y, idx))
            total_loss = total_loss + cost * len(idx)
            total_correct = total_correct + correct
            on_step()
        return float(total_loss) / n, float(total_correct) / n


def make_runner(
    net: Sequential,
    optimizer: Optimizer,
    l2: float,
    *,
    fast: bool = True,
    grad_hooks: Sequence[GradHook] = (),
) -> EpochRunner:
    """The fastest runner that applies to this network and optimiser (plain if none does).

    Gradient hooks go to whichever runner trains: a fast runner then materialises every
    ``param.grad`` (``+ λW``), calls the hooks, and updates. Driver hooks (a tracer) need the
    driver, so with one attached the planner declines and the network trains on the plain runner.
    """
    if net.backend.name == "numpy":
        reuse_freed_memory()  # each step's large temporaries land on the last step's pages
    if fast:
        install_recurrent(net)  # the recurrent layers' in-place time loops (NumPy LSTM, tanh RNN)
        runner = make_fast_runner(net, optimizer, l2, grad_hooks)
        if runner is not None:
            return runner
        conv_runner = make_conv_runner(net, optimizer, l2, grad_hooks)  # conv → ReLU → pool fused
        if conv_runner is not None:
            return conv_runner
    return PlainRunner(net, optimizer, l2, grad_hooks)
