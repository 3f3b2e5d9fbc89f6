"""The MPI job this process belongs to: rank, size, the communicator, and how a rank fails.

A process started by ``mpiexec`` (MPICH's hydra, Open MPI, ``srun --mpi=pmi2``) finds its rank in the
environment before MPI is initialised; :func:`current_world` reads it there, so a plain
``chainrule train`` never imports :mod:`mpi4py`. Inside an MPI job of ``N > 1`` processes the
world holds ``MPI.COMM_WORLD``.

Failure without a hang. An MPI collective waits for every rank, so a rank that stops (an
exception, ``SIGKILL``, a stuck loop) would leave the others waiting forever. Three rules:

* an exception on rank ``r`` prints one line, ``chainrule: error: rank r of N: ...``, and calls
  ``MPI_Abort``, which makes the launcher stop every rank (:meth:`World.guarded`). Ranks other
  than 0 wait a moment first, so an error every rank raises (a bad option) is printed once, by
  rank 0, whose abort stops the others before they print;
* a rank killed by a signal is noticed by the launcher (hydra), which stops the others; under
  ``chainrule train --workers`` the launcher's report is turned into one line naming the rank
  (:mod:`chainrule.parallel.launch`);
* a watchdog thread aborts the job when this rank has waited in one collective for longer than
  ``CHAINRULE_MPI_TIMEOUT`` seconds (default 120): a rank that is alive but stuck.
"""

from __future__ import annotations

import os
import secrets
import socket
import sys
import threading
import time
import traceback
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn, TypeVar

import numpy as np

from chainrule.errors import ChainruleError, ConfigError, MissingDependencyError

__all__ = [
    "LAUNCHER_ENV",
    "PID_MARKER",
    "RANK_ENV",
    "SIZE_ENV",
    "World",
    "check_shared_outputs",
    "collective_timeout",
    "current_world",
    "mpi_job_size",
]

T = TypeVar("T")

#: environment variables that give a process its rank and the job's size, launcher by launcher
#: (hydra and ``srun --mpi=pmi2`` set PMI_*, Open MPI OMPI_*; Slurm's own SLURM_NTASKS is not
#: used: it is set for a whole allocation, also for a single process started without srun)
RANK_ENV = ("PMI_RANK", "OMPI_COMM_WORLD_RANK")
SIZE_ENV = ("PMI_SIZE", "OMPI_COMM_WORLD_SIZE")
#: set by ``chainrule train --workers`` for the ranks it starts (they then report their pid)
LAUNCHER_ENV = "CHAINRULE_MPI_LAUNCHER"
#: the marker a rank started by the launcher prints once: ``<marker> <rank> <pid>``
PID_MARKER = "chainrule-mpi-rank-pid"
DEFAULT_TIMEOUT = 120.0


def mpi_job_size() -> int:
    """The number of processes of the MPI job this process was started in (1 if none)."""
    for name in SIZE_ENV:
        value = os.environ.get(name)
        if value and value.isdigit():
            return int(value)
    return 1


def collective_timeout() -> float:
    """Seconds a rank may wait in one collective before it stops the job (``CHAINRULE_MPI_TIMEOUT``)."""
    text = os.environ.get("CHAINRULE_MPI_TIMEOUT", "")
    try:
        value = float(text) if text else DEFAULT_TIMEOUT
    except ValueError:
        raise ConfigError(f"CHAINRULE_MPI_TIMEOUT must be a number of seconds, got {text!r}") from None
    if value <= 0:
        raise ConfigError(f"CHAINRULE_MPI_TIMEOUT must be positive, got {text!r}")
    return value


@dataclass
class World:
    """One process's view of the job: ``rank`` of ``size``, and ``comm`` (``None`` when alone)."""

    rank: int = 0
    size: int = 1
    comm: Any = None
    timeout: float = DEFAULT_TIMEOUT
    _waiting: list[Any] = field(default_factory=list, repr=False)
    _watchdog: threading.Thread | None = field(default=None, repr=False)

    @property
    def is_root(self) -> bool:
        """Rank 0: the one rank that writes models, logs and reports and prints the summary."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.size > 1

    # -- collectives under the watchdog ----------------------------------------------------
    @contextmanager
    def waiting(self, what: str) -> Iterator[None]:
        """Mark the body as a wait for the other ranks; the watchdog aborts past the timeout."""
        if self.comm is None:
            yield
            return
        self._start_watchdog()
        self._waiting[:] = [what, time.monotonic()]
        try:
            yield
        finally:
            self._waiting.clear()

    def _start_watchdog(self) -> None:
        if self._watchdog is not None:
            return
        self._watchdog = threading.Thread(target=self._watch, name="chainrule-mpi-watchdog", daemon=True)
        self._watchdog.start()

    def _watch(self) -> None:
        tick = min(1.0, self.timeout / 4)
        while True:
            time.sleep(tick)
            state = list(self._waiting)
            if len(state) == 2 and time.monotonic() - state[1] > self.timeout:
                self.abort(
                    f"waited {self.timeout:g} s in {state[0]} for the other ranks (one is stuck or lost; "
                    "CHAINRULE_MPI_TIMEOUT sets the limit)"
                )

    def allreduce_sum(self, values: list[float]) -> list[float]:
        """The element-wise sum over ranks of a few numbers (epoch totals), in float64."""
        if self.comm is None:
            return list(values)
        buf = np.asarray(values, dtype=np.float64)
        with self.waiting("allreduce of the epoch totals"):
            self.comm.Allreduce(_in_place(), buf)
        return [float(v) for v in buf]

    def bcast(self, obj: T) -> T:
        """Rank 0's ``obj`` on every rank (a small picklable object)."""
        if self.comm is None:
            return obj
        with self.waiting("broadcast"):
            return self.comm.bcast(obj, root=0)

    def allgather(self, obj: T) -> list[T]:
        if self.comm is None:
            return [obj]
        with self.waiting("allgather"):
            return self.comm.allgather(obj)

    def barrier(self) -> None:
        if self.comm is not None:
            with self.waiting("barrier"):
                self.comm.Barrier()

    # -- failure ---------------------------------------------------------------------------
    def abort(self, message: str, code: int = 1) -> NoReturn:
        """Print ``chainrule: error: rank r of N: message`` and stop every rank of the job."""
        line = " ".join(str(message).split())
        _say(f"chainrule: error: rank {self.rank} of {self.size}: {line}")
        if self.comm is not None:
            # the launcher's proxy relays this rank's stderr asynchronously, and MPI_Abort tears
            # the proxies down: without a moment's grace the line was sometimes lost (seen once
            # in a full CI run: a failed job with an empty stderr)
            time.sleep(0.2)
            self.comm.Abort(code)
        os._exit(code)  # pragma: no cover - Abort does not return

    def guarded(self, fn: Callable[[], T]) -> T:
        """``fn()``; any exception on this rank stops the whole job with one line (never a hang).

        Ranks other than 0 wait ``0.5 s`` before aborting: when every rank raises the same error
        (bad input), rank 0's abort stops them first and the error is printed once.
        """
        try:
            return fn()
        except BaseException as exc:
            if isinstance(exc, SystemExit) and not exc.code:
                raise
            if os.environ.get("CHAINRULE_DEBUG"):
                traceback.print_exc()
            if not self.is_root:
                time.sleep(0.5)
            if isinstance(exc, ChainruleError):
                message = str(exc)
            elif isinstance(exc, KeyboardInterrupt):
                message = "interrupted"
            else:
                message = f"{type(exc).__name__}: {exc}"
            code = 2 if isinstance(exc, SystemExit) and exc.code == 2 else 1
            self.abort(message, code)


def _say(line: str) -> None:
    """One line on stderr in ONE write: the launcher merges the ranks' streams, and ``print``
    under ``PYTHONUNBUFFERED`` writes the text and its newline separately (lines would interleave)."""
    sys.stderr.flush()
    os.write(sys.stderr.fileno(), (line + "\n").encode())


def _in_place() -> Any:
    from mpi4py import MPI  # optional: the mpi extra; only inside an MPI job

    return MPI.IN_PLACE


_WORLD: World | None = None


def current_world() -> World:
    """This process's :class:`World`: size 1 outside an MPI job (no :mod:`mpi4py` import)."""
    global _WORLD
    if _WORLD is not None:
        return _WORLD
    if mpi_job_size() <= 1:
        _WORLD = World()
        return _WORLD
    try:
        from mpi4py import MPI  # optional: the mpi extra; only inside an MPI job of several processes
    except ImportError:
        raise MissingDependencyError("mpi4py", "training under mpiexec", "mpi") from None
    comm = MPI.COMM_WORLD
    _WORLD = World(rank=comm.Get_rank(), size=comm.Get_size(), comm=comm, timeout=collective_timeout())
    if os.environ.get(LAUNCHER_ENV):
        _say(f"{PID_MARKER} {_WORLD.rank} {os.getpid()} {socket.gethostname()}")
    return _WORLD


def check_shared_outputs(world: World, paths: Sequence[str | None]) -> None:
    """Fail when a rank does not see rank 0's output directories (not shared by all hosts).

    Rank 0 writes a probe file into each output directory and every rank looks for it; a
    directory a rank cannot see is named with that rank and its host. One process: nothing to do.
    """
    if not world.distributed:
        return
    dirs = sorted({str(Path(p).expanduser().resolve().parent) for p in paths if p})
    if not dirs:
        return
    token = world.bcast(secrets.token_hex(8) if world.is_root else None)
    name = f".chainrule-shared-{token}"
    if world.is_root:
        for d in dirs:
            (Path(d) / name).touch()
    world.barrier()
    missing = [d for d in dirs if not (Path(d) / name).exists()]
    report = world.allgather((socket.gethostname(), missing))
    world.barrier()
    if world.is_root:
        for d in dirs:
            (Path(d) / name).unlink(missing_ok=True)
    for rank, (host, lost) in enumerate(report):
        if lost:
            raise ConfigError(
                f"output directory {lost[0]} is not shared by all ranks: rank {rank} on {host} does not "
                "see rank 0's files there; put outputs on a filesystem every host mounts"
            )
