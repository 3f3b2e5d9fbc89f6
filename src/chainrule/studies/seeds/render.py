"""The walk-through and its slips as text, markdown or JSON."""

from __future__ import annotations

import json
from typing import Any

from chainrule._io import json_default
from chainrule.errors import ConfigError
from chainrule.studies.seeds.common import SEEDS, SeedCheck, Slip
from chainrule.studies.seeds.walk import Results, collect

__all__ = ["render"]


def render(
    seeds: list[str] | None = None,
    fmt: str = "text",
    only_errata: bool = False,
    results: Results | None = None,
) -> str:
    """The walkthrough and errata as ``text``, ``markdown`` or ``json`` (``results`` from
    :func:`~chainrule.studies.seeds.collect`, else run now)."""
    if fmt not in ("text", "markdown", "json"):
        raise ConfigError(f"unknown format {fmt!r}; choose text, markdown or json")
    res = results if results is not None else collect(seeds)
    if fmt == "json":
        return _json(res, only_errata)
    if fmt == "markdown":
        return _markdown(res, only_errata)
    return _text(res, only_errata)


def _v(v: Any) -> str:
    if v is None:
        return "—"
    if isinstance(v, float):
        return f"{v:.6g}"
    if isinstance(v, dict):
        return "{" + ", ".join(f"{k}: {_v(x)}" for k, x in v.items()) + "}"
    if isinstance(v, list):
        return "[" + ", ".join(_v(x) for x in v) + "]"
    return str(v)


def _mark(ok: bool) -> str:
    return "✓" if ok else "✗"


def _check_line(s: Slip) -> str:
    if not s.checked:
        return s.check
    return f"{s.check} = {s.check_value:.1e} {_mark(s.confirmed)}"


def _all(res: Results) -> tuple[list[SeedCheck], list[Slip]]:
    return [c for cs, _ in res.values() for c in cs], [s for _, ss in res.values() for s in ss]


def _ok(res: Results) -> bool:
    checks, slips = _all(res)
    return all(c.passed for c in checks) and all(s.confirmed for s in slips if s.checked)


# -- text -----------------------------------------------------------------------------------------
def _text_check(c: SeedCheck) -> list[str]:
    return [
        f"  {_mark(c.passed)} {c.topic}",
        f"      post:   {c.post}",
        f"      rows:   {c.rows}",
        f"      code:   {c.implementation}",
        f"      check:  {c.check} = {c.value:.1e} (≤ {c.tolerance:g})",
    ]


def _text_slip(i: int, s: Slip) -> list[str]:
    lines = [f"  {i:2d}. [{s.kind}] {s.where}", f"      post:    {s.post}", f"      correct: {s.correct}"]
    if s.post_value is not None or s.correct_value is not None:
        lines.append(f"      values:  post {_v(s.post_value)}  →  correct {_v(s.correct_value)}")
    if s.detail:
        lines.append(f"      detail:  {s.detail}")
    return [*lines, f"      check:   {_check_line(s)}"]


def _summary(res: Results) -> str:
    checks, slips = _all(res)
    live = [s for s in slips if s.checked]
    return (
        f"{sum(c.passed for c in checks)}/{len(checks)} formula checks pass; {len(slips)} slips: {len(live)} "
        f"checked live, {sum(s.confirmed for s in live)} with their corrected form confirmed, "
        f"{len(slips) - len(live)} text-only"
    )


def _text(res: Results, only_errata: bool) -> str:
    lines: list[str] = []
    for seed, (cs, ss) in res.items():
        lines += [f"== seed {seed}: {SEEDS[seed]}", ""]
        if not only_errata:
            for c in cs:
                lines += _text_check(c)
            lines.append("")
        lines.append(f"  slips ({len(ss)}):")
        for i, s in enumerate(ss, 1):
            lines += _text_slip(i, s)
        lines.append("")
    lines.append(_summary(res))
    return "\n".join(lines) + "\n"


# -- markdown -------------------------------------------------------------------------------------
def _md_cell(s: str) -> str:
    return s.replace("|", "\\|")


def _md_checks(cs: list[SeedCheck]) -> list[str]:
    md = ["| formula (post) | row form | implementation | check | value | |", "|---|---|---|---|---|---|"]
    for c in cs:
        md.append(
            f"| {_md_cell(c.post)} | `{_md_cell(c.rows)}` | `{c.implementation}` | {_md_cell(c.check)} | "
            f"{c.value:.1e} | {_mark(c.passed)} |"
        )
    return [*md, ""]


def _md_slip(i: int, s: Slip) -> list[str]:
    md = [f"{i}. **{_md_cell(s.where)}** ({s.kind})", f"   - post: {s.post}", f"   - correct: {s.correct}"]
    if s.post_value is not None or s.correct_value is not None:
        md.append(f"   - values: post `{_v(s.post_value)}` → correct `{_v(s.correct_value)}`")
    if s.detail:
        md.append(f"   - detail: {s.detail}")
    return [*md, f"   - check: {_check_line(s)}"]


def _markdown(res: Results, only_errata: bool) -> str:
    md = ["# The seed posts, formula by formula", ""]
    for seed, (cs, ss) in res.items():
        md += [f"## Seed {seed}: {SEEDS[seed]}", ""]
        if not only_errata:
            md += _md_checks(cs)
        md += [f"### Slips ({len(ss)})", ""]
        for i, s in enumerate(ss, 1):
            md += _md_slip(i, s)
        md.append("")
    return "\n".join(md)


# -- JSON -----------------------------------------------------------------------------------------
def _json(res: Results, only_errata: bool) -> str:
    checks, slips = _all(res)
    obj: dict[str, Any] = {"errata": [s.to_dict() for s in slips]}
    if not only_errata:
        obj = {"checks": [c.to_dict() for c in checks], **obj}
    obj["ok"] = _ok(res)
    return json.dumps(obj, ensure_ascii=False, indent=1, default=json_default, allow_nan=False) + "\n"
