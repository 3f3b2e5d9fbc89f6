"""The run record: one training run (configuration, history, test evaluation, gradient flow) as one
typed object, :class:`RunRecord`.

``chainrule train --log RUN.json`` saves it, ``chainrule train --report`` and ``chainrule report
RUN.json`` render it, ``chainrule train --json`` prints a summary of it. On disk it is one JSON object::

    {
      "chainrule_version": "0.1.0",
      "config":        {...the train options...},
      "history":       History.to_dict()          (epochs: [{epoch, loss, accuracy, ...}], ...),
      "evaluation":    {"loss": float, "accuracy": float, "confusion": [[int]]}  or null,
      "gradient_flow": GradientFlow.to_dict()     or null
    }

:meth:`RunRecord.from_dict` validates (every problem is a :class:`RunRecordError` whose message names
the key), :meth:`RunRecord.to_dict` is its inverse, :meth:`RunRecord.load` / :meth:`RunRecord.save`
read and (atomically) write the file. NaN and Inf are written as ``null``, so the file is strict JSON.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from chainrule import __version__
from chainrule._io import atomic_write_text, json_default
from chainrule.errors import ChainruleError, DataError
from chainrule.train import History
from chainrule.train.flow import GradientFlow

__all__ = [
    "REQUIRED_KEYS",
    "Evaluation",
    "RunRecord",
    "RunRecordError",
    "history_from_dict",
    "is_number",
    "load_run",
]

REQUIRED_KEYS = ("config", "history", "evaluation", "gradient_flow", "chainrule_version")


MAX_DEPTH = 64  # JSON nesting a run record may have (its own is at most 4)
MAX_BYTES = 256 * 1024 * 1024  # a run record file is read whole


class RunRecordError(ChainruleError, ValueError):
    """A run record (``chainrule train --log`` JSON) is malformed or incomplete."""


@dataclass(frozen=True)
class Evaluation:
    """Test-set loss, accuracy and confusion matrix (rows: true class, columns: predicted)."""

    loss: float  # NaN when undefined (``null`` in JSON)
    accuracy: float
    confusion: list[list[int]]

    @classmethod
    def from_result(cls, ev: dict[str, Any]) -> Evaluation:
        """From the dict :func:`chainrule.train.loop.evaluate` returns."""
        return cls(
            loss=float(ev["loss"]),
            accuracy=float(ev["accuracy"]),
            confusion=np.asarray(ev["confusion"]).astype(int).tolist(),
        )

    @classmethod
    def from_dict(cls, ev: Any, source: str = "run record") -> Evaluation:
        """Validate ``{"loss", "accuracy", "confusion"}``; raises :class:`RunRecordError`."""
        if not isinstance(ev, dict):
            raise RunRecordError(f"{source}: 'evaluation' must be an object or null, got {_kind(ev)}")
        for key in ("loss", "accuracy", "confusion"):
            if key not in ev:
                raise RunRecordError(f"{source}: 'evaluation' has no '{key}'")
        for key in ("loss", "accuracy"):
            if not is_number(ev[key]) and ev[key] is not None:
                raise RunRecordError(f"{source}: evaluation.{key} must be a number, got {ev[key]!r}")
        c = ev["confusion"]
        if not (isinstance(c, list) and c and all(isinstance(r, list) and len(r) == len(c) for r in c)):
            raise RunRecordError(f"{source}: evaluation.confusion must be a square list of lists")
        if not all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for r in c for v in r):
            raise RunRecordError(f"{source}: evaluation.confusion must hold non-negative integer counts")
        loss, accuracy = (float(_from_json_number(ev[k])) for k in ("loss", "accuracy"))
        return cls(loss=loss, accuracy=accuracy, confusion=[list(r) for r in c])

    def to_dict(self) -> dict[str, Any]:
        return {
            "loss": _finite_or_none(self.loss),
            "accuracy": _finite_or_none(self.accuracy),
            "confusion": [list(r) for r in self.confusion],
        }


@dataclass
class RunRecord:
    """One training run. ``gradient_flow`` is kept in its JSON form (``GradientFlow.to_dict()``, it
    round-trips exactly); :attr:`flow` rebuilds the :class:`~chainrule.train.flow.GradientFlow`."""

    config: dict[str, Any]
    history: History
    evaluation: Evaluation | None = None
    gradient_flow: dict[str, Any] | None = None
    chainrule_version: str = field(default=__version__)

    @property
    def flow(self) -> GradientFlow | None:
        """The recorded gradient flow as an object (for plots), or None."""
        return None if self.gradient_flow is None else GradientFlow.from_dict(self.gradient_flow)

    def to_dict(self) -> dict[str, Any]:
        """The JSON-ready record (plain lists, numbers, strings; NaN/Inf as None)."""
        history = self.history.to_dict()
        history["epochs"] = [{k: _finite_or_none(v) for k, v in e.items()} for e in history["epochs"]]
        return {
            "chainrule_version": self.chainrule_version,
            "config": json.loads(json.dumps(self.config, default=json_default, allow_nan=True)),
            "history": history,
            "evaluation": None if self.evaluation is None else self.evaluation.to_dict(),
            "gradient_flow": None
            if self.gradient_flow is None
            else json.loads(json.dumps(self.gradient_flow)),
        }

    @classmethod
    def from_dict(cls, record: Any, source: str = "run record") -> RunRecord:
        """Validate a record of the shape :meth:`to_dict` writes; raises :class:`RunRecordError`
        naming the first problem found (``source`` starts the message)."""
        if not isinstance(record, dict):
            raise RunRecordError(f"{source}: a run record must be a JSON object, got {_kind(record)}")
        missing = [k for k in REQUIRED_KEYS if k not in record]
        if missing:
            raise RunRecordError(
                f"{source}: missing key{'s' if len(missing) > 1 else ''} {', '.join(repr(k) for k in missing)} "
                "(is this a file written by `chainrule train --log`?)"
            )
        if not isinstance(record["config"], dict):
            raise RunRecordError(f"{source}: 'config' must be an object, got {_kind(record['config'])}")
        if not isinstance(record["chainrule_version"], str):
            raise RunRecordError(f"{source}: 'chainrule_version' must be a string")
        history = history_from_dict(record["history"], source=source)
        ev = record["evaluation"]
        flow = record["gradient_flow"]
        if flow is not None:
            try:
                GradientFlow.from_dict(flow)
            except DataError as exc:
                raise RunRecordError(f"{source}: {exc}") from None
        return cls(
            config=dict(record["config"]),
            history=history,
            evaluation=None if ev is None else Evaluation.from_dict(ev, source),
            gradient_flow=flow,
            chainrule_version=record["chainrule_version"],
        )

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=1, allow_nan=False)

    @classmethod
    def from_json(cls, text: str, source: str = "run record") -> RunRecord:
        """Parse and validate JSON text; every problem is a :class:`RunRecordError`."""
        if not text.strip():
            raise RunRecordError(f"{source}: the file is empty")
        try:
            record = json.loads(text)
        except json.JSONDecodeError as exc:
            raise RunRecordError(
                f"{source}: not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})"
            ) from None
        except RecursionError:
            raise RunRecordError(f"{source}: JSON nested too deeply") from None
        if _too_deep(record, MAX_DEPTH):
            raise RunRecordError(f"{source}: JSON nested more than {MAX_DEPTH} levels deep")
        return cls.from_dict(record, source=source)

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the record as JSON to ``path`` atomically; returns the path."""
        target = Path(path)
        atomic_write_text(target, self.to_json())
        return target

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> RunRecord:
        """Read and validate a record. A missing file raises ``FileNotFoundError``; anything else
        wrong raises :class:`RunRecordError`."""
        p = Path(path)
        if p.is_dir():
            raise RunRecordError(f"{p}: is a directory, not a run record")
        if p.exists() and p.stat().st_size > MAX_BYTES:
            raise RunRecordError(
                f"{p}: {p.stat().st_size:,} bytes, larger than any run record ({MAX_BYTES:,} at most)"
            )
        try:
            text = p.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            raise RunRecordError(f"{p}: not a run record (not UTF-8 text)") from None
        return cls.from_json(text, source=str(p))


def _too_deep(value: Any, budget: int) -> bool:
    """Whether parsed JSON nests deeper than ``budget`` levels (stops early)."""
    if not isinstance(value, dict | list):
        return False
    if budget <= 0:
        return True
    items = value.values() if isinstance(value, dict) else value
    return any(_too_deep(v, budget - 1) for v in items)


def load_run(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read and validate the run record at ``path``; returns it as a dict (``RunRecord.to_dict()``)."""
    return RunRecord.load(path).to_dict()


def history_from_dict(d: Any, source: str = "run record") -> History:
    """Rebuild a :class:`~chainrule.train.loop.History` from its ``to_dict()`` (validated)."""
    if not isinstance(d, dict):
        raise RunRecordError(f"{source}: 'history' must be an object, got {_kind(d)}")
    epochs = d.get("epochs")
    if not isinstance(epochs, list):
        raise RunRecordError(f"{source}: 'history.epochs' must be a list of per-epoch records")
    for i, e in enumerate(epochs):
        if not isinstance(e, dict):
            raise RunRecordError(f"{source}: history.epochs[{i}] must be an object, got {_kind(e)}")
        if "loss" not in e:
            raise RunRecordError(f"{source}: history.epochs[{i}] has no 'loss'")
        for key, value in e.items():
            if not is_number(value) and value is not None:
                raise RunRecordError(f"{source}: history.epochs[{i}].{key} must be a number, got {value!r}")
    best = d.get("best_epoch")
    if best is not None and not (isinstance(best, int) and not isinstance(best, bool)):
        raise RunRecordError(f"{source}: 'history.best_epoch' must be an integer or null")
    if not isinstance(d.get("stopped_early", False), bool):
        raise RunRecordError(f"{source}: 'history.stopped_early' must be true or false")
    if not isinstance(d.get("runner", ""), str):
        raise RunRecordError(f"{source}: 'history.runner' must be a string")
    return History(
        epochs=[{k: _from_json_number(v) for k, v in e.items()} for e in epochs],
        stopped_early=bool(d.get("stopped_early", False)),
        best_epoch=best,
        runner=str(d.get("runner", "")),
    )


def _finite_or_none(v: Any) -> Any:
    """Numbers as Python floats, NaN/Inf as None; ints and other values unchanged."""
    if isinstance(v, bool) or v is None:
        return v
    if isinstance(v, int | np.integer):
        return int(v)
    if isinstance(v, float | np.floating):
        return float(v) if math.isfinite(v) else None
    return v


def _from_json_number(v: Any) -> Any:
    """A validated number as History and Evaluation hold it: None (NaN in JSON) back to NaN."""
    if v is None:
        return math.nan
    return v if isinstance(v, int) else float(v)


def is_number(v: Any) -> bool:
    """A JSON number: int or float, not bool."""
    return isinstance(v, int | float) and not isinstance(v, bool)


def _kind(v: Any) -> str:
    return {dict: "an object", list: "a list", str: "a string", type(None): "null"}.get(
        type(v), type(v).__name__
    )
