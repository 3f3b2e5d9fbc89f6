"""Numbers and matrices as text and as LaTeX: what every renderer of an explanation shares.

One number style per matrix (fixed decimals when every nonzero entry reads well that way, else
scientific); text matrices are bracketed line blocks placed side by side by :func:`hcat`, LaTeX
matrices are ``bmatrix`` environments inside ``$$`` blocks built by :func:`math_block`.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from chainrule.inspect.explain.data import SUBSTITUTE_MAX, NumericCheck

__all__ = [
    "block",
    "check_text",
    "equation",
    "hcat",
    "math_block",
    "num",
    "small",
    "style",
    "tex_matrix",
    "tex_num",
    "transpose",
]


# -- text ---------------------------------------------------------------------------------------------
def style(a: Any) -> str:
    """One number style per matrix: fixed decimals when every nonzero entry reads well that way."""
    v = np.abs(np.asarray(a, dtype=np.float64))
    nz = v[v > 0]
    return "f" if nz.size == 0 or (nz.min() >= 1e-3 and nz.max() < 1e5) else "e"


def num(v: float, digits: int = 4, st: str | None = None) -> str:
    """One number in style ``st`` (its own style when None)."""
    v = float(v)
    st = st or style(v)
    if v == 0 and st == "e":
        return "0"
    return f"{v:.{digits}f}" if st == "f" else f"{v:.{digits - 1}e}"


def block(a: Any, digits: int = 4) -> list[str]:
    """A matrix as bracketed text lines (one line for a row vector)."""
    a = np.atleast_2d(np.asarray(a, dtype=np.float64))
    st = style(a)
    cells = [[num(v, digits, st) for v in row] for row in a]
    w = [max(len(cells[i][j]) for i in range(a.shape[0])) for j in range(a.shape[1])]
    body = ["  ".join(c.rjust(w[j]) for j, c in enumerate(row)) for row in cells]
    if len(body) == 1:
        return [f"[{body[0]}]"]
    out = []
    for i, ln in enumerate(body):
        left, right = ("⎡", "⎤") if i == 0 else ("⎣", "⎦") if i == len(body) - 1 else ("⎢", "⎥")
        out.append(f"{left}{ln}{right}")
    return out


def hcat(*parts: str | list[str]) -> list[str]:
    """Place text blocks side by side, vertically centred."""
    blocks = [[p] if isinstance(p, str) else p for p in parts]
    h = max(len(b) for b in blocks)
    cols = []
    for b in blocks:
        w = max(len(s) for s in b)
        top = (h - len(b)) // 2
        cols.append([" " * w] * top + [s.ljust(w) for s in b] + [" " * w] * (h - len(b) - top))
    return ["".join(row).rstrip() for row in zip(*cols, strict=True)]


def small(*arrays: Any) -> bool:
    """Whether every operand is small enough to substitute into a formula."""
    return all(
        a is not None
        and np.atleast_2d(a).shape[0] <= SUBSTITUTE_MAX
        and np.atleast_2d(a).shape[1] <= SUBSTITUTE_MAX
        for a in arrays
    )


def equation(
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
    res_block = block(result, digits)
    if subst is None and len(res_block) == 1:
        return [f"{lhs} {op} {formula} = {res_block[0]}" + (f"    {check}" if check else "")]
    pad = " " * (len(lhs) + len(op) - 1)
    lines = [f"{lhs} {op} {formula}"]
    if subst is not None:
        lines += [pad + ln for ln in hcat(" = ", *subst)]
    res = hcat(" = ", res_block)
    if check:
        mid = len(res) // 2
        res[mid] = f"{res[mid]}    {check}"
    lines += [pad + ln for ln in res]
    return lines


def check_text(c: NumericCheck | None, show_numeric: bool) -> str:
    """``gradcheck: rel. error 1.2e-12 ✓`` (with the numeric estimate when it has ≤ 4 entries)."""
    if c is None:
        return ""
    mark = "✓" if c.ok else "✗"
    numeric = ""
    if show_numeric and np.asarray(c.numeric).size <= 4:
        numeric = " numeric " + " ".join(num(v) for v in np.asarray(c.numeric).ravel()) + ","
    return f"gradcheck:{numeric} rel. error {c.rel_error:.1e} {mark}"


def transpose(a: np.ndarray) -> np.ndarray:
    return np.atleast_2d(a).T


# -- LaTeX --------------------------------------------------------------------------------------------
def tex_num(v: float, st: str | None = None, digits: int = 4) -> str:
    s = num(v, digits, st)
    if "e" in s:
        mant, ex = s.split("e")
        return f"{mant}\\times 10^{{{int(ex)}}}"
    return s


def tex_matrix(a: Any, digits: int = 4) -> str:
    a = np.atleast_2d(np.asarray(a, dtype=np.float64))
    st = style(a)
    rows = " \\\\ ".join(" & ".join(tex_num(v, st, digits) for v in row) for row in a)
    return f"\\begin{{bmatrix}} {rows} \\end{{bmatrix}}"


def math_block(*parts: str) -> list[str]:
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
