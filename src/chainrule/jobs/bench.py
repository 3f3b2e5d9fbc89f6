"""chainrule against PyTorch autograd: :func:`chainrule.studies.bench.run_bench`, after checking
that the backend and device asked for exist (before any work)."""

from __future__ import annotations

from typing import Any

from chainrule.backend import get_backend
from chainrule.jobs.common import Log
from chainrule.studies.bench import BenchConfig
from chainrule.studies.bench import run_bench as _run_bench

__all__ = ["BenchConfig", "run_bench"]


def run_bench(cfg: BenchConfig, *, log: Log = None) -> dict[str, Any]:
    """The benchmark's JSON-safe result (see :mod:`chainrule.studies.bench`)."""
    get_backend(cfg.backend, cfg.device)  # a missing backend or GPU fails before any work
    return _run_bench(cfg, log=log)
