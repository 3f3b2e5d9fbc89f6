"""Seed 000, "deeplearning 反向传播的数学推导": softmax regression, then an MLP, with cross-entropy.

The post's formulas are images that its text does not contain, so the checks test what the prose
names, and the slips are in the prose.

The RBM slip is checked on a 3-visible, 2-hidden binary RBM small enough to enumerate: its exact
log-likelihood gradient ``⟨v hᵀ⟩_data − ⟨v hᵀ⟩_model`` (every visible state summed through the
partition function) against central differences, and the expected update of one step of contrastive
divergence (CD-1, also enumerated exactly) against that gradient.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from chainrule.inspect.gradcheck import TOLERANCE, numeric_gradient, relative_error
from chainrule.nn.functional import log_softmax, sigmoid, softmax, softplus
from chainrule.studies.seeds import common as cm

__all__ = ["SECTION", "rbm_gradients"]

LR = 0.3  # the step size of the update check


# -- the RBM ------------------------------------------------------------------------------------
def _states(n: int) -> np.ndarray:
    """Every binary vector of length ``n``, one per row (2ⁿ rows)."""
    return ((np.arange(2**n)[:, None] >> np.arange(n)) & 1).astype(np.float64)


def _hidden_moments(v: np.ndarray, W: np.ndarray, c: np.ndarray) -> np.ndarray:
    """``v σ(c + v W)ᵀ`` per row of ``v``: ``E[v hᵀ | v]`` for a binary RBM, shape (rows, n_v, n_h)."""
    return v[:, :, None] * sigmoid(c + v @ W)[:, None, :]


def _bernoulli(p: np.ndarray, states: np.ndarray) -> np.ndarray:
    """P(state | p) for independent bits: rows of ``p`` against every row of ``states``."""
    return np.prod(np.where(states[None, :, :] == 1, p[:, None, :], 1 - p[:, None, :]), axis=2)


def rbm_gradients(W: np.ndarray, b: np.ndarray, c: np.ndarray, data: np.ndarray) -> dict[str, Any]:
    """For the RBM ``E(v, h) = −vᵀWh − bᵀv − cᵀh`` and binary ``data`` (rows): the mean
    log-likelihood, its exact gradient in ``W``, central differences of it, and CD-1's expected
    update (one Gibbs step v → h → v' from every data row, enumerated)."""
    vs = _states(W.shape[0])
    index = (data @ (2 ** np.arange(W.shape[0]))).astype(int)  # each data row's place in vs

    def loglik() -> float:  # log p(v) = log_softmax(−F) over every visible state; F the free energy
        neg_free = vs @ b + np.sum(softplus(c + vs @ W), axis=1)
        return float(np.mean(log_softmax(neg_free)[index]))

    p_model = softmax(vs @ b + np.sum(softplus(c + vs @ W), axis=1))
    positive = _hidden_moments(data, W, c).mean(axis=0)
    exact = positive - np.einsum("s,sij->ij", p_model, _hidden_moments(vs, W, c))
    hs = _states(W.shape[1])
    step = _bernoulli(sigmoid(c + data @ W), hs) @ _bernoulli(sigmoid(b + hs @ W.T), vs)  # P(v' | v)
    cd1 = positive - np.einsum("ds,sij->ij", step, _hidden_moments(vs, W, c)) / data.shape[0]
    numeric = numeric_gradient(loglik, W)
    return {"loglik": loglik(), "exact": exact, "numeric": numeric, "cd1": cd1}


def _rbm() -> dict[str, float]:
    r = cm.rng(10)
    W, b, c = r.standard_normal((3, 2)), 0.5 * r.standard_normal(3), 0.5 * r.standard_normal(2)
    data = r.integers(0, 2, (5, 3)).astype(np.float64)
    g = rbm_gradients(W, b, c, data)
    return {
        "exact_vs_numeric": relative_error(g["exact"], g["numeric"]),
        "cd1_vs_exact": relative_error(g["cd1"], g["exact"]),
    }


# -- measurements -------------------------------------------------------------------------------
def measure() -> dict[str, Any]:
    r = cm.rng(0)
    z = r.standard_normal((5, 4)) * 3
    s = softmax(z)
    x, y = r.standard_normal((6, 4)), r.integers(0, 3, 6)
    step = cm.sgd_step(cm.net([4, 3], "identity", "softmax-ce", seed=2), x, y, LR)
    return {
        "softmax": max(float(np.max(np.abs(s.sum(axis=1) - 1))), float(np.max(np.abs(softmax(z + 7.0) - s)))),
        "single": cm.gc(cm.net([4, 3], "identity", "softmax-ce"), x, y),
        "mlp": cm.gc(cm.net([4, 5, 5, 3], "sigmoid", "softmax-ce", seed=1), x, y),
        "update": step["error"],
        "step": step,
        "rbm": _rbm(),
    }


def _rbm_check(m: cm.Measurements) -> cm.Verdict:
    rbm = m["rbm"]
    return cm.Verdict(
        rbm["exact_vs_numeric"],
        detail=f"CD-1's expected update (one Gibbs step from each data row, enumerated exactly) is not that "
        f"gradient: relative error {rbm['cd1_vs_exact']:.3g}; the exact model term needed all 2³ visible "
        "states, i.e. the partition function, which CD replaces by the chain's samples",
    )


def _update_check(m: cm.Measurements) -> cm.Verdict:
    step = m["step"]
    return cm.Verdict(
        step["error"],
        post_value=step["max_grad"],
        correct_value=step["moved"],
        detail=f"values: the largest parameter move, max |Δθ|, of 'θ minus its gradient' and of an SGD step "
        f"with η = {LR:g}, on a 4 → 3 softmax regression",
    )


CHECKS = (
    cm.CheckRecord(
        "softmax",
        "a → y by softmax: outputs in (0, 1) summing to 1 (formula images not in the text)",
        "p_nk = e^{z_nk − max_k z_n} / Σ_j e^{z_nj − max_k z_n}",
        "chainrule.nn.functional.softmax",
        "max |Σ_k p_nk − 1| and max |softmax(z + 7) − softmax(z)| on random logits",
        "softmax",
        cm.EXACT,
    ),
    cm.CheckRecord(
        "logistic (softmax) regression backward",
        "∂E/∂a, then ∂E/∂w and ∂E/∂b by the chain rule (the formulas are images, not in the text)",
        "δ = (p − t)/N;  ∂E/∂W = xᵀ δ;  ∂E/∂b = Σ_rows δ",
        "chainrule.nn.losses.SoftmaxCrossEntropy.backward",
        "gradcheck of a one-layer softmax-CE model (4 → 3, batch 6), max relative error",
        "single",
        TOLERANCE,
    ),
    cm.CheckRecord(
        "MLP backward (two hidden layers + softmax)",
        "δ of layer l from layer l+1, then ∂E/∂W^l, ∂E/∂b^l (images)",
        "δ^l = (δ^{l+1} (W^{l+1})ᵀ) ⊙ f'(z^l)",
        "chainrule.nn.model.Sequential.backward",
        "gradcheck of 4-5-5-3 sigmoid/softmax-CE, batch 6, max relative error",
        "mlp",
        TOLERANCE,
    ),
    cm.CheckRecord(
        "update",
        "'用权重参数减去其对应的梯度' (the update formula itself is an image)",
        "θ ← θ − α ∂E/∂θ",
        "chainrule.optim.SGD.update",
        "max |θ_after − (θ_before − α g)| after one SGD step",
        "update",
        cm.EXACT,
    ),
)

SLIPS = (
    cm.SlipRecord(
        "intro: 'RBM, autoencoder, deepAutoEncoder和 RNN 的推导与这种全连接的反向求导推导类似'",
        "an RBM is derived and trained like the fully connected network's backward pass",
        "an RBM is an undirected energy model trained by contrastive divergence (CD-k): its log-likelihood "
        "gradient ∂ log p(v)/∂W = ⟨v hᵀ⟩_data − ⟨v hᵀ⟩_model has a model term that needs the partition "
        "function, which CD approximates with k Gibbs steps; no error is propagated back through layers",
        cm.CONCEPTUAL,
        "exact gradient ⟨v σ(c + vW)ᵀ⟩_data − Σ_v p(v) v σ(c + vW)ᵀ of a 3-visible, 2-hidden RBM on 5 data "
        "rows vs central differences of its mean log-likelihood, relative error",
        _rbm_check,
        TOLERANCE,
    ),
    cm.SlipRecord(
        "logistic 求导: '求出偏导值后，用权重参数减去其对应的梯度，就是更新之后的权重参数'",
        "the updated weight is the weight minus its gradient (no learning rate; the formula image is not "
        "in the text)",
        "w := w − η ∂E/∂w: the gradient scaled by a learning rate η",
        cm.FORMULA,
        "max |θ_after − (θ_before − η g)| after one SGD step with η = 0.3",
        _update_check,
        cm.EXACT,
    ),
    cm.text_only(
        "typos (intro, logistic 求导, MLP 前向传播)",
        "'出世迭代点'; 'pre-trainging'; '先介绍以下'; 'a表示全链接结果'; '一层sotfmax连接网络'",
        "初始迭代点 (starting point); pre-training; 先介绍一下; 全连接; softmax",
    ),
)

SECTION = cm.Section("000", measure, CHECKS, SLIPS)
