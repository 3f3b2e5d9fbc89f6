"""``W ← W + α aᵀ d`` in one BLAS call: CBLAS ``?gemm`` with ``beta = 1`` through ctypes.

NumPy's ``matmul`` always overwrites its output; the SGD update wants ``W += −α xᵀ δ``, which BLAS
does in one pass with ``beta = 1`` (the weight gradient is never written out and read back).
"""

from __future__ import annotations

import ctypes
import functools
import os
from typing import Any

import numpy as np

__all__ = ["blas_thread_control", "cblas_gemm", "gemm_at_d"]

_ROW_MAJOR, _NO_TRANS, _TRANS = 101, 111, 112

#: entry-point name patterns: NumPy's wheels (``scipy_cblas_sgemm64_``, ILP64), then plain OpenBLAS
_PREFIXES = (
    ("scipy_cblas_", "64_", ctypes.c_int64),
    ("cblas_", "64_", ctypes.c_int64),
    ("scipy_cblas_", "", ctypes.c_int),
    ("cblas_", "", ctypes.c_int),
)


@functools.cache
def _numpy_openblas() -> tuple[Any, ...]:
    """The OpenBLAS libraries NumPy itself loaded (the ones threadpoolctl reports for NumPy, so
    thread limits apply to them), opened with ctypes."""
    try:
        from threadpoolctl import threadpool_info  # optional: finds the BLAS NumPy loaded
    except ImportError:
        return ()
    np_dir = os.path.dirname(os.path.dirname(np.__file__))
    libs = []
    for info in threadpool_info():
        path = info.get("filepath") or ""
        if info.get("internal_api") != "openblas" or not (
            "scipy_openblas" in os.path.basename(path) or path.startswith(np_dir + os.sep + "numpy")
        ):
            continue
        try:
            libs.append(ctypes.CDLL(path))
        except OSError:
            continue
    return tuple(libs)


@functools.cache
def cblas_gemm() -> dict[np.dtype, Any] | None:
    """``cblas_sgemm`` / ``cblas_dgemm`` of the OpenBLAS NumPy itself loaded, by dtype, or ``None``.

    A tiny self-test against ``np.matmul`` must pass, else this returns ``None`` and the caller
    keeps the two-step update. ``CHAINRULE_NO_CBLAS=1`` turns it off.
    """
    if os.environ.get("CHAINRULE_NO_CBLAS"):
        return None
    for lib in _numpy_openblas():
        for prefix, suffix, int_t in _PREFIXES:
            fns = _entry_points(lib, prefix, suffix, int_t)
            if fns is not None and _self_test(fns):
                return fns
    return None


@functools.cache
def blas_thread_control() -> tuple[Any, Any] | None:
    """``(get_num_threads(), set_num_threads_local(n) -> previous)`` of NumPy's OpenBLAS, or
    ``None``. The local setter (OpenBLAS ≥ 0.3.27) changes the calling thread's BLAS threads only,
    so a worker thread can run its GEMMs single-threaded while the process limit stays as set."""
    for lib in _numpy_openblas():
        local = getattr(lib, "openblas_set_num_threads_local", None)
        for name in (
            "scipy_openblas_get_num_threads64_",
            "openblas_get_num_threads64_",
            "openblas_get_num_threads",
        ):
            get = getattr(lib, name, None)
            if local is not None and get is not None:
                local.argtypes, local.restype, get.argtypes, get.restype = (
                    [ctypes.c_int],
                    ctypes.c_int,
                    [],
                    ctypes.c_int,
                )
                return get, local
    return None


def _entry_points(lib: Any, prefix: str, suffix: str, int_t: Any) -> dict[np.dtype, Any] | None:
    fns = {}
    for letter, dtype, real in (("s", np.float32, ctypes.c_float), ("d", np.float64, ctypes.c_double)):
        fn = getattr(lib, f"{prefix}{letter}gemm{suffix}", None)
        if fn is None:
            return None
        e, i, p = ctypes.c_int, int_t, ctypes.c_void_p
        fn.argtypes = [e, e, e, i, i, i, real, p, i, p, i, real, p, i]
        fn.restype = None
        fns[np.dtype(dtype)] = fn
    return fns


def gemm_at_d(fn: Any, a: np.ndarray, d: np.ndarray, w: np.ndarray, alpha: float) -> None:
    """``w ← w + α aᵀ d`` through CBLAS ``?gemm`` (row major, ``beta = 1``); all C-contiguous."""
    (k, m), n = a.shape, d.shape[1]
    fn(
        _ROW_MAJOR,
        _TRANS,
        _NO_TRANS,
        m,
        n,
        k,
        alpha,
        a.ctypes.data,
        m,
        d.ctypes.data,
        n,
        1.0,
        w.ctypes.data,
        n,
    )


def _self_test(fns: dict[np.dtype, Any]) -> bool:
    rng = np.random.default_rng(0)
    for dtype, fn in fns.items():
        a = rng.standard_normal((5, 3)).astype(dtype)
        d = rng.standard_normal((5, 4)).astype(dtype)
        w = rng.standard_normal((3, 4)).astype(dtype)
        want = w + 0.5 * (a.T @ d)
        gemm_at_d(fn, a, d, w, 0.5)
        if not np.allclose(w, want, rtol=1e-5, atol=1e-6):
            return False
    return True
