"""Checkpoints: everything :func:`~chainrule.train.loop.fit` needs to continue a run exactly.

A checkpoint is one file, ``DIR/checkpoint.npz``, written atomically (a temp file beside it, fsync,
rename), so a run killed at any moment leaves the previous checkpoint or the new one, never half of
one. It holds:

* the weights and buffers (``net.named_params()``/``named_buffers()``),
* the optimiser's rate, step count ``t`` and per-parameter state (velocities, Adam's moments),
* the shuffling generator's state (so the next epoch draws the same permutation),
* the epoch reached, whether training had stopped, the history so far,
* every callback's ``state_dict()`` (early stopping's best weights, schedules, the guard), and
* ``meta``: what the caller wants checked on resume (the job stores its training options there).

Arrays are stored as arrays; everything else as one JSON string (floats round-trip exactly), and the
file is read back with ``allow_pickle=False``.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from chainrule._io import atomic_open
from chainrule.backend import to_numpy
from chainrule.errors import ChainruleError, ConfigError
from chainrule.nn.model import Sequential
from chainrule.optim import Optimizer
from chainrule.train.callbacks import Callback, History

__all__ = ["CHECKPOINT_FILE", "Checkpoint", "CheckpointError", "Resume", "load_checkpoint"]

CHECKPOINT_FILE = "checkpoint.npz"
FORMAT = 1


class CheckpointError(ChainruleError, ValueError):
    """A checkpoint is missing, damaged, or does not belong to this run."""


def _encode(obj: Any, arrays: dict[str, np.ndarray]) -> Any:
    """JSON for ``obj`` with every array moved into ``arrays`` (replaced by ``{"__array__": key}``)."""
    if isinstance(obj, dict):
        return {str(k): _encode(v, arrays) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_encode(v, arrays) for v in obj]
    if obj is None or isinstance(obj, bool | int | float | str):
        return obj
    if isinstance(obj, np.generic):
        return obj.item()
    key = f"a{len(arrays)}"
    arrays[key] = np.ascontiguousarray(to_numpy(obj))
    return {"__array__": key}


def _decode(obj: Any, arrays: Any) -> Any:
    if isinstance(obj, dict):
        if set(obj) == {"__array__"}:
            return np.array(arrays[obj["__array__"]])
        return {k: _decode(v, arrays) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_decode(v, arrays) for v in obj]
    return obj


def _stateful(callbacks: list[Callback]) -> list[Callback]:
    return [cb for cb in callbacks if hasattr(cb, "state_dict")]


class Checkpoint:
    """Write ``DIR/checkpoint.npz`` every ``every`` epochs, and when training ends or stops."""

    def __init__(self, directory: str | os.PathLike[str], every: int = 1, meta: dict[str, Any] | None = None):
        if every < 1:
            raise ConfigError(f"checkpoint interval must be at least 1 epoch, got {every}")
        self.directory, self.every, self.meta = Path(directory), int(every), dict(meta or {})

    @property
    def path(self) -> Path:
        return self.directory / CHECKPOINT_FILE

    def due(self, epoch: int, last: bool) -> bool:
        return last or epoch % self.every == 0

    def save(
        self,
        net: Sequential,
        opt: Optimizer,
        rng: np.random.Generator,
        history: History,
        callbacks: list[Callback],
        *,
        epoch: int,
        stopped: bool,
    ) -> None:
        arrays: dict[str, np.ndarray] = {}
        doc = {
            "format": FORMAT,
            "epoch": epoch,
            "stopped": stopped,
            "meta": self.meta,
            "history": history.to_dict(),
            "rng": rng.bit_generator.state,
            "optimizer": {"lr": opt.lr, "t": opt.t, "state": _encode(opt._state, arrays)},
            "params": _encode({n: p.value for n, p in [*net.named_params(), *net.named_buffers()]}, arrays),
            "callbacks": [_encode(cb.state_dict(), arrays) for cb in _stateful(callbacks)],  # type: ignore[attr-defined]
        }
        arrays["__doc__"] = np.array(json.dumps(doc))
        self.directory.mkdir(parents=True, exist_ok=True)
        with atomic_open(self.path, "wb") as fh:
            np.savez(fh, **arrays)


@dataclass
class Resume:
    """A loaded checkpoint: :meth:`apply` puts it into a run that was set up the same way."""

    doc: dict[str, Any]
    path: Path

    @property
    def epoch(self) -> int:
        return int(self.doc["epoch"])

    @property
    def stopped(self) -> bool:
        return bool(self.doc["stopped"])

    @property
    def meta(self) -> dict[str, Any]:
        return self.doc.get("meta") or {}

    def apply(
        self,
        net: Sequential,
        opt: Optimizer,
        rng: np.random.Generator,
        history: History,
        callbacks: list[Callback],
    ) -> None:
        backend = net.backend
        saved = self.doc["params"]
        named = [*net.named_params(), *net.named_buffers()]
        if sorted(saved) != sorted(n for n, _ in named):
            raise CheckpointError(f"{self.path}: its weights do not match this network")
        for name, p in named:
            value = saved[name]
            if tuple(value.shape) != tuple(p.value.shape):
                raise CheckpointError(
                    f"{self.path}: {name} has shape {value.shape}, the network {p.value.shape}"
                )
            p.value[...] = backend.asarray(value.astype(to_numpy(p.value).dtype))
        o = self.doc["optimizer"]
        opt.lr, opt.t = float(o["lr"]), int(o["t"])
        opt._state = _to_backend(o["state"], backend)
        rng.bit_generator.state = self.doc["rng"]
        h = self.doc["history"]
        history.epochs = list(h["epochs"])
        history.stopped_early, history.best_epoch = bool(h["stopped_early"]), h["best_epoch"]
        states = self.doc["callbacks"]
        stateful = _stateful(callbacks)
        if len(states) != len(stateful):
            raise CheckpointError(
                f"{self.path}: saved with other callbacks (schedule, early stopping) than this run"
            )
        for cb, state in zip(stateful, states, strict=True):
            cb.load_state_dict(_to_backend(state, backend))  # type: ignore[attr-defined]


def _to_backend(obj: Any, backend: Any) -> Any:
    if isinstance(obj, np.ndarray):
        return backend.asarray(obj)
    if isinstance(obj, dict):
        return {k: _to_backend(v, backend) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_to_backend(v, backend) for v in obj]
    return obj


def load_checkpoint(directory: str | os.PathLike[str]) -> Resume:
    """Read ``DIR/checkpoint.npz`` (no pickle); :class:`CheckpointError` if missing or damaged."""
    path = Path(directory) / CHECKPOINT_FILE
    if not path.is_file():
        raise CheckpointError(f"no checkpoint in {directory} (expected {path})")
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
        doc = json.loads(str(arrays.pop("__doc__")))
        if not isinstance(doc, dict) or doc.get("format") != FORMAT:
            raise CheckpointError(f"{path}: unknown checkpoint format")
        return Resume(_decode(doc, arrays), path)
    except CheckpointError:
        raise
    except Exception as exc:  # a damaged zip, JSON or array: one message naming the file
        raise CheckpointError(f"{path}: damaged checkpoint ({type(exc).__name__}: {exc})") from None
