"""One CD-1 step of a tiny RBM, every quantity printed and the update checked (issue 10).

An RBM is not trained by backprop (see :mod:`chainrule.unsupervised.rbm`): its step is a positive
phase (statistics of the data) minus a negative phase (statistics of a one-step Gibbs
reconstruction). This shows, for a batch ``v⁰`` (N, D) and ``W`` (D, H)::

    p(h|v⁰) = σ(v⁰W + c)            h⁰ = [u_h < p(h|v⁰)]
    p(v|h⁰) = σ(h⁰Wᵀ + b)           v¹ = [u_v < p(v|h⁰)]
    p(h|v¹) = σ(v¹W + c)
    positive = v⁰ᵀ p(h|v⁰) / N       negative = v¹ᵀ p(h|v¹) / N
    ΔW = α (positive − negative)     Δb = α mean(v⁰ − v¹)     Δc = α mean(p(h|v⁰) − p(h|v¹))

and checks two things: each phase is minus the gradient of the mean free energy (central
differences of ``F``), and :class:`~chainrule.unsupervised.rbm.CDTrainer`, fed the same uniforms,
makes exactly this update.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from chainrule.errors import ConfigError
from chainrule.nn.functional import sigmoid
from chainrule.unsupervised.rbm import RBM, CDSettings, CDTrainer, check_binary

__all__ = ["CD1Step", "explain_cd1", "render_cd1"]

MAX_UNITS = 16


@dataclass
class CD1Step:
    values: dict[str, np.ndarray] = field(default_factory=dict)
    checks: dict[str, float] = field(default_factory=dict)
    lr: float = 0.1
    tol: float = 1e-6

    @property
    def ok(self) -> bool:
        return all(v < self.tol for v in self.checks.values())


def _mean_free_energy_grad_w(rbm: RBM, v: np.ndarray, eps: float = 1e-6) -> np.ndarray:
    """``∂ mean F(v) / ∂W`` by central differences."""
    g = np.zeros_like(rbm.W)
    for idx in np.ndindex(rbm.W.shape):
        old = rbm.W[idx]
        rbm.W[idx] = old + eps
        fp = rbm.free_energy(v).mean()
        rbm.W[idx] = old - eps
        fm = rbm.free_energy(v).mean()
        rbm.W[idx] = old
        g[idx] = (fp - fm) / (2 * eps)
    return g


def explain_cd1(n_visible: int, n_hidden: int, *, v0: Any = None, batch: int = 2, lr: float = 0.1,
                seed: int = 0) -> CD1Step:
    """The step for an RBM ``n_visible x n_hidden`` (weights N(0, 0.5²), biases N(0, 0.1²) from
    ``seed``) on ``v0`` (binary rows; drawn with ``seed`` when None), in float64."""
    if max(n_visible, n_hidden) > MAX_UNITS or min(n_visible, n_hidden) < 1:
        raise ConfigError(f"explain shows tiny RBMs: 1..{MAX_UNITS} units per layer, got {n_visible},{n_hidden}")
    rng = np.random.default_rng(seed)
    rbm = RBM(n_visible, n_hidden, W=rng.normal(0, 0.5, (n_visible, n_hidden)), b=rng.normal(0, 0.1, n_visible),
              c=rng.normal(0, 0.1, n_hidden), dtype=np.float64)
    v0 = (rng.random((batch, n_visible)) < 0.5).astype(np.float64) if v0 is None else np.asarray(v0, np.float64)
    if v0.ndim != 2 or v0.shape[1] != n_visible:
        raise ConfigError(f"--input rows must have {n_visible} values (one per visible unit)")
    check_binary(v0, "--input (visible units are 0/1)")
    n = v0.shape[0]
    draws = np.random.default_rng(seed + 1)  # the trainer below gets the same generator
    ph0 = sigmoid(v0 @ rbm.W + rbm.c)
    u_h = draws.random((n, n_hidden))
    h0 = (u_h < ph0).astype(np.float64)
    pv1 = sigmoid(h0 @ rbm.W.T + rbm.b)
    u_v = draws.random((n, n_visible))
    v1 = (u_v < pv1).astype(np.float64)
    ph1 = sigmoid(v1 @ rbm.W + rbm.c)
    pos, neg = v0.T @ ph0 / n, v1.T @ ph1 / n
    st = CD1Step(lr=lr)
    st.values = {
        "W": rbm.W.copy(), "b": rbm.b.copy(), "c": rbm.c.copy(), "v0": v0, "p(h|v0)": ph0, "u_h": u_h, "h0": h0,
        "p(v|h0)": pv1, "u_v": u_v, "v1": v1, "p(h|v1)": ph1, "positive": pos, "negative": neg,
        "dW": lr * (pos - neg), "db": lr * (v0 - v1).mean(0), "dc": lr * (ph0 - ph1).mean(0),
    }
    st.checks["positive = -dF(v0)/dW"] = float(np.max(np.abs(pos + _mean_free_energy_grad_w(rbm, v0))))
    st.checks["negative = -dF(v1)/dW"] = float(np.max(np.abs(neg + _mean_free_energy_grad_w(rbm, v1))))
    fast = rbm.astype(np.float64)
    CDTrainer(fast, CDSettings(k=1, lr=lr, batch_size=n), seed=seed + 1).step(v0)
    st.checks["CDTrainer update"] = float(max(np.max(np.abs(fast.W - rbm.W - st.values["dW"])),
                                              np.max(np.abs(fast.b - rbm.b - st.values["db"])),
                                              np.max(np.abs(fast.c - rbm.c - st.values["dc"]))))
    return st


_LINES = [
    ("W", "weights W (D, H)"), ("b", "visible bias b (D,)"), ("c", "hidden bias c (H,)"),
    ("v0", "v⁰: the data (N, D)"), ("p(h|v0)", "positive phase: p(h|v⁰) = σ(v⁰W + c)  (N, H)"),
    ("u_h", "uniforms u_h (N, H)"), ("h0", "h⁰ = [u_h < p(h|v⁰)]: a sample of the hidden units"),
    ("p(v|h0)", "reconstruction: p(v|h⁰) = σ(h⁰Wᵀ + b)  (N, D)"), ("u_v", "uniforms u_v (N, D)"),
    ("v1", "v¹ = [u_v < p(v|h⁰)]: one Gibbs step from the data"),
    ("p(h|v1)", "negative phase: p(h|v¹) = σ(v¹W + c)  (N, H)"),
    ("positive", "positive statistics ⟨v hᵀ⟩_data = v⁰ᵀ p(h|v⁰) / N  (D, H)"),
    ("negative", "negative statistics ⟨v hᵀ⟩_recon = v¹ᵀ p(h|v¹) / N  (D, H)"),
    ("dW", "ΔW = α (positive − negative)"), ("db", "Δb = α mean_n(v⁰ − v¹)"), ("dc", "Δc = α mean_n(p(h|v⁰) − p(h|v¹))"),
]


def render_cd1(st: CD1Step, fmt: str = "text") -> str:
    """The step as text (or markdown, or JSON)."""
    if fmt == "json":
        return json.dumps({"lr": st.lr, "values": {k: v.tolist() for k, v in st.values.items()},
                           "checks": st.checks, "ok": st.ok}) + "\n"
    fence = "```" if fmt == "markdown" else ""
    out = [f"{'# ' if fmt == 'markdown' else ''}One CD-1 step of an RBM (α = {st.lr}): positive minus negative phase",
           "An RBM is trained by contrastive divergence, not backprop: ∂log p(v)/∂W = ⟨v hᵀ⟩_data − ⟨v hᵀ⟩_model,",
           "and CD-1 replaces the model's expectation by one Gibbs step from the data.", ""]
    with np.printoptions(precision=4, suppress=True, linewidth=100):
        for key, title in _LINES:
            out += [f"{'## ' if fmt == 'markdown' else ''}{title}", *([fence] if fence else []),
                    str(st.values[key]), *([fence] if fence else []), ""]
    out.append("checks (max |difference|):")
    for name, err in st.checks.items():
        out.append(f"  {name}: {err:.2e} {'ok' if err < st.tol else 'MISMATCH'}")
    return "\n".join(out) + "\n"
