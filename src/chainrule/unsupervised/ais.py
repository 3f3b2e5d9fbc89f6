"""Annealed importance sampling (AIS) for the partition function of an RBM (Salakhutdinov & Murray
2008), with its spread.

A chain of distributions ``p_0 … p_K`` runs from a base model whose ``Z_0`` is known to the RBM.
With ``β_0 = 0 < β_1 < … < β_K = 1`` and (Bernoulli visible, Bernoulli hidden; ``v`` one row)::

    p*_k(v) = exp((1 − β_k) vᵀb_A + β_k vᵀb) · Π_j (1 + exp(β_k (c_j + (vW)_j)))

``p*_0`` is the base rate model (independent visible units with biases ``b_A``, hidden units
disconnected): ``log Z_0 = Σ_i softplus(b_{A,i}) + H log 2``; ``p*_K = e^{−F(v)}`` is the RBM.
Gaussian visible units use ``p*_k(v) = exp(−½‖v − b‖²) Π_j (1 + exp(β_k(c_j + (vW)_j)))`` with
``log Z_0 = (D/2) log 2π + H log 2``.

Each of ``M`` runs draws ``v_0 ~ p_0``, then for ``k = 1 … K`` adds
``log p*_k(v_{k−1}) − log p*_{k−1}(v_{k−1})`` to its log-weight ``log w`` and moves ``v`` by one Gibbs
sweep that leaves ``p_k`` invariant (``h ~ σ(β_k(c + vW))``, ``v ~ p_k(v | h)``). Then
``E[w] = Z_K / Z_0`` and ``log Ẑ = log Z_0 + log mean w``. The spread reported is the standard error
of ``log Ẑ`` by the delta method, ``sd(w) / (√M · mean w)``, and ``log(Ẑ ± 3 se(Ẑ))``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from chainrule.errors import ConfigError
from chainrule.nn.functional import sigmoid, softplus
from chainrule.unsupervised.rbm import LOG_2PI, RBM

__all__ = ["AISResult", "ais_log_partition", "beta_schedule", "check_log_partition_finite"]

#: an energy this large (in nats) cannot be resolved to one nat in float64 (2^52)
MAX_ENERGY = 2.0**52


@dataclass
class AISResult:
    """``log_z`` (the estimate), ``std_err`` (of ``log_z``), ``log_z_low``/``log_z_high``
    (``log(Ẑ ∓ 3 se)``; ``low`` is ``-inf`` when ``3 se ≥ Ẑ``), ``runs``, ``betas``, ``log_z_base``."""

    log_z: float
    std_err: float
    log_z_low: float
    log_z_high: float
    runs: int
    betas: int
    log_z_base: float

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def beta_schedule(n: int) -> np.ndarray:
    """Salakhutdinov & Murray's schedule scaled to ``n`` temperatures: 500/14500 of them uniform in
    [0, 0.5], 4000/14500 in [0.5, 0.9], 10000/14500 in [0.9, 1]."""
    if n < 10:
        raise ConfigError(f"AIS needs at least 10 temperatures, got {n}")
    n1, n2 = max(1, round(n * 500 / 14500)), max(1, round(n * 4000 / 14500))
    n3 = n - n1 - n2
    return np.concatenate(
        [
            np.linspace(0.0, 0.5, n1, endpoint=False),
            np.linspace(0.5, 0.9, n2, endpoint=False),
            np.linspace(0.9, 1.0, n3 + 1),
        ]
    )


def check_log_partition_finite(rbm: RBM) -> float:
    """The largest ``|E(v, h)|`` a binary configuration can reach, ``Σ|b| + Σ|c| + Σ|W|`` (unit
    values), checked finite and below ``2^52`` nats, beyond which float64 cannot resolve ``log Z``
    (or a log-weight) to one nat. Raises :class:`ConfigError` naming the figure."""
    with np.errstate(over="ignore", invalid="ignore"):
        bound = float(np.sum(np.abs(rbm.W), dtype=np.float64) + np.sum(np.abs(rbm.b), dtype=np.float64)
                      + np.sum(np.abs(rbm.c), dtype=np.float64))
    if not math.isfinite(bound) or bound > MAX_ENERGY:
        raise ConfigError(
            f"log Z of this model would overflow: its energies reach {bound:.3g} nats (limit 2^52 = "
            f"{MAX_ENERGY:.3g}, float64's one-nat resolution); the weights are not a usable RBM"
        )
    return bound


def _log_ratio(rbm64: RBM, v: np.ndarray, z: np.ndarray, beta: float, prev: float, b_base: np.ndarray) -> Any:
    """``log p*_β(v) − log p*_{β'}(v)`` per row, given ``z = vW + c``: only the β-dependent terms."""
    hid = np.sum(softplus(beta * z) - softplus(prev * z), axis=1)
    if rbm64.visible == "bernoulli":
        return (beta - prev) * (v @ (rbm64.b - b_base)) + hid
    return hid


def _gibbs(rbm64: RBM, z: np.ndarray, beta: float, b_base: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One sweep ``v → h → v`` that leaves ``p_β`` invariant, given ``z = vW + c`` of the current ``v``."""
    ph = sigmoid(beta * z)
    h = (rng.random(ph.shape) < ph).astype(np.float64)
    a = beta * (h @ rbm64.W.T)
    if rbm64.visible == "bernoulli":
        pv = sigmoid(a + (1.0 - beta) * b_base + beta * rbm64.b)
        return (rng.random(pv.shape) < pv).astype(np.float64)
    return rbm64.b + a + rng.standard_normal(a.shape)


def ais_log_partition(
    rbm: RBM,
    *,
    runs: int = 100,
    betas: int = 10000,
    base_visible_bias: Any = None,
    data: Any = None,
    seed: int = 0,
) -> AISResult:
    """``log Z`` of ``rbm`` (Bernoulli hidden units) by AIS with ``runs`` chains and ``betas``
    temperatures, in float64. The base model's visible biases are ``base_visible_bias``, else the
    log-odds of the mean of ``data`` (the base-rate model, smoothed by 1/N), else zero."""
    if rbm.hidden != "bernoulli":
        raise ConfigError("AIS here anneals Bernoulli hidden units")
    if runs < 2:
        raise ConfigError(f"AIS needs at least 2 runs to estimate its spread, got {runs}")
    check_log_partition_finite(rbm)
    r64 = rbm.astype(np.float64)
    rng = np.random.default_rng(seed)
    D, H = rbm.n_visible, rbm.n_hidden
    if base_visible_bias is not None:
        b_base = np.asarray(base_visible_bias, np.float64)
    elif data is not None and rbm.visible == "bernoulli":
        n = np.asarray(data).shape[0]
        p = (np.asarray(data, np.float64).sum(axis=0) + 0.5) / (n + 1.0)
        b_base = np.log(p) - np.log1p(-p)
    else:
        b_base = np.zeros(D)
    beta = beta_schedule(int(betas))
    if rbm.visible == "bernoulli":
        log_z0 = float(np.sum(softplus(b_base))) + H * math.log(2.0)
        v = (rng.random((runs, D)) < sigmoid(b_base)).astype(np.float64)
    else:
        log_z0 = 0.5 * D * LOG_2PI + H * math.log(2.0)
        v = r64.b + rng.standard_normal((runs, D))
    log_w = np.zeros(runs)
    for k in range(1, len(beta)):
        z = v @ r64.W + r64.c
        log_w += _log_ratio(r64, v, z, beta[k], beta[k - 1], b_base)
        if k < len(beta) - 1:
            v = _gibbs(r64, z, beta[k], b_base, rng)
    m = float(log_w.max())
    w = np.exp(log_w - m)  # scaled weights: w · e^m
    mean_w = float(w.mean())
    log_z = log_z0 + m + math.log(mean_w)
    se_rel = float(w.std(ddof=1)) / (math.sqrt(runs) * mean_w)
    low = log_z + math.log(1.0 - 3.0 * se_rel) if 3.0 * se_rel < 1.0 else -math.inf
    return AISResult(log_z, se_rel, low, log_z + math.log(1.0 + 3.0 * se_rel), runs, len(beta), log_z0)
