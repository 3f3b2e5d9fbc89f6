"""Seed 002's worked example ("形象的例子") in the walk-through: its formula check and its slips.

The example itself — the 3-2-2 network, the post's printed figures, the figure-by-figure comparison
and the wording of each erratum — lives in :mod:`chainrule.studies.example`; here each erratum
becomes a slip with a live check of its own:

* a printed gradient of the shared bias is checked against central differences of ``E`` in that
  ONE scalar (both units' entries moved together), since the post ties ``b1`` (and ``b2``);
* a printed sigmoid slope against central differences of σ at the same ``z``;
* a printed update against ``0.5 − α × (that central-difference gradient)``;
* a mislabelled line against its correct formula evaluated on the library's forward values.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from chainrule.inspect.gradcheck import TOLERANCE, numeric_gradient, relative_error
from chainrule.nn.functional import sigmoid
from chainrule.studies.example import (
    BIAS,
    LR,
    PARAM_INDEX,
    POST,
    WEIGHTS,
    T,
    X,
    build_network,
    post_arithmetic,
    run_example,
)
from chainrule.studies.seeds import common as cm

__all__ = ["CHECKS", "SLIPS", "measure"]


def _shared_bias_slope(name: str) -> float:
    """∂E/∂β for the post's ONE bias β = ``b1`` or ``b2``: central differences of the cost with both
    entries of the Dense bias vector set to β."""
    model = build_network()
    layer, _, _ = PARAM_INDEX[name]
    bias = model.layers[layer].b.value
    beta = np.array([bias[0]])

    def cost() -> float:
        bias[...] = beta[0]
        return float(model.loss_and_grad(X, T))

    return float(numeric_gradient(cost, beta)[0])


def _sigmoid_slope(z: float) -> float:
    """dσ/dz at ``z`` by central differences of :func:`~chainrule.nn.functional.sigmoid`."""
    at = np.array([z])
    return float(numeric_gradient(lambda: float(sigmoid(at)[0]), at)[0])


def measure() -> dict[str, Any]:
    res = run_example(rates=None)
    figures = [f for f in (*res.forward, *res.chain, *res.gradients, *res.updated) if f.post is not None]
    return {
        "example": res,
        "errata": {e.key: e for e in res.errata},
        "example_gradcheck": cm.gc(build_network(), X, T),
        "example_wrong": ", ".join(f.name for f in figures if not f.agrees) or "none",
        "slope_b1": _shared_bias_slope("b1"),
        "slope_b2": _shared_bias_slope("b2"),
        "slope_o1": _sigmoid_slope(res.value("z_o1")),
    }


def _printed(section: str, name: str) -> float:
    """A figure exactly as the post printed it (:data:`chainrule.studies.example.POST`)."""
    return next(v for n, v, _, _ in POST[section] if n == name)


def _wording(key: str) -> cm.Wording:
    def wording(m: cm.Measurements) -> tuple[str, str, str]:
        e = m["errata"][key]
        return f"形象的例子: {e.where}", e.post_says, e.correct

    return wording


def _db1(m: cm.Measurements) -> cm.Verdict:
    e, ours = m["errata"]["dE/db1"], m["example"].value("∂E/∂b1")
    return cm.Verdict(
        relative_error(np.array(ours), np.array(m["slope_b1"])), e.post_value, e.correct_value, e.detail
    )


def _db1_factor(m: cm.Measurements) -> cm.Verdict:
    e, res = m["errata"]["dE/db1 factor"], m["example"]
    typed = res.figure("∂E/∂b1").post_expr_value
    retyped = post_arithmetic("0.7896 × 0.0983 × 0.7 × 0.0132 + 0.7504 × 0.1598 × 0.1 × 0.0049")
    return cm.Verdict(
        relative_error(np.array(res.value("o1(1 − o1)")), np.array(m["slope_o1"])),
        e.post_value,
        e.correct_value,
        f"the line as typed evaluates to {typed:.6f}; with 0.0983 it gives {retyped:.6f} (still two paths only)",
    )


def _b1_update(m: cm.Measurements) -> cm.Verdict:
    e, after = m["errata"]["b1 update"], m["example"].value("b1")
    return cm.Verdict(abs(after - (BIAS - LR * m["slope_b1"])), e.post_value, e.correct_value, e.detail)


def _b2_update(m: cm.Measurements) -> cm.Verdict:
    res, after = m["example"], m["example"].value("b2")
    typed = res.figure("b2").post_expr_value
    return cm.Verdict(
        abs(after - (BIAS - LR * m["slope_b2"])),
        post_value=_printed("updated", "b2"),
        correct_value=after,
        detail=f"post_value is the printed result, which agrees with ours at 4 decimals; the line's own "
        f"expression as typed, 0.1 − 0.01 × 0.1975, gives {typed:.6f}: the start value 0.1 (b2 is 0.5) and "
        "the left side b_1 are the slips",
    )


def _z_o2_label(m: cm.Measurements) -> cm.Verdict:
    res = m["example"]
    h1, h2 = res.value("h1"), res.value("h2")
    z_o2 = WEIGHTS["w8"] * h1 + WEIGHTS["w10"] * h2 + BIAS
    as_written = WEIGHTS["w7"] * h1 + WEIGHTS["w9"] * h2 + BIAS
    return cm.Verdict(
        abs(z_o2 - res.value("z_o2")),
        post_value=[_printed("forward", "z_o2"), _printed("forward", "o2")],
        correct_value=[res.value("z_o2"), res.value("o2")],
        detail="values: (z_o2, o2); the printed figures are right, only the labels and the formula's weights "
        f"are not: read as written, w7 h1 + w9 h2 + b2 is z_o1 = {as_written:.6f}, not 1.3888",
    )


CHECKS = (
    cm.CheckRecord(
        "the worked 3-2-2 example",
        "x = (1, 4, 5), t = (0.1, 0.05), w1..w10, b1 = b2 = 0.5, α = 0.01",
        "Dense(3→2) + Sigmoid + Dense(2→2) + Sigmoid, SquaredError, tied biases",
        "chainrule.studies.example.run_example",
        "gradcheck of the example network (max relative error); printed figures that disagree: ",
        "example_gradcheck",
        TOLERANCE,
        note="example_wrong",
    ),
)

_SHARED = "by central differences of E in the one shared "


def _from_example(key: str, kind: str, check: str, run: cm.SlipCheck, tolerance: float) -> cm.SlipRecord:
    """A slip worded by :mod:`chainrule.studies.example`'s erratum ``key`` (the wording quotes live
    numbers), checked by ``run``."""
    return cm.SlipRecord(f"erratum {key}", "", "", kind, check, run, tolerance, wording=_wording(key))


SLIPS = (
    _from_example(
        "dE/db1",
        cm.NUMERIC,
        f"chainrule's tied ∂E/∂b1 vs ∂E/∂b1 {_SHARED}b1 (both hidden units' entries moved together), "
        "relative error",
        _db1,
        TOLERANCE,
    ),
    _from_example(
        "dE/db1 factor",
        cm.NUMERIC,
        "chainrule's o1(1 − o1) (traced from Sigmoid.backward) vs central differences of σ at z_o1, "
        "relative error",
        _db1_factor,
        TOLERANCE,
    ),
    _from_example(
        "b1 update",
        cm.NUMERIC,
        f"|b1 after chainrule's tied SGD step − (0.5 − 0.01 × ∂E/∂b1 {_SHARED}b1)|",
        _b1_update,
        1e-9,
    ),
    _from_example(
        "b2 update",
        cm.FORMULA,
        f"|b2 after chainrule's tied SGD step − (0.5 − 0.01 × ∂E/∂b2 {_SHARED}b2)|",
        _b2_update,
        1e-9,
    ),
    _from_example(
        "z_o2 label",
        cm.FORMULA,
        "|w8 h1 + w10 h2 + b2 − chainrule's z_o2|, with h1, h2 from chainrule's forward pass",
        _z_o2_label,
        cm.EXACT,
    ),
)
