"""A walk through the five seed posts: each formula, where chainrule implements it, a live check.

:func:`walkthrough` returns one :class:`SeedCheck` per formula: the formula as the post states it,
the same in chainrule's row layout (rows are samples, ``z = x W + b``), the dotted path of the
function that implements it, and a check run now (a gradient check by central differences, or an
exact value compared with the library). :func:`errata` returns every slip found in the posts as a
:class:`Slip`: what the post says, the correct form, the value each gives where the slip is numeric
(computed now), and the live check that confirms the corrected form.

The posts (``../shared/seeds/``):

* 000 "deeplearning 反向传播的数学推导": softmax regression and an MLP with cross-entropy; its
  formulas are images that the text does not contain, so only the prose can be checked.
* 001 "神经网络推导": squared error with L2 (UFLDL notation, ``z^{l+1} = W^l a^l + b^l``), δ rules.
* 002 "这！就是深度学习之反向传播算法": matrix backward of a dense layer, activation derivatives,
  and the worked 3-2-2 example (see :mod:`chainrule.studies.example`).
* 003 "神经网络训练的理论推导": sigmoid + binary cross-entropy, matrix form, an update recursion.
* 004 "反向传播算法及其梯度扩散": Nielsen's BP1-BP3 and the vanishing gradient.
"""

from __future__ import annotations

import importlib
import json
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from chainrule.inspect.gradcheck import TOLERANCE, gradcheck, gradcheck_layer, relative_error

__all__ = [
    "SEEDS",
    "SeedCheck",
    "Slip",
    "collect",
    "errata",
    "post003_hidden_rule",
    "render",
    "resolve",
    "walkthrough",
]

SEEDS = {
    "000": "deeplearning 反向传播的数学推导",
    "001": "神经网络推导",
    "002": "这！就是深度学习之反向传播算法(四十)",
    "003": "神经网络训练的理论推导",
    "004": "反向传播算法及其梯度扩散",
}
EXACT = 1e-12  # "exact" comparisons: float64 round-off only


@dataclass
class SeedCheck:
    """One formula of one post, its implementation in chainrule, and a check run live."""

    seed: str
    topic: str
    post: str
    rows: str
    implementation: str
    check: str
    value: float
    tolerance: float

    @property
    def passed(self) -> bool:
        return bool(self.value <= self.tolerance)

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "passed": self.passed}


@dataclass
class Slip:
    """A slip in a post. ``kind`` is ``numeric`` (the post's value is wrong: ``post_value`` and
    ``correct_value`` are computed now) or ``textual`` (a wrong index, label or formula: the
    corrected form is confirmed by ``check``, whose measured ``check_value`` must be within
    ``tolerance``)."""

    seed: str
    where: str
    post: str
    correct: str
    kind: str
    check: str
    check_value: float
    tolerance: float
    post_value: Any = None
    correct_value: Any = None
    detail: str = ""

    @property
    def confirmed(self) -> bool:
        return bool(self.check_value <= self.tolerance)

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "confirmed": self.confirmed}


def resolve(path: str) -> Any:
    """Import ``chainrule.x.y.Name.attr`` and return the object (tests check every path)."""
    parts = path.split(".")
    for i in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:i]))
        except ModuleNotFoundError:
            continue
        for name in parts[i:]:
            obj = getattr(obj, name)
        return obj
    raise ImportError(path)


# -- helpers ------------------------------------------------------------------------------------
def _rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


def _net(sizes: list[int], act: str, loss: str, seed: int = 0) -> Any:
    from chainrule.nn.builders import mlp

    return mlp(sizes, act, loss=loss, seed=seed, dtype=np.float64)


def _gc(net: Any, x: Any, y: Any, **kw: Any) -> float:
    return gradcheck(net, x, y, max_per_param=None, **kw).max_error


def _traced(net: Any, x: Any, y: Any) -> list[Any]:
    from chainrule.inspect.trace import trace

    with trace(net) as tr:
        net.loss_and_grad(x, y)
    return tr.layers()


def _explained(net: Any, x: Any, y: Any) -> Any:
    from chainrule.inspect.explain import explain

    return explain(net, x, y, lr=0.1, limit=False)


def _maxabs(a: Any, b: Any) -> float:
    return float(np.max(np.abs(np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64))))


def _dense_case(seed: int = 0) -> tuple[Any, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Seed 002's abstract case: Z_L (2×3), W_{L+1} (3×2), b (2,), and ∂J/∂out (2×2)."""
    from chainrule.nn.layers import Dense

    r = _rng(seed)
    Z, W, b, G = (
        r.standard_normal((2, 3)),
        r.standard_normal((3, 2)),
        r.standard_normal(2),
        r.standard_normal((2, 2)),
    )
    layer = Dense(3, 2, W=W, b=b, dtype=np.float64)
    out = layer.forward(Z)
    dZ = layer.backward(G)
    return layer, Z, out, dZ, G


# -- seed 000 -----------------------------------------------------------------------------------
def _seed000() -> tuple[list[SeedCheck], list[Slip]]:
    from chainrule.nn.functional import softmax
    from chainrule.optim import SGD

    r = _rng(0)
    z = r.standard_normal((5, 4)) * 3
    s = softmax(z)
    sm_err = max(float(np.max(np.abs(s.sum(axis=1) - 1))), float(np.max(np.abs(softmax(z + 7.0) - s))))
    x, y = r.standard_normal((6, 4)), r.integers(0, 3, 6)
    single = _net([4, 3], "identity", "softmax-ce")
    e_single = _gc(single, x, y)
    mlp = _net([4, 5, 5, 3], "sigmoid", "softmax-ce", seed=1)
    e_mlp = _gc(mlp, x, y)
    net = _net([4, 3], "identity", "softmax-ce", seed=2)
    net.loss_and_grad(x, y)
    before = [p.value.copy() for p in net.params]
    grads = [p.grad.copy() for p in net.params]
    SGD(0.3).step(net.params)
    upd = max(_maxabs(p.value, b - 0.3 * g) for p, b, g in zip(net.params, before, grads, strict=True))
    checks = [
        SeedCheck(
            "000",
            "softmax",
            "a → y by softmax: outputs in (0, 1) summing to 1 (formula images not in the text)",
            "p_nk = e^{z_nk − max_k z_n} / Σ_j e^{z_nj − max_k z_n}",
            "chainrule.nn.layers.activations.softmax",
            "max |Σ_k p_nk − 1| and max |softmax(z + 7) − softmax(z)| on random logits",
            sm_err,
            EXACT,
        ),
        SeedCheck(
            "000",
            "logistic (softmax) regression backward",
            "∂E/∂a = y − t, then ∂E/∂W, ∂E/∂b (images)",
            "δ = (p − t)/N;  ∂E/∂W = xᵀ δ;  ∂E/∂b = Σ_rows δ",
            "chainrule.nn.losses.SoftmaxCrossEntropy.backward",
            "gradcheck of a one-layer softmax-CE model (4 → 3, batch 6), max relative error",
            e_single,
            TOLERANCE,
        ),
        SeedCheck(
            "000",
            "MLP backward (two hidden layers + softmax)",
            "δ of layer l from layer l+1, then ∂E/∂W^l, ∂E/∂b^l (images)",
            "δ^l = (δ^{l+1} (W^{l+1})ᵀ) ⊙ f'(z^l)",
            "chainrule.nn.model.Sequential.backward",
            "gradcheck of 4-5-5-3 sigmoid/softmax-CE, batch 6, max relative error",
            e_mlp,
            TOLERANCE,
        ),
        SeedCheck(
            "000",
            "update",
            "w := w − η ∂E/∂w",
            "θ ← θ − α ∂E/∂θ",
            "chainrule.optim.SGD.update",
            "max |θ_after − (θ_before − α g)| after one SGD step",
            upd,
            EXACT,
        ),
    ]
    slips = [
        Slip(
            "000",
            "MLP 前向传播: '一层sotfmax连接网络'; intro: '出世迭代点', 'pre-trainging'",
            "sotfmax; 出世迭代点; pre-trainging",
            "softmax; 初始迭代点 (starting point); pre-training",
            "textual",
            "the softmax the sentence names, checked (sums to 1, shift-invariant)",
            sm_err,
            EXACT,
        ),
    ]
    return checks, slips


# -- seed 001 -----------------------------------------------------------------------------------
def _seed001() -> tuple[list[SeedCheck], list[Slip]]:
    from chainrule.nn.regularizers import l2_penalty

    r = _rng(1)
    x, t = r.standard_normal((5, 3)), r.uniform(0.1, 0.9, (5, 2))
    net = _net([3, 4, 2], "sigmoid", "squared", seed=3)
    out = net.forward(x)
    E = float(net.loss.forward(out, t))
    e_cost = abs(E - float(np.mean(0.5 * np.sum((out - t) ** 2, axis=1))))
    lam = 0.1
    pen = float(l2_penalty(net.params, lam))
    e_pen = abs(pen - 0.5 * lam * sum(float(np.sum(p.value**2)) for p in net.params if p.name == "W"))
    e_l2 = _gc(net, x, t, l2=lam)
    # the corrected regularised gradient: mean of per-sample gradients + λW, biases without λ
    net.loss_and_grad(x, t, l2=lam)
    lib = {n: p.grad.copy() for n, p in net.named_params()}
    per_sample = {n: np.zeros_like(p.value) for n, p in net.named_params()}
    for i in range(x.shape[0]):
        net.loss_and_grad(x[i : i + 1], t[i : i + 1])
        for n, p in net.named_params():
            per_sample[n] += p.grad / x.shape[0]
    formula = {n: per_sample[n] + (lam * p.value if p.name == "W" else 0.0) for n, p in net.named_params()}
    e_mean = max(relative_error(lib[n], formula[n]) for n in lib)
    ex = _explained(_net([3, 4, 2], "sigmoid", "squared", seed=3), x, t)
    lt1, lt2 = ex.layers
    # δ^{n_l} = −(y − a) f'(z), written out with NumPy from the traced a and z
    a2 = lt2.a
    d_out = -(t - a2) * a2 * (1 - a2) / x.shape[0]
    e_dout = relative_error(lt2.delta, d_out)
    d_hid = (lt2.delta @ lt2.W.T) * lt1.a * (1 - lt1.a)
    e_dhid = relative_error(lt1.delta, d_hid)
    e_dw = max(relative_error(lt2.dW, lt1.a.T @ lt2.delta), relative_error(lt2.db, lt2.delta.sum(axis=0)))
    num = max(ex.checks[2]["delta"].rel_error, ex.checks[1]["delta"].rel_error, ex.checks[2]["dW"].rel_error)
    checks = [
        SeedCheck(
            "001",
            "squared error, averaged",
            "J(W,b;x,y) = ½‖h_{W,b}(x) − y‖²;  J = (1/m) Σ J(W,b;x^i,y^i) + …",
            "E = (1/N) Σ_n ½‖a_n − y_n‖²",
            "chainrule.nn.losses.SquaredError.forward",
            "|E_chainrule − mean ½‖a − y‖²| on a 3-4-2 sigmoid net, batch 5",
            e_cost,
            EXACT,
        ),
        SeedCheck(
            "001",
            "L2 penalty (weights only)",
            "(λ/2) Σ_l Σ_i Σ_j (W^l_ji)²",
            "(λ/2) Σ W² over Dense weights, never biases",
            "chainrule.nn.regularizers.l2_penalty",
            "|penalty − (λ/2) Σ W²|, λ = 0.1",
            e_pen,
            EXACT,
        ),
        SeedCheck(
            "001",
            "regularised gradient",
            "∂J/∂W^l_ij = [(1/m) Σ ∂J_i/∂W^l_ij] + λ W^l_ij;  ∂J/∂b^l_i = (1/m) Σ ∂J_i/∂b^l_i",
            "∂E/∂W = xᵀδ + λW;  ∂E/∂b = Σ_rows δ (δ holds the 1/N)",
            "chainrule.nn.model.Sequential.loss_and_grad",
            "gradcheck with l2 = 0.1, max relative error",
            e_l2,
            TOLERANCE,
        ),
        SeedCheck(
            "001",
            "output residual δ^{n_l}",
            "δ_i^{n_l} = −(y_i − a_i^{n_l}) f'(z_i^{n_l})",
            "δ^L = (a^L − y)/N ⊙ a^L(1 − a^L)   (the 1/N of the mean cost)",
            "chainrule.nn.layers.activations.Sigmoid.backward",
            "relative error of the traced δ^L vs the formula written out",
            e_dout,
            EXACT,
        ),
        SeedCheck(
            "001",
            "hidden residual δ^{n_l − 1}",
            "δ_i^{n_l−1} = (Σ_j δ_j^{n_l} W_ji^{n_l−1}) f'(z_i^{n_l−1})",
            "δ^l = (δ^{l+1} (W^{l+1})ᵀ) ⊙ f'(z^l)",
            "chainrule.nn.layers.dense.Dense.backward",
            "relative error of the traced δ^1 vs the formula written out",
            e_dhid,
            EXACT,
        ),
        SeedCheck(
            "001",
            "weight and bias gradients",
            "∂J/∂W^l_ij = a_j^l δ_i^{l+1};  ∂J/∂b_i^l = δ_i^{l+1}",
            "∂E/∂W = (a^{l−1})ᵀ δ^l;  ∂E/∂b = Σ_rows δ^l  (the seed's W^l is chainrule's layer l+1)",
            "chainrule.nn.layers.dense.Dense.backward",
            "relative error of traced ∂E/∂W², ∂E/∂b² vs the formula",
            e_dw,
            EXACT,
        ),
        SeedCheck(
            "001",
            "the δ's against central differences",
            "(all of the above)",
            "δ^l = ∂E/∂z^l",
            "chainrule.inspect.explain.explain",
            "max relative error of δ², δ¹, ∂E/∂W² vs central differences",
            num,
            TOLERANCE,
        ),
    ]
    slips = [
        Slip(
            "001",
            "偏导如下: ∂/∂W_ij^l J(W,b) = [1/m Σ_{i=1}^m ∂/∂W_ij^l J(W,b;x^i,y^i)] + λW_ij^l",
            "i is both the summed sample index and the free unit index of W_ij (same in the cost: Σ_{i=1}^m and "
            "Σ_{i=1}^{s_l})",
            "∂J/∂W^l_ij = (1/m) Σ_{n=1}^m ∂J(W,b;x^(n),y^(n))/∂W^l_ij + λ W^l_ij (a separate sample index n)",
            "textual",
            "library gradient with λ = 0.1 vs the corrected formula (mean of per-sample gradients + λW, no λ on b), "
            "max relative error",
            e_mean,
            1e-10,
        ),
        Slip(
            "001",
            "'第$$n_{l-1}$$层第i个单元的残差'",
            "n_{l−1} (the size index of layer l−1)",
            "layer n_l − 1 (the one before the output), as the formula's δ^{n_l−1} says",
            "textual",
            "traced δ of the layer before the output vs (Σ_j δ_j W_ji) f'(z_i)",
            e_dhid,
            EXACT,
        ),
        Slip(
            "001",
            "δ^{n_l−1} derivation: ∂/∂z_i^{n_l−1} Σ_k f(z_k^{n_l−1}) W_jk^{n_l−1}",
            "z_j^{n_l} written without its bias",
            "z_j^{n_l} = Σ_k W_jk^{n_l−1} f(z_k^{n_l−1}) + b_j^{n_l−1} (the bias does not depend on z_i, so the "
            "result stands)",
            "textual",
            "traced δ^1 vs the formula (unchanged by the bias)",
            e_dhid,
            EXACT,
        ),
    ]
    return checks, slips


# -- seed 002 -----------------------------------------------------------------------------------
def _seed002() -> tuple[list[SeedCheck], list[Slip]]:
    from chainrule.nn.layers import Maxout, ReLU, Sigmoid, Softmax, Softplus, Tanh
    from chainrule.nn.functional import sigmoid, softplus
    from chainrule.studies.example import T, X, build_network, run_example

    layer, Z, out, dZ, G = _dense_case(0)
    W, b = layer.W.value, layer.b.value
    z, w = Z, W
    o = np.array(
        [
            [z[n, 0] * w[0, k] + z[n, 1] * w[1, k] + z[n, 2] * w[2, k] + b[k] for k in range(2)]
            for n in range(2)
        ]
    )
    e_fwd = _maxabs(out, o)
    e_dW = relative_error(layer.W.grad, Z.T @ G)
    e_db = relative_error(layer.b.grad, G.sum(axis=0))
    e_dZ = relative_error(dZ, G @ W.T)
    r = _rng(2)
    h = r.standard_normal((3, 4)) * 2
    gl = {
        name: gradcheck_layer(cls(), h).max_error
        for name, cls in (("sigmoid", Sigmoid), ("tanh", Tanh), ("softmax", Softmax), ("softplus", Softplus))
    }
    hr = h + np.sign(h) * 0.1  # keep away from ReLU's kink
    gl["relu"] = gradcheck_layer(ReLU(), hr).max_error
    relu = ReLU()
    relu.forward(np.array([[-1.0, 0.0, 2.0]]))
    relu0 = _maxabs(relu.backward(np.ones((1, 3))), [[0.0, 0.0, 1.0]])
    mo = Maxout(4, 3, 3, rng=0, dtype=np.float64)
    gl["maxout"] = gradcheck_layer(mo, r.standard_normal((5, 4))).max_error
    sp = float(np.max(np.abs(softplus(h) - np.log1p(np.exp(h)))))
    res = run_example(rates=None)
    correct_figs = [f for f in (*res.forward, *res.chain, *res.gradients, *res.updated) if f.post is not None]
    wrong = [f.name for f in correct_figs if not f.agrees]
    e_example = _gc(build_network(), X, T)

    checks = [
        SeedCheck(
            "002",
            "dense forward, matrix form",
            "out = Z_L W_{L+1} + b̃;  o_11 = z_11 w_11 + z_12 w_21 + z_13 w_31 + b_1, …",
            "z = x W + b (b broadcast down the rows)",
            "chainrule.nn.layers.dense.Dense.forward",
            "max |Dense output − the post's entry-by-entry sums| (2×3 · 3×2)",
            e_fwd,
            EXACT,
        ),
        SeedCheck(
            "002",
            "∂J/∂W",
            "∂J/∂W_{L+1} = Z_Lᵀ ∂J/∂out",
            "∂E/∂W = xᵀ dy",
            "chainrule.nn.layers.dense.Dense.backward",
            "relative error of Dense's W.grad vs Z_Lᵀ ∂J/∂out",
            e_dW,
            EXACT,
        ),
        SeedCheck(
            "002",
            "∂J/∂b",
            "(∂J/∂b)ᵀ = (∂J/∂o_11 + ∂J/∂o_21, ∂J/∂o_12 + ∂J/∂o_22): add up the rows of ∂J/∂out",
            "∂E/∂b = Σ_rows dy",
            "chainrule.nn.layers.dense.Dense.backward",
            "relative error of Dense's b.grad vs the column sums of ∂J/∂out",
            e_db,
            EXACT,
        ),
        SeedCheck(
            "002",
            "∂J/∂Z_L",
            "∂J/∂Z_L = ∂J/∂out W_{L+1}ᵀ",
            "∂E/∂x = dy Wᵀ",
            "chainrule.nn.layers.dense.Dense.backward",
            "relative error of Dense's dx vs ∂J/∂out W_{L+1}ᵀ",
            e_dZ,
            EXACT,
        ),
        SeedCheck(
            "002",
            "sigmoid derivative",
            "∂J/∂h_L = ∂J/∂Z_L · Z_L (1 − Z_L)",
            "∂E/∂z = dy ⊙ a ⊙ (1 − a)",
            "chainrule.nn.layers.activations.Sigmoid.backward",
            "gradcheck_layer (3×4 input), max relative error",
            gl["sigmoid"],
            TOLERANCE,
        ),
        SeedCheck(
            "002",
            "tanh derivative",
            "∂J/∂h_L = ∂J/∂Z_L (1 − Z_L²)",
            "∂E/∂z = dy ⊙ (1 − a²)",
            "chainrule.nn.layers.activations.Tanh.backward",
            "gradcheck_layer, max relative error",
            gl["tanh"],
            TOLERANCE,
        ),
        SeedCheck(
            "002",
            "ReLU derivative",
            "∂J/∂h_L = 0 for h_L ≤ 0, ∂J/∂Z_L for h_L > 0",
            "∂E/∂z = dy ⊙ [z > 0]",
            "chainrule.nn.layers.activations.ReLU.backward",
            "gradcheck_layer away from 0, plus max |f'(−1, 0, 2) − (0, 0, 1)| (the post's f'(0) = 0)",
            max(gl["relu"], relu0),
            TOLERANCE,
        ),
        SeedCheck(
            "002",
            "softmax",
            "σ(z)_j = e^{z_j} / Σ_k e^{z_k}",
            "∂E/∂z = s ⊙ (dy − Σ_j dy_j s_j)",
            "chainrule.nn.layers.activations.Softmax.backward",
            "gradcheck_layer, max relative error",
            gl["softmax"],
            TOLERANCE,
        ),
        SeedCheck(
            "002",
            "softplus",
            "ζ = log(1 + e^x)",
            "ζ(z) = max(z, 0) + log1p(e^{−|z|});  ζ' = σ(z)",
            "chainrule.nn.layers.activations.Softplus.backward",
            "max(|ζ − log(1 + e^x)|, gradcheck_layer error)",
            max(sp, gl["softplus"]),
            TOLERANCE,
        ),
        SeedCheck(
            "002",
            "maxout",
            "h_i(x) = max_{j∈[1,k]} z_ij,  z_ij = xᵀ W_{…ij} + b_ij",
            "h = max_j (x W_j + b_j); the gradient goes to the winning piece",
            "chainrule.nn.layers.maxout.Maxout.backward",
            "gradcheck_layer (4 → 3, k = 3), max relative error",
            gl["maxout"],
            TOLERANCE,
        ),
        SeedCheck(
            "002",
            "the worked 3-2-2 example",
            "x = (1, 4, 5), t = (0.1, 0.05), w1..w10, b1 = b2 = 0.5, α = 0.01",
            "Dense(3→2) + Sigmoid + Dense(2→2) + Sigmoid, SquaredError, tied biases",
            "chainrule.studies.example.run_example",
            f"gradcheck of the example network (max relative error); printed figures that disagree: "
            f"{', '.join(wrong) or 'none'}",
            e_example,
            TOLERANCE,
        ),
    ]

    # -- slips of the abstract part, on the same random 2×3 · 3×2 case --------------------------
    bt_post = np.array([[b[0], b[0]], [b[1], b[1]]])
    bt_right = np.array([[b[0], b[1]], [b[0], b[1]]])
    zw = Z @ W
    dJ = G  # ∂J/∂out
    w32_post = dJ[0, 0] * z[0, 2] + dJ[1, 1] * z[1, 2]
    w32_right = dJ[0, 1] * z[0, 2] + dJ[1, 1] * z[1, 2]
    z21_post = dJ[1, 0] * w[0, 0] + dJ[0, 1] * w[0, 1]
    z21_right = dJ[1, 0] * w[0, 0] + dJ[1, 1] * w[0, 1]
    hh = 1.0
    slips = [
        Slip(
            "002",
            "抽象的例子: b̃_{L+1} = [[b_1, b_1], [b_2, b_2]]",
            "b̃ = [[b1, b1], [b2, b2]] (bias varies down the rows, i.e. per sample)",
            "b̃ = [[b1, b2], [b1, b2]]: bᵀ repeated on every row, as the post's own o_11 = … + b_1, "
            "o_12 = … + b_2 say",
            "numeric",
            "max |Z_L W + [[b1, b2], [b1, b2]] − Dense output|",
            _maxabs(zw + bt_right, out),
            EXACT,
            post_value=_maxabs(zw + bt_post, out),
            correct_value=0.0,
            detail="values: max |error| of the output with each b̃ (random 2×3 Z_L, 3×2 W, b)",
        ),
        Slip(
            "002",
            "对w的参数求偏导: ∂J/∂w_32 = ∂J/∂o_11 z_13 + ∂J/∂o_22 z_23",
            "∂J/∂o_11 in the first term",
            "∂J/∂w_32 = ∂J/∂o_12 z_13 + ∂J/∂o_22 z_23",
            "numeric",
            "|corrected − Dense's ∂E/∂W[3, 2]|",
            abs(w32_right - layer.W.grad[2, 1]),
            EXACT,
            post_value=float(w32_post),
            correct_value=float(layer.W.grad[2, 1]),
            detail="random Z_L, ∂J/∂out",
        ),
        Slip(
            "002",
            "Jacobian matrix (Z_Lᵀ) in ∂J/∂W = Z_Lᵀ ∂J/∂out",
            "[[z_11, z_21], [z_21, z_22], [z_31, z_32]] (repeats z_21; z_31, z_32 do not exist: Z_L is 2×3)",
            "Z_Lᵀ = [[z_11, z_21], [z_12, z_22], [z_13, z_23]]",
            "textual",
            "relative error of Z_Lᵀ ∂J/∂out vs Dense's ∂E/∂W",
            e_dW,
            EXACT,
        ),
        Slip(
            "002",
            "对Z求偏导: ∂J/∂z_21 = ∂J/∂o_21 w_11 + ∂J/∂o_12 w_12",
            "∂J/∂o_12 in the second term (that is sample 1's output)",
            "∂J/∂z_21 = ∂J/∂o_21 w_11 + ∂J/∂o_22 w_12",
            "numeric",
            "|corrected − Dense's ∂E/∂x[2, 1]|",
            abs(z21_right - dZ[1, 0]),
            EXACT,
            post_value=float(z21_post),
            correct_value=float(dZ[1, 0]),
        ),
        Slip(
            "002",
            "W_{L+1}ᵀ in ∂J/∂Z_L = ∂J/∂out W_{L+1}ᵀ",
            "[[w_11, w_12, w_31], [w_21, w_22, w_33]] (w_12/w_21 swapped; w_33 does not exist)",
            "W_{L+1}ᵀ = [[w_11, w_21, w_31], [w_12, w_22, w_32]]",
            "textual",
            "relative error of ∂J/∂out W_{L+1}ᵀ vs Dense's ∂E/∂x",
            e_dZ,
            EXACT,
        ),
        Slip(
            "002",
            "'###### 2 激活函数为sigmoid' above Z_L = (e^h − e^{−h})/(e^h + e^{−h})",
            "heading says sigmoid",
            "tanh (the heading of section 2 should read 激活函数为tanh)",
            "textual",
            "gradcheck_layer of Tanh (1 − Z² is right)",
            gl["tanh"],
            TOLERANCE,
            post_value=float(sigmoid(np.array(hh))),
            correct_value=float(np.tanh(hh)),
            detail="the two functions differ: at h = 1, σ = post_value, tanh = correct_value",
        ),
        Slip(
            "002",
            "tanh section: ∂J/∂h_L = ((a − b)/(a + b))′ = …",
            "∂J/∂h_L equated with the derivative of tanh (the factor ∂J/∂Z_L dropped); 'by the composite-function "
            "rule (u/v)′' — that is the quotient rule",
            "∂Z_L/∂h_L = ((a − b)/(a + b))′ = 1 − Z_L² (quotient rule), then ∂J/∂h_L = ∂J/∂Z_L (1 − Z_L²)",
            "textual",
            "gradcheck_layer of Tanh",
            gl["tanh"],
            TOLERANCE,
        ),
        Slip(
            "002",
            "抽象的例子 vs 形象的例子: 'f为作用在h上的激活函数', Z_L = f_L(h_L)",
            "in the abstract part h is the pre-activation and Z the activation; in the worked example h = σ(z_h) "
            "is the activation and z the pre-activation",
            "one naming throughout, e.g. z = pre-activation, a (or h) = f(z), as in seeds 001/004",
            "textual",
            "gradcheck of the example network (notation only; the mathematics is unaffected)",
            e_example,
            TOLERANCE,
        ),
    ]
    for e in res.errata:
        numeric = e.post_value is not None and e.correct_value is not None
        slips.append(
            Slip(
                "002",
                f"形象的例子: {e.where}",
                e.post_says,
                e.correct,
                "numeric" if numeric else "textual",
                "gradcheck of the example network (tied biases); the correct value is chainrule's",
                e_example,
                TOLERANCE,
                post_value=e.post_value,
                correct_value=e.correct_value,
                detail=e.detail,
            )
        )
    return checks, slips


# -- seed 003 -----------------------------------------------------------------------------------
def post003_hidden_rule(net: Any, x: np.ndarray, y: np.ndarray) -> list[np.ndarray]:
    """Seed 003's recursion ``dW^i = (1/m) (A^i − Y)·A^{i−1}`` applied to EVERY layer, read in row
    form as ``(A^{i−1})ᵀ (A^i − Y) / m`` (Y broadcast over a hidden layer's units: the post gives no
    other error for them). Returns one array per Dense layer."""
    from chainrule.inspect.trace import trace

    with trace(net) as tr:
        net.loss_and_grad(x, y)
    layers = tr.layers()
    m = x.shape[0]
    out = []
    for lt in layers:
        a = lt.a if lt.activation != "none" else 1.0 / (1.0 + np.exp(-lt.z))  # the output's A = σ(Z)
        out.append(lt.a_prev.T @ (a - y) / m)
    return out


def _seed003() -> tuple[list[SeedCheck], list[Slip]]:
    from chainrule.nn.layers import Dense
    from chainrule.nn.functional import sigmoid
    from chainrule.nn.losses import SigmoidBinaryCrossEntropy

    # the post's own numbers: X = [[1, 2], [3, 4]] (two samples), W^1 = [[1], [3]], b = 2
    Xp = np.array([[1.0, 2.0], [3.0, 4.0]])
    Wp = np.array([[1.0], [3.0]])
    dense = Dense(2, 1, W=Wp, b=np.array([2.0]), dtype=np.float64)
    Zp = dense.forward(Xp)
    e_fwd = _maxabs(Zp, Xp @ Wp + 2.0)
    try:
        Wp @ Xp  # the post's W*X
        wx = "defined"
    except ValueError:
        wx = f"undefined: W {Wp.shape} · X {Xp.shape}, inner sizes {Wp.shape[1]} ≠ {Xp.shape[0]}"

    r = _rng(3)
    x = r.standard_normal((6, 3))
    y = r.integers(0, 2, (6, 1)).astype(np.float64)
    loss = SigmoidBinaryCrossEntropy()
    zz = r.standard_normal((6, 1))
    L = float(loss.forward(zz, y))
    a = sigmoid(zz)
    e_loss = abs(L - float(-np.mean(y * np.log(a) + (1 - y) * np.log(1 - a))))
    logistic = _net([3, 1], "identity", "bce", seed=4)
    e_gc1 = _gc(logistic, x, y)
    lt = _traced(logistic, x, y)[0]
    A = sigmoid(lt.z)
    m = x.shape[0]
    e_dw = max(relative_error(lt.dW, x.T @ (A - y) / m), relative_error(lt.db, (A - y).sum(axis=0) / m))
    e_dz = relative_error(lt.delta, (A - y) / m)

    # the hidden-layer rule on a 2-hidden-layer sigmoid/BCE net
    deep = _net([3, 4, 3, 1], "sigmoid", "bce", seed=5)
    e_deep = _gc(deep, x, y)
    post = post003_hidden_rule(deep, x, y)
    deep.loss_and_grad(x, y)
    true = [deep.layers[i].W.grad.copy() for i in (0, 2, 4)]
    rel = [relative_error(p, t) for p, t in zip(post, true, strict=True)]
    # the other reading: the output error A^L − Y reused for every layer (broadcast over units)
    layers = _traced(deep, x, y)
    aL = sigmoid(layers[-1].z)
    rel_alt = [
        relative_error(lt.a_prev.T @ np.broadcast_to(aL - y, lt.z.shape) / m, t)
        for lt, t in zip(layers, true, strict=True)
    ]
    post_dw = (A - y) * x / m  # the post's (1/n)(A − Y)*X, elementwise
    post_db = (A - y) / m

    checks = [
        SeedCheck(
            "003",
            "forward",
            "Z = W*X + b, A = sigmoid(Z) with X (m, n) = samples × features, W^1 (n, 1)",
            "Z = X W + b, A = σ(Z)",
            "chainrule.nn.layers.dense.Dense.forward",
            "the post's X = [[1,2],[3,4]], W^1 = [[1],[3]], b = 2: max |Dense − (X W + b)|",
            e_fwd,
            EXACT,
        ),
        SeedCheck(
            "003",
            "binary cross-entropy",
            "L = −(1/n) Σ y^i log a^i + (1 − y) log(1 − a^i)",
            "E = −(1/N) Σ_n [y_n log a_n + (1 − y_n) log(1 − a_n)],  a = σ(z)",
            "chainrule.nn.losses.SigmoidBinaryCrossEntropy.forward",
            "|E_chainrule − the bracketed formula| on 6 random logits",
            e_loss,
            EXACT,
        ),
        SeedCheck(
            "003",
            "∂L/∂Z of sigmoid + cross-entropy",
            "(−Y/A + (1 − Y)/(1 − A)) · A(1 − A) = A − Y",
            "δ = (A − Y)/N",
            "chainrule.nn.losses.SigmoidBinaryCrossEntropy.backward",
            "relative error of the traced δ vs (A − Y)/m",
            e_dz,
            EXACT,
        ),
        SeedCheck(
            "003",
            "∂L/∂W and ∂L/∂b of one layer",
            "∂L/∂W = (1/n)(A − Y)*X;  ∂L/∂b = (1/n)(A − Y)",
            "∂E/∂W = Xᵀ (A − Y)/N;  ∂E/∂b = Σ_rows (A − Y)/N",
            "chainrule.nn.layers.dense.Dense.backward",
            "relative error of the traced gradients vs the row-form formulas",
            e_dw,
            EXACT,
        ),
        SeedCheck(
            "003",
            "gradient check, logistic regression",
            "W = W − α ∂L/∂W, b = b − α ∂L/∂b",
            "θ ← θ − α ∂E/∂θ",
            "chainrule.inspect.gradcheck.gradcheck",
            "gradcheck 3 → 1 sigmoid/BCE, batch 6, max relative error",
            e_gc1,
            TOLERANCE,
        ),
        SeedCheck(
            "003",
            "hidden layers (the true rule the post's recursion should be)",
            "for i from n−1 to 1: W^i = W^i − α (1/n)(A^{i+1} − Y^{i+1})·A^{(i)}",
            "δ^L = (A^L − Y)/N;  δ^l = (δ^{l+1} (W^{l+1})ᵀ) ⊙ A^l(1 − A^l);  ∂E/∂W^l = (A^{l−1})ᵀ δ^l",
            "chainrule.nn.model.Sequential.backward",
            "gradcheck of 3-4-3-1 sigmoid/BCE (two hidden layers), max relative error",
            e_deep,
            TOLERANCE,
        ),
    ]
    slips = [
        Slip(
            "003",
            "反向传播, the recursion: d_{w^(n−1)} = (1/n)(A^n − Y^n)·A^(n−1), and the loop over i",
            "every layer's weight gradient uses (A − Y) of that layer: no δ flows back through W and σ′",
            "δ^l = (δ^{l+1} (W^{l+1})ᵀ) ⊙ A^l(1 − A^l);  ∂L/∂W^l = (A^{l−1})ᵀ δ^l (only the output has δ = (A − Y)/m)",
            "numeric",
            "gradcheck of the true gradient on the same 3-4-3-1 sigmoid/BCE net (max relative error)",
            e_deep,
            TOLERANCE,
            post_value={"W1": rel[0], "W2": rel[1], "W3 (output)": rel[2]},
            correct_value={"W1": 0.0, "W2": 0.0, "W3 (output)": 0.0},
            detail="values: relative error of the post's rule vs the true gradient per layer (0 would be right); "
            "reading it as the output's A^L − Y reused for every layer gives "
            + ", ".join(f"{v:.3g}" for v in rel_alt),
        ),
        Slip(
            "003",
            "∂L/∂W = (1/n)(A − Y)*X",
            f"(A − Y)*X: an elementwise product of shape {post_dw.shape}, not W's {lt.dW.shape}",
            "∂L/∂W = Xᵀ(A − Y)/m (rows are samples; column form (A − Y)Xᵀ/m): sum over the samples",
            "numeric",
            "relative error of Xᵀ(A − Y)/m vs the traced ∂E/∂W",
            relative_error(lt.dW, x.T @ (A - y) / m),
            EXACT,
            post_value=list(post_dw.shape),
            correct_value=list(lt.dW.shape),
            detail="values are shapes; the post's array summed over its rows equals the correct gradient: error "
            f"{relative_error(post_dw.sum(axis=0), lt.dW[:, 0]):.1e}",
        ),
        Slip(
            "003",
            "∂L/∂b = (1/n)(A − Y)",
            f"one number per sample (shape {post_db.shape})",
            "∂L/∂b = Σ_rows (A − Y)/m: one number per output unit",
            "numeric",
            "relative error of Σ_rows(A − Y)/m vs the traced ∂E/∂b",
            relative_error(lt.db, (A - y).sum(axis=0) / m),
            EXACT,
            post_value=list(post_db.shape),
            correct_value=list(lt.db.shape),
        ),
        Slip(
            "003",
            "神经网络的基本运算 / 矩阵与损失函数: Z = W*X + b with X (m, n), W^1 (n, 1)",
            f"W*X: {wx}",
            "Z = X W + b (rows are samples), or Z = W Xᵀ + b in column form",
            "numeric",
            "max |Dense(X) − (X W + b)| on the post's own X, W, b",
            e_fwd,
            EXACT,
            post_value=wx,
            correct_value=np.asarray(Zp).ravel().tolist(),
            detail="correct_value is X W + b for the post's X = [[1,2],[3,4]], W^1 = [[1],[3]], b = 2",
        ),
        Slip(
            "003",
            "'矩阵的每一列代表了一组训练样本'",
            "each column of X is a sample",
            "each ROW is a sample: X = [[1,2],[3,4]] holds samples (1,2) and (3,4) as rows, shape (m, n)",
            "textual",
            "max |Dense(X) − (X W + b)| with the samples as rows",
            e_fwd,
            EXACT,
        ),
        Slip(
            "003",
            "'b的shape应该等于X的行和W的列': b = [[2], [2]]",
            "b has one entry per sample (shape (m, 1))",
            "b has one entry per output unit (shape (1,) here), broadcast over the samples",
            "textual",
            "relative error of Dense's ∂E/∂b vs Σ_rows δ (one number per unit)",
            relative_error(lt.db, lt.delta.sum(axis=0)),
            EXACT,
        ),
        Slip(
            "003",
            "L = −(1/n) Σ_{i=1}^n y^i log(a^i) + (1 − y) log(1 − a^i)",
            "no brackets round the summand, y without its index, and n is the feature count in the post's "
            "X (m, n)",
            "L = −(1/m) Σ_{i=1}^m [y^i log a^i + (1 − y^i) log(1 − a^i)]",
            "textual",
            "|E_chainrule − the bracketed formula|",
            e_loss,
            EXACT,
        ),
        Slip(
            "003",
            "the recursion's indices: W^i updated with A^{i+1} − Y^{i+1} and A^(i), loop i = n−1 … 1",
            "Y^{i+1} (targets have no layer index); with Z^n = W^n A^{n−1} + b^n the pair (A^n, A^{n−1}) belongs to "
            "W^n, not W^{n−1}, and the loop never updates W^n",
            "∂L/∂W^n = (A^{n−1})ᵀ δ^n for n = N … 1",
            "textual",
            "gradcheck of the 3-4-3-1 net (every W^n gets its own δ^n)",
            e_deep,
            TOLERANCE,
        ),
        Slip(
            "003",
            "headings and names",
            "'Forword Propagate'; the prediction called P, then A",
            "Forward propagation; one name (A) for the prediction",
            "textual",
            "(naming only) forward check on the post's numbers",
            e_fwd,
            EXACT,
        ),
    ]
    return checks, slips


# -- seed 004 -----------------------------------------------------------------------------------
def _seed004() -> tuple[list[SeedCheck], list[Slip]]:
    from chainrule.nn.layers import Dense, Sigmoid
    from chainrule.optim import SGD

    r = _rng(4)
    K = 4
    a_prev = r.standard_normal((1, K))
    Wc = r.standard_normal((3, K))  # the post's w^l_jk: row j (unit of layer l), column k (unit of l−1)
    bl = r.standard_normal(3)
    dense = Dense(K, 3, W=Wc.T, b=bl, dtype=np.float64)
    z = dense.forward(a_prev)[0]
    z_loop = np.array([sum(Wc[j, k] * a_prev[0, k] for k in range(K)) + bl[j] for j in range(3)])
    z_post = np.array([sum(Wc[j, k] * a_prev[0, k] + bl[j] for k in range(K)) for j in range(3)])
    e_fwd = _maxabs(z, z_loop)

    x, t = r.standard_normal((4, 3)), r.uniform(0.1, 0.9, (4, 2))
    net = _net([3, 4, 2], "sigmoid", "squared", seed=6)
    out = net.forward(x)
    e_cost = abs(float(net.loss.forward(out, t)) - float(np.sum((t - out) ** 2) / (2 * x.shape[0])))
    ex = _explained(_net([3, 4, 2], "sigmoid", "squared", seed=6), x, t)
    l1, l2 = ex.layers
    n = x.shape[0]
    grad_a = (l2.a - t) / n
    e_bp1 = relative_error(l2.delta, grad_a * l2.a * (1 - l2.a))
    # BP2 in the post's column form ((W^{l+1})ᵀ δ^{l+1}, one column per sample), transposed back to rows;
    # chainrule's W^{l+1} is the post's transposed, so the post's (W^{l+1})ᵀ is our W
    e_bp2 = relative_error(l1.delta, (l2.W @ l2.delta.T).T * l1.a * (1 - l1.a))
    e_bp3 = relative_error(l1.dW, np.einsum("nk,nj->kj", l1.a_prev, l1.delta))
    num = max(c.rel_error for per in ex.checks.values() for c in per.values())
    e_bias = relative_error(l1.db, l1.delta.sum(axis=0))

    grid = np.linspace(-10, 10, 20001)[None, :]
    sg = Sigmoid()
    sg.forward(grid)
    max_fp = float(np.max(sg.backward(np.ones_like(grid))))
    deep = _net([8, 8, 8, 8, 8, 8, 2], "sigmoid", "squared", seed=7)
    xs = r.standard_normal((4, 8))
    ts = r.uniform(0.1, 0.9, (4, 2))
    norms = [float(np.linalg.norm(lt.delta)) for lt in _traced(deep, xs, ts)]
    shrink = [norms[i] / norms[i + 1] for i in range(len(norms) - 1)]

    net.loss_and_grad(x, t)
    before = [p.value.copy() for p in net.params]
    grads = [p.grad.copy() for p in net.params]
    SGD(0.5).step(net.params)
    upd = max(_maxabs(p.value, b - 0.5 * g) for p, b, g in zip(net.params, before, grads, strict=True))

    # W^{l+1} shown 2×3 while layer l has 4 units
    W23 = r.standard_normal((2, 3))
    d_next = r.standard_normal(2)
    fp4 = r.uniform(0.1, 0.25, 4)
    try:
        (W23.T @ d_next) * fp4
        shape_msg = "defined"
    except ValueError:
        shape_msg = f"undefined: (W^{{l+1}})ᵀ δ^{{l+1}} has {W23.shape[1]} entries, σ′(z^l) has {fp4.size}"
    W24 = np.concatenate([W23, r.standard_normal((2, 1))], axis=1)
    bp2_ok = (W24.T @ d_next) * fp4
    d4 = Dense(4, 2, W=W24.T, b=np.zeros(2), dtype=np.float64)
    d4.forward(np.ones((1, 4)))
    e_24 = relative_error(bp2_ok, d4.backward(d_next[None, :])[0] * fp4)

    checks = [
        SeedCheck(
            "004",
            "weighted input",
            "z^l_j = Σ_k (w^l_jk a^{l−1}_k + b^l_j)  [bias inside the sum: see errata]",
            "z^l = a^{l−1} W^l + b^l,  W^l[k, j] = w^l_jk",
            "chainrule.nn.layers.dense.Dense.forward",
            "max |Dense − (Σ_k w_jk a_k + b_j)| for K = 4 inputs",
            e_fwd,
            EXACT,
        ),
        SeedCheck(
            "004",
            "quadratic cost",
            "C = (1/2n) Σ_x ‖y − a^L‖²",
            "E = (1/N) Σ_n ½‖a_n − y_n‖²",
            "chainrule.nn.losses.SquaredError.forward",
            "|E_chainrule − (1/2n) Σ ‖y − a‖²|",
            e_cost,
            EXACT,
        ),
        SeedCheck(
            "004",
            "BP1",
            "δ^L = ∇_a C ⊙ σ′(z^L)",
            "δ^L = (a^L − y)/N ⊙ a^L(1 − a^L)",
            "chainrule.nn.losses.SquaredError.backward",
            "relative error of the traced δ^L vs ∇_a C ⊙ σ′(z^L)",
            e_bp1,
            EXACT,
        ),
        SeedCheck(
            "004",
            "BP2",
            "δ^l = ((W^{l+1})ᵀ δ^{l+1}) ⊙ σ′(z^l)",
            "δ^l = (δ^{l+1} (W^{l+1})ᵀ) ⊙ σ′(z^l)",
            "chainrule.nn.layers.dense.Dense.backward",
            "relative error of the traced δ¹ vs the column-form formula (transposed)",
            e_bp2,
            EXACT,
        ),
        SeedCheck(
            "004",
            "BP3",
            "∂C/∂w^l_jk = a^{l−1}_k δ^l_j",
            "∂E/∂W^l = (a^{l−1})ᵀ δ^l (summed over the batch)",
            "chainrule.nn.layers.dense.Dense.backward",
            "relative error of the traced ∂E/∂W¹ vs Σ_n a_nk δ_nj",
            e_bp3,
            EXACT,
        ),
        SeedCheck(
            "004",
            "BP1-BP3 against central differences",
            "(all of the above)",
            "δ^l = ∂C/∂z^l",
            "chainrule.inspect.explain.explain",
            "max relative error of every ∂E/∂a, δ, ∂E/∂W, ∂E/∂b vs central differences",
            num,
            TOLERANCE,
        ),
        SeedCheck(
            "004",
            "vanishing gradient: σ′ ≤ 1/4",
            "sigmoid's derivative decays, so ∂C/∂w shrinks with depth",
            "σ′(z) = σ(z)(1 − σ(z)) ≤ 1/4 at z = 0",
            "chainrule.nn.layers.activations.Sigmoid.backward",
            "max σ′ on [−10, 10] minus 1/4; ‖δ^l‖/‖δ^(l+1)‖ in a 6-layer sigmoid net: "
            + ", ".join(f"{s:.2f}" for s in shrink),
            abs(max_fp - 0.25),
            1e-9,
        ),
        SeedCheck(
            "004",
            "update",
            "w^l_jk := w^l_jk − η ∂C/∂w^l_jk",
            "θ ← θ − α ∂E/∂θ",
            "chainrule.optim.SGD.update",
            "max |θ_after − (θ_before − η g)|",
            upd,
            EXACT,
        ),
    ]
    slips = [
        Slip(
            "004",
            "z^l_j = Σ_k (w^l_jk a^{l−1}_k + b^l_j)",
            "b^l_j inside the sum over k: added once per input, K·b instead of b",
            "z^l_j = Σ_k w^l_jk a^{l−1}_k + b^l_j",
            "numeric",
            "max |Dense − (Σ_k w_jk a_k + b_j)|",
            e_fwd,
            EXACT,
            post_value=z_post.tolist(),
            correct_value=z.tolist(),
            detail=f"K = {K}: post − correct = {_v(np.round(z_post - z, 9).tolist())}, and (K − 1)·b = "
            f"{_v(np.round((K - 1) * bl, 9).tolist())}: b counted K times",
        ),
        Slip(
            "004",
            "'b^l_j 是 l-1 层的第j个神经元的偏置'",
            "b^l_j belongs to neuron j of layer l − 1",
            "b^l_j is the bias of neuron j of layer l (it enters z^l_j), so ∂C/∂b^l_j = δ^l_j",
            "textual",
            "relative error of ∂E/∂b^l vs Σ_rows δ^l (layer l's own δ)",
            e_bias,
            EXACT,
        ),
        Slip(
            "004",
            "w^l_jk := w^l_jk − η ∇ ∂C/∂w^l_jk",
            "∇ and ∂/∂w together (a gradient of a partial derivative)",
            "w^l_jk := w^l_jk − η ∂C/∂w^l_jk  (or W := W − η ∇_W C)",
            "textual",
            "max |θ_after − (θ_before − η ∂C/∂θ)| after one SGD step",
            upd,
            EXACT,
        ),
        Slip(
            "004",
            "BP1 derivation: δ^L_j = ∂C/∂a^L_j · σ′(z^L_j) = ∇_a C * σ′(z^L_j)",
            "the whole vector ∇_a C in a per-unit equation",
            "δ^L_j = (∇_a C)_j σ′(z^L_j);  δ^L = ∇_a C ⊙ σ′(z^L)",
            "textual",
            "relative error of the traced δ^L vs ∇_a C ⊙ σ′(z^L)",
            e_bp1,
            EXACT,
        ),
        Slip(
            "004",
            "BP2, written out: δ^l_1 … δ^l_4 with W^{l+1} = [[w_11, w_12, w_13], [w_21, w_22, w_23]]",
            "layer l has 4 units but W^{l+1} is 2×3 (δ^l_4 uses w_14, w_24, which it lacks), so BP2 is "
            + shape_msg,
            "W^{l+1} is 2×4: [[w_11, w_12, w_13, w_14], [w_21, w_22, w_23, w_24]]",
            "numeric",
            "relative error of ((W^{l+1})ᵀ δ^{l+1}) ⊙ σ′ with the 2×4 W vs Dense.backward ⊙ σ′",
            e_24,
            EXACT,
            post_value=shape_msg,
            correct_value=bp2_ok.tolist(),
        ),
        Slip(
            "004",
            "BP3 expansion: ∂C/∂w^l_jk = a^{l−1}_k · Σ_k(δ^{l+1}_k w^{l+1}_kj σ′(z^l_j))",
            "k is both the free index of a^{l−1}_k and the summed index",
            "∂C/∂w^l_jk = a^{l−1}_k Σ_m δ^{l+1}_m w^{l+1}_mj σ′(z^l_j)",
            "textual",
            "relative error of the traced ∂E/∂W¹ vs Σ_n a_nk δ_nj (δ¹ from BP2)",
            e_bp3,
            EXACT,
        ),
        Slip(
            "004",
            "the last paragraph",
            "stops mid-sentence ('在层数太大而且输出值范围太大的时候，')",
            "e.g. '…the product of many σ′ ≤ 1/4 factors makes the early layers' gradients vanish'",
            "textual",
            "max σ′ = 1/4 (the bound the argument needs)",
            abs(max_fp - 0.25),
            1e-9,
        ),
    ]
    return checks, slips


_SECTIONS: dict[str, Callable[[], tuple[list[SeedCheck], list[Slip]]]] = {
    "000": _seed000,
    "001": _seed001,
    "002": _seed002,
    "003": _seed003,
    "004": _seed004,
}


def _run(seeds: list[str] | None = None) -> dict[str, tuple[list[SeedCheck], list[Slip]]]:
    out = {}
    for s in seeds or list(_SECTIONS):
        if s not in _SECTIONS:
            from chainrule.errors import ConfigError

            raise ConfigError(f"unknown seed {s!r}; choose {', '.join(_SECTIONS)}")
        out[s] = _SECTIONS[s]()
    return out


def walkthrough(seeds: list[str] | None = None) -> list[SeedCheck]:
    """Every formula of the posts (or of ``seeds``), its implementation and a live check."""
    return [c for checks, _ in _run(seeds).values() for c in checks]


def errata(seeds: list[str] | None = None) -> list[Slip]:
    """Every slip found in the posts (or in ``seeds``), each with its live check."""
    return [s for _, slips in _run(seeds).values() for s in slips]


# -- rendering ----------------------------------------------------------------------------------
def _v(v: Any) -> str:
    if v is None:
        return "—"
    if isinstance(v, float):
        return f"{v:.6g}"
    if isinstance(v, dict):
        return "{" + ", ".join(f"{k}: {_v(x)}" for k, x in v.items()) + "}"
    if isinstance(v, list):
        return "[" + ", ".join(_v(x) for x in v) + "]"
    return str(v)


def collect(seeds: list[str] | None = None) -> dict[str, tuple[list[SeedCheck], list[Slip]]]:
    """Run the checks of ``seeds`` (default all) once: ``{seed: (checks, slips)}``."""
    return _run(seeds)


def render(
    seeds: list[str] | None = None,
    fmt: str = "text",
    only_errata: bool = False,
    results: dict[str, tuple[list[SeedCheck], list[Slip]]] | None = None,
) -> str:
    """The walkthrough and errata as ``text``, ``markdown`` or ``json`` (``results`` from
    :func:`collect`, else run now)."""
    res = results if results is not None else _run(seeds)
    checks = [c for cs, _ in res.values() for c in cs]
    slips = [s for _, ss in res.values() for s in ss]
    if fmt == "json":
        obj: dict[str, Any] = {"errata": [s.to_dict() for s in slips]}
        if not only_errata:
            obj = {"checks": [c.to_dict() for c in checks], **obj}
        obj["ok"] = all(c.passed for c in checks) and all(s.confirmed for s in slips)
        return json.dumps(obj, ensure_ascii=False, indent=1, default=_json_default, allow_nan=False) + "\n"
    if fmt == "markdown":
        return _markdown(res, only_errata)
    if fmt != "text":
        from chainrule.errors import ConfigError

        raise ConfigError(f"unknown format {fmt!r}; choose text, markdown or json")
    lines: list[str] = []
    for seed, (cs, ss) in res.items():
        lines += [f"== seed {seed}: {SEEDS[seed]}", ""]
        if not only_errata:
            for c in cs:
                mark = "✓" if c.passed else "✗"
                lines += [
                    f"  {mark} {c.topic}",
                    f"      post:   {c.post}",
                    f"      rows:   {c.rows}",
                    f"      code:   {c.implementation}",
                    f"      check:  {c.check} = {c.value:.1e} (≤ {c.tolerance:g})",
                ]
            lines.append("")
        lines.append(f"  slips ({len(ss)}):")
        for i, s in enumerate(ss, 1):
            lines += [
                f"  {i:2d}. [{s.kind}] {s.where}",
                f"      post:    {s.post}",
                f"      correct: {s.correct}",
            ]
            if s.post_value is not None or s.correct_value is not None:
                lines.append(f"      values:  post {_v(s.post_value)}  →  correct {_v(s.correct_value)}")
            if s.detail:
                lines.append(f"      detail:  {s.detail}")
            lines.append(f"      check:   {s.check} = {s.check_value:.1e} {'✓' if s.confirmed else '✗'}")
        lines.append("")
    n_ok = sum(c.passed for c in checks)
    lines.append(
        f"{n_ok}/{len(checks)} formula checks pass; {len(slips)} slips, "
        f"{sum(s.confirmed for s in slips)} with their corrected form confirmed"
    )
    return "\n".join(lines) + "\n"


def _md_cell(s: str) -> str:
    return s.replace("|", "\\|")


def _markdown(res: dict[str, tuple[list[SeedCheck], list[Slip]]], only_errata: bool) -> str:
    md = ["# The seed posts, formula by formula", ""]
    for seed, (cs, ss) in res.items():
        md += [f"## Seed {seed}: {SEEDS[seed]}", ""]
        if not only_errata:
            md += [
                "| formula (post) | row form | implementation | check | value | |",
                "|---|---|---|---|---|---|",
            ]
            for c in cs:
                md.append(
                    f"| {_md_cell(c.post)} | `{_md_cell(c.rows)}` | `{c.implementation}` | {_md_cell(c.check)} | "
                    f"{c.value:.1e} | {'✓' if c.passed else '✗'} |"
                )
            md.append("")
        md += [f"### Slips ({len(ss)})", ""]
        for i, s in enumerate(ss, 1):
            md += [
                f"{i}. **{_md_cell(s.where)}** ({s.kind})",
                f"   - post: {s.post}",
                f"   - correct: {s.correct}",
            ]
            if s.post_value is not None or s.correct_value is not None:
                md.append(f"   - values: post `{_v(s.post_value)}` → correct `{_v(s.correct_value)}`")
            if s.detail:
                md.append(f"   - detail: {s.detail}")
            md.append(f"   - check: {s.check} = {s.check_value:.1e} {'✓' if s.confirmed else '✗'}")
        md.append("")
    return "\n".join(md)


def _json_default(obj: Any) -> Any:
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")
