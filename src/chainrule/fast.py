"""Fast epoch runners (filled in by the speed work; ``None`` means "use the plain runner")."""

from __future__ import annotations

from typing import Any


def make_fast_runner(net: Any, optimizer: Any, l2: float) -> Any:
    return None
