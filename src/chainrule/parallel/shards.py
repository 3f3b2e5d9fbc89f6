"""Each rank's share of every global batch, and the epoch runner that trains on it.

All ranks draw the same shuffle (same seed), cut it into the same global batches of ``B`` rows
as one process would, and rank ``r`` of ``N`` takes rows ``⌊rm/N⌋ .. ⌊(r+1)m/N⌋`` of a batch of
``m`` rows. With ``B`` divisible by ``N`` every full batch gives each rank ``B/N`` rows; the last,
partial batch of an epoch is split as evenly as it goes (shards differ by at most one row) and
:class:`~chainrule.parallel.allreduce.GradAllreduce` weights each rank by ``n_r / m``, so the sum
is still the gradient of the global batch. ``drop_remainder`` drops the ``m mod N`` rows of each
batch that cannot be shared evenly instead (and a batch smaller than ``N``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from chainrule.errors import ConfigError
from chainrule.parallel.allreduce import GradAllreduce
from chainrule.parallel.world import World

__all__ = ["ShardPlan", "ShardedRunner", "check_batch", "plan_shards"]


def check_batch(batch_size: int, size: int, drop_remainder: bool) -> None:
    """A global batch of ``batch_size`` rows must split evenly over ``size`` ranks (or be cut)."""
    if size <= 1 or batch_size in (0, None):
        return
    if batch_size < size:
        raise ConfigError(f"the global batch of {batch_size} is smaller than the {size} ranks")
    if batch_size % size and not drop_remainder:
        lo, hi = size * (batch_size // size), size * (batch_size // size + 1)
        raise ConfigError(
            f"the global batch of {batch_size} does not split evenly over {size} ranks: use a multiple "
            f"of {size} (e.g. {lo} or {hi}) or --drop-remainder"
        )


class ShardPlan:
    """One epoch on rank ``rank``: its rows of every step (``order``), the step count, each step's
    weight ``n_r / m``, the local batch size and how many rows all ranks train on (``n_used``)."""

    def __init__(self, order: np.ndarray, batch_size: int, weights: list[float], n_used: int) -> None:
        self.order, self.batch_size, self.weights, self.n_used = order, batch_size, weights, n_used

    @property
    def steps(self) -> int:
        return len(self.weights)


def plan_shards(order: np.ndarray, batch_size: int, rank: int, size: int, drop_remainder: bool) -> ShardPlan:
    """Cut ``order`` into global batches of ``batch_size`` and keep rank ``rank``'s rows of each."""
    n = len(order)
    if n > batch_size and batch_size % size and not drop_remainder:
        check_batch(batch_size, size, drop_remainder)
    pieces: list[np.ndarray] = []
    weights: list[float] = []
    n_used = 0
    for start in range(0, n, batch_size):
        m = min(batch_size, n - start)
        if drop_remainder:
            m -= m % size
            if m == 0:
                continue
        elif m < size:
            raise ConfigError(
                f"the last batch of an epoch has {m} samples for {size} ranks: use --drop-remainder "
                "or another --batch-size"
            )
        lo, hi = (m * rank) // size, (m * (rank + 1)) // size
        pieces.append(order[start + lo : start + hi])
        weights.append((hi - lo) / m)
        n_used += m
    if not pieces:
        raise ConfigError(f"{n} training samples are fewer than the {size} ranks")
    local = np.concatenate(pieces)
    return ShardPlan(local, len(pieces[0]), weights, n_used)


class ShardedRunner:
    """An epoch runner that trains ``inner`` on this rank's shard of every global batch.

    The inner runner (plain or fast) sees the local rows only, cut in local batches that match
    the global ones step for step; :class:`GradAllreduce` (one of its gradient hooks) sums the
    gradients, and the epoch's loss and accuracy are summed over ranks: they are global.
    """

    def __init__(
        self, inner: Any, world: World, reducer: GradAllreduce, *, drop_remainder: bool = False
    ) -> None:
        self.inner, self.world, self.reducer, self.drop_remainder = inner, world, reducer, drop_remainder
        self.name = f"{inner.name}+mpi{world.size}"

    def run_epoch(
        self, x: Any, y: Any, order: np.ndarray, batch_size: int, on_step: Callable[[], None]
    ) -> tuple[float, float]:
        plan = plan_shards(order, batch_size, self.world.rank, self.world.size, self.drop_remainder)
        weights = iter(plan.weights)
        self.reducer.scale = next(weights)

        def step_done() -> None:
            on_step()
            self.reducer.scale = next(weights, 1.0 / self.world.size)

        loss, acc = self.inner.run_epoch(x, y, plan.order, plan.batch_size, step_done)
        n_local = len(plan.order)
        loss_sum, correct = self.world.allreduce_sum([loss * n_local, acc * n_local])
        return loss_sum / plan.n_used, correct / plan.n_used
