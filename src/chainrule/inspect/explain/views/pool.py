"""Max-pooling in an explained step: which input position each window routed its δ to."""

from __future__ import annotations

from typing import Any

import numpy as np

from chainrule.inspect.explain.blocks import block, hcat, num, tex_matrix, tex_num
from chainrule.inspect.explain.views import KindView, register_view


def _data(layer: Any, entry: Any, step: Any) -> dict[str, Any]:
    routes = layer.routes(entry.ctx)  # (N, C, OH, OW, 2): input (row, col) of each window's winner
    n, c, h, w = entry.x.shape
    routed = np.zeros((n, c, h, w))
    windows = []
    for s in range(n):
        for ch in range(c):
            for i in range(routes.shape[2]):
                for j in range(routes.shape[3]):
                    r, col = (int(v) for v in routes[s, ch, i, j])
                    d = float(step.delta[s, ch, i, j])
                    routed[s, ch, r, col] += d
                    windows.append(
                        {"sample": s, "channel": ch, "window": [i, j], "input": [r, col], "delta": d}
                    )
    return {"routes": windows, "routed_delta": routed}


def _text(step: Any) -> list[str]:
    lines = ["  max-pool routing: window (i, j) → input position (row, col) of its maximum, δ sent there"]
    for w in step.extras["routes"]:
        s, ch, (i, j), (r, c) = w["sample"], w["channel"], w["window"], w["input"]
        lines.append(
            f"    sample {s} channel {ch}: window ({i}, {j}) → input ({r}, {c}), δ = {num(w['delta'])}"
        )
    routed = step.extras["routed_delta"]
    for s in range(routed.shape[0]):
        for ch in range(routed.shape[1]):
            lines += hcat(f"    δ routed to the input, sample {s} channel {ch}: ", block(routed[s, ch]))
    return lines


def _markdown(step: Any) -> list[str]:
    lines = ["Max-pool routing (each window sends its δ to the position of its maximum):", ""]
    lines += ["| sample | channel | window $(i, j)$ | input $(r, c)$ | $\\delta$ |", "|---|---|---|---|---|"]
    for w in step.extras["routes"]:
        (i, j), (r, c) = w["window"], w["input"]
        lines.append(
            f"| {w['sample']} | {w['channel']} | ({i}, {j}) | ({r}, {c}) | ${tex_num(w['delta'])}$ |"
        )
    lines.append("")
    routed = step.extras["routed_delta"]
    for s in range(routed.shape[0]):
        for ch in range(routed.shape[1]):
            lines += ["$$", f"\\text{{routed }}\\delta_{{{s},{ch}}} = {tex_matrix(routed[s, ch])}", "$$", ""]
    return lines


register_view("maxpool", KindView(_data, _text, _markdown))
