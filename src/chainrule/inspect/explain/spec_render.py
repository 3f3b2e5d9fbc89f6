"""Text, Markdown and JSON of a :class:`~chainrule.inspect.explain.spec_step.SpecExplanation`:
every layer's output and δ as feature maps per channel (images) or rows, each δ and gradient with
its central-difference check, and what the layer's kind adds (:mod:`.views`)."""

from __future__ import annotations

import json
from typing import Any

import numpy as np

from chainrule.errors import ConfigError
from chainrule.inspect.explain.blocks import block, check_text, hcat, num, tex_matrix, tex_num
from chainrule.inspect.explain.data import EPS
from chainrule.inspect.explain.spec_step import SpecExplanation, SpecStep
from chainrule.inspect.explain.views import view_for
from chainrule.inspect.gradcheck import TOLERANCE

__all__ = ["render_spec", "spec_to_json"]


def _maps(a: np.ndarray) -> list[tuple[str, np.ndarray]]:
    """``(label, 2-D array)`` per sample and channel of a batch (rows for flat outputs)."""
    if a.ndim == 4:
        return [(f"sample {s} channel {c}", a[s, c]) for s in range(a.shape[0]) for c in range(a.shape[1])]
    return [("rows", a.reshape(a.shape[0], -1))]


def _title(ex: SpecExplanation) -> str:
    shape = "×".join(str(d) for d in ex.input_shape)
    return f"One training step of `{ex.spec}` on a {shape} input, explained"


def render_text(ex: SpecExplanation) -> str:
    lines = [_title(ex).replace("`", ""), ""]
    lines += [
        f"loss {ex.loss}, batch of {ex.x.shape[0]}, E = {num(ex.E, 6)}",
        *(f"note: {n}" for n in ex.notes),
    ]
    lines += [f"checks: central differences (h = {EPS}, Richardson), relative error < {TOLERANCE:.0e}", ""]
    lines.append("Forward")
    for label, m in _maps(ex.x):
        lines += hcat(f"  input, {label}: ", block(m))
    for st in ex.steps:
        lines.append(f"  layer {st.index} {st.description}: {st.in_shape} -> {st.out_shape}")
        for label, m in _maps(st.y):
            lines += hcat(f"    y, {label}: ", block(m))
    lines += ["", "Backward (δ = ∂E/∂y of each layer's output, from the loss down)"]
    for st in reversed(ex.steps):
        lines += _text_step(st)
    verdict = "PASS" if ex.ok else "FAIL"
    lines += ["", f"{verdict}: {len(ex.checks)} checks, max relative error {ex.max_error:.1e}"]
    return "\n".join(lines) + "\n"


def _text_step(st: SpecStep) -> list[str]:
    lines = [f"  layer {st.index} {st.kind}: δ = ∂E/∂y   {check_text(st.delta_check, False)}"]
    for label, m in _maps(st.delta):
        lines += hcat(f"    δ, {label}: ", block(m))
    view = view_for(st.kind)
    if view is not None:
        lines += view.text(st)
    else:
        for name, (g, c) in st.grads.items():
            lines += hcat(f"    ∂E/∂{name} = ", block(g.reshape(g.shape[0], -1)), "   ", check_text(c, True))
    return lines


def render_markdown(ex: SpecExplanation) -> str:
    lines = [f"# {_title(ex)}", ""]
    lines += [f"Loss `{ex.loss}`, batch of {ex.x.shape[0]}, $E = {tex_num(ex.E, digits=6)}$.", ""]
    lines += [f"- {n}" for n in ex.notes] + ([""] if ex.notes else [])
    lines += [
        f"Every $\\delta$ and gradient is compared with central differences ($h = {EPS}$, "
        f"Richardson-extrapolated); the relative error must be below {TOLERANCE:.0e}.",
        "",
        "## Forward",
        "",
    ]
    for st in ex.steps:
        lines += [
            f"### Layer {st.index}: `{st.description}`",
            "",
            f"Shape {st.in_shape} → {st.out_shape}.",
            "",
        ]
        lines += _tex_maps("y", st.y)
    lines += ["## Backward", ""]
    for st in reversed(ex.steps):
        c = st.delta_check
        lines += [f"### Layer {st.index} `{st.kind}`: $\\delta = \\partial E / \\partial y$", ""]
        lines += [f"Check: relative error {c.rel_error:.1e} {'✓' if c.ok else '✗'}", ""]
        lines += _tex_maps("\\delta", st.delta)
        view = view_for(st.kind)
        lines += view.markdown(st) if view is not None else _tex_grads(st)
        if st.grads:
            lines += ["| parameter | relative error | |", "|---|---|---|"]
            lines += [
                f"| `{n}` | {c.rel_error:.1e} | {'✓' if c.ok else '✗'} |" for n, (_, c) in st.grads.items()
            ]
            lines.append("")
    lines += [
        f"**{'PASS' if ex.ok else 'FAIL'}**: {len(ex.checks)} checks, max relative error {ex.max_error:.1e}",
        "",
    ]
    return "\n".join(lines)


def _tex_maps(sym: str, a: np.ndarray) -> list[str]:
    out = []
    for label, m in _maps(a):
        out += ["$$", f"{sym}\\;(\\text{{{label}}}) = {tex_matrix(m)}", "$$", ""]
    return out


def _tex_grads(st: SpecStep) -> list[str]:
    out = []
    for name, (g, c) in st.grads.items():
        g2, n2 = g.reshape(g.shape[0], -1), c.numeric.reshape(g.shape[0], -1)
        out += [
            "$$",
            f"\\frac{{\\partial E}}{{\\partial {name}}} = {tex_matrix(g2)},\\quad \\text{{numeric}} = {tex_matrix(n2)}",
            "$$",
            "",
        ]
    return out


def _jsonable(v: Any) -> Any:
    if isinstance(v, np.ndarray):
        return np.asarray(v, dtype=np.float64).tolist()
    if isinstance(v, dict):
        return {k: _jsonable(x) for k, x in v.items()}
    if isinstance(v, list | tuple):
        return [_jsonable(x) for x in v]
    return v


def spec_to_json(ex: SpecExplanation) -> dict[str, Any]:
    return {
        "spec": ex.spec,
        "input_shape": list(ex.input_shape),
        "x": _jsonable(ex.x),
        "target": _jsonable(ex.target),
        "loss": {"name": ex.loss, "E": ex.E},
        "layers": [
            {
                "index": st.index,
                "kind": st.kind,
                "layer": st.description,
                "in_shape": list(st.in_shape),
                "out_shape": list(st.out_shape),
                "y": _jsonable(st.y),
                "delta": _jsonable(st.delta),
                "delta_check": {
                    "numeric": _jsonable(st.delta_check.numeric),
                    "rel_error": st.delta_check.rel_error,
                },
                "gradients": {
                    n: {"analytic": _jsonable(g), "numeric": _jsonable(c.numeric), "rel_error": c.rel_error}
                    for n, (g, c) in st.grads.items()
                },
                "extras": _jsonable(st.extras),
            }
            for st in ex.steps
        ],
        "gradcheck": {
            "ok": ex.ok,
            "checks": len(ex.checks),
            "max_rel_error": ex.max_error,
            "tolerance": TOLERANCE,
        },
        "notes": ex.notes,
    }


def _json_text(ex: SpecExplanation) -> str:
    return json.dumps(spec_to_json(ex), ensure_ascii=False, indent=1, allow_nan=False) + "\n"


_RENDERERS = {"text": render_text, "markdown": render_markdown, "json": _json_text}


def render_spec(ex: SpecExplanation, fmt: str = "text") -> str:
    """``text`` | ``markdown`` | ``json`` rendering of a spec network's explained step."""
    if fmt not in _RENDERERS:
        raise ConfigError(f"unknown format {fmt!r}; choose text, markdown or json")
    return _RENDERERS[fmt](ex)
