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
_ST_DTYPES = {"F32": "float32", "F64": "float64"}
MAX_DEPTH = 32  # JSON nesting in a model header


def _safetensors_numpy() -> Any:
    try:
        import safetensors.numpy as stn  # optional: the cli extra
    except ImportError as exc:
        raise MissingDependencyError("safetensors", "saving and loading models", "cli") from exc
    return stn


def save(net: Sequential, path: str | os.PathLike[str], info: dict[str, Any] | None = None) -> None:
    """Write ``net`` to ``path`` atomically (a temp file, then rename). Weights holding NaN or Inf
    are refused (:class:`ModelFileError`) before anything is written, so a diverged run never
    replaces a good model."""
    stn = _safetensors_numpy()
    state = [*net.named_params(), *net.named_buffers()]
    tensors = {name: np.ascontiguousarray(to_numpy(p.value)) for name, p in state}
    for name, arr in tensors.items():
        if not np.all(np.isfinite(arr)):
            raise ModelFileError(
                f"not saving {os.fspath(path)}: tensor {name!r} holds NaN or Inf (the run diverged; "
                "try a smaller --lr)"
            )
    metadata = {
        "chainrule_format": FORMAT_VERSION,
        "architecture": json.dumps(net.config()),
        "info": json.dumps(_finite_json(info or {}), default=_json_or_str),
    }
    atomic_write_bytes(path, stn.save(tensors, metadata=metadata))


def _finite_json(value: Any) -> Any:
    """``value`` with NaN/Inf floats as None: the loader reads strict JSON, which has neither."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite_json(v) for v in value]
    return value


def _json_or_str(obj: Any) -> Any:
    """NumPy values as JSON; anything else in ``info`` as its string."""
    try:
        return json_default(obj)
    except TypeError:
        return str(obj)


def _read_header(path: str | os.PathLike[str]) -> tuple[dict[str, Any], int, int]:
    """Parse the safetensors header ourselves first, for precise errors on hostile files.

    Returns ``(header, header_length, file_size)``; nothing beyond the header is read."""
    name = os.fspath(path)
    try:
        size = os.path.getsize(name)
        if os.path.isdir(name):
            raise ModelFileError(f"{name}: is a directory, not a model file")
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
    header = _parse_json(raw, f"{name}: not a chainrule model (its header")
    if not isinstance(header, dict):
        raise ModelFileError(f"{name}: not a chainrule model (header is not an object)")
    return header, n, size


def _reject_constant(token: str) -> Any:
    raise ValueError(f"non-finite number {token}")


def _finite_float(token: str) -> float:
    value = float(token)
    if not math.isfinite(value):
        raise ValueError(f"number {token[:40]} is out of range")
    return value


def _parse_json(raw: bytes | str, what: str) -> Any:
    """Strict JSON: no NaN/Infinity, no float that overflows, nesting at most :data:`MAX_DEPTH`.

    ``what`` starts the message (``"<file>: ... (its header"``); every failure is a
    :class:`ModelFileError`."""
    try:
        value = json.loads(raw, parse_constant=_reject_constant, parse_float=_finite_float)
    except RecursionError:
        raise ModelFileError(f"{what} is nested too deeply)") from None
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise ModelFileError(f"{what} is not valid JSON)") from None
    except ValueError as exc:
        raise ModelFileError(f"{what} is not valid JSON: {exc})") from None
    if _depth(value) > MAX_DEPTH:
        raise ModelFileError(f"{what} is nested more than {MAX_DEPTH} levels deep)")
    return value


def _depth(value: Any, level: int = 0) -> int:
    """Nesting depth of parsed JSON (stops counting past :data:`MAX_DEPTH`)."""
    if level > MAX_DEPTH or not isinstance(value, dict | list):
        return level
    items = value.values() if isinstance(value, dict) else value
    return max((_depth(v, level + 1) for v in items), default=level + 1)


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _tensor_table(
    name: str, header: dict[str, Any], n: int, size: int
) -> dict[str, tuple[tuple[int, ...], str, int]]:
    """Check every tensor entry (dtype, shape, offsets inside the file, one float dtype for all);
    return ``{key: (shape, dtype, file offset)}``. Nothing is allocated."""
    table: dict[str, tuple[tuple[int, ...], str, int]] = {}
    payload = size - 8 - n
    for key, entry in header.items():
        if key == "__metadata__":
            continue
        if not isinstance(entry, dict) or entry.get("dtype") not in _ST_DTYPES:
            raise ModelFileError(f"{name}: tensor {key!r} has an unsupported dtype (float32/float64 only)")
        shape, offsets = entry.get("shape"), entry.get("data_offsets")
        if not isinstance(shape, list) or len(shape) > 8 or not all(_is_int(d) and d >= 0 for d in shape):
            raise ModelFileError(f"{name}: tensor {key!r} has a malformed shape {str(shape)[:80]}")
        if (
            not isinstance(offsets, list)
            or len(offsets) != 2
            or not all(_is_int(o) for o in offsets)
            or not 0 <= offsets[0] <= offsets[1] <= payload
        ):
            raise ModelFileError(f"{name}: tensor {key!r} has data offsets outside the file")
        dtype = _ST_DTYPES[entry["dtype"]]
        if offsets[1] - offsets[0] != math.prod(shape) * np.dtype(dtype).itemsize:
            raise ModelFileError(
                f"{name}: tensor {key!r}: its byte range does not match shape {tuple(shape)}"
            )
        table[key] = (tuple(shape), dtype, 8 + n + offsets[0])
    if len({dt for _, dt, _ in table.values()}) > 1:
        raise ModelFileError(f"{name}: tensors mix float32 and float64 (a model has one dtype)")
    return table


def _metadata(name: str, header: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
    """The parsed ``architecture`` and ``info`` of the header's metadata (types checked)."""
    meta = header.get("__metadata__") or {}
    if not isinstance(meta, dict) or meta.get("chainrule_format") is None:
        raise ModelFileError(f"{name}: a safetensors file, but not a chainrule model (no chainrule metadata)")
    if not all(isinstance(v, str) for v in meta.values()):
        raise ModelFileError(f"{name}: metadata values must be strings")
    if meta["chainrule_format"] != FORMAT_VERSION:
        raise ModelFileError(
            f"{name}: model format {meta['chainrule_format'][:40]!r} is not supported (this chainrule reads "
            f"{FORMAT_VERSION!r})"
        )
    arch = _parse_json(meta.get("architecture", ""), f"{name}: the architecture metadata (it")
    info = _parse_json(meta.get("info", "{}"), f"{name}: the info metadata (it")
    if not isinstance(arch, dict) or not isinstance(arch.get("layers"), list):
        raise ModelFileError(f"{name}: bad architecture: an object with a 'layers' list is needed")
    if not isinstance(info, dict):
        raise ModelFileError(f"{name}: the info metadata must be a JSON object")
    names = info.get("class_names")
    if names is not None and (not isinstance(names, list) or not all(isinstance(s, str) for s in names)):
        raise ModelFileError(f"{name}: info 'class_names' must be a list of strings")
    k = info.get("n_classes")
    if k is not None and (not _is_int(k) or k < 0):
        raise ModelFileError(f"{name}: info 'n_classes' must be a non-negative integer")
    for key in ("input_dim",):
        v = arch.get(key)
        if v is not None and (not _is_int(v) or v < 1):
            raise ModelFileError(f"{name}: bad architecture: {key} must be a positive integer, got {v!r}")
    return arch, info


def _declared_shapes(name: str, arch: dict[str, Any]) -> dict[str, tuple[int, ...]]:
    """``{"<layer index>.<name>": shape}`` from each layer class's ``state_shapes`` (computed from the
    JSON, before anything is allocated); unknown or malformed layers are refused here."""
    shapes: dict[str, tuple[int, ...]] = {}
    for i, cfg in enumerate(arch["layers"]):
        if not isinstance(cfg, dict) or not isinstance(cfg.get("type"), str):
            raise ModelFileError(f"{name}: bad architecture: layer {i} must be an object with a 'type'")
        cls = LAYERS.get(cfg["type"])
        if cls is None:
            raise ModelFileError(
                f"{name}: bad architecture: unknown layer type {cfg['type'][:40]!r}; known: {', '.join(sorted(LAYERS))}"
            )
        try:
            declared = cls.state_shapes({k: v for k, v in cfg.items() if k != "type"})
        except ChainruleError as exc:
            raise ModelFileError(f"{name}: bad architecture: layer {i}: {exc}") from None
        except Exception as exc:  # a hostile config must not reach a traceback
            raise ModelFileError(f"{name}: bad architecture: layer {i} ({type(exc).__name__})") from None
        for key, shape in declared.items():
            shapes[f"{i}.{key}"] = tuple(int(d) for d in shape)
    return shapes


def _same(given: Any, rebuilt: Any) -> bool:
    """Whether a config value survives the round trip unchanged (3.7 -> 3 and true -> 1 do not)."""
    if isinstance(given, bool) or isinstance(rebuilt, bool):
        return type(given) is type(rebuilt) and given == rebuilt
    if isinstance(given, float) and _is_int(rebuilt):
        return False
    if isinstance(given, list | tuple) and isinstance(rebuilt, list | tuple):
        return len(given) == len(rebuilt) and all(_same(a, b) for a, b in zip(given, rebuilt, strict=True))
    if isinstance(given, dict) and isinstance(rebuilt, dict):
        return all(k in rebuilt and _same(v, rebuilt[k]) for k, v in given.items())
    return bool(given == rebuilt)


def _build(name: str, arch: dict[str, Any], table: dict[str, Any]) -> Sequential:
    """Check the declared shapes against the tensor table, then build the network (zero weights,
    bounded by the file's own size) and check each layer's config reads back as written."""
    declared = _declared_shapes(name, arch)
    n_params = sum(math.prod(s) for s in declared.values())
    if n_params > MAX_PARAMS:
        raise ModelFileError(
            f"{name}: architecture declares {n_params} parameters, over the limit of {MAX_PARAMS}"
        )
    for key, shape in declared.items():
        if key not in table:
            raise ModelFileError(f"{name}: weights do not match the architecture (missing [{key!r}])")
        if table[key][0] != shape:
            raise ModelFileError(
                f"{name}: tensor {key!r} has shape {table[key][0]}, architecture says {shape}"
            )
    try:
        net = from_config(arch)
    except ChainruleError as exc:
        raise ModelFileError(f"{name}: bad architecture: {exc}") from None
    except Exception as exc:  # a hostile config must not reach a traceback
        raise ModelFileError(f"{name}: bad architecture ({type(exc).__name__})") from None
    for i, (cfg, layer) in enumerate(zip(arch["layers"], net.layers, strict=True)):
        rebuilt = layer.config()
        for key, value in cfg.items():
            if key not in rebuilt or not _same(value, rebuilt[key]):
                raise ModelFileError(
                    f"{name}: bad architecture: layer {i} ({cfg['type']}) field {key!r} = {str(value)[:40]} "
                    f"is not a valid value (it would be read as {str(rebuilt.get(key))[:40]})"
                )
    return net


def load_with_info(path: str | os.PathLike[str], dtype: Any = None) -> tuple[Sequential, dict[str, Any]]:
    """Load a network and the ``info`` saved with it. ``dtype`` casts the weights if given.

    Every field is checked before any array exists: header types, ranges and finiteness, the
    tensor table against the file size, and the architecture's declared shapes (each layer class's
    ``state_shapes``) against the tensor table; memory is then bounded by the file's size."""
    name = os.fspath(path)
    header, n, size = _read_header(name)
    arch, info = _metadata(name, header)
    table = _tensor_table(name, header, n, size)
    net = _build(name, arch, table)
    expected: dict[str, Any] = {**dict(net.named_params()), **dict(net.named_buffers())}
    missing = sorted(set(expected) - set(table))
    extra = sorted(set(table) - set(expected))
    if missing or extra:
        raise ModelFileError(
            f"{name}: weights do not match the architecture (missing {missing[:5]}, unexpected {extra[:5]})"
        )
    with open(name, "rb") as fh:
        for key, p in expected.items():
            shape, dt, offset = table[key]
            if shape != p.shape:
                raise ModelFileError(f"{name}: tensor {key!r} has shape {shape}, architecture says {p.shape}")
            fh.seek(offset)
            arr = np.fromfile(fh, dtype=np.dtype(dt).newbyteorder("<"), count=math.prod(shape)).reshape(shape)
            if not np.all(np.isfinite(arr)):
                raise ModelFileError(f"{name}: tensor {key!r} contains NaN or Inf")
            p.value = arr.astype(dtype or dt, copy=False)
            if isinstance(p, Param):
                p.grad = np.zeros(p.value.shape, p.value.dtype)  # calloc: no pages touched yet
    return net, info


def load(path: str | os.PathLike[str], dtype: Any = None) -> Sequential:
    """Load a network saved by :func:`save` (NumPy backend; ``net.to(backend)`` to move it)."""
    return load_with_info(path, dtype)[0]
