"""What an explanation is made of: the records :func:`~chainrule.inspect.explain.explain` and
:func:`~chainrule.inspect.explain.summarize` return, and the size limits of a readable one."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from chainrule.errors import ConfigError
from chainrule.inspect.explain.notation import GroupNotation, LossNotation
from chainrule.inspect.gradcheck import TOLERANCE, GradcheckResult
from chainrule.inspect.trace import LayerTrace, ParamUpdate

__all__ = ["EPS", "LIMITS", "SUBSTITUTE_MAX", "Explanation", "NumericCheck", "Summary", "TooLargeError"]

#: beyond these a step-by-step explanation is unreadable: use the summary view
LIMITS = {"units": 64, "params": 2000, "batch": 8}
#: step of the explanation's own checks: Richardson-extrapolated central differences in float64
EPS = 1e-4
#: operands wider or taller than this are not substituted into a formula in text/Markdown
SUBSTITUTE_MAX = 8


class TooLargeError(ConfigError):
    """The network or batch is too large to explain step by step."""


@dataclass
class NumericCheck:
    """A hand-derived quantity beside its central-difference estimate."""

    numeric: np.ndarray
    rel_error: float
    tolerance: float = TOLERANCE

    @property
    def ok(self) -> bool:
        return self.rel_error < self.tolerance


@dataclass
class Explanation:
    """One explained step (see :mod:`chainrule.inspect.explain`). Arrays are float64 NumPy, rows are
    samples. ``notation[l]`` is how layer ``l`` writes itself and ``loss_notation`` how the loss
    does, both read from the classes (one source per formula)."""

    network: dict[str, Any]
    x: np.ndarray
    y: Any
    t: np.ndarray
    loss: str
    E: float
    out: np.ndarray
    probabilities: np.ndarray | None
    layers: list[LayerTrace]
    checks: dict[int, dict[str, NumericCheck]]
    gradcheck: GradcheckResult
    updates: list[ParamUpdate]
    lr: float
    notation: dict[int, GroupNotation] = field(default_factory=dict)
    loss_notation: LossNotation | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.gradcheck.ok and all(c.ok for per in self.checks.values() for c in per.values())

    def notation_of(self, lt: LayerTrace) -> GroupNotation:
        """How layer ``lt.l`` is written (from its trace's kinds when it was not recorded)."""
        return self.notation.get(lt.l) or GroupNotation.of_kinds(lt.kind, lt.activation)

    def notation_of_loss(self) -> LossNotation:
        """How the loss is written (from the registry by name when it was not recorded)."""
        return self.loss_notation or LossNotation.of_name(self.loss)


@dataclass
class Summary:
    """Per-layer norms of one step, for a network of any size."""

    network: dict[str, Any]
    loss: str
    E: float
    batch: int
    rows: list[dict[str, Any]]
    gradcheck: GradcheckResult
    lr: float
    notes: list[str] = field(default_factory=list)
