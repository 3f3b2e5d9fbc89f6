"""A convolution in an explained step: each kernel ``K[o, c]`` with ``∂E/∂K[o, c]`` beside its
central-difference value, and ``∂E/∂b[o]`` beside its own."""

from __future__ import annotations

from typing import Any

import numpy as np

from chainrule.inspect.explain.blocks import block, check_text, hcat, num, tex_matrix, tex_num
from chainrule.inspect.explain.views import KindView, register_view


def _data(layer: Any, entry: Any, step: Any) -> dict[str, Any]:
    (dK, cK), (db, cb) = step.grads["W"], step.grads["b"]
    kernels = []
    for o in range(dK.shape[0]):
        for c in range(dK.shape[1]):
            kernels.append(
                {
                    "out": o,
                    "in": c,
                    "K": np.array(layer.W.value[o, c], dtype=np.float64),
                    "dK": dK[o, c],
                    "dK_numeric": cK.numeric[o, c],
                }
            )
    bias = [{"out": o, "db": float(db[o]), "db_numeric": float(cb.numeric[o])} for o in range(db.shape[0])]
    return {"kernels": kernels, "bias": bias, "stride": layer.stride, "pad": layer.pad}


def _text(step: Any) -> list[str]:
    lines = [
        "  ∂E/∂K[o, c] = Σ_{n,i,j} δ[n, o, i, j] · x_pad[n, c, s·i + u, s·j + v]  (correlation of δ with x)"
    ]
    for k in step.extras["kernels"]:
        lines += hcat(
            f"    K[{k['out']},{k['in']}] = ",
            block(k["K"]),
            "   ∂E/∂K = ",
            block(k["dK"]),
            "   numeric ",
            block(k["dK_numeric"]),
        )
    lines.append("    " + check_text(step.grads["W"][1], False))
    for b in step.extras["bias"]:
        lines.append(
            f"    ∂E/∂b[{b['out']}] = Σ δ[:, {b['out']}] = {num(b['db'])}   numeric {num(b['db_numeric'])}"
        )
    lines.append("    " + check_text(step.grads["b"][1], False))
    return lines


def _markdown(step: Any) -> list[str]:
    lines = [
        "$$",
        r"\frac{\partial E}{\partial K_{oc}} = \sum_{n,i,j} \delta_{n,o,i,j}\, x_{n,c,si+u,sj+v}",
        "$$",
        "",
    ]
    for k in step.extras["kernels"]:
        o, c = k["out"], k["in"]
        lines += [
            "$$",
            f"K_{{{o}{c}}} = {tex_matrix(k['K'])},\\quad "
            f"\\frac{{\\partial E}}{{\\partial K_{{{o}{c}}}}} = {tex_matrix(k['dK'])},\\quad "
            f"\\text{{numeric}} = {tex_matrix(k['dK_numeric'])}",
            "$$",
            "",
        ]
    for b in step.extras["bias"]:
        lines.append(
            f"- $\\partial E / \\partial b_{{{b['out']}}} = {tex_num(b['db'])}$, numeric ${tex_num(b['db_numeric'])}$"
        )
    lines.append("")
    return lines


register_view("conv", KindView(_data, _text, _markdown))
