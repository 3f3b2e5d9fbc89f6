"""Seed 002's activation functions: the derivatives of sigmoid, tanh and ReLU, softmax, softplus and
maxout, each by a layer gradient check, and the slips of the tanh section.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from chainrule.inspect.gradcheck import TOLERANCE, gradcheck_layer
from chainrule.nn.functional import sigmoid, softplus
from chainrule.nn.layers import Maxout, ReLU, Sigmoid, Softmax, Softplus, Tanh
from chainrule.studies.seeds import common as cm

__all__ = ["CHECKS", "SLIPS", "measure"]


def measure() -> dict[str, Any]:
    r = cm.rng(2)
    h = r.standard_normal((3, 4)) * 2
    gl = {
        name: gradcheck_layer(cls(), h).max_error
        for name, cls in (("sigmoid", Sigmoid), ("tanh", Tanh), ("softmax", Softmax), ("softplus", Softplus))
    }
    gl["relu"] = gradcheck_layer(ReLU(), h + np.sign(h) * 0.1).max_error  # away from ReLU's kink
    _, relu_slope = cm.run_layer(ReLU(), np.array([[-1.0, 0.0, 2.0]]), np.ones((1, 3)))
    gl["maxout"] = gradcheck_layer(
        Maxout(4, 3, 3, rng=0, dtype=np.float64), r.standard_normal((5, 4))
    ).max_error
    tanh_h, _ = cm.run_layer(Tanh(), h)
    tanh_1, _ = cm.run_layer(Tanh(), np.array([[1.0]]))
    return {
        **{f"gl_{k}": v for k, v in gl.items()},
        "relu": max(gl["relu"], cm.maxabs(relu_slope, [[0.0, 0.0, 1.0]])),
        "softplus": max(float(np.max(np.abs(softplus(h) - np.log1p(np.exp(h))))), gl["softplus"]),
        "tanh_formula": max(
            cm.maxabs(tanh_h, (np.exp(h) - np.exp(-h)) / (np.exp(h) + np.exp(-h))), gl["tanh"]
        ),
        "sigmoid_1": float(sigmoid(np.array(1.0))),
        "tanh_1": float(tanh_1[0, 0]),
    }


def _tanh_heading(m: cm.Measurements) -> cm.Verdict:
    return cm.Verdict(
        m["tanh_formula"],
        post_value=m["sigmoid_1"],
        correct_value=m["tanh_1"],
        detail="the two functions differ: at h = 1, σ = post_value, tanh = correct_value",
    )


CHECKS = (
    cm.CheckRecord(
        "sigmoid derivative",
        "∂J/∂h_L = ∂J/∂Z_L · Z_L (1 − Z_L)",
        "∂E/∂z = dy ⊙ a ⊙ (1 − a)",
        "chainrule.nn.layers.activations.Sigmoid.backward",
        "gradcheck_layer (3×4 input), max relative error",
        "gl_sigmoid",
        TOLERANCE,
    ),
    cm.CheckRecord(
        "tanh derivative",
        "∂J/∂h_L = ∂J/∂Z_L (1 − Z_L²)",
        "∂E/∂z = dy ⊙ (1 − a²)",
        "chainrule.nn.layers.activations.Tanh.backward",
        "gradcheck_layer, max relative error",
        "gl_tanh",
        TOLERANCE,
    ),
    cm.CheckRecord(
        "ReLU derivative",
        "∂J/∂h_L = 0 for h_L ≤ 0, ∂J/∂Z_L for h_L > 0",
        "∂E/∂z = dy ⊙ [z > 0]",
        "chainrule.nn.layers.activations.ReLU.backward",
        "gradcheck_layer away from 0, plus max |f'(−1, 0, 2) − (0, 0, 1)| (the post's f'(0) = 0)",
        "relu",
        TOLERANCE,
    ),
    cm.CheckRecord(
        "softmax",
        "σ(z)_j = e^{z_j} / Σ_k e^{z_k}",
        "∂E/∂z = s ⊙ (dy − Σ_j dy_j s_j)",
        "chainrule.nn.layers.activations.Softmax.backward",
        "gradcheck_layer, max relative error",
        "gl_softmax",
        TOLERANCE,
    ),
    cm.CheckRecord(
        "softplus",
        "ζ = log(1 + e^x)",
        "ζ(z) = max(z, 0) + log1p(e^{−|z|});  ζ' = σ(z)",
        "chainrule.nn.layers.activations.Softplus.backward",
        "max(|ζ − log(1 + e^x)|, gradcheck_layer error)",
        "softplus",
        TOLERANCE,
    ),
    cm.CheckRecord(
        "maxout",
        "h_i(x) = max_{j∈[1,k]} z_ij,  z_ij = xᵀ W_{…ij} + b_ij",
        "h = max_j (x W_j + b_j); the gradient goes to the winning piece",
        "chainrule.nn.layers.maxout.Maxout.backward",
        "gradcheck_layer (4 → 3, k = 3), max relative error",
        "gl_maxout",
        TOLERANCE,
    ),
)

SLIPS = (
    cm.SlipRecord(
        "'###### 2 激活函数为sigmoid' above Z_L = (e^h − e^{−h})/(e^h + e^{−h})",
        "heading says sigmoid",
        "tanh (the heading of section 2 should read 激活函数为tanh)",
        cm.FORMULA,
        "max |Tanh(h) − (e^h − e^{−h})/(e^h + e^{−h})| and gradcheck_layer of Tanh (1 − Z² is right)",
        _tanh_heading,
        TOLERANCE,
    ),
    cm.SlipRecord(
        "tanh section: ∂J/∂h_L = ((a − b)/(a + b))′ = …",
        "∂J/∂h_L equated with the derivative of tanh (the factor ∂J/∂Z_L dropped); 'by the composite-function "
        "rule (u/v)′' — that is the quotient rule",
        "∂Z_L/∂h_L = ((a − b)/(a + b))′ = 1 − Z_L² (quotient rule), then ∂J/∂h_L = ∂J/∂Z_L (1 − Z_L²)",
        cm.FORMULA,
        "gradcheck_layer of Tanh",
        cm.measured("gl_tanh"),
        TOLERANCE,
    ),
)
