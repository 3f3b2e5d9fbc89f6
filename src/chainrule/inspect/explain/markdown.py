"""The explanation as Markdown with LaTeX math (GitHub renders ``$...$`` and ``$$...$$``).

Layer and loss formulas come from the classes' LaTeX templates
(:mod:`chainrule.inspect.explain.notation`); the seeds' back-propagation equations tie them together.
"""

from __future__ import annotations

import numpy as np

from chainrule.inspect.explain.blocks import math_block, small, tex_matrix, tex_num, transpose
from chainrule.inspect.explain.data import EPS, Explanation
from chainrule.inspect.explain.notation import fill
from chainrule.inspect.explain.text import MASK_NOTE, out_symbol
from chainrule.inspect.gradcheck import TOLERANCE
from chainrule.inspect.trace import LayerTrace

__all__ = ["render_markdown"]

BP_EQUATIONS = [
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


def _tex_symbol(text_symbol: str) -> str:
    """``a^2`` -> ``a^{2}``."""
    return text_symbol.replace("^", "^{") + "}"


def _partial(of: str) -> str:
    return f"\\frac{{\\partial E}}{{\\partial {of}}}"


def render_markdown(ex: Explanation, digits: int = 4) -> str:
    """The explanation as Markdown with LaTeX math (GitHub renders ``$...$`` and ``$$...$$``);
    ``digits`` decimals, two more in the update."""
    sizes = " → ".join(str(s) for s in ex.network["sizes"])
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
        *math_block("a^{0} = x =", tex_matrix(ex.x), ",\\qquad y =", tex_matrix(ex.t)),
    ]
    for lt in ex.layers:
        md += _forward(ex, lt)
    o_tex = _tex_symbol(out_symbol(ex.layers[-1]))
    md += math_block(fill(ex.notation_of_loss().formula_latex, o=o_tex), f"= {tex_num(ex.E)}")
    md += ["## Backward pass", "", *BP_EQUATIONS]
    for lt in reversed(ex.layers):
        md += _backward(ex, lt)
    md += _update(ex, digits)
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


def _forward(ex: Explanation, lt: LayerTrace) -> list[str]:
    l, p = lt.l, lt.l - 1
    g = ex.notation_of(lt)
    md = [f"### Layer {l}: `{lt.label}`", ""]
    rhs = g.head.defines_z(latex=True)
    if rhs is None:
        md += math_block(f"z^{{{l}}} = {g.head.symbol_latex}(a^{{{p}}}) = {tex_matrix(lt.z)}")
    else:
        sub = ""
        if lt.kind == "dense" and lt.W is not None and lt.b is not None and small(lt.a_prev, lt.W):
            sub = f"= {tex_matrix(lt.a_prev)} {tex_matrix(lt.W)} + {tex_matrix(lt.b)}"
        md += math_block(f"z^{{{l}}} = {fill(rhs, l=l, p=p)}", sub, f"= {tex_matrix(lt.z)}")
    if lt.activation != "none":
        md += math_block(f"a^{{{l}}} = {g.apply(f'z^{{{l}}}', latex=True)} = {tex_matrix(lt.a)}")
    return md


def _backward(ex: Explanation, lt: LayerTrace) -> list[str]:
    l, L = lt.l, len(ex.layers)
    md = [f"### Layer {l}{' (output)' if l == L else ''}", ""]
    if lt.dE_da is not None:
        md += _dE_da(ex, lt)
    if lt.delta is not None:
        md += _delta(ex, lt)
    return md + _param_grads(ex, lt) + _check_table(ex, lt)


def _dE_da(ex: Explanation, lt: LayerTrace) -> list[str]:
    l = lt.l
    if l == len(ex.layers):
        delta = fill(ex.notation_of_loss().delta_latex, o=f"a^{{{l}}}")
        return math_block(f"\\nabla_{{a}} E = {delta} = {tex_matrix(lt.dE_da)}")
    nxt = ex.layers[l]
    if nxt.kind != "dense" or nxt.W is None or nxt.delta is None:
        return math_block(
            f"{_partial(f'a^{{{l}}}')} = \\text{{backward of layer {l + 1}}} = {tex_matrix(lt.dE_da)}"
        )
    sub = f"= {tex_matrix(nxt.delta)} {tex_matrix(transpose(nxt.W))}" if small(nxt.delta, nxt.W) else ""
    return math_block(
        f"{_partial(f'a^{{{l}}}')} = \\delta^{{{l + 1}}} (W^{{{l + 1}}})^{{\\mathsf T}}",
        sub,
        f"= {tex_matrix(lt.dE_da)}",
    )


def _delta(ex: Explanation, lt: LayerTrace) -> list[str]:
    l, L = lt.l, len(ex.layers)
    single = ex.notation_of(lt).single
    if lt.fprime is not None and single is not None:
        fp = fill(single.derivative_latex, l=l, p=l - 1)
        md = math_block(f"f'(z^{{{l}}}) = {fp} = {tex_matrix(lt.fprime)}")
        grad_sym = "\\nabla_{a} E" if l == L else _partial(f"a^{{{l}}}")
        sub = f"= {tex_matrix(lt.dE_da)} \\odot {tex_matrix(lt.fprime)}" if small(lt.dE_da) else ""
        return md + math_block(
            f"\\delta^{{{l}}} = {grad_sym} \\odot f'(z^{{{l}}})", sub, f"= {tex_matrix(lt.delta)}"
        )
    if l == L and lt.activation == "none":
        delta = fill(ex.notation_of_loss().delta_latex, o=f"z^{{{l}}}")
        return math_block(f"\\delta^{{{l}}} = {delta} = {tex_matrix(lt.delta)}")
    return math_block(f"\\delta^{{{l}}} = {_partial(f'z^{{{l}}}')} = {tex_matrix(lt.delta)}")


def _param_grads(ex: Explanation, lt: LayerTrace) -> list[str]:
    """BP3/BP4 for a Dense (masked for maxout); any other head shows its own derivative."""
    l = lt.l
    if lt.kind not in ("dense", "maxout"):
        head = ex.notation_of(lt).head
        md = [f"Backward of ${head.symbol_latex}$: ${fill(head.derivative_latex, l=l, p=l - 1)}$", ""]
        if lt.dW is not None:
            md += math_block(f"{_partial(f'W^{{{l}}}')} = {tex_matrix(lt.dW)}")
        if lt.db is not None:
            md += math_block(f"{_partial(f'b^{{{l}}}')} = {tex_matrix(lt.db)}")
        return md
    dense = lt.kind == "dense"
    d_tex = f"\\delta^{{{l}}}" if dense else f"(m \\odot \\delta^{{{l}}})"
    md: list[str] = []
    if lt.dW is not None:
        a_t = transpose(lt.a_prev)
        sub = f"= {tex_matrix(a_t)} {tex_matrix(lt.delta)}" if dense and small(a_t, lt.delta) else ""
        md += math_block(
            f"{_partial(f'W^{{{l}}}')} = (a^{{{l - 1}}})^{{\\mathsf T}} {d_tex}",
            sub,
            f"= {tex_matrix(lt.dW)}",
        )
        if not dense:
            md += [f"({MASK_NOTE}.)", ""]
    if lt.db is not None:
        md += math_block(f"{_partial(f'b^{{{l}}}')} = \\sum_{{\\text{{rows}}}} {d_tex} = {tex_matrix(lt.db)}")
    return md


def _check_table(ex: Explanation, lt: LayerTrace) -> list[str]:
    l = lt.l
    ck = ex.checks.get(l, {})
    md = ["| quantity | shape | norm | gradcheck rel. error | |", "|---|---|---|---|---|"]
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
    return [*md, ""]


def _update(ex: Explanation, digits: int) -> list[str]:
    md = [
        "## Update",
        "",
        f"$\\theta \\leftarrow \\theta - \\alpha\\, \\partial E/\\partial\\theta$, $\\alpha = {ex.lr:g}$:",
        "",
    ]
    d = digits + 2  # one small step moves the 5th or 6th decimal
    for u in ex.updates:
        pname = u.name.split(".", 1)[1]
        sym = f"{pname}^{{{u.l}}}" if u.l is not None else pname
        sub = f"= {tex_matrix(u.before, d)} - {ex.lr:g}\\, {tex_matrix(u.grad, d)}" if small(u.before) else ""
        md += math_block(
            f"{sym} \\leftarrow {sym} - \\alpha {_partial(sym)}",
            sub,
            f"= {tex_matrix(u.after, d)}",
        )
    return md
