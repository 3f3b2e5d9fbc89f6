"""Stage two of a data-parallel step: the gradients of all ranks summed in one flat buffer.

Rank ``r`` computes the mean gradient of its shard of the global batch, ``g_r = (1/n_r) Σ_{i∈r} ∂E_i/∂θ``.
The gradient of the global batch of ``B = Σ_r n_r`` samples is::

    g = (1/B) Σ_i ∂E_i/∂θ = Σ_r (n_r / B) g_r          (equal shards: w_r = n_r / B = 1/N)

so each rank scales its gradient by ``w_r`` and one ``MPI_Allreduce`` (sum, in place) leaves ``g``
on every rank; each then applies the same update to the same weights. L2's ``λW`` is added by every
rank and ``Σ_r w_r λW = λW``. The hook needs nothing but the parameter list, so it works for any
layer whose backward fills ``param.grad`` (dense, convolutional, recurrent ...).

One flat buffer: every ``param.grad`` (NumPy) is re-bound to a view of one contiguous array, so
backward writes straight into the buffer the Allreduce sends; nothing is packed or unpacked. The
parameters are laid out last layer first, the order backward produces them in. Gradients on
another backend (torch, CuPy) are copied to the host buffer and back.

``overlap=True`` starts a non-blocking ``MPI_Iallreduce`` on each layer's slice as soon as the fast
runner has written it (:meth:`GradAllreduce.grads_ready`) and waits for all of them in the hook, so
the transfer of the upper layers can run during the backward of the lower ones.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from chainrule.backend import backend_of, to_numpy
from chainrule.errors import ConfigError
from chainrule.nn.params import Param
from chainrule.parallel.world import World

__all__ = ["GradAllreduce"]


def _mpi() -> Any:
    from mpi4py import MPI  # optional: the mpi extra; only inside an MPI job

    return MPI


class GradAllreduce:
    """A gradient hook: ``param.grad ← Σ_r w_r param.grad_r`` over the ranks of ``world``.

    ``scale`` is this rank's weight ``w_r = n_r / B`` for the next step (set by the sharded runner;
    ``1/N`` for equal shards). ``seconds``, ``steps`` and ``nbytes`` measure the communication.
    """

    def __init__(self, world: World, params: Sequence[Param], *, overlap: bool = False) -> None:
        self.world, self.params, self.overlap = world, list(params), bool(overlap)
        if not self.params:
            raise ConfigError("nothing to all-reduce: the network has no parameters")
        dtypes = {str(p.grad.dtype) for p in self.params}
        if len(dtypes) != 1:
            raise ConfigError(f"all-reduce needs one gradient dtype, got {sorted(dtypes)}")
        dtype = to_numpy(self.params[0].grad.reshape(-1)[:1]).dtype
        order = list(range(len(self.params)))[::-1]  # backward writes the last layer first
        self.offsets: dict[int, tuple[int, int]] = {}
        offset = 0
        for j in order:
            size = int(np.prod(self.params[j].value.shape))
            self.offsets[j] = (offset, offset + size)
            offset += size
        self.flat = np.zeros(offset, dtype)
        self.views = [
            self.flat[a:b].reshape(self.params[j].value.shape) for j, (a, b) in sorted(self.offsets.items())
        ]
        self.zero_copy = all(isinstance(p.grad, np.ndarray) for p in self.params)
        if self.zero_copy:
            for p, view in zip(self.params, self.views, strict=True):
                view[...] = p.grad
                p.grad = view
        self.scale = 1.0 / world.size
        self.seconds = 0.0
        self.steps = 0
        self._requests: list[Any] = []
        self._started: set[int] = set()

    @property
    def nbytes(self) -> int:
        return int(self.flat.nbytes)

    # -- per layer, during backward (overlap) ----------------------------------------------
    def grads_ready(self, positions: Sequence[int]) -> None:
        """The fast runner has written the gradients of ``params[j]`` for ``j`` in ``positions``:
        with ``overlap``, scale their slice and start its non-blocking all-reduce."""
        if not self.overlap or self.world.comm is None or not self.zero_copy:
            return
        t0 = time.perf_counter()
        self._start([j for j in positions if j not in self._started])
        self.seconds += time.perf_counter() - t0

    def _start(self, positions: list[int]) -> None:
        """One ``Iallreduce`` per contiguous run of the buffer covering ``positions``."""
        mpi = _mpi()
        for a, b in _runs(sorted(self.offsets[j] for j in positions)):
            seg = self.flat[a:b]
            if self.scale != 1.0:
                seg *= self.scale
            self._requests.append(self.world.comm.Iallreduce(mpi.IN_PLACE, seg, op=mpi.SUM))
        self._started.update(positions)

    # -- stage two ---------------------------------------------------------------------------
    def __call__(self, params: Sequence[Param]) -> None:
        t0 = time.perf_counter()
        comm = self.world.comm
        self._gather()
        if comm is not None:
            mpi = _mpi()
            with self.world.waiting("allreduce of the gradients"):
                if self.overlap and self.zero_copy:
                    self._start([j for j in range(len(self.params)) if j not in self._started])
                    mpi.Request.Waitall(self._requests)
                else:
                    if self.scale != 1.0:
                        self.flat *= self.scale
                    comm.Allreduce(mpi.IN_PLACE, self.flat, op=mpi.SUM)
        self._requests.clear()
        self._started.clear()
        self._scatter()
        self.seconds += time.perf_counter() - t0
        self.steps += 1

    def _gather(self) -> None:
        """Make every ``param.grad`` its view of the buffer (copying a gradient that was re-bound,
        or that lives on another backend)."""
        for p, view in zip(self.params, self.views, strict=True):
            if p.grad is view:
                continue
            view[...] = to_numpy(p.grad)
            if self.zero_copy and isinstance(p.grad, np.ndarray):
                p.grad = view

    def _scatter(self) -> None:
        if self.zero_copy:
            return
        for p, view in zip(self.params, self.views, strict=True):
            p.grad[...] = backend_of(p.grad).asarray(view)


def _runs(spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Merge sorted ``(start, stop)`` spans into maximal contiguous runs."""
    runs: list[tuple[int, int]] = []
    for a, b in spans:
        if runs and runs[-1][1] == a:
            runs[-1] = (runs[-1][0], b)
        else:
            runs.append((a, b))
    return runs
