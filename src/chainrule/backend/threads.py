"""Thread limits for the numerical libraries: BLAS/OpenMP pools (threadpoolctl) and torch's intra-op pool."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator

from chainrule.errors import MissingDependencyError

__all__ = ["limit_threads"]


@contextlib.contextmanager
def limit_threads(n: int | None) -> Iterator[None]:
    """Limit BLAS/OpenMP threads (threadpoolctl) and torch's intra-op threads to ``n`` inside a
    ``with`` block; ``None`` (or 0) leaves everything as it is. Torch is only touched if it is
    already imported, and its thread count is put back on the way out."""
    if not n:
        yield
        return
    try:
        from threadpoolctl import threadpool_limits  # optional: the cli extra; only needed with a limit
    except ImportError:  # pragma: no cover - threadpoolctl is in the cli extra
        raise MissingDependencyError("threadpoolctl", "limiting threads", "cli") from None
    torch = sys.modules.get("torch")
    old_torch = torch.get_num_threads() if torch is not None else None
    with threadpool_limits(limits=int(n)):
        if torch is not None:
            torch.set_num_threads(int(n))
        try:
            yield
        finally:
            if torch is not None and old_torch is not None:
                torch.set_num_threads(old_torch)
