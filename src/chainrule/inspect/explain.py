"""Explain one training step of a small network: forward, backward layer by layer, update.

:func:`explain` runs one forward/backward pass under a :class:`~chainrule.inspect.trace.Tracer`, checks every
``∂E/∂a^l``, ``δ^l``, ``∂E/∂W^l`` and ``∂E/∂b^l`` against central differences, takes one SGD step
and returns an :class:`Explanation` (data). Three renderers turn it into text:

* :func:`render_text`: aligned terminal tables, each step with its formula, the numbers
  substituted and the gradient check beside the result;
* :func:`render_markdown`: the same with LaTeX math (``$...$`` and ``$$...$$``, which GitHub renders);
* :func:`to_json`: a JSON-safe ``dict``.

The formulas are the seeds' back-propagation equations (seed 004's BP1-BP3, seed 001's δ), each in
the seeds' column form and in the row form chainrule computes (rows are samples)::

    δ^L = ∇_a E ⊙ f'(z^L)
    δ^l = ((W^{l+1})ᵀ δ^{l+1}) ⊙ f'(z^l)        column form (seeds)
    δ^l = (δ^{l+1} (W^{l+1})ᵀ) ⊙ f'(z^l)        row form (chainrule: one row per sample)
    ∂E/∂W^l = (a^{l-1})ᵀ δ^l                      ∂E/∂b^l = Σ_rows δ^l

A step-by-step explanation is only readable for small networks: :func:`check_size` refuses more than
:data:`LIMITS` (units per layer, parameters, batch rows) with :class:`TooLargeError`, which points
to :func:`summarize` (per-layer norms and a sampled gradient check, any size; ``--summary``).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from chainrule.backend import numpy_backend, to_numpy
from chainrule.errors import ConfigError
from chainrule.inspect.gradcheck import (
    TOLERANCE,
    GradcheckResult,
    gradcheck,
    numeric_gradient,
    relative_error,
)
from chainrule.inspect.trace import LayerTrace, ParamUpdate, trace
from chainrule.nn.layer import LAYERS
from chainrule.nn.functional import targets_like
from chainrule.nn.model import Sequential
from chainrule.optim import SGD

__all__ = [
    "EPS",
    "LIMITS",
    "Explanation",
    "NumericCheck",
    "Summary",
    "TooLargeError",
    "check_size",
    "explain",
    "render",
    "render_markdown",
    "render_summary",
    "render_text",
    "summarize",
    "to_json",
]

#: beyond these a step-by-step explanation is unreadable: use the summary view
LIMITS = {"units": 64, "params": 2000, "batch": 8}
#: step of the explanation's own checks: Richardson-extrapolated central differences in float64
EPS = 1e-4
#: operands wider or taller than this are not substituted into a formula in text/Markdown
SUBSTITUTE_MAX = 8


class TooLargeError(ConfigError):
    """The network or batch is too large to explain step by step."""


# -- the data ----------------------------------------------------------------------------------
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
    """One explained step (see the module docstring). Arrays are float64 NumPy, rows are samples."""

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
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.gradcheck.ok and all(c.ok for per in self.checks.values() for c in per.values())


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


# -- size and set-up -------------------------------------------------------------------------------
def _widths(net: Sequential) -> list[int]:
    d = net.input_dim
    out = [] if d is None else [int(d)]
    for layer in net.layers:
        if layer.params and d is not None:
            d = layer.output_dim(d)
            out.append(int(d))
    return out


def check_size(net: Sequential, batch: int) -> None:
    """Raise :class:`TooLargeError` unless the step is small enough to read in full."""
    problems = []
    widths = _widths(net)
    if widths and max(widths) > LIMITS["units"]:
        problems.append(f"a layer has {max(widths)} units (limit {LIMITS['units']})")
    n = net.num_params()
    if n > LIMITS["params"]:
        problems.append(f"{n} parameters (limit {LIMITS['params']})")
    if batch > LIMITS["batch"]:
        problems.append(f"a batch of {batch} samples (limit {LIMITS['batch']})")
    if problems:
        raise TooLargeError(
            "too large to explain step by step: "
            + "; ".join(problems)
            + "; use the summary view instead (chainrule explain --summary, or chainrule.inspect.explain.summarize)"
        )


def _describe(net: Sequential) -> dict[str, Any]:
    widths = _widths(net)
    return {
        "sizes": widths,
        "layers": [repr(layer) for layer in net.layers],
        "loss": None if net.loss is None else net.loss.name,
        "parameters": net.num_params(),
    }


def _prepare(net: Sequential, x: Any, y: Any) -> tuple[np.ndarray, Any, np.ndarray]:
    if net.loss is None:
        raise ConfigError("the network has no loss, so there is no backward pass to explain")
    if net.dtype != np.float64 or net.backend.name != "numpy":
        net.to(numpy_backend, "float64")
    x = np.array(to_numpy(x), dtype=np.float64)
    if x.ndim == 1:
        x = x[None, :]
    net.check_input(x)
    y = to_numpy(y)
    out_dim = net.output_dim()
    if out_dim is None:
        out_dim = int(np.asarray(net.forward(x)).shape[1])
    t = targets_like(np.zeros((x.shape[0], out_dim)), np.asarray(y))
    return x, y, t


def _tail_cost(net: Sequential, start: int, inp: np.ndarray, y: Any) -> float:
    out = inp
    for layer in net.layers[start:]:
        out, _ = layer.forward(out)
    return float(net.loss.value(out, y))


def _numeric(f: Any, arr: np.ndarray, h: float = EPS) -> np.ndarray:
    """∂f/∂arr, every entry: :func:`chainrule.inspect.gradcheck.numeric_gradient` at step ``h``."""
    return numeric_gradient(f, arr, h)


def _check(analytic: np.ndarray, numeric: np.ndarray) -> NumericCheck:
    return NumericCheck(numeric=numeric, rel_error=relative_error(analytic, numeric))


# -- the explanation -------------------------------------------------------------------------------
def explain(
    net: Sequential, x: Any, y: Any, *, lr: float = 0.1, notes: Sequence[str] = (), limit: bool = True
) -> Explanation:
    """Run, check and record one SGD step of ``net`` on ``(x, y)``.

    ``net`` is moved to float64 NumPy in place (the checks need it) and takes one step of size
    ``lr``. ``limit=False`` skips :func:`check_size` (tests, or callers who know better).
    """
    x, y, t = _prepare(net, x, y)
    if limit:
        check_size(net, x.shape[0])
    with trace(net) as tr:
        E = net.loss_and_grad(x, y)
        tr.record_loss(E, t)
    layers = tr.layers()
    out = np.array(to_numpy(layers[-1].a), copy=True)
    probs = None
    if net.loss.fused is not None:
        probs = np.array(to_numpy(net.loss.probabilities(out)), copy=True)

    # central differences for every recorded quantity (the hook is detached: passes are not traced)
    checks: dict[int, dict[str, NumericCheck]] = {}
    for lt in layers:
        per: dict[str, NumericCheck] = {}
        head, last = lt.indices[0], lt.indices[-1]
        if lt.delta is not None:
            z = lt.z.copy()
            per["delta"] = _check(lt.delta, _numeric(lambda z=z, h=head: _tail_cost(net, h + 1, z, y), z))
        if lt.dE_da is not None:
            a = lt.a.copy()
            per["dE_da"] = _check(lt.dE_da, _numeric(lambda a=a, k=last: _tail_cost(net, k + 1, a, y), a))
        for p in net.layers[head].params:
            g = lt.dW if p.name == "W" else lt.db if p.name == "b" else None
            if g is not None:
                key = "dW" if p.name == "W" else "db"
                per[key] = _check(g, _numeric(lambda: net.cost(x, y), p.value))
        checks[lt.l] = per
    gc = gradcheck(net, x, y, max_per_param=None)
    net.loss_and_grad(x, y)  # the same gradients again: gradcheck may reset param.grad
    updates = tr.step(SGD(lr))
    return Explanation(
        network=_describe(net),
        x=x,
        y=y,
        t=t,
        loss=net.loss.name,
        E=float(to_numpy(E)),
        out=out,
        probabilities=probs,
        layers=layers,
        checks=checks,
        gradcheck=gc,
        updates=updates,
        lr=float(lr),
        notes=list(notes),
    )


def summarize(
    net: Sequential, x: Any, y: Any, *, lr: float = 0.1, samples: int = 10, notes: Sequence[str] = ()
) -> Summary:
    """Per-layer norms of one SGD step, and a gradient check of ``samples`` entries per parameter."""
    x, y, _ = _prepare(net, x, y)
    with trace(net) as tr:
        E = net.loss_and_grad(x, y)
    layers = tr.layers()
    gc = gradcheck(net, x, y, max_per_param=samples)
    net.loss_and_grad(x, y)  # the same gradients again: gradcheck may reset param.grad
    updates = {u.name: u for u in tr.step(SGD(lr))}
    rows = []
    for lt in layers:
        head = lt.indices[0]
        uW, ub = updates.get(f"{head}.W"), updates.get(f"{head}.b")
        rows.append(
            {
                "l": lt.l,
                "layer": lt.label,
                "shape_W": None if lt.W is None else list(lt.W.shape),
                "norm_W": _nrm(lt.W),
                "norm_a": _nrm(lt.a),
                "norm_delta": _nrm(lt.delta),
                "norm_dW": _nrm(lt.dW),
                "norm_db": _nrm(lt.db),
                "update_ratio": _finite(None if uW is None else uW.relative_change),
                "update_ratio_b": _finite(None if ub is None else ub.relative_change),
                "gradcheck_W": gc.errors.get(f"{head}.W"),
                "gradcheck_b": gc.errors.get(f"{head}.b"),
            }
        )
    return Summary(
        network=_describe(net),
        loss=net.loss.name,
        E=float(to_numpy(E)),
        batch=int(x.shape[0]),
        rows=rows,
        gradcheck=gc,
        lr=float(lr),
        notes=list(notes),
    )


def _finite(v: float | None) -> float | None:
    """``None`` for a ratio that is undefined (a zero parameter, e.g. fresh biases, that moved)."""
    return v if v is not None and np.isfinite(v) else None


def _nrm(a: np.ndarray | None) -> float | None:
    return None if a is None else float(np.linalg.norm(a))


# -- formulas -----------------------------------------------------------------------------------
LOSS_TEXT = {
    "squared": ("E = (1/N) Σ_n ½‖{o}_n − y_n‖²", "({o} − y)/N"),
    "softmax-ce": ("E = −(1/N) Σ_n Σ_k y_nk log softmax({o}_n)_k", "(softmax({o}) − y)/N"),
    "bce": ("E = (1/N) Σ_n Σ_k −[y log σ({o}) + (1 − y) log(1 − σ({o}))]", "(σ({o}) − y)/N"),
}
LOSS_TEX = {
    "squared": (
        "E = \\frac{1}{N}\\sum_n \\tfrac12 \\lVert %(o)s_n - y_n \\rVert^2",
        "\\frac{1}{N}(%(o)s - y)",
    ),
    "softmax-ce": (
        "E = -\\frac{1}{N}\\sum_n \\sum_k y_{nk} \\log \\operatorname{softmax}(%(o)s_n)_k",
        "\\frac{1}{N}(\\operatorname{softmax}(%(o)s) - y)",
    ),
    "bce": (
        "E = -\\frac{1}{N}\\sum_n \\sum_k \\left[y \\log\\sigma(%(o)s) + (1-y)\\log(1-\\sigma(%(o)s))\\right]",
        "\\frac{1}{N}(\\sigma(%(o)s) - y)",
    ),
}
ACT_NAME = {
    "sigmoid": "σ",
    "tanh": "tanh",
    "relu": "ReLU",
    "leaky_relu": "LeakyReLU",
    "softplus": "softplus",
    "identity": "id",
    "softmax": "softmax",
}
ACT_TEX = {
    "sigmoid": "\\sigma",
    "tanh": "\\tanh",
    "relu": "\\operatorname{ReLU}",
    "leaky_relu": "\\operatorname{LeakyReLU}",
    "softplus": "\\operatorname{softplus}",
    "identity": "\\operatorname{id}",
    "softmax": "\\operatorname{softmax}",
}


FPRIME_TEXT = {
    "identity": "1",
    "sigmoid": "a^{l} ⊙ (1 − a^{l})",
    "tanh": "1 − (a^{l})²",
    "relu": "[z^{l} > 0]",
    "leaky_relu": "[z^{l} > 0] + α [z^{l} ≤ 0]",
    "softplus": "σ(z^{l})",
}


MASK_NOTE = "m: one-hot mask of each unit's winning piece, flattened to W's columns"


def _out_symbol(lt: LayerTrace) -> str:
    return f"a^{lt.l}" if lt.activation != "none" else f"z^{lt.l}"


# -- numbers as text -------------------------------------------------------------------------------
def _style(a: Any) -> str:
    """One number style per matrix: fixed decimals when every nonzero entry reads well that way."""
    v = np.abs(np.asarray(a, dtype=np.float64))
    nz = v[v > 0]
    return "f" if nz.size == 0 or (nz.min() >= 1e-3 and nz.max() < 1e5) else "e"


def _num(v: float, digits: int = 4, style: str | None = None) -> str:
    v = float(v)
    style = style or _style(v)
    if v == 0 and style == "e":
        return "0"
    return f"{v:.{digits}f}" if style == "f" else f"{v:.{digits - 1}e}"


def _block(a: Any, digits: int = 4) -> list[str]:
    """A matrix as bracketed text lines (one line for a row vector)."""
    a = np.atleast_2d(np.asarray(a, dtype=np.float64))
    st = _style(a)
    cells = [[_num(v, digits, st) for v in row] for row in a]
    w = [max(len(cells[i][j]) for i in range(a.shape[0])) for j in range(a.shape[1])]
    body = ["  ".join(c.rjust(w[j]) for j, c in enumerate(row)) for row in cells]
    if len(body) == 1:
        return [f"[{body[0]}]"]
    out = []
    for i, ln in enumerate(body):
        left, right = ("⎡", "⎤") if i == 0 else ("⎣", "⎦") if i == len(body) - 1 else ("⎢", "⎥")
        out.append(f"{left}{ln}{right}")
    return out


def _hcat(*parts: str | list[str]) -> list[str]:
    """Place text blocks side by side, vertically centred."""
    blocks = [[p] if isinstance(p, str) else p for p in parts]
    h = max(len(b) for b in blocks)
    cols = []
    for b in blocks:
        w = max(len(s) for s in b)
        top = (h - len(b)) // 2
        cols.append([" " * w] * top + [s.ljust(w) for s in b] + [" " * w] * (h - len(b) - top))
    return ["".join(row).rstrip() for row in zip(*cols, strict=True)]


def _small(*arrays: Any) -> bool:
    return all(
        a is not None
        and np.atleast_2d(a).shape[0] <= SUBSTITUTE_MAX
        and np.atleast_2d(a).shape[1] <= SUBSTITUTE_MAX
        for a in arrays
    )


def _eq(
    lhs: str,
    formula: str,
    subst: list[str | list[str]] | None,
    result: Any,
    check: str = "",
    *,
    op: str = "=",
    digits: int = 4,
) -> list[str]:
    """``lhs op formula`` / ``= substituted`` / ``= result   check``, aligned under the operator."""
    res_block = _block(result, digits)
    if subst is None and len(res_block) == 1:
        return [f"{lhs} {op} {formula} = {res_block[0]}" + (f"    {check}" if check else "")]
    pad = " " * (len(lhs) + len(op) - 1)
    lines = [f"{lhs} {op} {formula}"]
    if subst is not None:
        lines += [pad + ln for ln in _hcat(" = ", *subst)]
    res = _hcat(" = ", res_block)
    if check:
        mid = len(res) // 2
        res[mid] = f"{res[mid]}    {check}"
    lines += [pad + ln for ln in res]
    return lines


def _chk_text(c: NumericCheck | None, show_numeric: bool) -> str:
    if c is None:
        return ""
    mark = "✓" if c.ok else "✗"
    num = ""
    if show_numeric and np.asarray(c.numeric).size <= 4:
        num = " numeric " + " ".join(_num(v) for v in np.asarray(c.numeric).ravel()) + ","
    return f"gradcheck:{num} rel. error {c.rel_error:.1e} {mark}"


def _T(a: np.ndarray) -> np.ndarray:
    return np.atleast_2d(a).T


# -- text -----------------------------------------------------------------------------------------
def render_text(ex: Explanation, digits: int = 4) -> str:
    """The explanation as aligned terminal text (``digits`` decimals; updates get two more)."""
    L = len(ex.layers)
    sizes = " → ".join(str(s) for s in ex.network["sizes"])
    acts = sorted({lt.activation for lt in ex.layers[:-1]}) or ["none"]
    out_act = ex.layers[-1].activation
    if out_act == "none":
        out_act = "linear" + {"softmax-ce": " (softmax inside the loss)", "bce": " (σ inside the loss)"}.get(
            ex.loss, ""
        )
    lines = [
        f"chainrule explain: {sizes} · hidden {', '.join(acts)} · output {out_act} · "
        f"loss {ex.loss} · batch {ex.x.shape[0]} · SGD α = {ex.lr:g}",
        "layout: rows are samples; z^l = a^(l−1) W^l + b^l with W^l of shape (in, out) — the seeds' column "
        "form z^l = W^l a^(l−1) + b^l, transposed",
        f"gradcheck: central differences (h = {EPS:g}, Richardson-extrapolated) of E, relative error ‖g − ĝ‖/(‖g‖ + ‖ĝ‖) < "
        f"{TOLERANCE:g}",
        *[f"note: {n}" for n in ex.notes],
        "",
        "FORWARD PASS",
        *_hcat("  a^0 = x = ", _block(ex.x)),
        *_hcat("  target y = ", _block(ex.t)),
    ]
    for lt in ex.layers:
        lines += ["", f"layer {lt.l}: {lt.label}"]
        if lt.kind == "dense" and lt.W is not None and lt.b is not None:
            subst = (
                [_block(lt.a_prev), " ", _block(lt.W), " + ", _block(lt.b)]
                if _small(lt.a_prev, lt.W)
                else None
            )
            lines += ["  " + s for s in _eq(f"z^{lt.l}", f"a^{lt.l - 1} W^{lt.l} + b^{lt.l}", subst, lt.z)]
        else:
            lines += ["  " + s for s in _eq(f"z^{lt.l}", f"{lt.kind}(a^{lt.l - 1})", None, lt.z)]
        if lt.activation != "none":
            f = ACT_NAME.get(lt.activation, lt.activation)
            lines += ["  " + s for s in _eq(f"a^{lt.l}", f"{f}(z^{lt.l})", None, lt.a)]
    o = _out_symbol(ex.layers[-1])
    lf, lg = LOSS_TEXT.get(ex.loss, ("E = loss(out, y)", "∂E/∂out"))
    if ex.probabilities is not None:
        lines += [
            "",
            *_hcat(f"  {'softmax' if ex.loss == 'softmax-ce' else 'σ'}({o}) = ", _block(ex.probabilities)),
        ]
    lines += ["", f"  {lf.format(o=o)} = {_num(ex.E, 6)}", "", "BACKWARD PASS  (δ^l = ∂E/∂z^l)"]
    for lt in reversed(ex.layers):
        ck = ex.checks.get(lt.l, {})
        l = lt.l
        lines += ["", f"layer {l}{' (output)' if l == L else ''}: {lt.label}"]
        if l == L:
            if lt.dE_da is not None:
                lines += [
                    "  " + s
                    for s in _eq(
                        f"∂E/∂a^{l}", lg.format(o=f"a^{l}"), None, lt.dE_da, _chk_text(ck.get("dE_da"), True)
                    )
                ]
        elif lt.dE_da is not None:
            nxt = ex.layers[l]  # layer l + 1
            if nxt.kind == "dense" and nxt.W is not None and nxt.delta is not None:
                subst = [_block(nxt.delta), " ", _block(_T(nxt.W))] if _small(nxt.delta, nxt.W) else None
                lines += [
                    "  " + s
                    for s in _eq(
                        f"∂E/∂a^{l}",
                        f"δ^{l + 1} (W^{l + 1})ᵀ        [column form: (W^{l + 1})ᵀ δ^{l + 1}]",
                        subst,
                        lt.dE_da,
                        _chk_text(ck.get("dE_da"), True),
                    )
                ]
            else:
                lines += [
                    "  " + s
                    for s in _eq(
                        f"∂E/∂a^{l}",
                        f"backward of layer {l + 1}",
                        None,
                        lt.dE_da,
                        _chk_text(ck.get("dE_da"), True),
                    )
                ]
        if lt.delta is not None:
            if lt.fprime is not None:
                lines += [
                    "  " + s
                    for s in _eq(
                        f"f'(z^{l})", FPRIME_TEXT.get(lt.activation, "f'(z)").format(l=l), None, lt.fprime
                    )
                ]
                if l == L:
                    formula = f"∇_a E ⊙ f'(z^{l})"
                else:
                    formula = (
                        f"(δ^{l + 1} (W^{l + 1})ᵀ) ⊙ f'(z^{l})        "
                        f"[column form: ((W^{l + 1})ᵀ δ^{l + 1}) ⊙ f'(z^{l})]"
                    )
                subst = [_block(lt.dE_da), " ⊙ ", _block(lt.fprime)] if _small(lt.dE_da) else None
            elif lt.activation == "none" and l == L:
                formula, subst = f"∂E/∂z^{l} = " + lg.format(o=f"z^{l}"), None
            elif lt.activation == "none":
                formula, subst = f"∂E/∂z^{l} (backward of layer {l + 1})", None
            else:
                formula, subst = f"Jacobian of {lt.activation} applied to ∂E/∂a^{l}", None
            lines += [
                "  " + s for s in _eq(f"δ^{l}", formula, subst, lt.delta, _chk_text(ck.get("delta"), True))
            ]
        dense = lt.kind == "dense"
        if lt.dW is not None:
            subst = (
                [_block(_T(lt.a_prev)), " ", _block(lt.delta)]
                if dense and _small(_T(lt.a_prev), lt.delta)
                else None
            )
            formula = f"(a^{l - 1})ᵀ δ^{l}" if dense else f"(a^{l - 1})ᵀ (m ⊙ δ^{l})   [{MASK_NOTE}]"
            lines += [
                "  " + s for s in _eq(f"∂E/∂W^{l}", formula, subst, lt.dW, _chk_text(ck.get("dW"), False))
            ]
        if lt.db is not None:
            formula = f"Σ_rows δ^{l}" if dense else f"Σ_rows (m ⊙ δ^{l})"
            lines += [
                "  " + s for s in _eq(f"∂E/∂b^{l}", formula, None, lt.db, _chk_text(ck.get("db"), True))
            ]
    lines += ["", f"UPDATE  (SGD: θ ← θ − α ∂E/∂θ, α = {ex.lr:g})"]
    for u in ex.updates:
        sym = _param_symbol(u)
        d = digits + 2  # one small step moves the 5th or 6th decimal
        subst = [_block(u.before, d), f" − {ex.lr:g} ", _block(u.grad, d)] if _small(u.before) else None
        lines += ["  " + s for s in _eq(sym, f"{sym} − α ∂E/∂{sym}", subst, u.after, op="←", digits=d)]
    gc = ex.gradcheck
    lines += [
        "",
        "GRADIENT CHECK  (chainrule.inspect.gradcheck, every parameter entry)",
        "  " + "   ".join(f"{k} {v:.1e}" for k, v in gc.errors.items()),
        f"  {'PASS' if ex.ok else 'FAIL'}: max relative error {gc.max_error:.1e} (tolerance {gc.tolerance:g}); "
        f"{'every' if ex.ok else 'NOT every'} δ and gradient above agrees with central differences",
    ]
    return "\n".join(lines) + "\n"


def _param_symbol(u: ParamUpdate) -> str:
    pname = u.name.split(".", 1)[1]
    return f"{pname}^{u.l}" if u.l is not None else pname


# -- Markdown / LaTeX -----------------------------------------------------------------------------
def _tnum(v: float, style: str | None = None, digits: int = 4) -> str:
    s = _num(v, digits, style)
    if "e" in s:
        mant, ex = s.split("e")
        return f"{mant}\\times 10^{{{int(ex)}}}"
    return s


def _tmat(a: Any, digits: int = 4) -> str:
    a = np.atleast_2d(np.asarray(a, dtype=np.float64))
    st = _style(a)
    rows = " \\\\ ".join(" & ".join(_tnum(v, st, digits) for v in row) for row in a)
    return f"\\begin{{bmatrix}} {rows} \\end{{bmatrix}}"


def _math(*parts: str) -> list[str]:
    """A display-math block. A chain ``lhs = formula``, ``= substituted``, ``= result`` becomes an
    ``aligned`` environment, one step per line (narrow enough for GitHub's page width)."""
    parts = tuple(p for p in parts if p)
    if len(parts) > 1 and all(p.startswith("=") for p in parts[1:]):
        head = parts[0]
        for op in (" \\leftarrow ", " = "):
            i = head.find(op)
            if i >= 0:
                head = f"{head[:i]} &{head[i:]}"
                break
        else:
            head += " &"
        rows = " \\\\\n".join([head, *(f"&{p}" for p in parts[1:])])
        return ["$$", "\\begin{aligned}", rows, "\\end{aligned}", "$$", ""]
    return ["$$", " ".join(parts), "$$", ""]


def render_markdown(ex: Explanation, digits: int = 4) -> str:
    """The explanation as Markdown with LaTeX math (GitHub renders ``$...$`` and ``$$...$$``);
    ``digits`` decimals, two more in the update."""
    L = len(ex.layers)
    sizes = " → ".join(str(s) for s in ex.network["sizes"])
    o_last = _out_symbol(ex.layers[-1])
    lf, lg = LOSS_TEX.get(ex.loss, ("E", "\\partial E"))
    md = [
        f"# One training step, explained: {sizes}",
        "",
        f"Loss `{ex.loss}`, batch of {ex.x.shape[0]}, plain gradient descent with $\\alpha = {ex.lr:g}$. "
        "Rows are samples: $z^{l} = a^{l-1} W^{l} + b^{l}$ with $W^{l}$ of shape (in, out), which is the "
        "seeds' column form $z^{l} = W^{l} a^{l-1} + b^{l}$ transposed.",
        "",
        f"Every gradient is compared with central differences ($h = {EPS:g}$, Richardson-extrapolated); "
        "the relative error "
        f"$\\lVert g - \\hat g\\rVert / (\\lVert g\\rVert + \\lVert\\hat g\\rVert)$ must be below {TOLERANCE:g}.",
        "",
        *[f"> {n}\n" for n in ex.notes],
        "## Forward pass",
        "",
        *_math("a^{0} = x =", _tmat(ex.x), ",\\qquad y =", _tmat(ex.t)),
    ]
    for lt in ex.layers:
        l = lt.l
        md += [f"### Layer {l}: `{lt.label}`", ""]
        if lt.kind == "dense" and lt.W is not None and lt.b is not None:
            sub = f"= {_tmat(lt.a_prev)} {_tmat(lt.W)} + {_tmat(lt.b)}" if _small(lt.a_prev, lt.W) else ""
            md += _math(f"z^{{{l}}} = a^{{{l - 1}}} W^{{{l}}} + b^{{{l}}}", sub, f"= {_tmat(lt.z)}")
        else:
            md += _math(f"z^{{{l}}} = \\operatorname{{{lt.kind}}}(a^{{{l - 1}}}) = {_tmat(lt.z)}")
        if lt.activation != "none":
            f = ACT_TEX.get(lt.activation, f"\\operatorname{{{lt.activation}}}")
            md += _math(f"a^{{{l}}} = {f}(z^{{{l}}}) = {_tmat(lt.a)}")
    o_tex = o_last.replace("^", "^{") + "}"
    md += _math(lf % {"o": o_tex}, f"= {_tnum(ex.E)}")
    md += [
        "## Backward pass",
        "",
        "$\\delta^{l} = \\partial E / \\partial z^{l}$. The seeds' equations, in their column form and in the "
        "row form chainrule computes:",
        "",
        "$$",
        "\\delta^{L} = \\nabla_{a} E \\odot f'(z^{L}), \\qquad "
        "\\delta^{l} = \\left((W^{l+1})^{\\mathsf T} \\delta^{l+1}\\right) \\odot f'(z^{l}) "
        "\\;\\text{(columns)} \\;=\\; \\left(\\delta^{l+1} (W^{l+1})^{\\mathsf T}\\right) \\odot f'(z^{l}) "
        "\\;\\text{(rows)}",
        "$$",
        "",
        "$$",
        "\\frac{\\partial E}{\\partial W^{l}} = (a^{l-1})^{\\mathsf T} \\delta^{l}, \\qquad "
        "\\frac{\\partial E}{\\partial b^{l}} = \\sum_{\\text{rows}} \\delta^{l}",
        "$$",
        "",
    ]
    for lt in reversed(ex.layers):
        l = lt.l
        ck = ex.checks.get(l, {})
        md += [f"### Layer {l}{' (output)' if l == L else ''}", ""]
        if lt.dE_da is not None:
            if l == L:
                md += _math(f"\\nabla_{{a}} E = {lg % {'o': f'a^{{{l}}}'}} = {_tmat(lt.dE_da)}")
            else:
                nxt = ex.layers[l]
                if (
                    nxt.kind == "dense"
                    and nxt.W is not None
                    and nxt.delta is not None
                    and _small(nxt.delta, nxt.W)
                ):
                    sub = f"= {_tmat(nxt.delta)} {_tmat(_T(nxt.W))}"
                else:
                    sub = ""
                md += _math(
                    f"\\frac{{\\partial E}}{{\\partial a^{{{l}}}}} = \\delta^{{{l + 1}}} (W^{{{l + 1}}})^{{\\mathsf T}}",
                    sub,
                    f"= {_tmat(lt.dE_da)}",
                )
        if lt.delta is not None:
            if lt.fprime is not None:
                fp = (LAYERS[lt.activation].derivative_latex if lt.activation in LAYERS else "f'(z)") % {"l": l}
                md += _math(f"f'(z^{{{l}}}) = {fp} = {_tmat(lt.fprime)}")
                grad_sym = "\\nabla_{a} E" if l == L else f"\\frac{{\\partial E}}{{\\partial a^{{{l}}}}}"
                sub = f"= {_tmat(lt.dE_da)} \\odot {_tmat(lt.fprime)}" if _small(lt.dE_da) else ""
                md += _math(f"\\delta^{{{l}}} = {grad_sym} \\odot f'(z^{{{l}}})", sub, f"= {_tmat(lt.delta)}")
            elif l == L and lt.activation == "none":
                md += _math(f"\\delta^{{{l}}} = {lg % {'o': f'z^{{{l}}}'}} = {_tmat(lt.delta)}")
            else:
                md += _math(
                    f"\\delta^{{{l}}} = \\frac{{\\partial E}}{{\\partial z^{{{l}}}}} = {_tmat(lt.delta)}"
                )
        dense = lt.kind == "dense"
        d_tex = f"\\delta^{{{l}}}" if dense else f"(m \\odot \\delta^{{{l}}})"
        if lt.dW is not None:
            sub = (
                f"= {_tmat(_T(lt.a_prev))} {_tmat(lt.delta)}"
                if dense and _small(_T(lt.a_prev), lt.delta)
                else ""
            )
            md += _math(
                f"\\frac{{\\partial E}}{{\\partial W^{{{l}}}}} = (a^{{{l - 1}}})^{{\\mathsf T}} {d_tex}",
                sub,
                f"= {_tmat(lt.dW)}",
            )
            if not dense:
                md += [f"({MASK_NOTE}.)", ""]
        if lt.db is not None:
            md += _math(
                f"\\frac{{\\partial E}}{{\\partial b^{{{l}}}}} = \\sum_{{\\text{{rows}}}} {d_tex} = {_tmat(lt.db)}"
            )
        md += ["| quantity | shape | norm | gradcheck rel. error | |", "|---|---|---|---|---|"]
        names = {
            "dE_da": f"$\\partial E/\\partial a^{{{l}}}$",
            "delta": f"$\\delta^{{{l}}}$",
            "dW": f"$\\partial E/\\partial W^{{{l}}}$",
            "db": f"$\\partial E/\\partial b^{{{l}}}$",
        }
        for key, label in names.items():
            arr = getattr(lt, key)
            c = ck.get(key)
            if arr is None or c is None:
                continue
            shape = "×".join(str(s) for s in np.shape(arr))
            md.append(
                f"| {label} | {shape} | {np.linalg.norm(arr):.4g} | {c.rel_error:.1e} | {'✓' if c.ok else '✗'} |"
            )
        md.append("")
    md += [
        "## Update",
        "",
        f"$\\theta \\leftarrow \\theta - \\alpha\\, \\partial E/\\partial\\theta$, $\\alpha = {ex.lr:g}$:",
        "",
    ]
    for u in ex.updates:
        pname = u.name.split(".", 1)[1]
        sym = f"{pname}^{{{u.l}}}" if u.l is not None else pname
        d = digits + 2  # one small step moves the 5th or 6th decimal
        sub = f"= {_tmat(u.before, d)} - {ex.lr:g}\\, {_tmat(u.grad, d)}" if _small(u.before) else ""
        md += _math(
            f"{sym} \\leftarrow {sym} - \\alpha \\frac{{\\partial E}}{{\\partial {sym}}}",
            sub,
            f"= {_tmat(u.after, d)}",
        )
    gc = ex.gradcheck
    md += [
        "## Gradient check",
        "",
        "| parameter | relative error |",
        "|---|---|",
        *[f"| `{k}` | {v:.1e} |" for k, v in gc.errors.items()],
        "",
        f"**{'PASS' if ex.ok else 'FAIL'}**: max relative error {gc.max_error:.1e} "
        f"(tolerance {gc.tolerance:g}, `chainrule.inspect.gradcheck`, every entry).",
        "",
    ]
    return "\n".join(md)


# -- JSON -------------------------------------------------------------------------------------------
def _arr(a: Any) -> Any:
    return None if a is None else np.asarray(a, dtype=np.float64).tolist()


def to_json(ex: Explanation) -> dict[str, Any]:
    """The explanation as a JSON-safe dict."""
    fwd, bwd = [], []
    for lt in ex.layers:
        fwd.append(
            {
                "l": lt.l,
                "layer": lt.label,
                "activation": lt.activation,
                "a_prev": _arr(lt.a_prev),
                "W": _arr(lt.W),
                "b": _arr(lt.b),
                "z": _arr(lt.z),
                "a": _arr(lt.a),
                "shapes": {k: list(v) for k, v in lt.shapes.items()},
            }
        )
        ck = ex.checks.get(lt.l, {})
        bwd.append(
            {
                "l": lt.l,
                "dE_da": _arr(lt.dE_da),
                "fprime": _arr(lt.fprime),
                "fprime_formula": LAYERS[lt.activation].derivative if lt.activation in LAYERS else None,
                "delta": _arr(lt.delta),
                "dW": _arr(lt.dW),
                "db": _arr(lt.db),
                "norms": lt.norms,
                "gradcheck": {
                    k: {"numeric": _arr(c.numeric), "rel_error": c.rel_error, "ok": c.ok}
                    for k, c in ck.items()
                },
            }
        )
    return {
        "network": ex.network,
        "layout": "rows are samples: z^l = a^(l-1) W^l + b^l (seeds: z^l = W^l a^(l-1) + b^l)",
        "input": _arr(ex.x),
        "target": _arr(ex.t),
        "loss": {"name": ex.loss, "E": ex.E, "output": _arr(ex.out), "probabilities": _arr(ex.probabilities)},
        "forward": fwd,
        "backward": bwd,
        "formulas": {
            "delta_L": "δ^L = ∇_a E ⊙ f'(z^L)",
            "delta_l_columns": "δ^l = ((W^{l+1})ᵀ δ^{l+1}) ⊙ f'(z^l)",
            "delta_l_rows": "δ^l = (δ^{l+1} (W^{l+1})ᵀ) ⊙ f'(z^l)",
            "dW": "∂E/∂W^l = (a^{l-1})ᵀ δ^l",
            "db": "∂E/∂b^l = Σ_rows δ^l",
            "update": "θ ← θ − α ∂E/∂θ",
        },
        "updates": [
            {"name": u.name, "l": u.l, "before": _arr(u.before), "grad": _arr(u.grad), "after": _arr(u.after)}
            for u in ex.updates
        ],
        "lr": ex.lr,
        "gradcheck": {
            "eps": EPS,
            "errors": ex.gradcheck.errors,
            "max_error": ex.gradcheck.max_error,
            "tolerance": ex.gradcheck.tolerance,
            "ok": ex.ok,
        },
        "notes": ex.notes,
    }


# -- summary ----------------------------------------------------------------------------------------
def _fmt(v: Any) -> str:
    return "—" if v is None else f"{v:.3e}"


def render_summary(s: Summary, fmt: str = "text") -> str:
    """The summary view as ``text``, ``markdown`` or ``json``."""
    head = [
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
    rows = [
        [
            str(r["l"]),
            r["layer"],
            "—" if r["shape_W"] is None else "×".join(map(str, r["shape_W"])),
            _fmt(r["norm_W"]),
            _fmt(r["norm_a"]),
            _fmt(r["norm_delta"]),
            _fmt(r["norm_dW"]),
            _fmt(r["norm_db"]),
            _fmt(r["update_ratio"]),
            _fmt(r["gradcheck_W"]),
            _fmt(r["gradcheck_b"]),
        ]
        for r in s.rows
    ]
    gc = s.gradcheck
    verdict = (
        f"{'PASS' if gc.ok else 'FAIL'}: max relative error {gc.max_error:.1e} (tolerance {gc.tolerance:g})"
    )
    sizes = " → ".join(str(v) for v in s.network["sizes"])
    if fmt == "json":
        return (
            json.dumps(
                {
                    "network": s.network,
                    "loss": {"name": s.loss, "E": s.E},
                    "batch": s.batch,
                    "lr": s.lr,
                    "layers": s.rows,
                    "gradcheck": {
                        "errors": gc.errors,
                        "max_error": gc.max_error,
                        "ok": gc.ok,
                        "tolerance": gc.tolerance,
                    },
                    "notes": s.notes,
                },
                ensure_ascii=False,
                indent=1,
                allow_nan=False,
            )
            + "\n"
        )
    if fmt == "markdown":
        md = [
            f"# Summary of one training step: {sizes}",
            "",
            f"Loss `{s.loss}`, $E = {_tnum(s.E)}$, batch {s.batch}, SGD $\\alpha = {s.lr:g}$; gradient check on "
            "sampled entries (central differences).",
            "",
            *[f"> {n}\n" for n in s.notes],
            "| " + " | ".join(head) + " |",
            "|" + "---|" * len(head),
            *["| " + " | ".join(r) + " |" for r in rows],
            "",
            f"**{verdict}**",
            "",
        ]
        return "\n".join(md)
    widths = [max(len(x[i]) for x in [head, *rows]) for i in range(len(head))]
    out = [
        f"chainrule explain --summary: {sizes} · loss {s.loss} · E = {s.E:.6g} · batch {s.batch} · SGD α = {s.lr:g}",
        *[f"note: {n}" for n in s.notes],
        "",
        "  ".join(h.ljust(w) for h, w in zip(head, widths, strict=True)).rstrip(),
        "  ".join("-" * w for w in widths),
        *["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows],
        "",
        f"gradient check (sampled entries per parameter): {verdict}",
    ]
    return "\n".join(out) + "\n"


def render(ex: Explanation, fmt: str = "text") -> str:
    """``text`` | ``markdown`` | ``json`` rendering of an explanation."""
    if fmt == "text":
        return render_text(ex)
    if fmt == "markdown":
        return render_markdown(ex)
    if fmt == "json":
        return json.dumps(to_json(ex), ensure_ascii=False, indent=1, allow_nan=False) + "\n"
    raise ConfigError(f"unknown format {fmt!r}; choose text, markdown or json")
