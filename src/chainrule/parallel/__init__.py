"""Data-parallel training over MPI (mpi4py + the mpich wheel, the ``mpi`` extra).

``mpiexec -n N chainrule train ...`` (or ``chainrule train --workers N``) runs one process per
rank. Each reads its shard of every global batch, the gradients are summed by one in-place
Allreduce over a flat buffer in the step's gradient-hook stage, and rank 0 alone writes.
See ``docs/distributed.md``.

This room sits above ``train`` (it wraps ``fit``'s runner and adds a gradient hook) and below
``io``; nothing under it knows about MPI. :mod:`mpi4py` is imported only inside an MPI job.
"""

from chainrule.parallel.allreduce import GradAllreduce
from chainrule.parallel.fit import broadcast_state, fit_parallel
from chainrule.parallel.launch import launch, require_mpi
from chainrule.parallel.shards import ShardedRunner, check_batch, plan_shards
from chainrule.parallel.world import World, check_shared_outputs, current_world, mpi_job_size

__all__ = [
    "GradAllreduce",
    "ShardedRunner",
    "World",
    "broadcast_state",
    "check_batch",
    "check_shared_outputs",
    "current_world",
    "fit_parallel",
    "launch",
    "mpi_job_size",
    "plan_shards",
    "require_mpi",
]
