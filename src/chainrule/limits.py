"""Size limits checked before anything is allocated: the parameter count of a network built from
user-given sizes, the class count of a dataset, and the longest CSV line and field.

The defaults suit a workstation; the command line raises them with ``--max-params`` and
``--max-classes`` (:func:`override`). A check that fails raises a :class:`ConfigError` or
:class:`DataError` naming the limit and the option that raises it.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from chainrule.errors import ConfigError, DataError

__all__ = ["LIMITS", "Limits", "check_classes", "check_params", "override"]


@dataclass
class Limits:
    max_params: int = 50_000_000  # 200 MB of float32 weights, ~1 GB with gradients and optimiser state
    max_classes: int = 1_000  # one-hot targets take N·K floats, the confusion matrix K² counts
    max_line_bytes: int = 1 << 20  # one CSV line (1 MiB)
    max_field_bytes: int = 1 << 16  # one CSV field (64 KiB); a number needs a few dozen bytes


LIMITS = Limits()


@contextlib.contextmanager
def override(**values: Any) -> Iterator[Limits]:
    """Raise (or lower) limits for the duration of a ``with`` block; ``None`` values are ignored."""
    old = dataclasses.replace(LIMITS)
    try:
        for key, value in values.items():
            if value is not None:
                if not hasattr(LIMITS, key):
                    raise ConfigError(f"unknown limit {key!r}")
                setattr(LIMITS, key, int(value))
        yield LIMITS
    finally:
        for f in dataclasses.fields(LIMITS):
            setattr(LIMITS, f.name, getattr(old, f.name))


def check_params(n: int, what: str) -> None:
    """Refuse ``n`` parameters over :attr:`Limits.max_params` (before building anything)."""
    if n > LIMITS.max_params:
        raise ConfigError(
            f"{what} would have {n:,} parameters, over the limit of {LIMITS.max_params:,} "
            f"(raise it with --max-params)"
        )


def check_classes(k: int, what: str) -> None:
    """Refuse ``k`` classes over :attr:`Limits.max_classes` (before any one-hot or output layer)."""
    if k > LIMITS.max_classes:
        raise DataError(
            f"{what}: the labels ask for {k:,} classes, over the limit of {LIMITS.max_classes:,} "
            f"(labels must be class indices 0..K-1; raise the limit with --max-classes)"
        )
