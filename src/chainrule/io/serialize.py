"""Save and load networks: architecture as JSON, weights as safetensors, no pickle anywhere.

One ``.safetensors`` file holds both: the tensors ``"<layer index>.<name>"`` (``"0.W"``,
``"0.b"``, ..., each parameter once even when layers share it, and every buffer) and, in the header's string metadata, ``chainrule_format`` (the format version),
``architecture`` (the JSON of :meth:`Sequential.config`) and ``info`` (free JSON: class names,
training configuration). Loading parses JSON and raw little-endian arrays only, so a hostile
file can at worst fail to load: nothing in it is executed.

A file is refused with :class:`~chainrule.errors.ModelFileError` when it is truncated or not a
safetensors file, when its architecture names an unknown layer or is too large, when a tensor is
missing, unexpected, of the wrong shape or dtype, or holds NaN/Inf.
"""

from __future__ import annotations

import json
import math
import os
from typing import Any

import numpy as np

from chainrule._io import atomic_write_bytes, json_default
from chainrule.backend import to_numpy
from chainrule.errors import ChainruleError, MissingDependencyError, ModelFileError
from chainrule.nn.builders import from_config
from chainrule.nn.layer import LAYERS
from chainrule.nn.model import Sequential
from chainrule.nn.params import Param

__all__ = ["FORMAT_VERSION", "load", "load_with_info", "save"]

FORMAT_VERSION = "1"
MAX_PARAMS = 500_000_000  # refuse architectures that would allocate absurd amounts of memory
MAX_HEADER_BYTES = 100 * 1024 * 1024
_DTYPES = {"float32", "float64"}


def _safetensors_numpy() -> Any:
    try:
        import safetensors.numpy as stn  # optional: the cli extra
    except ImportError as exc:
        raise MissingDependencyError("safetensors", "saving and loading models", "cli") from exc
    return stn


def save(net: Sequential, path: str | os.PathLike[str], info: dict[str, Any] | None = None) -> None:
    """Write ``net`` to ``path`` atomically (a temp file, then rename)."""
    stn = _safetensors_numpy()
    state = [*net.named_params(), *net.named_buffers()]
    tensors = {name: np.ascontiguousarray(to_numpy(p.value)) for name, p in state}
    metadata = {
        "chainrule_format": FORMAT_VERSION,
        "architecture": json.dumps(net.config()),
        "info": json.dumps(info or {}, default=_json_or_str),
    }
    atomic_write_bytes(path, stn.save(tensors, metadata=metadata))


def _json_or_str(obj: Any) -> Any:
    """NumPy values as JSON; anything else in ``info`` as its string."""
    try:
        return json_default(obj)
    except TypeError:
        return str(obj)


def _read_header(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Parse the safetensors header ourselves first, for precise errors on hostile files."""
    name = os.fspath(path)
    try:
        size = os.path.getsize(name)
        with open(name, "rb") as fh:
            head = fh.read(8)
            if len(head) < 8:
                raise ModelFileError(f"{name}: not a chainrule model (file too short: {size} bytes)")
            n = int.from_bytes(head, "little")
            if n > MAX_HEADER_BYTES or n + 8 > size:
                raise ModelFileError(
                    f"{name}: not a chainrule model (header length {n} does not fit a {size}-byte file; "
                    "truncated or not safetensors)"
                )
            raw = fh.read(n)
    except FileNotFoundError:
        raise FileNotFoundError(2, "model file not found", name) from None
    try:
        header = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise ModelFileError(f"{name}: not a chainrule model (its header is not valid JSON)") from None
    if not isinstance(header, dict):
        raise ModelFileError(f"{name}: not a chainrule model (header is not an object)")
    return header


def load_with_info(path: str | os.PathLike[str], dtype: Any = None) -> tuple[Sequential, dict[str, Any]]:
    """Load a network and the ``info`` saved with it. ``dtype`` casts the weights if given."""
    name = os.fspath(path)
    header = _read_header(name)
    meta = header.get("__metadata__") or {}
    if not isinstance(meta, dict) or meta.get("chainrule_format") is None:
        raise ModelFileError(f"{name}: a safetensors file, but not a chainrule model (no chainrule metadata)")
    if meta["chainrule_format"] != FORMAT_VERSION:
        raise ModelFileError(
            f"{name}: model format {meta['chainrule_format']!r} is not supported (this chainrule reads "
            f"{FORMAT_VERSION!r})"
        )
    try:
        arch = json.loads(meta.get("architecture", ""))
        info = json.loads(meta.get("info", "{}"))
    except json.JSONDecodeError:
        raise ModelFileError(f"{name}: the architecture metadata is not valid JSON") from None
    for key, entry in header.items():
        if key == "__metadata__":
            continue
        if not isinstance(entry, dict) or entry.get("dtype") not in ("F32", "F64"):
            raise ModelFileError(f"{name}: tensor {key!r} has an unsupported dtype (float32/float64 only)")
    n_params = _declared_params(arch)
    if n_params > MAX_PARAMS:
        raise ModelFileError(
            f"{name}: architecture declares {n_params} parameters, over the limit of {MAX_PARAMS}"
        )
    try:
        net = from_config(arch)
    except ChainruleError as exc:
        raise ModelFileError(f"{name}: bad architecture: {exc}") from None
    stn = _safetensors_numpy()
    try:
        tensors = stn.load_file(name)
    except Exception as exc:
        raise ModelFileError(f"{name}: corrupt weights ({type(exc).__name__}: {exc})") from None
    expected: dict[str, Any] = {**dict(net.named_params()), **dict(net.named_buffers())}
    missing = sorted(set(expected) - set(tensors))
    extra = sorted(set(tensors) - set(expected))
    if missing or extra:
        raise ModelFileError(
            f"{name}: weights do not match the architecture (missing {missing}, unexpected {extra})"
        )
    for key, p in expected.items():
        arr = tensors[key]
        if tuple(arr.shape) != p.shape:
            raise ModelFileError(
                f"{name}: tensor {key!r} has shape {tuple(arr.shape)}, architecture says {p.shape}"
            )
        if arr.dtype.name not in _DTYPES:
            raise ModelFileError(f"{name}: tensor {key!r} has dtype {arr.dtype}")
        if not np.all(np.isfinite(arr)):
            raise ModelFileError(f"{name}: tensor {key!r} contains NaN or Inf")
        p.value = np.array(arr, dtype=dtype or arr.dtype)
        if isinstance(p, Param):
            p.grad = np.zeros_like(p.value)
    return net, info if isinstance(info, dict) else {}


def _declared_params(arch: Any) -> int:
    """Entries an architecture asks for, from each layer class's ``state_shapes`` (computed from the
    JSON, before anything is allocated). Unknown or malformed layers count 0: ``from_config``
    reports them."""
    total = 0
    layers = arch.get("layers") if isinstance(arch, dict) else None
    for cfg in layers if isinstance(layers, list) else []:
        cls = LAYERS.get(cfg.get("type")) if isinstance(cfg, dict) else None
        if cls is None:
            continue
        try:
            shapes = cls.state_shapes({k: v for k, v in cfg.items() if k != "type"})
        except ChainruleError:
            continue
        total += sum(math.prod(abs(int(d)) for d in s) for s in shapes.values())
    return total


def load(path: str | os.PathLike[str], dtype: Any = None) -> Sequential:
    """Load a network saved by :func:`save` (NumPy backend; ``net.to(backend)`` to move it)."""
    return load_with_info(path, dtype)[0]
