"""A training run as one self-contained HTML file: configuration, curves, gradient flow, confusion.

The input is a run record (:class:`~chainrule.report.record.RunRecord`, or its ``to_dict()`` form
that ``chainrule train --log RUN.json`` writes); :mod:`chainrule.report.record` reads and validates
it, :func:`write_report` writes the HTML. The page has no scripts and loads nothing: its figures are
PNGs embedded as ``data:image/png;base64`` URIs, its style is inline, and every string taken from the
record is HTML-escaped. Figures need matplotlib (``chainrule[plot]``).
"""

from __future__ import annotations

import base64
import html
import json
import math
import os
from pathlib import Path
from typing import Any

from chainrule._io import atomic_write_text
from chainrule.report.plots import confusion_png, flow_png, history_png
from chainrule.report.record import RunRecord, RunRecordError, is_number, load_run
from chainrule.train import History

# load_run and RunRecordError live in chainrule.report.record; they stay importable from here
__all__ = ["RunRecordError", "load_run", "render_figures_page", "render_report", "write_report"]


# -- rendering --------------------------------------------------------------------------------------

_STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 2rem auto; max-width: 60rem;
       padding: 0 1rem; color: #1d1d1f; line-height: 1.45; }
h1 { font-size: 1.6rem; margin-bottom: 0.2rem; }
h2 { font-size: 1.2rem; margin-top: 2rem; border-bottom: 1px solid #ddd; padding-bottom: 0.2rem; }
.sub { color: #666; margin-top: 0; }
.cards { display: flex; flex-wrap: wrap; gap: 0.8rem; margin: 1rem 0; }
.card { border: 1px solid #ddd; border-radius: 6px; padding: 0.5rem 0.9rem; min-width: 8rem; }
.card .v { font-size: 1.3rem; font-weight: 600; }
.card .k { color: #666; font-size: 0.85rem; }
table { border-collapse: collapse; font-size: 0.9rem; }
th, td { border-bottom: 1px solid #eee; padding: 0.2rem 0.8rem 0.2rem 0; text-align: left; }
td.n { text-align: right; font-variant-numeric: tabular-nums; }
figure { margin: 1rem 0; }
figure img { max-width: 100%; height: auto; border: 1px solid #eee; }
figcaption { color: #555; font-size: 0.9rem; }
.warn { color: #a00; }
code { background: #f4f4f4; padding: 0 0.2rem; }
"""


def render_report(record: RunRecord | dict[str, Any], title: str | None = None) -> str:
    """The HTML text of the report for a run record (a :class:`RunRecord` or its ``to_dict()``,
    validated here; see :func:`write_report`)."""
    rec = record if isinstance(record, RunRecord) else RunRecord.from_dict(record)
    cfg = rec.config
    history = rec.history
    ev = None if rec.evaluation is None else rec.evaluation.to_dict()
    gf = rec.flow
    e = html.escape
    title = title or "chainrule training run"
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{e(title)}</title>",
        f"<style>{_STYLE}</style>",
        "</head><body>",
        f"<h1>{e(title)}</h1>",
        f'<p class="sub">{e(_describe(cfg))} — chainrule {e(rec.chainrule_version)}</p>',
        _cards(history, ev),
    ]
    parts.append("<h2>Training curves</h2>")
    if history.epochs:
        parts.append(_img(history_png(history), "Loss and accuracy per epoch", "training curves"))
        parts.append(_epoch_table(history))
    else:
        parts.append("<p>No epochs were recorded.</p>")
    if gf is not None:
        parts.append("<h2>Gradient flow</h2>")
        if len(gf.steps):
            parts.append(
                _img(
                    flow_png(gf),
                    "Per-layer ‖δˡ‖ = ‖∂E/∂zˡ‖ on a fixed probe batch and the measured update ratio "
                    f"‖ΔWˡ‖/‖Wˡ‖, every {gf.interval} steps (log colour scales; layer 1 is nearest the input).",
                    "gradient-flow heatmap",
                )
            )
            parts.append(_flow_table(gf))
        else:
            parts.append("<p>The gradient-flow record is empty.</p>")
    if ev is not None:
        parts.append("<h2>Test set</h2>")
        parts.append(
            _img(
                confusion_png(ev["confusion"], _class_names(cfg, len(ev["confusion"]))),
                "Confusion matrix: rows are the true classes, columns the predictions; colour is the "
                "fraction of the row.",
                "confusion matrix",
            )
        )
    parts.append("<h2>Configuration</h2>")
    parts.append(_config_table(cfg))
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


def write_report(
    record: RunRecord | dict[str, Any], path: str | os.PathLike[str], title: str | None = None
) -> Path:
    """Write the self-contained HTML report of a run record (a :class:`RunRecord` or the dict
    ``chainrule train --log`` writes) to ``path``, atomically; returns the path. Raises :class:`RunRecordError` for a
    malformed record and :class:`~chainrule.errors.MissingDependencyError` without matplotlib."""
    text = render_report(record, title)
    target = Path(path)
    atomic_write_text(target, text)
    return target


def render_figures_page(title: str, rows: list[tuple[str, str]], figures: list[tuple[bytes, str]]) -> str:
    """A self-contained page of key/value ``rows`` and embedded PNG ``figures`` (``(png, caption)``),
    in the report's style: what ``chainrule rbm``/``autoencoder --out`` write (issue 10)."""
    e = html.escape
    table = "".join(f"<tr><th>{e(k)}</th><td>{e(v)}</td></tr>" for k, v in rows)
    body = "".join(_img(png, cap, cap) for png, cap in figures)
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{e(title)}</title><style>{_STYLE}</style></head><body>"
        f"<h1>{e(title)}</h1><table>{table}</table>{body}</body></html>\n"
    )


def _img(png: bytes, caption: str, alt: str) -> str:
    data = base64.b64encode(png).decode("ascii")
    return (
        f'<figure><img src="data:image/png;base64,{data}" alt="{html.escape(alt)}">'
        f"<figcaption>{html.escape(caption)}</figcaption></figure>"
    )


def _describe(cfg: dict[str, Any]) -> str:
    bits = []
    if isinstance(cfg.get("layers"), list):
        bits.append("-".join(str(x) for x in cfg["layers"]))
    for key in ("activation", "optimizer"):
        if cfg.get(key) is not None:
            bits.append(str(cfg[key]))
    if cfg.get("lr") is not None:
        bits.append(f"lr {cfg['lr']}")
    if cfg.get("dataset") is not None:
        bits.append(f"on {cfg['dataset']}")
    return ", ".join(bits) or "training run"


def _fmt(v: Any, pct: bool = False) -> str:
    if not is_number(v) or not math.isfinite(float(v)):
        return "–"
    return f"{100 * float(v):.2f}%" if pct else f"{float(v):.4f}"


def _cards(history: History, ev: dict[str, Any] | None) -> str:
    cards = []
    if ev is not None:
        cards.append(("test accuracy", _fmt(ev["accuracy"], pct=True)))
        cards.append(("test loss", _fmt(ev["loss"])))
    if history.epochs:
        last = history.epochs[-1]
        cards.append(("final training loss", _fmt(last.get("loss"))))
        if "val_accuracy" in last:
            cards.append(("final validation accuracy", _fmt(last.get("val_accuracy"), pct=True)))
    cards.append(("epochs", str(len(history.epochs)) + (" (stopped early)" if history.stopped_early else "")))
    if history.runner:
        cards.append(("runner", history.runner))
    inner = "".join(
        f'<div class="card"><div class="v">{html.escape(v)}</div><div class="k">{html.escape(k)}</div></div>'
        for k, v in cards
    )
    return f'<div class="cards">{inner}</div>'


def _epoch_table(history: History) -> str:
    keys = [k for k in ("loss", "accuracy", "val_loss", "val_accuracy", "seconds") if k in history.epochs[0]]
    head = "".join(f"<th>{html.escape(k)}</th>" for k in ["epoch", *keys])
    rows = []
    for i, ep in enumerate(history.epochs, start=1):
        cells = [f'<td class="n">{int(ep.get("epoch", i)) if is_number(ep.get("epoch")) else i}</td>']
        for k in keys:
            v = ep.get(k)
            text = _fmt(v, pct="accuracy" in k) if k != "seconds" else (f"{v:.2f}" if is_number(v) else "–")
            cells.append(f'<td class="n">{text}</td>')
        rows.append(f"<tr>{''.join(cells)}</tr>")
    return f"<table><tr>{head}</tr>{''.join(rows)}</table>"


def _flow_table(gf: Any) -> str:
    d = gf.series("delta_norm")
    u = gf.series("update_ratio")
    rows = []
    for j, name in enumerate(gf.layers):
        finite_u = [v for v in u[:, j] if math.isfinite(v)]
        med_u = sorted(finite_u)[len(finite_u) // 2] if finite_u else math.nan
        rows.append(
            f"<tr><td>{html.escape(name)}</td><td class='n'>{d[0, j]:.3g}</td>"
            f"<td class='n'>{d[-1, j]:.3g}</td><td class='n'>{med_u:.3g}</td></tr>"
        )
    table = (
        "<table><tr><th>layer</th><th>‖δ‖ at step 0</th>"
        f"<th>‖δ‖ at step {int(gf.steps[-1])}</th><th>median ‖ΔW‖/‖W‖</th></tr>{''.join(rows)}</table>"
    )
    if gf.warnings:
        items = "".join(f"<li>{html.escape(str(w.get('message', w)))}</li>" for w in gf.warnings[:50])
        more = f"<li>… and {len(gf.warnings) - 50} more</li>" if len(gf.warnings) > 50 else ""
        table += f'<p class="warn">Warnings ({len(gf.warnings)}):</p><ul class="warn">{items}{more}</ul>'
    else:
        table += "<p>No layer's gradient vanished, exploded or became NaN.</p>"
    return table


def _class_names(cfg: dict[str, Any], k: int) -> list[str] | None:
    names = cfg.get("class_names")
    return [str(n) for n in names] if isinstance(names, list) and len(names) == k else None


def _config_table(cfg: dict[str, Any]) -> str:
    rows = []
    for k in sorted(cfg):
        v = cfg[k]
        text = v if isinstance(v, str) else json.dumps(v, default=str)
        rows.append(f"<tr><td><code>{html.escape(str(k))}</code></td><td>{html.escape(text)}</td></tr>")
    return f"<table>{''.join(rows)}</table>"
