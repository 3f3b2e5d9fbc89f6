"""Seed 004, "反向传播算法及其梯度扩散": Nielsen's BP1-BP3 in column form, and the vanishing gradient.

The post's column-form formulas (``z^l = W^l a^{l−1} + b^l``, ``w^l_jk`` from unit k of layer l−1
to unit j of layer l) are checked against chainrule's row form (``W^l[k, j] = w^l_jk``) on a 3-4-2
sigmoid network with the quadratic cost.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from chainrule.inspect.gradcheck import TOLERANCE, relative_error
from chainrule.nn.layers import Dense, Sigmoid
from chainrule.studies.seeds import common as cm

__all__ = ["SECTION"]

K = 4  # inputs of the weighted-input check
LR = 0.5  # the step size of the update check


def _weighted_input(r: np.random.Generator) -> dict[str, Any]:
    a_prev = r.standard_normal((1, K))
    Wc = r.standard_normal((3, K))  # the post's w^l_jk: row j (unit of layer l), column k (unit of l−1)
    bl = r.standard_normal(3)
    z, _ = cm.run_layer(Dense(K, 3, W=Wc.T, b=bl, dtype=np.float64), a_prev)
    z_loop = np.array([sum(Wc[j, k] * a_prev[0, k] for k in range(K)) + bl[j] for j in range(3)])
    z_post = np.array([sum(Wc[j, k] * a_prev[0, k] + bl[j] for k in range(K)) for j in range(3)])
    return {"fwd": cm.maxabs(z[0], z_loop), "z": z[0], "z_post": z_post, "b": bl}


def _bp(x: np.ndarray, t: np.ndarray) -> dict[str, Any]:
    """BP1-BP3 written out from the traced pass of a 3-4-2 sigmoid net, and central differences."""
    model = cm.net([3, 4, 2], "sigmoid", "squared", seed=6)
    out = model.forward(x)
    E = float(model.loss_and_grad(x, t))
    ex = cm.explained(cm.net([3, 4, 2], "sigmoid", "squared", seed=6), x, t)
    l1, l2 = ex.layers
    grad_a = (l2.a - t) / x.shape[0]
    return {
        "model": model,
        "cost": abs(E - float(np.sum((t - out) ** 2) / (2 * x.shape[0]))),
        "bp1": relative_error(l2.delta, grad_a * l2.a * (1 - l2.a)),
        # BP2 in the post's column form ((W^{l+1})ᵀ δ^{l+1}, one column per sample), transposed back to
        # rows; chainrule's W^{l+1} is the post's transposed, so the post's (W^{l+1})ᵀ is our W
        "bp2": relative_error(l1.delta, (l2.W @ l2.delta.T).T * l1.a * (1 - l1.a)),
        "bp3": relative_error(l1.dW, np.einsum("nk,nj->kj", l1.a_prev, l1.delta)),
        "numeric": max(c.rel_error for per in ex.checks.values() for c in per.values()),
        "bias": relative_error(l1.db, l1.delta.sum(axis=0)),
    }


def _vanishing(r: np.random.Generator) -> dict[str, Any]:
    grid = np.linspace(-10, 10, 20001)[None, :]
    _, slope = cm.run_layer(Sigmoid(), grid, np.ones_like(grid))
    deep = cm.net([8, 8, 8, 8, 8, 8, 2], "sigmoid", "squared", seed=7)
    xs, ts = r.standard_normal((4, 8)), r.uniform(0.1, 0.9, (4, 2))
    norms = [float(np.linalg.norm(lt.delta)) for lt in cm.traced(deep, xs, ts)]
    shrink = [norms[i] / norms[i + 1] for i in range(len(norms) - 1)]
    return {
        "sigmoid_max": abs(float(np.max(slope)) - 0.25),
        "shrink": ": " + ", ".join(f"{s:.2f}" for s in shrink),
    }


def _bp2_shapes(r: np.random.Generator) -> dict[str, Any]:
    """The post's W^{l+1} is 2×3 while layer l has 4 units: BP2 with it, and with the 2×4 it needs."""
    W23, d_next, fp4 = r.standard_normal((2, 3)), r.standard_normal(2), r.uniform(0.1, 0.25, 4)
    try:
        (W23.T @ d_next) * fp4
        shape_msg = "defined"
    except ValueError:
        shape_msg = f"undefined: (W^{{l+1}})ᵀ δ^{{l+1}} has {W23.shape[1]} entries, σ′(z^l) has {fp4.size}"
    W24 = np.concatenate([W23, r.standard_normal((2, 1))], axis=1)
    bp2_ok = (W24.T @ d_next) * fp4
    _, dx = cm.run_layer(
        Dense(4, 2, W=W24.T, b=np.zeros(2), dtype=np.float64), np.ones((1, 4)), d_next[None, :]
    )
    return {"shape_msg": shape_msg, "bp2_ok": bp2_ok, "bp2_24": relative_error(bp2_ok, dx[0] * fp4)}


def measure() -> dict[str, Any]:
    r = cm.rng(4)
    m = _weighted_input(r)
    x, t = r.standard_normal((4, 3)), r.uniform(0.1, 0.9, (4, 2))
    m |= _bp(x, t)
    m |= _vanishing(r)
    m["update"] = cm.sgd_step(m.pop("model"), x, t, LR)["error"]
    return m | _bp2_shapes(r)


# -- the slips' checks ----------------------------------------------------------------------------
def _bias_in_sum(m: cm.Measurements) -> cm.Verdict:
    z, z_post, b = m["z"], m["z_post"], m["b"]
    return cm.Verdict(
        m["fwd"],
        post_value=z_post.tolist(),
        correct_value=z.tolist(),
        detail=f"K = {K}: post − correct = [{cm.fmt_list(np.round(z_post - z, 9).tolist(), 6)}], and (K − 1)·b = "
        f"[{cm.fmt_list(np.round((K - 1) * b, 9).tolist(), 6)}]: b counted K times",
    )


def _bp2_2x3(m: cm.Measurements) -> cm.Verdict:
    return cm.Verdict(m["bp2_24"], post_value=m["shape_msg"], correct_value=m["bp2_ok"].tolist())


CHECKS = (
    cm.CheckRecord(
        "weighted input",
        "z^l_j = Σ_k (w^l_jk a^{l−1}_k + b^l_j)  [bias inside the sum: see errata]",
        "z^l = a^{l−1} W^l + b^l,  W^l[k, j] = w^l_jk",
        "chainrule.nn.layers.dense.Dense.forward",
        "max |Dense − (Σ_k w_jk a_k + b_j)| for K = 4 inputs",
        "fwd",
        cm.EXACT,
    ),
    cm.CheckRecord(
        "quadratic cost",
        "C = (1/2n) Σ_x ‖y − a^L‖²",
        "E = (1/N) Σ_n ½‖a_n − y_n‖²",
        "chainrule.nn.losses.SquaredError.forward",
        "|E_chainrule − (1/2n) Σ ‖y − a‖²|",
        "cost",
        cm.EXACT,
    ),
    cm.CheckRecord(
        "BP1",
        "δ^L = ∇_a C ⊙ σ′(z^L)",
        "δ^L = (a^L − y)/N ⊙ a^L(1 − a^L)",
        "chainrule.nn.losses.SquaredError.backward",
        "relative error of the traced δ^L vs ∇_a C ⊙ σ′(z^L)",
        "bp1",
        cm.EXACT,
    ),
    cm.CheckRecord(
        "BP2",
        "δ^l = ((W^{l+1})ᵀ δ^{l+1}) ⊙ σ′(z^l)",
        "δ^l = (δ^{l+1} (W^{l+1})ᵀ) ⊙ σ′(z^l)",
        "chainrule.nn.layers.dense.Dense.backward",
        "relative error of the traced δ¹ vs the column-form formula (transposed)",
        "bp2",
        cm.EXACT,
    ),
    cm.CheckRecord(
        "BP3",
        "∂C/∂w^l_jk = a^{l−1}_k δ^l_j",
        "∂E/∂W^l = (a^{l−1})ᵀ δ^l (summed over the batch)",
        "chainrule.nn.layers.dense.Dense.backward",
        "relative error of the traced ∂E/∂W¹ vs Σ_n a_nk δ_nj",
        "bp3",
        cm.EXACT,
    ),
    cm.CheckRecord(
        "BP1-BP3 against central differences",
        "(all of the above)",
        "δ^l = ∂C/∂z^l",
        "chainrule.inspect.explain.explain",
        "max relative error of every ∂E/∂a, δ, ∂E/∂W, ∂E/∂b vs central differences",
        "numeric",
        TOLERANCE,
    ),
    cm.CheckRecord(
        "vanishing gradient: σ′ ≤ 1/4",
        "sigmoid's derivative decays, so ∂C/∂w shrinks with depth",
        "σ′(z) = σ(z)(1 − σ(z)) ≤ 1/4 at z = 0",
        "chainrule.nn.layers.activations.Sigmoid.backward",
        "max σ′ on [−10, 10] minus 1/4; ‖δ^l‖/‖δ^(l+1)‖ in a 6-layer sigmoid net",
        "sigmoid_max",
        1e-9,
        note="shrink",
    ),
    cm.CheckRecord(
        "update",
        "w^l_jk := w^l_jk − η ∂C/∂w^l_jk",
        "θ ← θ − α ∂E/∂θ",
        "chainrule.optim.SGD.update",
        "max |θ_after − (θ_before − η g)|",
        "update",
        cm.EXACT,
    ),
)

SLIPS = (
    cm.SlipRecord(
        "z^l_j = Σ_k (w^l_jk a^{l−1}_k + b^l_j)",
        "b^l_j inside the sum over k: added once per input, K·b instead of b",
        "z^l_j = Σ_k w^l_jk a^{l−1}_k + b^l_j",
        cm.FORMULA,
        "max |Dense − (Σ_k w_jk a_k + b_j)|",
        _bias_in_sum,
        cm.EXACT,
    ),
    cm.SlipRecord(
        "'b^l_j 是 l-1 层的第j个神经元的偏置'",
        "b^l_j belongs to neuron j of layer l − 1",
        "b^l_j is the bias of neuron j of layer l (it enters z^l_j), so ∂C/∂b^l_j = δ^l_j",
        cm.CONCEPTUAL,
        "relative error of ∂E/∂b^l vs Σ_rows δ^l (layer l's own δ)",
        cm.measured("bias"),
        cm.EXACT,
    ),
    cm.SlipRecord(
        "w^l_jk := w^l_jk − η ∇ ∂C/∂w^l_jk",
        "∇ and ∂/∂w together (a gradient of a partial derivative)",
        "w^l_jk := w^l_jk − η ∂C/∂w^l_jk  (or W := W − η ∇_W C)",
        cm.FORMULA,
        "max |θ_after − (θ_before − η ∂C/∂θ)| after one SGD step",
        cm.measured("update"),
        cm.EXACT,
    ),
    cm.SlipRecord(
        "BP1 derivation: δ^L_j = ∂C/∂a^L_j · σ′(z^L_j) = ∇_a C * σ′(z^L_j)",
        "the whole vector ∇_a C in a per-unit equation",
        "δ^L_j = (∇_a C)_j σ′(z^L_j);  δ^L = ∇_a C ⊙ σ′(z^L)",
        cm.FORMULA,
        "relative error of the traced δ^L vs ∇_a C ⊙ σ′(z^L)",
        cm.measured("bp1"),
        cm.EXACT,
    ),
    cm.SlipRecord(
        "BP2, written out: δ^l_1 … δ^l_4 with W^{l+1} = [[w_11, w_12, w_13], [w_21, w_22, w_23]]",
        "layer l has 4 units but W^{l+1} is 2×3 (δ^l_4 uses w_14, w_24, which it lacks), so BP2 is undefined: "
        "(W^{l+1})ᵀ δ^{l+1} has 3 entries, σ′(z^l) has 4",
        "W^{l+1} is 2×4: [[w_11, w_12, w_13, w_14], [w_21, w_22, w_23, w_24]]",
        cm.FORMULA,
        "relative error of ((W^{l+1})ᵀ δ^{l+1}) ⊙ σ′ with the 2×4 W vs Dense.backward ⊙ σ′",
        _bp2_2x3,
        cm.EXACT,
    ),
    cm.SlipRecord(
        "BP3 expansion: ∂C/∂w^l_jk = a^{l−1}_k · Σ_k(δ^{l+1}_k w^{l+1}_kj σ′(z^l_j))",
        "k is both the free index of a^{l−1}_k and the summed index",
        "∂C/∂w^l_jk = a^{l−1}_k Σ_m δ^{l+1}_m w^{l+1}_mj σ′(z^l_j)",
        cm.FORMULA,
        "relative error of the traced ∂E/∂W¹ vs Σ_n a_nk δ_nj (δ¹ from BP2)",
        cm.measured("bp3"),
        cm.EXACT,
    ),
    cm.text_only(
        "the last paragraph",
        "stops mid-sentence ('在层数太大而且输出值范围太大的时候，')",
        "e.g. '…the product of many σ′ ≤ 1/4 factors makes the early layers' gradients vanish'",
    ),
    cm.text_only(
        "typos (神经网络, 符号规定, 梯度下降)",
        "'从神经网络开始将起'; '用公式表达既是'; '这些公式大多都有链式法则推导而出'",
        "讲起; 即是; 由链式法则",
    ),
)

SECTION = cm.Section("004", measure, CHECKS, SLIPS)
