"""One entry point for every format of an explanation."""

from __future__ import annotations

import json

from chainrule.errors import ConfigError
from chainrule.inspect.explain.data import Explanation
from chainrule.inspect.explain.jsonview import to_json
from chainrule.inspect.explain.markdown import render_markdown
from chainrule.inspect.explain.text import render_text

__all__ = ["FORMATS", "render"]

FORMATS = ("text", "markdown", "json")


def render(ex: Explanation, fmt: str = "text") -> str:
    """``text`` | ``markdown`` | ``json`` rendering of an explanation."""
    if fmt == "text":
        return render_text(ex)
    if fmt == "markdown":
        return render_markdown(ex)
    if fmt == "json":
        return json.dumps(to_json(ex), ensure_ascii=False, indent=1, allow_nan=False) + "\n"
    raise ConfigError(f"unknown format {fmt!r}; choose text, markdown or json")
