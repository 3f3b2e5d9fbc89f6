"""What a layer kind adds to an explained step, one module per kind (``conv``, ``maxpool`` ...).

A :class:`KindView` turns a layer's forward context into extra data (``data``: JSON-safe) and
renders it (``text``, ``markdown``: lists of lines). :func:`register_view` adds one; the renderers in
:mod:`chainrule.inspect.explain.spec_render` ask :func:`view_for` and need no case per kind.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

__all__ = ["VIEWS", "KindView", "register_view", "view_for"]


@dataclass(frozen=True)
class KindView:
    data: Callable[[Any, Any, Any], dict[str, Any]]  # (layer, tape entry, step) -> extras
    text: Callable[[Any], list[str]]  # (step) -> lines
    markdown: Callable[[Any], list[str]]  # (step) -> lines


VIEWS: dict[str, KindView] = {}


def register_view(kind: str, view: KindView) -> KindView:
    VIEWS[kind] = view
    return view


def view_for(kind: str) -> KindView | None:
    return VIEWS.get(kind)


# the views shipped with chainrule register themselves on import
from chainrule.inspect.explain.views import conv, pool  # noqa: E402,F401
