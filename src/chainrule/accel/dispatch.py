"""Which fast runner trains a network: the backend's ops, its tables' verdict, the runner class."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import Any

from chainrule.accel.cupy_ops import CupyOps
from chainrule.accel.numpy_ops import NumpyOps
from chainrule.accel.plan import plan_step
from chainrule.accel.runner import FastRunner
from chainrule.accel.torch_graph import TorchFastRunner, TorchGraphRunner
from chainrule.accel.torch_ops import TorchOps
from chainrule.backend import backend_of

__all__ = ["OPS", "make_fast_runner"]

#: backend name → its ops class (whose tables say what its fast step covers)
OPS: dict[str, type] = {"numpy": NumpyOps, "torch": TorchOps, "cupy": CupyOps}


def make_fast_runner(
    net: Any, optimizer: Any, l2: float, grad_hooks: Sequence[Callable[[Any], None]] = ()
) -> Any:
    """A fast runner for ``net`` with ``optimizer``, L2 strength ``l2`` and the gradient hooks
    ``grad_hooks`` (stage two of every step), or ``None`` when the backend's tables do not cover
    the network, loss or optimiser (the caller then uses the plain runner).

    NumPy and CuPy get :class:`FastRunner`; torch on the CPU :class:`TorchFastRunner`; torch on
    CUDA the CUDA-graph runner, unless there are gradient hooks (Python, not replayable) or
    ``CHAINRULE_NO_CUDA_GRAPH=1``.
    """
    if net.loss is None or not net.params:
        return None
    backend = backend_of(net.params[0].value)
    ops_cls = OPS.get(backend.name)
    if ops_cls is None:
        return None
    blocks = plan_step(net, optimizer, l2, ops_cls)
    if blocks is None:
        return None
    if ops_cls is NumpyOps:
        return FastRunner(net, optimizer, l2, NumpyOps(), blocks, grad_hooks)
    if ops_cls is CupyOps:
        return FastRunner(net, optimizer, l2, CupyOps(backend.device), blocks, grad_hooks)
    ops = TorchOps(backend.device)
    graph = ops.device.type == "cuda" and not grad_hooks and not os.environ.get("CHAINRULE_NO_CUDA_GRAPH")
    runner_cls = TorchGraphRunner if graph else TorchFastRunner
    return runner_cls(net, optimizer, l2, ops, blocks, grad_hooks)
