"""What every post's module shares: the result records, the data records, the evaluation loop, helpers.

A post's module holds its formulas as :class:`CheckRecord` data and its slips as :class:`SlipRecord`
data; its ``measure()`` runs the library once and returns the measured values by name. A
:class:`Section` joins the three, and :meth:`Section.evaluate` turns them into :class:`SeedCheck`
and :class:`Slip` results.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from chainrule.inspect.explain import explain
from chainrule.inspect.gradcheck import gradcheck
from chainrule.inspect.trace import LayerTrace, trace
from chainrule.nn.builders import mlp
from chainrule.nn.layer import Layer
from chainrule.nn.model import Sequential
from chainrule.optim import SGD

__all__ = [
    "CONCEPTUAL",
    "EXACT",
    "FORMULA",
    "KINDS",
    "NO_CHECK",
    "NUMERIC",
    "SEEDS",
    "TEXT_ONLY",
    "CheckRecord",
    "Measurements",
    "Section",
    "SeedCheck",
    "Slip",
    "SlipCheck",
    "SlipRecord",
    "Verdict",
    "Wording",
    "explained",
    "fmt_list",
    "gc",
    "maxabs",
    "measured",
    "net",
    "resolve",
    "rng",
    "run_layer",
    "sgd_step",
    "text_only",
    "traced",
]

SEEDS = {
    "000": "deeplearning 反向传播的数学推导",
    "001": "神经网络推导",
    "002": "这！就是深度学习之反向传播算法(四十)",
    "003": "神经网络训练的理论推导",
    "004": "反向传播算法及其梯度扩散",
}
EXACT = 1e-12  # "exact" comparisons: float64 round-off only

#: the kinds of slip: a wrong printed number; a wrong formula, index, shape or label; a wrong claim in
#: prose; and wording or typesetting only (no live check: there is nothing to compute)
NUMERIC, FORMULA, CONCEPTUAL, TEXT_ONLY = "numeric", "formula", "conceptual", "text-only"
KINDS = (NUMERIC, FORMULA, CONCEPTUAL, TEXT_ONLY)
NO_CHECK = "none: text-only (wording or typesetting; nothing to compute)"

Measurements = Mapping[str, Any]


# -- results ------------------------------------------------------------------------------------
@dataclass
class SeedCheck:
    """One formula of one post, its implementation in chainrule, and a check run live."""

    seed: str
    topic: str
    post: str
    rows: str
    implementation: str
    check: str
    value: float
    tolerance: float

    @property
    def passed(self) -> bool:
        return bool(self.value <= self.tolerance)

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "passed": self.passed}


@dataclass
class Slip:
    """A slip in a post, of one of :data:`KINDS`.

    ``numeric``: the post prints a wrong number; ``post_value`` is what it printed, ``correct_value``
    the library's value. ``formula``: a wrong formula, index, shape or label; where the two forms
    can be evaluated, ``post_value`` and ``correct_value`` are what each gives on the case named in
    ``detail``. ``conceptual``: a wrong claim in the prose. For these three, ``check`` names a live
    check of the corrected form and ``check_value`` (≤ ``tolerance``) is what it measured.
    ``text-only``: wording or typesetting; no check is run (``checked`` is False).
    """

    seed: str
    where: str
    post: str
    correct: str
    kind: str
    check: str = NO_CHECK
    check_value: float | None = None
    tolerance: float | None = None
    post_value: Any = None
    correct_value: Any = None
    detail: str = ""

    @property
    def checked(self) -> bool:
        return self.kind != TEXT_ONLY

    @property
    def confirmed(self) -> bool | None:
        """The live check passed; ``None`` for a text-only slip, which has no check."""
        if not self.checked:
            return None
        return (
            self.check_value is not None and self.tolerance is not None and self.check_value <= self.tolerance
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            **asdict(self),
            "checked": self.checked,
            "confirmed": self.confirmed,
        }


# -- data records -------------------------------------------------------------------------------
@dataclass(frozen=True)
class Verdict:
    """What a slip's live check measured: ``value`` (within the record's tolerance when the corrected
    form holds) and, where the slip has numbers, the post's and the correct value."""

    value: float
    post_value: Any = None
    correct_value: Any = None
    detail: str = ""


SlipCheck = Callable[[Measurements], Verdict]
Wording = Callable[[Measurements], tuple[str, str, str]]


@dataclass(frozen=True)
class CheckRecord:
    """A formula of a post: ``value`` names the measurement that checks it, ``note`` (optional) names
    a measured text appended to the check's description."""

    topic: str
    post: str
    rows: str
    implementation: str
    check: str
    value: str
    tolerance: float
    note: str | None = None


@dataclass(frozen=True)
class SlipRecord:
    """A slip of a post: where, what the post says, the correct form, its kind and the check function
    (``None`` exactly when the kind is text-only). ``wording``, when given, supplies (where, post,
    correct) from the measurements: for slips whose wording quotes live numbers."""

    where: str
    post: str
    correct: str
    kind: str
    check: str = NO_CHECK
    run: SlipCheck | None = None
    tolerance: float | None = None
    wording: Wording | None = None

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown slip kind {self.kind!r}")
        if (self.kind == TEXT_ONLY) != (self.run is None) or (self.run is None) != (self.tolerance is None):
            raise ValueError(
                f"a {self.kind} slip needs a check and a tolerance exactly when it is not text-only"
            )


def measured(key: str) -> SlipCheck:
    """A check that reports one measured value (no post/correct values)."""

    def run(m: Measurements) -> Verdict:
        return Verdict(float(m[key]))

    return run


def text_only(where: str, post: str, correct: str) -> SlipRecord:
    return SlipRecord(where, post, correct, TEXT_ONLY)


@dataclass(frozen=True)
class Section:
    """One post: its live measurements, its formulas and its slips."""

    seed: str
    measure: Callable[[], dict[str, Any]]
    checks: tuple[CheckRecord, ...]
    slips: tuple[SlipRecord, ...]

    def evaluate(self) -> tuple[list[SeedCheck], list[Slip]]:
        m = self.measure()
        checks = [
            SeedCheck(
                self.seed,
                c.topic,
                c.post,
                c.rows,
                c.implementation,
                c.check + (m[c.note] if c.note else ""),
                float(m[c.value]),
                c.tolerance,
            )
            for c in self.checks
        ]
        return checks, [self._slip(s, m) for s in self.slips]

    def _slip(self, rec: SlipRecord, m: Measurements) -> Slip:
        where, post, correct = rec.wording(m) if rec.wording else (rec.where, rec.post, rec.correct)
        if rec.run is None:
            return Slip(self.seed, where, post, correct, rec.kind)
        v = rec.run(m)
        values = {"post_value": v.post_value, "correct_value": v.correct_value, "detail": v.detail}
        return Slip(
            self.seed, where, post, correct, rec.kind, rec.check, float(v.value), rec.tolerance, **values
        )


def resolve(path: str) -> Any:
    """Import ``chainrule.x.y.Name.attr`` and return the object (tests check every path)."""
    parts = path.split(".")
    for i in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:i]))
        except ModuleNotFoundError:
            continue
        for name in parts[i:]:
            obj = getattr(obj, name)
        return obj
    raise ImportError(path)


# -- helpers ------------------------------------------------------------------------------------
def rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


def net(sizes: list[int], act: str, loss: str, seed: int = 0) -> Sequential:
    return mlp(sizes, act, loss=loss, seed=seed, dtype=np.float64)


def gc(model: Sequential, x: Any, y: Any, **kw: Any) -> float:
    """Max relative error of a full gradient check (every entry of every parameter)."""
    return gradcheck(model, x, y, max_per_param=None, **kw).max_error


def traced(model: Sequential, x: Any, y: Any) -> list[LayerTrace]:
    with trace(model) as tr:
        model.loss_and_grad(x, y)
    return tr.layers()


def explained(model: Sequential, x: Any, y: Any) -> Any:
    """One explained step (:func:`~chainrule.inspect.explain.explain`): traced layers and central differences."""
    return explain(model, x, y, lr=0.1, limit=False)


def maxabs(a: Any, b: Any) -> float:
    return float(np.max(np.abs(np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64))))


def run_layer(layer: Layer, x: np.ndarray, dy: np.ndarray | None = None) -> tuple[Any, Any]:
    """One layer through the driver: ``(y, ∂E/∂x)`` with ``∂E/∂y = dy`` (``∂E/∂x`` is None without
    ``dy``); parameter gradients are left in ``param.grad``."""
    s = Sequential([layer])
    s.zero_grad()
    y = s.forward(x)
    return y, None if dy is None else s.backward(dy, need_dx=True)


def sgd_step(model: Sequential, x: Any, y: Any, lr: float) -> dict[str, float]:
    """One SGD step after ``loss_and_grad``: ``error`` = max |θ_after − (θ_before − lr g)|, ``moved`` =
    max |θ_after − θ_before| and ``max_grad`` = max |g| over every parameter."""
    model.loss_and_grad(x, y)
    before = [p.value.copy() for p in model.params]
    grads = [p.grad.copy() for p in model.params]
    SGD(lr).step(model.params)
    after = [p.value for p in model.params]
    return {
        "error": max(maxabs(a, b - lr * g) for a, b, g in zip(after, before, grads, strict=True)),
        "moved": max(maxabs(a, b) for a, b in zip(after, before, strict=True)),
        "max_grad": max(float(np.max(np.abs(g))) for g in grads),
    }


def fmt_list(values: Sequence[float], digits: int = 3) -> str:
    return ", ".join(f"{v:.{digits}g}" for v in values)
