"""The summary view (any network size) as text, Markdown or JSON: per-layer norms of one step."""

from __future__ import annotations

import json
from typing import Any

from chainrule.inspect.explain.blocks import tex_num
from chainrule.inspect.explain.data import Summary

__all__ = ["render_summary"]

HEAD = [
    "l",
    "layer",
    "W shape",
    "‖W‖",
    "‖a‖",
    "‖δ‖",
    "‖∂E/∂W‖",
    "‖∂E/∂b‖",
    "‖ΔW‖/‖W‖",
    "gradcheck W",
    "gradcheck b",
]
#: the row keys shown after ``l``, ``layer`` and ``W shape``, in :data:`HEAD` order
NUMBERS = (
    "norm_W",
    "norm_a",
    "norm_delta",
    "norm_dW",
    "norm_db",
    "update_ratio",
    "gradcheck_W",
    "gradcheck_b",
)


def _fmt(v: Any) -> str:
    return "—" if v is None else f"{v:.3e}"


def _cells(r: dict[str, Any]) -> list[str]:
    shape = "—" if r["shape_W"] is None else "×".join(map(str, r["shape_W"]))
    return [str(r["l"]), r["layer"], shape, *(_fmt(r[k]) for k in NUMBERS)]


def render_summary(s: Summary, fmt: str = "text") -> str:
    """The summary view as ``text``, ``markdown`` or ``json``."""
    gc = s.gradcheck
    verdict = (
        f"{'PASS' if gc.ok else 'FAIL'}: max relative error {gc.max_error:.1e} (tolerance {gc.tolerance:g})"
    )
    if fmt == "json":
        return _json(s)
    rows = [_cells(r) for r in s.rows]
    sizes = " → ".join(str(v) for v in s.network["sizes"])
    if fmt == "markdown":
        md = [
            f"# Summary of one training step: {sizes}",
            "",
            f"Loss `{s.loss}`, $E = {tex_num(s.E)}$, batch {s.batch}, SGD $\\alpha = {s.lr:g}$; gradient check on "
            "sampled entries (central differences).",
            "",
            *[f"> {n}\n" for n in s.notes],
            "| " + " | ".join(HEAD) + " |",
            "|" + "---|" * len(HEAD),
            *["| " + " | ".join(r) + " |" for r in rows],
            "",
            f"**{verdict}**",
            "",
        ]
        return "\n".join(md)
    widths = [max(len(x[i]) for x in [HEAD, *rows]) for i in range(len(HEAD))]
    out = [
        f"chainrule explain --summary: {sizes} · loss {s.loss} · E = {s.E:.6g} · batch {s.batch} · SGD α = {s.lr:g}",
        *[f"note: {n}" for n in s.notes],
        "",
        "  ".join(h.ljust(w) for h, w in zip(HEAD, widths, strict=True)).rstrip(),
        "  ".join("-" * w for w in widths),
        *["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows],
        "",
        f"gradient check (sampled entries per parameter): {verdict}",
    ]
    return "\n".join(out) + "\n"


def _json(s: Summary) -> str:
    gc = s.gradcheck
    d = {
        "network": s.network,
        "loss": {"name": s.loss, "E": s.E},
        "batch": s.batch,
        "lr": s.lr,
        "layers": s.rows,
        "gradcheck": {"errors": gc.errors, "max_error": gc.max_error, "ok": gc.ok, "tolerance": gc.tolerance},
        "notes": s.notes,
    }
    return json.dumps(d, ensure_ascii=False, indent=1, allow_nan=False) + "\n"
