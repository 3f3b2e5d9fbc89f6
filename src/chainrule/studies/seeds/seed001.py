"""Seed 001, "神经网络推导": squared error with L2 in UFLDL notation (``z^{l+1} = W^l a^l + b^l``), the δ rules.

Every formula of the post is checked on a 3-4-2 sigmoid network with squared error, by the traced
backward pass written out in NumPy and by central differences.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from chainrule.inspect.gradcheck import TOLERANCE, relative_error
from chainrule.nn.model import Sequential
from chainrule.nn.regularizers import l2_penalty
from chainrule.studies.seeds import common as cm

__all__ = ["SECTION"]

LAMBDA = 0.1


def _mean_of_per_sample_gradients(model: Sequential, x: np.ndarray, t: np.ndarray) -> float:
    """The regularised gradient the corrected formula states — the mean of the per-sample gradients plus
    λW, no λ on b — against the library's ``loss_and_grad(l2=λ)``: max relative error."""
    model.loss_and_grad(x, t, l2=LAMBDA)
    lib = {n: p.grad.copy() for n, p in model.named_params()}
    per_sample = {n: np.zeros_like(p.value) for n, p in model.named_params()}
    for i in range(x.shape[0]):
        model.loss_and_grad(x[i : i + 1], t[i : i + 1])
        for n, p in model.named_params():
            per_sample[n] += p.grad / x.shape[0]
    formula = {
        n: per_sample[n] + (LAMBDA * p.value if p.name == "W" else 0.0) for n, p in model.named_params()
    }
    return max(relative_error(lib[n], formula[n]) for n in lib)


def measure() -> dict[str, Any]:
    r = cm.rng(1)
    x, t = r.standard_normal((5, 3)), r.uniform(0.1, 0.9, (5, 2))
    model = cm.net([3, 4, 2], "sigmoid", "squared", seed=3)
    out = model.forward(x)
    E = float(model.loss_and_grad(x, t))
    pen = float(l2_penalty(model.params, LAMBDA))
    weights = sum(float(np.sum(p.value**2)) for p in model.params if p.name == "W")
    m: dict[str, Any] = {
        "cost": abs(E - float(np.mean(0.5 * np.sum((out - t) ** 2, axis=1)))),
        "penalty": abs(pen - 0.5 * LAMBDA * weights),
        "l2": cm.gc(model, x, t, l2=LAMBDA),
        "mean": _mean_of_per_sample_gradients(model, x, t),
    }
    ex = cm.explained(cm.net([3, 4, 2], "sigmoid", "squared", seed=3), x, t)
    lt1, lt2 = ex.layers
    # δ^{n_l} = −(y − a) f'(z), written out with NumPy from the traced a and z
    a2 = lt2.a
    m["d_out"] = relative_error(lt2.delta, -(t - a2) * a2 * (1 - a2) / x.shape[0])
    m["d_hid"] = relative_error(lt1.delta, (lt2.delta @ lt2.W.T) * lt1.a * (1 - lt1.a))
    m["dw"] = max(relative_error(lt2.dW, lt1.a.T @ lt2.delta), relative_error(lt2.db, lt2.delta.sum(axis=0)))
    c = ex.checks
    m["numeric"] = max(c[2]["delta"].rel_error, c[1]["delta"].rel_error, c[2]["dW"].rel_error)
    return m


CHECKS = (
    cm.CheckRecord(
        "squared error, averaged",
        "J(W,b;x,y) = ½‖h_{W,b}(x) − y‖²;  J = (1/m) Σ J(W,b;x^i,y^i) + …",
        "E = (1/N) Σ_n ½‖a_n − y_n‖²",
        "chainrule.nn.losses.SquaredError.forward",
        "|E_chainrule − mean ½‖a − y‖²| on a 3-4-2 sigmoid net, batch 5",
        "cost",
        cm.EXACT,
    ),
    cm.CheckRecord(
        "L2 penalty (weights only)",
        "(λ/2) Σ_l Σ_i Σ_j (W^l_ji)²",
        "(λ/2) Σ W² over Dense weights, never biases",
        "chainrule.nn.regularizers.l2_penalty",
        "|penalty − (λ/2) Σ W²|, λ = 0.1",
        "penalty",
        cm.EXACT,
    ),
    cm.CheckRecord(
        "regularised gradient",
        "∂J/∂W^l_ij = [(1/m) Σ ∂J_i/∂W^l_ij] + λ W^l_ij;  ∂J/∂b^l_i = (1/m) Σ ∂J_i/∂b^l_i",
        "∂E/∂W = xᵀδ + λW;  ∂E/∂b = Σ_rows δ (δ holds the 1/N)",
        "chainrule.nn.model.Sequential.loss_and_grad",
        "gradcheck with l2 = 0.1, max relative error",
        "l2",
        TOLERANCE,
    ),
    cm.CheckRecord(
        "output residual δ^{n_l}",
        "δ_i^{n_l} = −(y_i − a_i^{n_l}) f'(z_i^{n_l})",
        "δ^L = (a^L − y)/N ⊙ a^L(1 − a^L)   (the 1/N of the mean cost)",
        "chainrule.nn.layers.activations.Sigmoid.backward",
        "relative error of the traced δ^L vs the formula written out",
        "d_out",
        cm.EXACT,
    ),
    cm.CheckRecord(
        "hidden residual δ^{n_l − 1}",
        "δ_i^{n_l−1} = (Σ_j δ_j^{n_l} W_ji^{n_l−1}) f'(z_i^{n_l−1})",
        "δ^l = (δ^{l+1} (W^{l+1})ᵀ) ⊙ f'(z^l)",
        "chainrule.nn.layers.dense.Dense.backward",
        "relative error of the traced δ^1 vs the formula written out",
        "d_hid",
        cm.EXACT,
    ),
    cm.CheckRecord(
        "weight and bias gradients",
        "∂J/∂W^l_ij = a_j^l δ_i^{l+1};  ∂J/∂b_i^l = δ_i^{l+1}",
        "∂E/∂W = (a^{l−1})ᵀ δ^l;  ∂E/∂b = Σ_rows δ^l  (the seed's W^l is chainrule's layer l+1)",
        "chainrule.nn.layers.dense.Dense.backward",
        "relative error of traced ∂E/∂W², ∂E/∂b² vs the formula",
        "dw",
        cm.EXACT,
    ),
    cm.CheckRecord(
        "the δ's against central differences",
        "(all of the above)",
        "δ^l = ∂E/∂z^l",
        "chainrule.inspect.explain.explain",
        "max relative error of δ², δ¹, ∂E/∂W² vs central differences",
        "numeric",
        TOLERANCE,
    ),
)

SLIPS = (
    cm.SlipRecord(
        "偏导如下: ∂/∂W_ij^l J(W,b) = [1/m Σ_{i=1}^m ∂/∂W_ij^l J(W,b;x^i,y^i)] + λW_ij^l",
        "i is both the summed sample index and the free unit index of W_ij (same in the cost: Σ_{i=1}^m and "
        "Σ_{i=1}^{s_l})",
        "∂J/∂W^l_ij = (1/m) Σ_{n=1}^m ∂J(W,b;x^(n),y^(n))/∂W^l_ij + λ W^l_ij (a separate sample index n)",
        cm.FORMULA,
        "library gradient with λ = 0.1 vs the corrected formula (mean of per-sample gradients + λW, no λ on b), "
        "max relative error",
        cm.measured("mean"),
        1e-10,
    ),
    cm.text_only(
        "typos (the residual headings, the costs, the layer sizes)",
        "'第$$n_{l-1}$$层第i个单元的残差' (the formula below it has δ^{n_l−1}); 'J(w,b)' and 'J(w,b;x,y)' beside "
        "J(W,b); 'S_{n_l}' beside s_l for the size of a layer; samples written '(x_1,y_1)', then x^i",
        "第 n_l − 1 层 (the layer before the output); J(W,b); s_{n_l}; one sample notation, (x^(i), y^(i))",
    ),
)

SECTION = cm.Section("001", measure, CHECKS, SLIPS)
