"""``fit`` on every rank of an MPI job: the same weights, shards of each batch, summed gradients."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from chainrule.backend import backend_of, to_numpy
from chainrule.nn.model import Sequential
from chainrule.parallel.allreduce import GradAllreduce
from chainrule.parallel.shards import ShardedRunner
from chainrule.parallel.world import World, current_world
from chainrule.train import History, fit
from chainrule.train.step import GradHook

__all__ = ["broadcast_state", "fit_parallel"]


def broadcast_state(net: Sequential, world: World) -> None:
    """Rank 0's parameters and buffers on every rank (what ``DistributedDataParallel`` does at
    construction): the ranks start from the same weights whatever built or loaded them."""
    if world.comm is None:
        return
    arrays = [*net.params, *(b for _, b in net.named_buffers())]
    with world.waiting("broadcast of the initial weights"):
        for holder in arrays:
            value = holder.value
            if isinstance(value, np.ndarray) and value.flags.c_contiguous:
                world.comm.Bcast(value, root=0)
            else:
                host = np.ascontiguousarray(to_numpy(value))
                world.comm.Bcast(host, root=0)
                value[...] = backend_of(value).asarray(host)


def fit_parallel(
    net: Sequential,
    x: Any,
    y: Any,
    *,
    world: World | None = None,
    drop_remainder: bool = False,
    overlap: bool = False,
    allreduce: str | None = None,
    grad_hooks: Sequence[GradHook] = (),
    progress: bool = True,
    verbose: bool = False,
    **fit_options: Any,
) -> History:
    """:func:`chainrule.train.fit` data-parallel over the ranks of ``world`` (default: this
    process's MPI job; one process is plain ``fit``).

    Every rank must call it with the same data, options and seed. Rank 0's weights are broadcast,
    each rank trains on its shard of every global batch of ``batch_size`` rows, the gradient
    all-reduce runs first among ``grad_hooks`` (so clipping sees the global gradient), and the
    history's loss and accuracy are global. ``allreduce`` picks how gradients are summed
    (:func:`chainrule.parallel.allreduce.allreduce_method`: ``"auto"``, ``"mpi"`` or ``"shm"``).
    Only rank 0 shows progress and writes checkpoints
    (``checkpoint=``, when ``fit`` has it); a ``resume=`` state is read by every rank. Validation and early
    stopping run on every rank on identical weights, so every rank takes the same decisions.
    """
    world = current_world() if world is None else world
    if not world.distributed:
        return fit(net, x, y, grad_hooks=grad_hooks, progress=progress, verbose=verbose, **fit_options)
    broadcast_state(net, world)
    reducer = GradAllreduce(world, net.params, overlap=overlap, method=allreduce)
    if not world.is_root and fit_options.get("checkpoint") is not None:
        fit_options["checkpoint"] = None  # rank 0 alone writes checkpoints; every rank reads on resume

    def shard(runner: Any) -> ShardedRunner:
        return ShardedRunner(runner, world, reducer, drop_remainder=drop_remainder)

    history = fit(
        net,
        x,
        y,
        grad_hooks=[reducer, *grad_hooks],
        wrap_runner=shard,
        progress=progress and world.is_root,
        verbose=verbose and world.is_root,
        **fit_options,
    )
    reducer.close()
    history.allreduce = {
        "seconds": reducer.seconds,
        "steps": reducer.steps,
        "bytes": reducer.nbytes,
        "method": reducer.method,
    }
    return history
