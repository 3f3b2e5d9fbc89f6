"""The one module that knows NumPy from CuPy from PyTorch tensors.

Layer code never imports NumPy, CuPy or torch. It asks for the array namespace of the arrays it
is given (``xp = namespace(x)``) and writes the formula with Python array API calls, so the same
``Dense.backward`` runs on a NumPy array on the CPU, a CuPy array on a GPU, or a torch tensor used
as a plain array (autograd is never used: every gradient in chainrule is the hand-derived one).

A :class:`Backend` is a named (namespace, device) pair that moves arrays across the boundary:
``backend.asarray(numpy_array)`` in, :func:`to_numpy` out. Arrays never cross silently: a model and
its data must be on the same backend, and a mismatch is an error, not a copy.

Backends: ``numpy`` (the default; CPU), ``torch`` (CPU or CUDA; needs ``chainrule[torch]``) and
``cupy`` (CUDA; needs ``chainrule[cuda]``). :func:`get_backend` resolves names and devices, with
``cuda`` mapping to the fastest available GPU backend.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from chainrule.errors import BackendError, MissingDependencyError

__all__ = [
    "Backend",
    "available_backends",
    "get_backend",
    "namespace",
    "numpy_backend",
    "to_numpy",
]

Array = Any  # an array of any supported backend


def _type_module(x: Any) -> str:
    return type(x).__module__.split(".", 1)[0]


def namespace(*arrays: Any) -> Any:
    """Return the array API namespace of ``arrays`` (NumPy itself for NumPy arrays).

    NumPy >= 2 is an array API namespace on its own, so the default path imports nothing else; the
    other backends go through ``array_api_compat``.
    """
    if all(type(a) is np.ndarray for a in arrays):  # the common case, on every hot path: no set
        return np
    mods = {_type_module(a) for a in arrays if a is not None and not isinstance(a, int | float)}
    if not mods or mods == {"numpy"}:
        return np
    if len(mods) > 1:
        raise BackendError(
            f"arrays from different backends were mixed ({', '.join(sorted(mods))}); "
            "move them to one backend first (model.to(backend), backend.asarray(x))"
        )
    try:
        import array_api_compat  # optional: only for non-NumPy arrays
    except ImportError as exc:  # pragma: no cover - only without the extra
        raise MissingDependencyError("array-api-compat", "non-NumPy arrays", "torch") from exc
    return array_api_compat.array_namespace(*arrays)


def to_numpy(x: Any) -> np.ndarray:
    """Copy any backend's array to a NumPy array on the host (the one explicit boundary)."""
    if isinstance(x, np.ndarray):
        return x
    mod = _type_module(x)
    if mod == "torch":
        return x.detach().cpu().numpy()
    if mod == "cupy":
        return x.get()
    return np.asarray(x)


@dataclass(frozen=True)
class Backend:
    """A named array backend on one device.

    Attributes:
        name: ``"numpy"``, ``"torch"`` or ``"cupy"``.
        device: ``"cpu"`` or ``"cuda"`` (``"cuda:N"`` accepted for torch and cupy).
        xp: the array API namespace used by layer code.
    """

    name: str
    device: str = "cpu"
    xp: Any = field(default=np, compare=False, repr=False)

    def asarray(self, x: Any, dtype: Any = None) -> Array:
        """Move a host array (or any array) onto this backend, as ``dtype`` if given.

        ``dtype`` may be a NumPy dtype, a dtype name (``"float32"``) or any backend's dtype object
        (``torch.float32``); it is translated to this backend's own.
        """
        dt = None if dtype is None else _np_dtype(dtype)
        if self.name == "numpy":
            out = np.asarray(to_numpy(x))
            return out if dt is None else out.astype(dt, copy=False)
        if self.name == "torch":
            import torch  # optional: the torch extra

            t = x if _type_module(x) == "torch" else torch.from_numpy(np.ascontiguousarray(x))
            return t.to(device=self.device, dtype=None if dt is None else getattr(torch, dt.name))
        import cupy  # optional: the cuda extra

        with cupy.cuda.Device(_cuda_index(self.device)):
            return cupy.asarray(x, dtype=dt)

    def dtype(self, name: Any) -> Any:
        """This backend's dtype object for a NumPy dtype, a name, or another backend's dtype."""
        name = _np_dtype(name).name
        return getattr(self.xp, name)

    def synchronize(self) -> None:
        """Wait for queued device work (a no-op on the CPU); used only around timers."""
        if self.name == "torch" and self.device.startswith("cuda"):
            import torch  # optional: the torch extra

            torch.cuda.synchronize()
        elif self.name == "cupy":
            import cupy  # optional: the cuda extra

            cupy.cuda.get_current_stream().synchronize()

    def __str__(self) -> str:
        return f"{self.name}:{self.device}"


def _np_dtype(dtype: Any) -> np.dtype:
    """The NumPy dtype for a NumPy dtype, a name, or a torch/CuPy dtype object (``torch.float32``)."""
    if _type_module(dtype) == "torch":
        return np.dtype(str(dtype).removeprefix("torch."))
    return np.dtype(dtype)


def _cuda_index(device: str) -> int:
    return int(device.split(":", 1)[1]) if ":" in device else 0


numpy_backend = Backend("numpy", "cpu", np)


def _has(mod: str) -> bool:
    return importlib.util.find_spec(mod) is not None


def _torch_cuda() -> bool:
    if not _has("torch"):
        return False
    import torch  # optional: the torch extra

    return bool(torch.cuda.is_available())


def _cupy_cuda() -> bool:
    if not _has("cupy"):
        return False
    try:
        import cupy  # optional: the cuda extra

        return cupy.cuda.runtime.getDeviceCount() > 0
    except Exception:
        return False


def available_backends() -> list[str]:
    """Names of the backends usable on this machine, e.g. ``['numpy:cpu', 'torch:cpu']``."""
    out = ["numpy:cpu"]
    if _has("torch"):
        out.append("torch:cpu")
        if _torch_cuda():
            out.append("torch:cuda")
    if _cupy_cuda():
        out.append("cupy:cuda")
    return out


def get_backend(name: str | None = None, device: str | None = None) -> Backend:
    """Resolve a backend from a name and a device.

    ``get_backend()`` is NumPy on the CPU. ``device="cuda"`` with no name picks torch (its
    hand-written step can be captured as a CUDA graph) and falls back to CuPy. Asking for a
    backend or device that is not there raises :class:`BackendError` or
    :class:`MissingDependencyError` naming what is missing.
    """
    dev = (device or "").lower() or None
    if dev is not None and not (dev == "cpu" or dev == "cuda" or dev.startswith("cuda:")):
        raise BackendError(f"unknown device {device!r}: choose cpu or cuda")
    if name is None:
        if dev is None or dev == "cpu":
            return numpy_backend
        if _torch_cuda():
            name = "torch"
        elif _cupy_cuda():
            name = "cupy"
        else:
            raise BackendError("device cuda asked for, but no CUDA GPU is visible to torch or cupy")
    name = name.lower()
    if name == "numpy":
        if dev not in (None, "cpu"):
            raise BackendError("the numpy backend runs on the CPU only; use --backend cupy or torch")
        return numpy_backend
    if name == "torch":
        if not _has("torch"):
            raise MissingDependencyError("torch", "the torch backend", "torch")
        import array_api_compat.torch as xp_torch  # optional: the torch extra

        dev = dev or "cpu"
        if dev.startswith("cuda") and not _torch_cuda():
            raise BackendError("torch is installed but sees no CUDA GPU")
        return Backend("torch", dev, xp_torch)
    if name == "cupy":
        if not _has("cupy"):
            raise MissingDependencyError("cupy", "the cupy backend", "cuda")
        if dev == "cpu":
            raise BackendError("the cupy backend runs on CUDA GPUs only")
        if not _cupy_cuda():
            raise BackendError("cupy is installed but no CUDA GPU is visible")
        import array_api_compat.cupy as xp_cupy  # optional: the cuda extra

        return Backend("cupy", dev or "cuda", xp_cupy)
    raise BackendError(f"unknown backend {name!r}: choose numpy, torch or cupy")


def backend_of(x: Any) -> Backend:
    """The :class:`Backend` an existing array lives on."""
    mod = _type_module(x)
    if mod == "numpy":
        return numpy_backend
    if mod == "torch":
        return get_backend("torch", str(x.device))
    if mod == "cupy":
        return get_backend("cupy", f"cuda:{x.device.id}")
    raise BackendError(f"unsupported array type {type(x).__name__}")
