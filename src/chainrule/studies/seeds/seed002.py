"""Seed 002, "这！就是深度学习之反向传播算法(四十)": a dense layer's backward in matrix form (here), the
activation derivatives (:mod:`chainrule.studies.seeds.seed002_activations`) and the worked 3-2-2
example (:mod:`chainrule.studies.seeds.seed002_example`); :data:`SECTION` joins the three parts.

The abstract part's slips are evaluated on one random case of the post's shapes (:func:`dense_case`:
``Z_L`` 2×3, ``W_{L+1}`` 3×2, ``b`` of 2, and ``∂J/∂out`` 2×2), run through chainrule's ``Dense``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from chainrule.inspect.gradcheck import TOLERANCE, numeric_gradient, relative_error
from chainrule.nn.layers import Dense
from chainrule.nn.model import Sequential
from chainrule.studies.seeds import common as cm
from chainrule.studies.seeds import seed002_activations, seed002_example

__all__ = ["SECTION", "DenseCase", "dense_case"]


@dataclass
class DenseCase:
    """``out = Z W + b`` through chainrule's Dense with ``∂J/∂out = G``: its outputs and gradients."""

    Z: np.ndarray
    W: np.ndarray
    b: np.ndarray
    G: np.ndarray
    out: np.ndarray
    dZ: np.ndarray
    dW: np.ndarray
    db: np.ndarray


def dense_case(seed: int = 0) -> DenseCase:
    """Seed 002's abstract case with random entries: Z_L (2×3), W_{L+1} (3×2), b (2,), ∂J/∂out (2×2)."""
    r = cm.rng(seed)
    Z, W, b, G = (
        r.standard_normal((2, 3)),
        r.standard_normal((3, 2)),
        r.standard_normal(2),
        r.standard_normal((2, 2)),
    )
    layer = Dense(3, 2, W=W, b=b, dtype=np.float64)
    out, dZ = cm.run_layer(layer, Z, G)
    return DenseCase(Z, W, b, G, out, dZ, layer.W.grad.copy(), layer.b.grad.copy())


def _jacobian_error(c: DenseCase) -> float:
    """∂out/∂W_{L+1} by central differences (shape 2×2×3×2) vs ``∂o_nk/∂w_jm = z_nj [k = m]``, and its
    contraction with ∂J/∂out vs Dense's ∂E/∂W: the larger relative error."""
    layer = Dense(3, 2, W=c.W, b=c.b, dtype=np.float64)
    s = Sequential([layer])
    jac = np.array(
        [
            [numeric_gradient(lambda n=n, k=k: float(s.forward(c.Z)[n, k]), layer.W.value) for k in range(2)]
            for n in range(2)
        ]
    )
    formula = np.einsum("nj,km->nkjm", c.Z, np.eye(2))
    return max(relative_error(jac, formula), relative_error(np.einsum("nk,nkjm->jm", c.G, jac), c.dW))


def _abstract() -> dict[str, Any]:
    c = dense_case(0)
    Z, W, b, G = c.Z, c.W, c.b, c.G
    entry_sums = [
        [Z[n, 0] * W[0, k] + Z[n, 1] * W[1, k] + Z[n, 2] * W[2, k] + b[k] for k in range(2)] for n in range(2)
    ]
    return {
        "case": c,
        "fwd": cm.maxabs(c.out, entry_sums),
        "dW": relative_error(c.dW, Z.T @ G),
        "db": relative_error(c.db, G.sum(axis=0)),
        "dZ": relative_error(c.dZ, G @ W.T),
        "jacobian": _jacobian_error(c),
    }


def measure() -> dict[str, Any]:
    return {**_abstract(), **seed002_activations.measure(), **seed002_example.measure()}


# -- the slips' checks ----------------------------------------------------------------------------
def _out_is_not_the_goal(m: cm.Measurements) -> cm.Verdict:
    c = m["case"]
    return cm.Verdict(
        max(m["dW"], m["db"]),
        post_value=list(c.G.shape),
        correct_value={"∂J/∂W_{L+1}": list(c.dW.shape), "∂J/∂b_{L+1}": list(c.db.shape)},
        detail="values are shapes: ∂J/∂out is the gradient at the output, where backpropagation starts; the "
        "parameter gradients follow from it by the chain rule",
    )


def _b_tilde(m: cm.Measurements) -> cm.Verdict:
    c = m["case"]
    right = np.array([[c.b[0], c.b[1]], [c.b[0], c.b[1]]])
    post = np.array([[c.b[0], c.b[0]], [c.b[1], c.b[1]]])
    return cm.Verdict(
        cm.maxabs(c.Z @ c.W + right, c.out),
        post_value=cm.maxabs(c.Z @ c.W + post, c.out),
        correct_value=0.0,
        detail="values: max |error| of the output with each b̃ (random 2×3 Z_L, 3×2 W, b); the post's own "
        "words, 'b̃ 为 b^T 后沿着行方向的扩展', describe the correct one",
    )


def _w32(m: cm.Measurements) -> cm.Verdict:
    c = m["case"]
    post = c.G[0, 0] * c.Z[0, 2] + c.G[1, 1] * c.Z[1, 2]
    right = c.G[0, 1] * c.Z[0, 2] + c.G[1, 1] * c.Z[1, 2]
    return cm.Verdict(abs(right - c.dW[2, 1]), float(post), float(c.dW[2, 1]), "random Z_L, ∂J/∂out")


def _z21(m: cm.Measurements) -> cm.Verdict:
    c = m["case"]
    post = c.G[1, 0] * c.W[0, 0] + c.G[0, 1] * c.W[0, 1]
    right = c.G[1, 0] * c.W[0, 0] + c.G[1, 1] * c.W[0, 1]
    return cm.Verdict(abs(right - c.dZ[1, 0]), float(post), float(c.dZ[1, 0]), "random W_{L+1}, ∂J/∂out")


def _jacobian(m: cm.Measurements) -> cm.Verdict:
    return cm.Verdict(
        m["jacobian"],
        post_value=list(m["case"].Z.T.shape),
        correct_value=[4, 6],
        detail="values are shapes: Z_Lᵀ, and the Jacobian ∂out/∂W_{L+1} as a matrix (4 outputs × 6 weights, "
        "entries ∂o_nk/∂w_jm = z_nj [k = m]); contracting the Jacobian with ∂J/∂out gives Z_Lᵀ ∂J/∂out",
    )


CHECKS = (
    cm.CheckRecord(
        "dense forward, matrix form",
        "out = Z_L W_{L+1} + b̃;  o_11 = z_11 w_11 + z_12 w_21 + z_13 w_31 + b_1, …",
        "z = x W + b (b broadcast down the rows)",
        "chainrule.nn.layers.dense.Dense.forward",
        "max |Dense output − the post's entry-by-entry sums| (2×3 · 3×2)",
        "fwd",
        cm.EXACT,
    ),
    cm.CheckRecord(
        "∂J/∂W",
        "∂J/∂W_{L+1} = Z_Lᵀ ∂J/∂out",
        "∂E/∂W = xᵀ dy",
        "chainrule.nn.layers.dense.Dense.backward",
        "relative error of Dense's W.grad vs Z_Lᵀ ∂J/∂out",
        "dW",
        cm.EXACT,
    ),
    cm.CheckRecord(
        "∂J/∂b",
        "(∂J/∂b)ᵀ = (∂J/∂o_11 + ∂J/∂o_21, ∂J/∂o_12 + ∂J/∂o_22): add up the rows of ∂J/∂out",
        "∂E/∂b = Σ_rows dy",
        "chainrule.nn.layers.dense.Dense.backward",
        "relative error of Dense's b.grad vs the column sums of ∂J/∂out",
        "db",
        cm.EXACT,
    ),
    cm.CheckRecord(
        "∂J/∂Z_L",
        "∂J/∂Z_L = ∂J/∂out W_{L+1}ᵀ",
        "∂E/∂x = dy Wᵀ",
        "chainrule.nn.layers.dense.Dense.backward",
        "relative error of Dense's dx vs ∂J/∂out W_{L+1}ᵀ",
        "dZ",
        cm.EXACT,
    ),
    *seed002_activations.CHECKS,
    *seed002_example.CHECKS,
)

SLIPS = (
    cm.SlipRecord(
        "抽象的例子: '因为反向传播算法的目的是要求神经网络模型的输出相对于各个参数的梯度值，即求' ∂J/∂out",
        "the goal is the gradient of the network's output with respect to each parameter, i.e. ∂J/∂out",
        "the goal is the gradient of the cost J with respect to every parameter (∂J/∂W, ∂J/∂b of each layer); "
        "∂J/∂out is only where the backward pass starts",
        cm.CONCEPTUAL,
        "relative error of Dense's ∂E/∂W and ∂E/∂b vs Z_Lᵀ ∂J/∂out and the column sums of ∂J/∂out",
        _out_is_not_the_goal,
        cm.EXACT,
    ),
    cm.SlipRecord(
        "抽象的例子: b̃_{L+1} = [[b_1, b_1], [b_2, b_2]]",
        "b̃ = [[b1, b1], [b2, b2]] (bias varies down the rows, i.e. per sample)",
        "b̃ = [[b1, b2], [b1, b2]]: bᵀ repeated on every row, as the post's own o_11 = … + b_1, o_12 = … + b_2 say",
        cm.FORMULA,
        "max |Z_L W + [[b1, b2], [b1, b2]] − Dense output|",
        _b_tilde,
        cm.EXACT,
    ),
    cm.SlipRecord(
        "对w的参数求偏导: ∂J/∂w_32 = ∂J/∂o_11 z_13 + ∂J/∂o_22 z_23",
        "∂J/∂o_11 in the first term",
        "∂J/∂w_32 = ∂J/∂o_12 z_13 + ∂J/∂o_22 z_23",
        cm.FORMULA,
        "|corrected − Dense's ∂E/∂W[3, 2]|",
        _w32,
        cm.EXACT,
    ),
    cm.SlipRecord(
        "Jacobian matrix (Z_Lᵀ) in ∂J/∂W = Z_Lᵀ ∂J/∂out",
        "[[z_11, z_21], [z_21, z_22], [z_31, z_32]] (repeats z_21; z_31, z_32 do not exist: Z_L is 2×3)",
        "Z_Lᵀ = [[z_11, z_21], [z_12, z_22], [z_13, z_23]]",
        cm.FORMULA,
        "relative error of Z_Lᵀ ∂J/∂out vs Dense's ∂E/∂W",
        cm.measured("dW"),
        cm.EXACT,
    ),
    cm.SlipRecord(
        "对w的参数求偏导: '最左边的矩阵也叫雅克比（jacobian）矩阵'",
        "Z_Lᵀ (the leftmost matrix of the product) is the Jacobian",
        "Z_Lᵀ is not a Jacobian: the Jacobian of out with respect to W_{L+1} has one entry per (output, weight) "
        "pair, ∂o_nk/∂w_jm = z_nj [k = m]; Z_Lᵀ is what is left of it after the contraction with ∂J/∂out",
        cm.CONCEPTUAL,
        "∂out/∂W_{L+1} by central differences vs z_nj [k = m], and its contraction with ∂J/∂out vs Dense's "
        "∂E/∂W, max relative error",
        _jacobian,
        TOLERANCE,
    ),
    cm.SlipRecord(
        "对Z求偏导: ∂J/∂z_21 = ∂J/∂o_21 w_11 + ∂J/∂o_12 w_12",
        "∂J/∂o_12 in the second term (that is sample 1's output)",
        "∂J/∂z_21 = ∂J/∂o_21 w_11 + ∂J/∂o_22 w_12",
        cm.FORMULA,
        "|corrected − Dense's ∂E/∂x[2, 1]|",
        _z21,
        cm.EXACT,
    ),
    cm.SlipRecord(
        "W_{L+1}ᵀ in ∂J/∂Z_L = ∂J/∂out W_{L+1}ᵀ",
        "[[w_11, w_12, w_31], [w_21, w_22, w_33]] (w_12/w_21 swapped; w_33 does not exist)",
        "W_{L+1}ᵀ = [[w_11, w_21, w_31], [w_12, w_22, w_32]]",
        cm.FORMULA,
        "relative error of ∂J/∂out W_{L+1}ᵀ vs Dense's ∂E/∂x",
        cm.measured("dZ"),
        cm.EXACT,
    ),
    *seed002_activations.SLIPS,
    cm.text_only(
        "抽象的例子 vs 形象的例子: 'f为作用在h上的激活函数', Z_L = f_L(h_L); tanh section: 'a=e^{h_L}, b=e^{-h_L}'",
        "in the abstract part h is the pre-activation and Z the activation; in the worked example h = σ(z_h) "
        "is the activation and z the pre-activation; the tanh derivation reuses b (the bias) for e^{−h}",
        "one naming throughout, e.g. z = pre-activation, a (or h) = f(z), as in seeds 001/004, and fresh "
        "letters (u, v) for e^{h}, e^{−h}",
    ),
    *seed002_example.SLIPS,
    cm.text_only(
        "typos (形象的例子, 激活函数)",
        "'权重和偏执'; heading '4 用计算误差'; 'w_10' (LaTeX renders w₁0: only the 1 is a subscript); "
        "'d_{o_1}' in dE/d_{o_1} (d with a subscript); in the ∂E/∂b1 line a stray × in '1+ \\times' and "
        "'dz_{2_1}'; ReLU: '只需要判断输入是否大于' (the 0 is missing)",
        "偏置; 计算误差; w_{10}; dE/do_1; + alone, and dz_{h_2}; 是否大于0",
    ),
)

SECTION = cm.Section("002", measure, CHECKS, SLIPS)
