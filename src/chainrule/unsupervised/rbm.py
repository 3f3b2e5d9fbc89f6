"""Restricted Boltzmann machines, and why they are trained by contrastive divergence.

Layout as in the rest of chainrule: rows are samples. ``v`` is ``(N, D)`` (visible units), ``h``
``(N, H)`` (hidden units), ``W`` ``(D, H)``, visible bias ``b`` ``(D,)``, hidden bias ``c`` ``(H,)``.

**Energy and free energy.** A Bernoulli–Bernoulli RBM gives a joint configuration the energy ::

    E(v, h) = − vᵀb − hᵀc − vᵀ W h                     (one sample: v (D,), h (H,))

and the probability ``p(v, h) = e^{−E(v,h)} / Z`` with ``Z = Σ_{v,h} e^{−E(v,h)}``. No two units of
one layer are connected, so given one layer the other factorises (that is the "restricted")::

    p(h_j = 1 | v) = σ(c_j + (vW)_j)          p(v_i = 1 | h) = σ(b_i + (W h)_i)

Summing out ``h`` (each ``h_j`` contributes ``1 + e^{c_j + (vW)_j}``) gives the *free energy*::

    F(v) = − vᵀb − Σ_j softplus(c_j + (vW)_j)          p(v) = e^{−F(v)} / Z

Gaussian visible units (unit variance, data standardised) replace ``−vᵀb`` by ``½‖v − b‖²`` and
``p(v|h)`` by ``N(b + W h, I)``. Gaussian hidden units (the linear code layer of Hinton &
Salakhutdinov 2006) replace ``−hᵀc`` by ``½‖h − c‖²``, so ``p(h|v) = N(c + vW, I)`` and the sum over
``h`` becomes a Gaussian integral: ``F(v) = −vᵀb − ½‖c + vW‖² + ½‖c‖² − (H/2) log 2π``.

**The gradient of the log-likelihood.** With ``θ`` any of ``W, b, c``::

    ∂ log p(v)/∂θ = − ∂F(v)/∂θ + E_{v'~p}[ ∂F(v')/∂θ ]          (the second term is ∂ log Z/∂θ)

    −∂F/∂W = vᵀ p(h|v)   (D, 1)·(1, H) -> (D, H)      −∂F/∂c = p(h|v)   (H,)      −∂F/∂b = v  (D,)

so the gradient is a *positive phase* (data statistics ``⟨v hᵀ⟩_data``) minus a *negative phase*
(model statistics ``⟨v hᵀ⟩_model``). The negative phase is an expectation over all ``2^D`` visible
vectors under the model: it is not a function of the input that a chain rule could differentiate,
and no backward pass exists that computes it. That is why an RBM is **not** trained by
backpropagation: backprop computes the exact derivative of a cost that a forward pass *evaluates*,
and ``log Z`` cannot be evaluated for a model of MNIST size.

**Contrastive divergence (CD-k)** replaces the model expectation by a sample: start a Gibbs chain at
the data, alternate ``h ~ p(h|v)``, ``v ~ p(v|h)`` k times, and use the end ``v^k`` for the
negative phase (Hinton 2002)::

    ΔW = α/N (v⁰ᵀ p(h|v⁰) − v^kᵀ p(h|v^k))     Δb = α/N Σ_n (v⁰ − v^k)     Δc = α/N Σ_n (p(h|v⁰) − p(h|v^k))

**Persistent CD (PCD,** Tieleman 2008) keeps the chain's hidden state from one mini-batch to the
next instead of restarting it at the data (scikit-learn's ``BernoulliRBM`` is PCD-1).

:class:`CDTrainer` is the fast path: float32, preallocated buffers, the two ``vᵀp`` products as one
GEMM over the stacked positive and negative batches.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from chainrule.errors import ConfigError, DataError, ShapeError
from chainrule.nn.functional import sigmoid, softplus

__all__ = ["RBM", "UNIT_TYPES", "CDTrainer", "exact_log_partition", "hidden_states"]

UNIT_TYPES = ("bernoulli", "gaussian")
LOG_2PI = math.log(2.0 * math.pi)
#: largest number of hidden units whose 2^H states :func:`exact_log_partition` enumerates
MAX_ENUMERATE_HIDDEN = 20


def _units(kind: str, which: str) -> str:
    if kind not in UNIT_TYPES:
        raise ConfigError(f"{which} units must be one of {', '.join(UNIT_TYPES)}, got {kind!r}")
    return kind


class RBM:
    """A restricted Boltzmann machine ``D`` visible x ``H`` hidden units (see the module docstring).

    ``visible``/``hidden``: ``"bernoulli"`` or ``"gaussian"`` (unit variance). Weights start as
    ``N(0, 0.01²)`` (scikit-learn's and Hinton's choice), biases at zero, all drawn from
    ``np.random.default_rng(seed)`` in float64 and cast to ``dtype``.
    """

    def __init__(
        self,
        n_visible: int,
        n_hidden: int,
        *,
        visible: str = "bernoulli",
        hidden: str = "bernoulli",
        seed: int | None = 0,
        dtype: Any = np.float32,
        W: Any = None,
        b: Any = None,
        c: Any = None,
    ) -> None:
        if int(n_visible) < 1 or int(n_hidden) < 1:
            raise ConfigError(f"an RBM needs positive sizes, got {n_visible} x {n_hidden}")
        self.n_visible, self.n_hidden = int(n_visible), int(n_hidden)
        self.visible, self.hidden = _units(visible, "visible"), _units(hidden, "hidden")
        rng = np.random.default_rng(seed)
        d, h = self.n_visible, self.n_hidden
        self.W = np.array(rng.normal(0.0, 0.01, (d, h)) if W is None else W, dtype=dtype)
        self.b = np.array(np.zeros(d) if b is None else b, dtype=dtype)
        self.c = np.array(np.zeros(h) if c is None else c, dtype=dtype)
        if self.W.shape != (d, h) or self.b.shape != (d,) or self.c.shape != (h,):
            raise ShapeError(f"RBM {d} x {h}: W {self.W.shape}, b {self.b.shape}, c {self.c.shape}")

    # -- conditionals ------------------------------------------------------------------------
    def hidden_mean(self, v: Any) -> np.ndarray:
        """``E[h | v]``: ``σ(vW + c)`` (Bernoulli) or ``vW + c`` (Gaussian), ``(N, H)``."""
        z = self.check(v) @ self.W + self.c
        return sigmoid(z) if self.hidden == "bernoulli" else z

    def visible_mean(self, h: Any) -> np.ndarray:
        """``E[v | h]``: ``σ(hWᵀ + b)`` (Bernoulli) or ``hWᵀ + b`` (Gaussian), ``(N, D)``."""
        z = np.asarray(h, dtype=self.W.dtype) @ self.W.T + self.b
        return sigmoid(z) if self.visible == "bernoulli" else z

    def sample_hidden(self, v: Any, rng: np.random.Generator) -> np.ndarray:
        return _sample(self.hidden_mean(v), self.hidden, rng)

    def sample_visible(self, h: Any, rng: np.random.Generator) -> np.ndarray:
        return _sample(self.visible_mean(h), self.visible, rng)

    def gibbs(self, v: Any, steps: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """``steps`` full Gibbs sweeps ``v → h → v`` from ``v``; returns the last ``E[v|h]`` (the
        usual picture of a sample: the mean of the final conditional) and the chain's state ``v``."""
        v = self.check(v)
        mean = v
        for _ in range(int(steps)):
            mean = self.visible_mean(self.sample_hidden(v, rng))
            v = _sample(mean, self.visible, rng)
        return mean, v

    # -- scores ----------------------------------------------------------------------------------
    def free_energy(self, v: Any) -> np.ndarray:
        """``F(v)`` per row, ``(N,)`` (module docstring); computed in the parameters' dtype."""
        v = self.check(v)
        z = v @ self.W + self.c
        if self.visible == "bernoulli":
            visible_term = -(v @ self.b)
        else:
            visible_term = 0.5 * np.sum((v - self.b) ** 2, axis=1)
        if self.hidden == "bernoulli":
            return visible_term - np.sum(softplus(z), axis=1)
        const = 0.5 * float(self.c @ self.c) - 0.5 * self.n_hidden * LOG_2PI
        return visible_term - 0.5 * np.sum(z * z, axis=1) + const

    def free_energy_grad(self, v: Any) -> dict[str, np.ndarray]:
        """``∂ mean_n F(v_n) / ∂θ`` for ``θ = W, b, c``: ``−vᵀ E[h|v] / N``, ``−mean v`` (Bernoulli) or
        ``mean (b − v)`` (Gaussian), ``−mean E[h|v]``, plus ``+c`` from ``½‖c‖²`` for Gaussian hidden."""
        v = self.check(v)
        n, p = v.shape[0], self.hidden_mean(v)
        gb = -v.mean(axis=0) if self.visible == "bernoulli" else (self.b - v).mean(axis=0)
        gc = -p.mean(axis=0) + (self.c if self.hidden == "gaussian" else 0.0)
        return {"W": -(v.T @ p) / n, "b": gb, "c": gc}

    def reconstruction_error(self, v: Any) -> float:
        """Mean over rows of ``‖v − E[v | E[h|v]]‖²`` (mean-field, deterministic)."""
        v = self.check(v)
        r = self.visible_mean(self.hidden_mean(v))
        return float(np.mean(np.sum((v - r) ** 2, axis=1)))

    def pseudo_log_likelihood(self, v: Any, flip: Any = None, rng: Any = None) -> np.ndarray:
        """scikit-learn's ``BernoulliRBM.score_samples``: for each row flip one visible unit ``i``
        (``flip[n]``, else drawn uniformly from ``rng``) to get ``ṽ`` and return
        ``D · log σ(F(ṽ) − F(v))``, ``(N,)``. Bernoulli visible units only. Pass the same ``flip``
        to compare two models on the same stochastic estimate."""
        if self.visible != "bernoulli":
            raise ConfigError("the pseudo-log-likelihood is defined for Bernoulli visible units only")
        v = self.check(v)
        n = v.shape[0]
        if flip is None:
            gen = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
            flip = gen.integers(0, self.n_visible, n)
        flip = np.asarray(flip)
        if flip.shape != (n,):
            raise ShapeError(f"flip must hold one index per row ({n}), got shape {flip.shape}")
        v_flip = v.copy()
        rows = np.arange(n)
        v_flip[rows, flip] = 1.0 - v_flip[rows, flip]
        return -self.n_visible * softplus(-(self.free_energy(v_flip) - self.free_energy(v)))

    def log_likelihood(self, v: Any, log_z: float) -> float:
        """Mean ``log p(v) = −F(v) − log Z`` over the rows, given ``log Z`` (exact or AIS)."""
        return float(-np.mean(self.free_energy(self.check(v).astype(np.float64))) - log_z)

    # -- helpers -----------------------------------------------------------------------------------
    def check(self, v: Any) -> np.ndarray:
        """``v`` as a ``(N, D)`` array of the parameters' dtype (a copy only when needed)."""
        v = np.asarray(v)
        if v.ndim != 2 or v.shape[1] != self.n_visible:
            raise ShapeError(f"the RBM expects (N, {self.n_visible}) visible rows, got shape {v.shape}")
        return v.astype(self.W.dtype, copy=False)

    def astype(self, dtype: Any) -> RBM:
        """A copy with parameters of ``dtype`` (float64 for scores, float32 for training)."""
        return RBM(
            self.n_visible, self.n_hidden, visible=self.visible, hidden=self.hidden,
            W=self.W, b=self.b, c=self.c, dtype=dtype,
        )

    def config(self) -> dict[str, Any]:
        return {"n_visible": self.n_visible, "n_hidden": self.n_hidden,
                "visible": self.visible, "hidden": self.hidden}

    def __repr__(self) -> str:
        return f"RBM({self.n_visible} {self.visible} x {self.n_hidden} {self.hidden})"


def _sample(mean: np.ndarray, kind: str, rng: np.random.Generator) -> np.ndarray:
    if kind == "bernoulli":
        return (rng.random(mean.shape, dtype=mean.dtype) < mean).astype(mean.dtype)
    return mean + rng.standard_normal(mean.shape, dtype=mean.dtype)


def check_binary(x: np.ndarray, where: str = "data") -> None:
    """Bernoulli visible units model 0/1 data: anything else is refused (the CLI offers --binarize)."""
    bad = (x != 0) & (x != 1)
    if np.any(bad):
        raise DataError(
            f"{where}: a Bernoulli RBM needs binary (0/1) data, but {int(bad.sum())} values are not 0 or 1 "
            f"(e.g. {float(x[bad][0]):.4g}); binarise it (--binarize 0.5) or use --visible gaussian"
        )


# ------------------------------------------------------------------------------------------------
# Exact log Z by enumerating the hidden states
# ------------------------------------------------------------------------------------------------


def hidden_states(n_hidden: int, start: int, stop: int) -> np.ndarray:
    """Rows ``start .. stop−1`` of the ``2^H x H`` table of binary hidden vectors (bit j of the row
    number is unit j), float64."""
    idx = np.arange(start, stop, dtype=np.int64)[:, None]
    return ((idx >> np.arange(n_hidden, dtype=np.int64)) & 1).astype(np.float64)


def exact_log_partition(rbm: RBM, chunk: int = 4096) -> float:
    """``log Z`` exactly, summing over the ``2^H`` hidden states (Bernoulli hidden, ``H ≤ 20``).

    Summing ``v`` out of ``e^{−E(v,h)}`` for a fixed ``h``::

        Bernoulli v:  log Σ_v e^{−E} = cᵀh + Σ_i softplus(b_i + (W h)_i)
        Gaussian v:   log ∫ e^{−E} dv = cᵀh + ½‖b + W h‖² − ½‖b‖² + (D/2) log 2π

    and ``log Z = logsumexp_h`` of that, in float64, ``chunk`` states at a time.
    """
    if rbm.hidden != "bernoulli":
        raise ConfigError("exact enumeration needs Bernoulli hidden units")
    if rbm.n_hidden > MAX_ENUMERATE_HIDDEN:
        raise ConfigError(
            f"exact log Z enumerates 2^H hidden states; H = {rbm.n_hidden} > {MAX_ENUMERATE_HIDDEN}: use AIS"
        )
    W, b, c = (np.asarray(a, np.float64) for a in (rbm.W, rbm.b, rbm.c))
    parts = []
    for start in range(0, 2**rbm.n_hidden, chunk):
        h = hidden_states(rbm.n_hidden, start, min(start + chunk, 2**rbm.n_hidden))
        a = h @ W.T + b  # (S, D)
        if rbm.visible == "bernoulli":
            s = h @ c + softplus(a).sum(axis=1)
        else:
            s = h @ c + 0.5 * np.sum(a * a, axis=1) - 0.5 * float(b @ b) + 0.5 * rbm.n_visible * LOG_2PI
        m = float(s.max())
        parts.append(m + math.log(float(np.exp(s - m).sum())))
    m = max(parts)
    return m + math.log(sum(math.exp(p - m) for p in parts))


# ------------------------------------------------------------------------------------------------
# The fast CD-k / PCD trainer
# ------------------------------------------------------------------------------------------------


@dataclass
class CDSettings:
    """``k`` Gibbs steps; ``persistent`` (PCD); ``lr`` (the step on the batch-mean statistics, as
    scikit-learn's ``learning_rate``); ``momentum``; ``weight_decay`` (L2 on ``W``);
    ``sample_visible``: sample ``v^k`` (scikit-learn) or use its mean (Hinton's Matlab code)."""

    k: int = 1
    persistent: bool = False
    lr: float = 0.05
    batch_size: int = 100
    momentum: float = 0.0
    weight_decay: float = 0.0
    sample_visible: bool = True

    def check(self) -> None:
        if int(self.k) < 1:
            raise ConfigError(f"contrastive divergence needs at least one Gibbs step: --cd {self.k} (use 1 or more)")
        if not (self.lr > 0 and math.isfinite(self.lr)):
            raise ConfigError(f"the learning rate must be a positive number, got {self.lr}")
        if int(self.batch_size) < 1:
            raise ConfigError(f"batch size must be positive, got {self.batch_size}")
        if not 0 <= self.momentum < 1 or self.weight_decay < 0:
            raise ConfigError(f"momentum in [0, 1) and weight decay >= 0, got {self.momentum}, {self.weight_decay}")


class CDTrainer:
    """CD-k / PCD-k epochs on an :class:`RBM` with preallocated float32 buffers.

    Per mini-batch of ``B`` rows (the module docstring's update)::

        P⁺ = E[h|v⁰]                      (B, H)     one GEMM (B, D)·(D, H)
        chain: h ~ P⁺ (CD) or the persistent h (PCD); k times v ~ p(v|h), P⁻ = E[h|v], h ~ P⁻
        G  = [v⁰; v^k]ᵀ · [P⁺; −P⁻]         (D, 2B)·(2B, H) -> (D, H): both phases in one GEMM
        W += α/B G,  b += α/B Σ(v⁰ − v^k),  c += α/B Σ(P⁺ − P⁻)

    ``momentum`` and ``weight_decay`` follow Hinton's recipe: ``ΔW ← μ ΔW + α(G/B − λW)``.
    """

    def __init__(self, rbm: RBM, settings: CDSettings, seed: int = 0) -> None:
        settings.check()
        self.rbm, self.s = rbm, settings
        self.rng = np.random.default_rng(seed)
        B, D, H, dt = int(settings.batch_size), rbm.n_visible, rbm.n_hidden, rbm.W.dtype
        self.VV, self.PP = np.empty((2 * B, D), dt), np.empty((2 * B, H), dt)
        self.h, self.ru_h, self.ru_v = np.empty((B, H), dt), np.empty((B, H), dt), np.empty((B, D), dt)
        self.G = np.empty((D, H), dt)
        self.scr_h = (np.empty((B, H), bool), np.empty((B, H), dt), np.empty((B, H), dt))
        self.scr_v = (np.empty((B, D), bool), np.empty((B, D), dt), np.empty((B, D), dt))
        self.dW, self.db, self.dc = np.zeros((D, H), dt), np.zeros(D, dt), np.zeros(H, dt)
        #: the persistent chain's hidden state (PCD); starts at zero like scikit-learn's
        self.chain = np.zeros((B, H), dt)
        self.steps = 0

    def _act(self, z: np.ndarray, kind: str, scratch: tuple[Any, Any, Any]) -> None:
        """In place: ``z ← E[unit | input]`` from the pre-activation ``z``."""
        if kind == "bernoulli":
            n = z.shape[0]
            sigmoid(z, out=z, scratch=tuple(a[:n] for a in scratch))  # type: ignore[arg-type]

    def _sample(self, mean: np.ndarray, out: np.ndarray, kind: str, noise: np.ndarray) -> None:
        if kind == "bernoulli":
            self.rng.random(out=noise, dtype=noise.dtype)
            np.less(noise, mean, out=out)
        else:
            self.rng.standard_normal(out=noise, dtype=noise.dtype)
            np.add(mean, noise, out=out)

    def step(self, v0: np.ndarray) -> None:
        """One CD-k update on the batch ``v0`` ``(n ≤ B, D)``."""
        r, s = self.rbm, self.s
        n, B = v0.shape[0], int(s.batch_size)
        vpos, vneg = self.VV[:n], self.VV[B : B + n]
        ppos, pneg = self.PP[:n], self.PP[B : B + n]
        h, ru_h, ru_v = self.h[:n], self.ru_h[:n], self.ru_v[:n]
        vpos[...] = v0
        np.matmul(vpos, r.W, out=ppos)
        ppos += r.c
        self._act(ppos, r.hidden, self.scr_h)
        if s.persistent:
            h[...] = self.chain[:n]
        else:
            self._sample(ppos, h, r.hidden, ru_h)
        for step in range(int(s.k)):
            np.matmul(h, r.W.T, out=vneg)
            vneg += r.b
            self._act(vneg, r.visible, self.scr_v)
            if s.sample_visible:
                self._sample(vneg, vneg, r.visible, ru_v)
            np.matmul(vneg, r.W, out=pneg)
            pneg += r.c
            self._act(pneg, r.hidden, self.scr_h)
            if step < s.k - 1 or s.persistent:
                self._sample(pneg, h, r.hidden, ru_h)
        if s.persistent:
            self.chain[:n] = h
        self._update(n, vpos, vneg, ppos, pneg)
        self.steps += 1

    def _update(self, n: int, vpos: Any, vneg: Any, ppos: Any, pneg: Any) -> None:
        r, s, B = self.rbm, self.s, int(self.s.batch_size)
        scale = r.W.dtype.type(s.lr / n)
        db = (vpos.sum(axis=0) - vneg.sum(axis=0)) * scale
        dc = (ppos.sum(axis=0) - pneg.sum(axis=0)) * scale
        np.negative(pneg, out=pneg)
        if n == B:
            np.matmul(self.VV.T, self.PP, out=self.G)
        else:  # a short last batch: the two phases as two GEMMs
            np.matmul(vpos.T, ppos, out=self.G)
            self.G += vneg.T @ pneg
        self.G *= scale
        if s.momentum == 0.0 and s.weight_decay == 0.0:
            r.W += self.G
            r.b += db
            r.c += dc
            return
        mu = r.W.dtype.type(s.momentum)
        self.dW *= mu
        self.dW += self.G
        if s.weight_decay:
            self.dW -= r.W.dtype.type(s.lr * s.weight_decay) * r.W
        self.db *= mu
        self.db += db
        self.dc *= mu
        self.dc += dc
        r.W += self.dW
        r.b += self.db
        r.c += self.dc

    def run_epoch(self, x: np.ndarray, shuffle: bool = True, on_step: Callable[[], None] | None = None) -> None:
        """One pass over ``x`` in batches of ``B`` (shuffled with the trainer's generator, or in
        order like scikit-learn). ``x`` must already be in the RBM's dtype."""
        n, B = x.shape[0], int(self.s.batch_size)
        order = self.rng.permutation(n) if shuffle else None
        for start in range(0, n, B):
            batch = x[start : start + B] if order is None else x[order[start : start + B]]
            self.step(batch)
            if on_step is not None:
                on_step()
