"""Seed 003, "神经网络训练的理论推导": sigmoid + binary cross-entropy in matrix form, and an update recursion.

The forward pass is checked on the post's own numbers (``X = [[1, 2], [3, 4]]``, ``W^1 = [[1], [3]]``,
``b = 2``); the gradients on a logistic model and on a 3-4-3-1 sigmoid network, where the post's
recursion — every layer's gradient from its own ``A − Y`` — is compared with the true gradient.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from chainrule.inspect.gradcheck import TOLERANCE, relative_error
from chainrule.inspect.trace import trace
from chainrule.nn.functional import sigmoid
from chainrule.nn.layers import Dense, Identity
from chainrule.nn.model import Sequential
from chainrule.studies.seeds import common as cm

__all__ = ["SECTION", "post003_hidden_rule"]

#: the post's own numbers
X_POST = np.array([[1.0, 2.0], [3.0, 4.0]])
W_POST = np.array([[1.0], [3.0]])
B_POST = 2.0
#: the random case of the gradient checks: a batch of N samples with D features
N, D = 6, 3


def _matmul(A: np.ndarray, B: np.ndarray) -> str:
    """Whether the product ``A B`` is defined, in words."""
    try:
        A @ B
    except ValueError:
        return f"undefined: W {A.shape} · X {B.shape}, inner sizes {A.shape[1]} ≠ {B.shape[0]}"
    return "defined"


WX = _matmul(W_POST, X_POST)  # the post's W*X


def post003_hidden_rule(model: Sequential, x: np.ndarray, y: np.ndarray) -> list[np.ndarray]:
    """Seed 003's recursion ``dW^i = (1/m) (A^i − Y)·A^{i−1}`` applied to EVERY layer, read in row
    form as ``(A^{i−1})ᵀ (A^i − Y) / m`` (Y broadcast over a hidden layer's units: the post gives no
    other error for them). Returns one array per Dense layer."""
    with trace(model) as tr:
        model.loss_and_grad(x, y)
    m = x.shape[0]
    out = []
    for lt in tr.layers():
        a = lt.a if lt.activation != "none" else sigmoid(lt.z)  # the output's A = σ(Z)
        out.append(lt.a_prev.T @ (a - y) / m)
    return out


def _post_numbers() -> dict[str, Any]:
    Zp, _ = cm.run_layer(Dense(2, 1, W=W_POST, b=np.array([B_POST]), dtype=np.float64), X_POST)
    return {"Zp": np.asarray(Zp), "fwd": cm.maxabs(Zp, X_POST @ W_POST + B_POST)}


def _hidden_rule(x: np.ndarray, y: np.ndarray) -> dict[str, Any]:
    """The post's recursion on a 3-4-3-1 sigmoid/BCE net, against the true gradient, in two readings."""
    deep = cm.net([3, 4, 3, 1], "sigmoid", "bce", seed=5)
    e_deep = cm.gc(deep, x, y)
    post = post003_hidden_rule(deep, x, y)
    deep.loss_and_grad(x, y)
    true = [deep.layers[i].W.grad.copy() for i in (0, 2, 4)]
    rel = [relative_error(p, t) for p, t in zip(post, true, strict=True)]
    # the other reading: the output error A^L − Y reused for every layer (broadcast over units)
    layers = cm.traced(deep, x, y)
    aL = sigmoid(layers[-1].z)
    rel_alt = [
        relative_error(lt.a_prev.T @ np.broadcast_to(aL - y, lt.z.shape) / x.shape[0], t)
        for lt, t in zip(layers, true, strict=True)
    ]
    return {"deep": e_deep, "rel": rel, "rel_alt": rel_alt}


def measure() -> dict[str, Any]:
    m = _post_numbers()
    r = cm.rng(3)
    x = r.standard_normal((N, D))
    y = r.integers(0, 2, (N, 1)).astype(np.float64)
    zz = r.standard_normal((N, 1))
    L = float(Sequential([Identity()], loss="bce").loss_and_grad(zz, y))  # the loss on the logits zz
    a = sigmoid(zz)
    m["loss"] = abs(L - float(-np.mean(y * np.log(a) + (1 - y) * np.log(1 - a))))
    logistic = cm.net([3, 1], "identity", "bce", seed=4)
    m["gc1"] = cm.gc(logistic, x, y)
    lt = cm.traced(logistic, x, y)[0]
    A, n = sigmoid(lt.z), x.shape[0]
    m["dw"] = max(relative_error(lt.dW, x.T @ (A - y) / n), relative_error(lt.db, (A - y).sum(axis=0) / n))
    m["dz"] = relative_error(lt.delta, (A - y) / n)
    m["dw_only"] = relative_error(lt.dW, x.T @ (A - y) / n)
    m["db_only"] = relative_error(lt.db, (A - y).sum(axis=0) / n)
    m["db_delta"] = relative_error(lt.db, lt.delta.sum(axis=0))
    m["post_dw"] = (A - y) * x / n  # the post's (1/n)(A − Y)*X, elementwise
    m["post_db"] = (A - y) / n
    m["lt"] = lt
    return {**m, **_hidden_rule(x, y)}


# -- the slips' checks ----------------------------------------------------------------------------
def _recursion(m: cm.Measurements) -> cm.Verdict:
    rel = m["rel"]
    return cm.Verdict(
        m["deep"],
        post_value={"W1": rel[0], "W2": rel[1], "W3 (output)": rel[2]},
        correct_value={"W1": 0.0, "W2": 0.0, "W3 (output)": 0.0},
        detail="values: relative error of the post's rule vs the true gradient per layer (0 would be right); "
        "reading it as the output's A^L − Y reused for every layer gives " + cm.fmt_list(m["rel_alt"]),
    )


def _dw_shape(m: cm.Measurements) -> cm.Verdict:
    post, dW = m["post_dw"], m["lt"].dW
    return cm.Verdict(
        m["dw_only"],
        post_value=list(post.shape),
        correct_value=list(dW.shape),
        detail="values are shapes; the post's array summed over its rows equals the correct gradient: error "
        f"{relative_error(post.sum(axis=0), dW[:, 0]):.1e}",
    )


def _db_shape(m: cm.Measurements) -> cm.Verdict:
    return cm.Verdict(m["db_only"], post_value=list(m["post_db"].shape), correct_value=list(m["lt"].db.shape))


def _wx(m: cm.Measurements) -> cm.Verdict:
    return cm.Verdict(
        m["fwd"],
        post_value=WX,
        correct_value=m["Zp"].ravel().tolist(),
        detail="correct_value is X W + b for the post's X = [[1,2],[3,4]], W^1 = [[1],[3]], b = 2",
    )


CHECKS = (
    cm.CheckRecord(
        "forward",
        "Z = W*X + b, A = sigmoid(Z) with X (m, n) = samples × features, W^1 (n, 1)",
        "Z = X W + b, A = σ(Z)",
        "chainrule.nn.layers.dense.Dense.forward",
        "the post's X = [[1,2],[3,4]], W^1 = [[1],[3]], b = 2: max |Dense − (X W + b)|",
        "fwd",
        cm.EXACT,
    ),
    cm.CheckRecord(
        "binary cross-entropy",
        "L = −(1/n) Σ y^i log a^i + (1 − y) log(1 − a^i)",
        "E = −(1/N) Σ_n [y_n log a_n + (1 − y_n) log(1 − a_n)],  a = σ(z)",
        "chainrule.nn.losses.SigmoidBinaryCrossEntropy.forward",
        "|E_chainrule − the bracketed formula| on 6 random logits",
        "loss",
        cm.EXACT,
    ),
    cm.CheckRecord(
        "∂L/∂Z of sigmoid + cross-entropy",
        "(−Y/A + (1 − Y)/(1 − A)) · A(1 − A) = A − Y",
        "δ = (A − Y)/N",
        "chainrule.nn.losses.SigmoidBinaryCrossEntropy.backward",
        "relative error of the traced δ vs (A − Y)/m",
        "dz",
        cm.EXACT,
    ),
    cm.CheckRecord(
        "∂L/∂W and ∂L/∂b of one layer",
        "∂L/∂W = (1/n)(A − Y)*X;  ∂L/∂b = (1/n)(A − Y)",
        "∂E/∂W = Xᵀ (A − Y)/N;  ∂E/∂b = Σ_rows (A − Y)/N",
        "chainrule.nn.layers.dense.Dense.backward",
        "relative error of the traced gradients vs the row-form formulas",
        "dw",
        cm.EXACT,
    ),
    cm.CheckRecord(
        "gradient check, logistic regression",
        "W = W − α ∂L/∂W, b = b − α ∂L/∂b",
        "θ ← θ − α ∂E/∂θ",
        "chainrule.inspect.gradcheck.gradcheck",
        "gradcheck 3 → 1 sigmoid/BCE, batch 6, max relative error",
        "gc1",
        TOLERANCE,
    ),
    cm.CheckRecord(
        "hidden layers (the true rule the post's recursion should be)",
        "for i from n−1 to 1: W^i = W^i − α (1/n)(A^{i+1} − Y^{i+1})·A^{(i)}",
        "δ^L = (A^L − Y)/N;  δ^l = (δ^{l+1} (W^{l+1})ᵀ) ⊙ A^l(1 − A^l);  ∂E/∂W^l = (A^{l−1})ᵀ δ^l",
        "chainrule.nn.model.Sequential.backward",
        "gradcheck of 3-4-3-1 sigmoid/BCE (two hidden layers), max relative error",
        "deep",
        TOLERANCE,
    ),
)

SLIPS = (
    cm.SlipRecord(
        "反向传播, the recursion: d_{w^(n−1)} = (1/n)(A^n − Y^n)·A^(n−1), and the loop over i",
        "every layer's weight gradient uses (A − Y) of that layer: no δ flows back through W and σ′",
        "δ^l = (δ^{l+1} (W^{l+1})ᵀ) ⊙ A^l(1 − A^l);  ∂L/∂W^l = (A^{l−1})ᵀ δ^l (only the output has δ = (A − Y)/m)",
        cm.FORMULA,
        "gradcheck of the true gradient on the same 3-4-3-1 sigmoid/BCE net (max relative error)",
        _recursion,
        TOLERANCE,
    ),
    cm.SlipRecord(
        "∂L/∂W = (1/n)(A − Y)*X",
        f"(A − Y)*X: an elementwise product of shape {(N, D)}, not W's {(D, 1)}",
        "∂L/∂W = Xᵀ(A − Y)/m (rows are samples; column form (A − Y)Xᵀ/m): sum over the samples",
        cm.FORMULA,
        "relative error of Xᵀ(A − Y)/m vs the traced ∂E/∂W",
        _dw_shape,
        cm.EXACT,
    ),
    cm.SlipRecord(
        "∂L/∂b = (1/n)(A − Y)",
        f"one number per sample (shape {(N, 1)})",
        "∂L/∂b = Σ_rows (A − Y)/m: one number per output unit",
        cm.FORMULA,
        "relative error of Σ_rows(A − Y)/m vs the traced ∂E/∂b",
        _db_shape,
        cm.EXACT,
    ),
    cm.SlipRecord(
        "神经网络的基本运算 / 矩阵与损失函数: Z = W*X + b with X (m, n), W^1 (n, 1)",
        f"W*X: {WX}",
        "Z = X W + b (rows are samples), or Z = W Xᵀ + b in column form",
        cm.FORMULA,
        "max |Dense(X) − (X W + b)| on the post's own X, W, b",
        _wx,
        cm.EXACT,
    ),
    cm.SlipRecord(
        "'矩阵的每一列代表了一组训练样本'",
        "each column of X is a sample",
        "each ROW is a sample: X = [[1,2],[3,4]] holds samples (1,2) and (3,4) as rows, shape (m, n)",
        cm.CONCEPTUAL,
        "max |Dense(X) − (X W + b)| with the samples as rows",
        cm.measured("fwd"),
        cm.EXACT,
    ),
    cm.SlipRecord(
        "'b的shape应该等于X的行和W的列': b = [[2], [2]]",
        "b has one entry per sample (shape (m, 1))",
        "b has one entry per output unit (shape (1,) here), broadcast over the samples",
        cm.FORMULA,
        "relative error of Dense's ∂E/∂b vs Σ_rows δ (one number per unit)",
        cm.measured("db_delta"),
        cm.EXACT,
    ),
    cm.SlipRecord(
        "L = −(1/n) Σ_{i=1}^n y^i log(a^i) + (1 − y) log(1 − a^i)",
        "no brackets round the summand, y without its index, and n is the feature count in the post's "
        "X (m, n)",
        "L = −(1/m) Σ_{i=1}^m [y^i log a^i + (1 − y^i) log(1 − a^i)]",
        cm.FORMULA,
        "|E_chainrule − the bracketed formula|",
        cm.measured("loss"),
        cm.EXACT,
    ),
    cm.SlipRecord(
        "the recursion's indices: W^i updated with A^{i+1} − Y^{i+1} and A^(i), loop i = n−1 … 1",
        "Y^{i+1} (targets have no layer index); with Z^n = W^n A^{n−1} + b^n the pair (A^n, A^{n−1}) belongs to "
        "W^n, not W^{n−1}, and the loop never updates W^n",
        "∂L/∂W^n = (A^{n−1})ᵀ δ^n for n = N … 1",
        cm.FORMULA,
        "gradcheck of the 3-4-3-1 net (every W^n gets its own δ^n)",
        cm.measured("deep"),
        TOLERANCE,
    ),
    cm.text_only(
        "typos and names (headings, 神经网络的基本结构/运算, 矩阵与损失函数, 反向传播)",
        "'Forword Propagate'; the prediction called '预测结果`P`', then '预测结果`A`'; '理论是，隐藏层是可以无限多的'; "
        "'只有一个原点'; '每个神经的计算'; '上文锁提到的'; '避免了我们的线性函数使用经过原点'; '由计算记过反向更新'; "
        "'我们能就能'; '\\color {#red}' (not a LaTeX colour)",
        "Forward propagation; one name (A) for the prediction; 理论上; 圆点; 神经元; 所提到的; 始终经过原点; "
        "计算结果; 我们就能; \\color{red}",
    ),
)

SECTION = cm.Section("003", measure, CHECKS, SLIPS)
