"""``chainrule train --workers N``: start ``N`` ranks with the ``mpiexec`` of the mpich wheel.

The launcher runs ``mpiexec -n N python -m chainrule <the same command without --workers>``,
relays the ranks' output, and turns a failure into one line:

* a rank that raised has printed ``chainrule: error: rank r of N: ...`` and aborted the job
  (:meth:`chainrule.parallel.world.World.guarded`); MPICH's own ``Abort(...)`` line is dropped;
* a rank killed by a signal is reported by hydra as a banner naming its pid; each rank started
  here printed ``<marker> rank pid host`` first (swallowed), so the banner becomes
  ``chainrule: error: rank 1 of 2 (pid 4242 on host) was killed by signal 9 (Killed)``.
"""

from __future__ import annotations

import importlib.util
import os
import re
import select
import shutil
import socket
import subprocess
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import IO

from chainrule.errors import MissingDependencyError
from chainrule.parallel.world import LAUNCHER_ENV, PID_MARKER

__all__ = ["find_mpiexec", "launch", "require_mpi", "strip_workers"]

_THREAD_ENV = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
_ABORT = re.compile(r"^Abort\(\d+\) on node \d+")
_MARKER = re.compile(re.escape(PID_MARKER) + r" (\d+) (\d+) (\S+?)(?=" + re.escape(PID_MARKER) + r"|\s|$)")
_BANNER_PID = re.compile(r"PID (\d+) RUNNING AT (\S+)")
_BANNER_CODE = re.compile(r"EXIT CODE: (\d+)")
_BANNER_EXIT = re.compile(r"EXIT STRING: (.*)$")


def find_mpiexec() -> str | None:
    """The ``mpiexec`` beside this Python (the mpich wheel's), else the first on ``PATH``."""
    here = Path(sys.executable).parent / "mpiexec"
    if here.is_file() and os.access(here, os.X_OK):
        return str(here)
    return shutil.which("mpiexec")


def require_mpi() -> str:
    """The ``mpiexec`` to launch with; a one-line error naming the extra when MPI is missing."""
    if importlib.util.find_spec("mpi4py") is None:
        raise MissingDependencyError("mpi4py", "--workers", "mpi")
    mpiexec = find_mpiexec()
    if mpiexec is None:
        raise MissingDependencyError("mpich", "--workers (mpiexec)", "mpi")
    return mpiexec


def strip_workers(argv: Sequence[str]) -> list[str]:
    """``argv`` without ``--workers N`` / ``--workers=N`` (the ranks train; they do not launch)."""
    out: list[str] = []
    skip = False
    for arg in argv:
        if skip:
            skip = False
        elif arg == "--workers":
            skip = True
        elif not arg.startswith("--workers="):
            out.append(arg)
    return out


class _Relay:
    """Copies one of mpiexec's streams to ours, dropping MPI's own noise and noting what failed."""

    def __init__(self, src: IO[bytes], dst: IO[str], state: dict) -> None:
        self.src, self.dst, self.state = src, dst, state
        self.banner = False
        self.blank = 0

    def run(self) -> None:
        buf = b""
        while True:
            chunk = os.read(self.src.fileno(), 65536)
            if not chunk:
                break
            buf += chunk
            *lines, buf = buf.split(b"\n")
            for line in lines:
                self.line(line.decode(errors="replace"))
            if b"\r" in buf:  # a progress bar redrawing itself: pass it on now
                head, _, buf = buf.rpartition(b"\r")
                self.write(head.decode(errors="replace") + "\r")
        if buf:
            self.line(buf.decode(errors="replace"))

    def write(self, text: str) -> None:
        self.dst.write(text)
        self.dst.flush()

    def line(self, text: str) -> None:
        state = self.state
        if PID_MARKER in text:
            for rank, pid, host in _MARKER.findall(text):
                state["pids"][pid] = (rank, host)
                if host == socket.gethostname():
                    state["watch"].add(int(pid))
            text = _MARKER.sub("", text).strip()
            if not text:
                return
        if _ABORT.match(text):
            return
        if text.startswith("====="):
            self.banner, self.blank = True, 0
            return
        if self.banner:
            for key, pat in (("pid", _BANNER_PID), ("code", _BANNER_CODE), ("exit", _BANNER_EXIT)):
                m = pat.search(text)
                if m:
                    state.setdefault(key, m.group(1))
            if text.startswith("Please see the FAQ"):
                self.banner = False
            return
        if not text.strip():
            self.blank += 1  # hydra's banner starts with a blank line: hold blanks back
            return
        self.write("\n" * self.blank)
        self.blank = 0
        if text.startswith("chainrule: error:"):
            if state["errors"]:
                return  # one line per failure, not one per rank
            state["errors"].append(text)
        self.write(text + "\n")


def launch(n: int, argv: Sequence[str], *, threads: int | None = None) -> int:
    """Run ``chainrule <argv>`` on ``n`` ranks on this machine; returns the exit status.

    Without ``--threads`` and without ``OMP_NUM_THREADS``/``OPENBLAS_NUM_THREADS``/
    ``MKL_NUM_THREADS`` in the environment, each rank gets ``cores // n`` BLAS threads (at least 1).
    With more ranks than cores MPICH is told to yield while it waits (``MPIR_CVAR_ENABLE_HEAVY_YIELD``,
    unless set): a spinning rank would take the core the rank it waits for needs.
    """
    mpiexec = require_mpi()
    env = dict(os.environ)
    env[LAUNCHER_ENV] = "1"
    if threads is None and not any(k in env for k in _THREAD_ENV):
        per_rank = str(max(1, (os.cpu_count() or 1) // n))
        env.update(dict.fromkeys(_THREAD_ENV, per_rank))
    if n > (os.cpu_count() or 1):  # oversubscribed: a waiting rank yields its core instead of spinning
        env.setdefault("MPIR_CVAR_ENABLE_HEAVY_YIELD", "1")
    cmd = [mpiexec, "-n", str(n), sys.executable, "-m", "chainrule", *strip_workers(argv)]
    state: dict = {"pids": {}, "errors": [], "watch": set(), "exited": []}
    proc = subprocess.Popen(
        cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env
    )
    relays = [
        threading.Thread(target=_Relay(proc.stdout, sys.stdout, state).run, daemon=True),
        threading.Thread(target=_Relay(proc.stderr, sys.stderr, state).run, daemon=True),
    ]
    relays.append(threading.Thread(target=_watch_exits, args=(proc, state), daemon=True))
    for t in relays:
        t.start()
    try:
        rc = proc.wait()
    except KeyboardInterrupt:
        proc.terminate()
        rc = proc.wait()
    for t in relays:
        t.join(timeout=5)
    if rc == 0:
        return 0
    if not state["errors"]:
        print(f"chainrule: error: {_failure(n, rc, state)}", file=sys.stderr, flush=True)
    return rc if rc in (1, 2) else 1


def _watch_exits(proc: subprocess.Popen, state: dict) -> None:
    """Record the order in which this host's ranks end (``pidfd``: no polling delay), so a rank
    killed by a signal can be named even though hydra kills the others right after."""
    if not hasattr(os, "pidfd_open"):  # pragma: no cover - Linux ≥ 5.3 only
        return
    fds: dict[int, int] = {}
    poller = select.poll()
    while proc.poll() is None:
        for pid in list(state["watch"] - set(fds.values())):
            try:
                fd = os.pidfd_open(pid)
            except OSError:  # already gone
                state["exited"].append(pid)
                fds[-pid] = pid
                continue
            fds[fd] = pid
            poller.register(fd, select.POLLIN)
        for fd, _ in poller.poll(50):
            poller.unregister(fd)
            state["exited"].append(fds[fd])
            os.close(fd)
    for fd in fds:
        if fd >= 0 and fds[fd] not in state["exited"]:
            os.close(fd)


def _failure(n: int, rc: int, state: dict) -> str:
    """The one line for a job that failed without a rank saying why (a rank killed by a signal)."""
    # the first rank to end is the one that failed: hydra then kills the others, and its banner may
    # name any of them; the banner's pid is the fallback (ranks on other hosts are not watched)
    pid = str(state["exited"][0]) if state["exited"] else state.get("pid")
    if pid is None:
        return f"mpiexec exited with status {rc} (no rank reported an error)"
    rank, host = state["pids"].get(pid, ("?", "?"))
    exit_text = state.get("exit") or ""
    m = re.search(r"^(.*?)\s*\(signal (\d+)\)", exit_text)
    if m:
        what = f"was killed by signal {m.group(2)} ({m.group(1)})"
    else:
        what = f"ended with exit code {state.get('code', rc)}"
    if rank == "?":  # it died before it reported its rank
        return f"a rank (pid {pid}) {what} while starting; every rank stopped"
    return f"rank {rank} of {n} (pid {pid} on {host}) {what}; every rank stopped"
