"""Keep freed memory in the process, so that each training step reuses the previous step's pages.

A step of a convolutional network allocates the same large temporaries every time (the im2col
matrix, each layer's output and δ). glibc's allocator serves blocks above ``M_MMAP_THRESHOLD``
with fresh ``mmap`` pages and gives freed heap tops back to the kernel above ``M_TRIM_THRESHOLD``;
either way the next step's arrays start on untouched pages and pay a page fault per 4 KiB (about a
third of a small CNN's step on this machine). Raising both thresholds makes the freed blocks of one
step the next step's blocks: buffer reuse without a buffer pool in the layers. The resident set
then stays at its peak instead of falling between steps; the peak itself does not change.

Only glibc (Linux) has ``mallopt``; anywhere else this does nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys

__all__ = ["reuse_freed_memory"]

_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
_LIMIT = 1 << 30  # blocks up to 1 GiB come from (and go back to) the heap
_done = False


def reuse_freed_memory() -> bool:
    """Raise glibc's trim and mmap thresholds once per process; returns whether it applied."""
    global _done
    if _done:
        return True
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        ok = bool(libc.mallopt(_M_TRIM_THRESHOLD, _LIMIT)) and bool(libc.mallopt(_M_MMAP_THRESHOLD, _LIMIT))
    except (OSError, AttributeError):
        return False
    _done = ok
    return ok
