"""The explanation as aligned terminal text: each step's formula, the numbers substituted, the
result and the gradient check beside it.

Layer and loss formulas come from the classes (:mod:`chainrule.inspect.explain.notation`); what is
written here is the seeds' back-propagation equations (BP1-BP4, row form) that tie them together.
"""

from __future__ import annotations

from chainrule.inspect.explain.blocks import block, check_text, equation, hcat, num, small, transpose
from chainrule.inspect.explain.data import EPS, Explanation
from chainrule.inspect.explain.notation import GroupNotation, fill
from chainrule.inspect.gradcheck import TOLERANCE
from chainrule.inspect.trace import LayerTrace, ParamUpdate

__all__ = ["MASK_NOTE", "out_symbol", "param_symbol", "render_text"]

MASK_NOTE = "m: one-hot mask of each unit's winning piece, flattened to W's columns"


def out_symbol(lt: LayerTrace) -> str:
    """``a^l`` after an activation, ``z^l`` without one (text form)."""
    return f"a^{lt.l}" if lt.activation != "none" else f"z^{lt.l}"


def param_symbol(u: ParamUpdate) -> str:
    pname = u.name.split(".", 1)[1]
    return f"{pname}^{u.l}" if u.l is not None else pname


def _indented(lines: list[str]) -> list[str]:
    return ["  " + s for s in lines]


def render_text(ex: Explanation, digits: int = 4) -> str:
    """The explanation as aligned terminal text (``digits`` decimals; updates get two more)."""
    lines = [*_header(ex), "", "FORWARD PASS", *_hcat_x(ex)]
    for lt in ex.layers:
        lines += _forward(ex, lt)
    lines += _loss(ex)
    lines += ["", "BACKWARD PASS  (δ^l = ∂E/∂z^l)"]
    for lt in reversed(ex.layers):
        lines += _backward(ex, lt)
    lines += _update(ex, digits)
    gc = ex.gradcheck
    lines += [
        "",
        "GRADIENT CHECK  (chainrule.inspect.gradcheck, every parameter entry)",
        "  " + "   ".join(f"{k} {v:.1e}" for k, v in gc.errors.items()),
        f"  {'PASS' if ex.ok else 'FAIL'}: max relative error {gc.max_error:.1e} (tolerance {gc.tolerance:g}); "
        f"{'every' if ex.ok else 'NOT every'} δ and gradient above agrees with central differences",
    ]
    return "\n".join(lines) + "\n"


def _header(ex: Explanation) -> list[str]:
    sizes = " → ".join(str(s) for s in ex.network["sizes"])
    acts = sorted({lt.activation for lt in ex.layers[:-1]}) or ["none"]
    out_act = ex.layers[-1].activation
    if out_act == "none":
        fused = ex.notation_of_loss().fused
        out_act = "linear" + (f" ({fused.symbol} inside the loss)" if fused is not None else "")
    return [
        f"chainrule explain: {sizes} · hidden {', '.join(acts)} · output {out_act} · "
        f"loss {ex.loss} · batch {ex.x.shape[0]} · SGD α = {ex.lr:g}",
        "layout: rows are samples; z^l = a^(l−1) W^l + b^l with W^l of shape (in, out) — the seeds' column "
        "form z^l = W^l a^(l−1) + b^l, transposed",
        f"gradcheck: central differences (h = {EPS:g}, Richardson-extrapolated) of E, relative error ‖g − ĝ‖/(‖g‖ + ‖ĝ‖) < "
        f"{TOLERANCE:g}",
        *[f"note: {n}" for n in ex.notes],
    ]


def _hcat_x(ex: Explanation) -> list[str]:
    return [*hcat("  a^0 = x = ", block(ex.x)), *hcat("  target y = ", block(ex.t))]


def _forward(ex: Explanation, lt: LayerTrace) -> list[str]:
    """``z^l = ...`` (the head's own formula when it defines ``z^l``) and ``a^l = f(z^l)``."""
    l, p = lt.l, lt.l - 1
    g = ex.notation_of(lt)
    lines = ["", f"layer {l}: {lt.label}"]
    rhs = g.head.defines_z()
    if rhs is None:
        lines += _indented(equation(f"z^{l}", f"{g.head.symbol}(a^{p})", None, lt.z))
    else:
        subst = None
        if lt.kind == "dense" and lt.W is not None and lt.b is not None and small(lt.a_prev, lt.W):
            subst = [block(lt.a_prev), " ", block(lt.W), " + ", block(lt.b)]
        lines += _indented(equation(f"z^{l}", fill(rhs, l=l, p=p), subst, lt.z))
    if lt.activation != "none":
        lines += _indented(equation(f"a^{l}", g.apply(f"z^{l}"), None, lt.a))
    return lines


def _loss(ex: Explanation) -> list[str]:
    o = out_symbol(ex.layers[-1])
    ln = ex.notation_of_loss()
    lines = []
    if ex.probabilities is not None:
        name = ln.fused.symbol if ln.fused is not None else "p"
        lines += ["", *hcat(f"  {name}({o}) = ", block(ex.probabilities))]
    return [*lines, "", f"  {fill(ln.formula, o=o)} = {num(ex.E, 6)}"]


def _backward(ex: Explanation, lt: LayerTrace) -> list[str]:
    l, L = lt.l, len(ex.layers)
    ck = ex.checks.get(l, {})
    lines = ["", f"layer {l}{' (output)' if l == L else ''}: {lt.label}"]
    if lt.dE_da is not None:
        formula, subst = _dE_da(ex, lt)
        lines += _indented(
            equation(f"∂E/∂a^{l}", formula, subst, lt.dE_da, check_text(ck.get("dE_da"), True))
        )
    if lt.delta is not None:
        g = ex.notation_of(lt)
        if lt.fprime is not None and g.single is not None:
            fp = fill(g.single.derivative, l=l, p=l - 1)
            lines += _indented(equation(f"f'(z^{l})", fp, None, lt.fprime))
        formula, subst = _delta(ex, lt)
        lines += _indented(equation(f"δ^{l}", formula, subst, lt.delta, check_text(ck.get("delta"), True)))
    return lines + _param_grads(ex, lt)


def _next_is_dense(ex: Explanation, lt: LayerTrace) -> bool:
    nxt = ex.layers[lt.l] if lt.l < len(ex.layers) else None
    return nxt is not None and nxt.kind == "dense" and nxt.W is not None and nxt.delta is not None


def _dE_da(ex: Explanation, lt: LayerTrace) -> tuple[str, list[str | list[str]] | None]:
    """``∂E/∂a^l``: the loss's δ on the output, ``δ^{l+1} (W^{l+1})ᵀ`` under a Dense (BP2's first
    factor), else whatever layer ``l + 1``'s backward gave."""
    l = lt.l
    if l == len(ex.layers):
        return fill(ex.notation_of_loss().delta, o=f"a^{l}"), None
    if _next_is_dense(ex, lt):
        nxt = ex.layers[l]
        subst = [block(nxt.delta), " ", block(transpose(nxt.W))] if small(nxt.delta, nxt.W) else None
        return f"δ^{l + 1} (W^{l + 1})ᵀ        [column form: (W^{l + 1})ᵀ δ^{l + 1}]", subst
    return f"backward of layer {l + 1}", None


def _delta(ex: Explanation, lt: LayerTrace) -> tuple[str, list[str | list[str]] | None]:
    """``δ^l = ∂E/∂a^l ⊙ f'(z^l)`` (BP1/BP2), the loss's δ on logits, or the activation's Jacobian."""
    l, L = lt.l, len(ex.layers)
    if lt.fprime is not None:
        if l == L:
            formula = f"∇_a E ⊙ f'(z^{l})"
        elif _next_is_dense(ex, lt):
            formula = f"(δ^{l + 1} (W^{l + 1})ᵀ) ⊙ f'(z^{l})        [column form: ((W^{l + 1})ᵀ δ^{l + 1}) ⊙ f'(z^{l})]"
        else:
            formula = f"∂E/∂a^{l} ⊙ f'(z^{l})"
        subst = [block(lt.dE_da), " ⊙ ", block(lt.fprime)] if small(lt.dE_da) else None
        return formula, subst
    if lt.activation == "none" and l == L:
        return f"∂E/∂z^{l} = " + fill(ex.notation_of_loss().delta, o=f"z^{l}"), None
    if lt.activation == "none":
        return f"∂E/∂z^{l} (backward of layer {l + 1})", None
    return f"Jacobian of {lt.activation} applied to ∂E/∂a^{l}", None


def _param_grads(ex: Explanation, lt: LayerTrace) -> list[str]:
    """``∂E/∂W^l = (a^{l-1})ᵀ δ^l`` and ``∂E/∂b^l = Σ_rows δ^l`` (BP3/BP4; masked for maxout)."""
    l = lt.l
    ck = ex.checks.get(l, {})
    dense = lt.kind == "dense"
    w_formula, b_formula = _grad_formulas(ex.notation_of(lt), lt)
    lines: list[str] = []
    if lt.dW is not None:
        subst = None
        if dense and small(transpose(lt.a_prev), lt.delta):
            subst = [block(transpose(lt.a_prev)), " ", block(lt.delta)]
        lines += _indented(equation(f"∂E/∂W^{l}", w_formula, subst, lt.dW, check_text(ck.get("dW"), False)))
    if lt.db is not None:
        lines += _indented(equation(f"∂E/∂b^{l}", b_formula, None, lt.db, check_text(ck.get("db"), True)))
    return lines


def _grad_formulas(g: GroupNotation, lt: LayerTrace) -> tuple[str, str]:
    l = lt.l
    if lt.kind == "dense":
        return f"(a^{l - 1})ᵀ δ^{l}", f"Σ_rows δ^{l}"
    if lt.kind == "maxout":
        return f"(a^{l - 1})ᵀ (m ⊙ δ^{l})   [{MASK_NOTE}]", f"Σ_rows (m ⊙ δ^{l})"
    backward = f"backward of {g.head.symbol}: {fill(g.head.derivative, l=l, p=l - 1)}"
    return backward, backward


def _update(ex: Explanation, digits: int) -> list[str]:
    lines = ["", f"UPDATE  (SGD: θ ← θ − α ∂E/∂θ, α = {ex.lr:g})"]
    d = digits + 2  # one small step moves the 5th or 6th decimal
    for u in ex.updates:
        sym = param_symbol(u)
        subst = [block(u.before, d), f" − {ex.lr:g} ", block(u.grad, d)] if small(u.before) else None
        lines += _indented(equation(sym, f"{sym} − α ∂E/∂{sym}", subst, u.after, op="←", digits=d))
    return lines
