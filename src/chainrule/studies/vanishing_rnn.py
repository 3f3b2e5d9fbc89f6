"""Seed 004's vanishing gradient carried through time: ``‖∂E/∂h_t‖`` against the distance from the
loss, for a tanh RNN and an LSTM, at initialisation and after training.

A recurrent net is a deep net whose layers share one weight: going back one step multiplies the
gradient by the step's Jacobian. For the tanh RNN (row form)::

    ∂E/∂h_{t−1} = (∂E/∂h_t ⊙ (1 − h_t²)) Uᵀ,   so   ‖∂E/∂h_{t−k}‖ ≲ (‖U‖₂ · max|tanh′|)^k ‖∂E/∂h_t‖

which shrinks geometrically when ``‖U‖₂ < 1`` (seed 004's ``σ′ ≤ 1/4`` argument with ``tanh′ ≤ 1``
and the same matrix at every hop). The LSTM's cell adds a path ``∂E/∂c_{t−1} = ∂E/∂c_t ⊙ f_t``
with no squashing derivative and no matrix, so the gradient survives as long as the forget gates
stay near 1.

The task needs memory: a sequence of ``T`` random symbols (one-hot) whose label is its *first*
symbol, read at the last step (``CELL:H last dense:K``). The gradient is measured exactly on a fixed
probe batch: the layer is re-run from its state after ``t`` steps (its ``initial_state``), and the
gradient of that state is what backward returns for it (``run_backward``'s ``∂E/∂state₀``). The
state is ``h_t`` for the RNN and ``(h_t, c_t)`` for the LSTM, whose cell is the path the argument
above is about; ``‖∂E/∂h_t‖`` alone is kept too (``h_norms``).

After training the comparison depends on what was learned: a net that carries the first symbol to
the last step has, by construction, a state Jacobian that does not wipe it out, so the result
records the probe accuracy and the LSTM's mean forget gate next to the norms.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from chainrule.nn.functional import sigmoid
from chainrule.nn.layers.recurrent import LSTM, Recurrent
from chainrule.nn.model import Sequential
from chainrule.nn.spec import build
from chainrule.optim import Adam
from chainrule.train.clip import ClipGradNorm

__all__ = [
    "RNNVanishingResult",
    "first_symbol_task",
    "hidden_gradient_norms",
    "mean_forget_gate",
    "run_rnn_study",
    "state_gradient_norms",
]

DISTANCES = (0, 1, 2, 5, 10, 20, 30, 40)


def first_symbol_task(n: int, t: int, k: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """``n`` one-hot sequences ``(n, t, k)`` of random symbols; the label is the first symbol."""
    ids = rng.integers(0, k, (n, t))
    return np.eye(k)[ids], ids[:, 0]


def state_gradient_norms(net: Sequential, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(‖∂E/∂s_t‖, ‖∂E/∂h_t‖)`` (Frobenius over the batch) for ``t = 0 .. T``, with ``s_t`` the whole
    state after ``t`` steps (``h_t``, or ``(h_t, c_t)`` for the LSTM), for a net
    ``[recurrent, layers...]``; index ``t`` is ``T − t`` steps from the last step. At ``t = T`` both
    are ``‖∂E/∂y_T‖`` (the loss reads ``h_T`` only)."""
    rec = net.layers[0]
    assert isinstance(rec, Recurrent)
    ys, ctx = rec.run(x)
    states = _states(rec, ctx)
    grads = [p.grad.copy() for p in net.params]
    norms, h_norms = np.empty(x.shape[1] + 1), np.empty(x.shape[1] + 1)
    norms[-1] = h_norms[-1] = float(np.linalg.norm(_output_gradient(net, ys, y)[:, -1]))  # ∂E/∂y_T
    for t in range(x.shape[1]):
        ys_t, c = rec.run(x[:, t:], states[t])  # the rest of the sequence, from s_t
        _, dstate = rec.run_backward(_output_gradient(net, ys_t, y), c, need_dx=False)
        norms[t] = float(np.sqrt(sum(np.sum(d * d) for d in dstate)))
        h_norms[t] = float(np.linalg.norm(dstate[0]))
    for p, g in zip(net.params, grads, strict=True):
        p.grad[...] = g  # the probe only reads δ
    return norms, h_norms


def hidden_gradient_norms(net: Sequential, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """``‖∂E/∂h_t‖`` for ``t = 0 .. T`` (see :func:`state_gradient_norms`)."""
    return state_gradient_norms(net, x, y)[1]


def mean_forget_gate(rec: LSTM, x: np.ndarray) -> float:
    """The LSTM's forget gate ``f = σ(x_t W_f + h_{t−1} U_f + b_f)`` averaged over a batch and its steps."""
    _, ctx = rec.run(x)
    hs, h = ctx[1], rec.hidden
    n, t, d = x.shape
    xs = np.transpose(x, (1, 0, 2)).reshape(t * n, d)
    z = xs @ rec.W.value[:, h : 2 * h] + hs[:-1].reshape(t * n, h) @ rec.U.value[:, h : 2 * h]
    return float(np.mean(sigmoid(z + rec.b.value[h : 2 * h])))


def _output_gradient(net: Sequential, ys: np.ndarray, y: np.ndarray) -> np.ndarray:
    """``∂E/∂y`` at the recurrent layer's output, through the layers above it and the loss."""
    loss, tape, v = net._loss(), [], ys
    for layer in net.layers[1:]:
        v, lc = layer.forward(v)
        tape.append((layer, lc))
    d = loss.backward(loss.forward(v, y)[1])
    for layer, lc in reversed(tape):
        d = layer.backward(d, lc)
    return d


def _states(rec: Recurrent, ctx: Any) -> list[tuple[Any, ...]]:
    """The layer's state after each of ``0 .. T`` steps, from a forward context."""
    hs = ctx[1]
    if rec.state_size == 2:
        cs = ctx[2][0]
        return [(hs[t], cs[t]) for t in range(hs.shape[0])]
    return [(hs[t],) for t in range(hs.shape[0])]


@dataclass
class RNNVanishingResult:
    """Per cell: ``norms[cell][stage]`` = ``‖∂E/∂s‖`` (the whole state) by distance from the loss
    (0 = the last step), ``h_norms`` the same for ``h`` alone, the probe accuracy after training and
    the LSTM's mean forget gate on the probe (``forget_gate["init" | "trained"]``)."""

    settings: dict[str, Any]
    norms: dict[str, dict[str, list[float]]] = field(default_factory=dict)
    accuracy: dict[str, float] = field(default_factory=dict)
    h_norms: dict[str, dict[str, list[float]]] = field(default_factory=dict)
    forget_gate: dict[str, float] = field(default_factory=dict)

    def ratio(self, cell: str, stage: str, d: int) -> float:
        g = self.norms[cell][stage]
        return g[d] / g[0] if g[0] > 0 else float("nan")

    def per_step_factor(self, cell: str, stage: str, d: int) -> float:
        """The geometric mean shrink per step over ``d`` steps, ``(‖g_d‖/‖g_0‖)^(1/d)``."""
        return float(self.ratio(cell, stage, d) ** (1.0 / d))

    @property
    def table(self) -> str:
        t = self.settings["seq_len"]
        ds = [d for d in DISTANCES if d <= t]
        head = f"{'net':<18}" + "".join(f"{'d=' + str(d):>11}" for d in ds) + f"{'per step':>11}"
        lines = ["‖∂E/∂s_{T−d}‖ / ‖∂E/∂s_T‖ (d steps from the loss; s = h, or (h, c) for the LSTM)", head]
        for cell, stages in self.norms.items():
            for stage in stages:
                row = "".join(f"{self.ratio(cell, stage, d):>11.2e}" for d in ds)
                lines.append(
                    f"{cell + ' ' + stage:<18}{row}{self.per_step_factor(cell, stage, ds[-1]):>11.3f}"
                )
        for stage, g in self.h_norms.get("lstm", {}).items():
            row = "".join(f"{g[d] / g[0]:>11.2e}" for d in ds)
            lines.append(f"{'lstm (h) ' + stage:<18}{row}{(g[ds[-1]] / g[0]) ** (1 / ds[-1]):>11.3f}")
        acc = ", ".join(f"{c} {a:.3f}" for c, a in self.accuracy.items())
        lines.append(f"probe accuracy after training (chance {1 / self.settings['symbols']:.2f}): {acc}")
        if self.forget_gate:
            fg = ", ".join(f"{k} {v:.3f}" for k, v in self.forget_gate.items())
            lines.append(f"LSTM mean forget gate on the probe: {fg}")
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        t = self.settings["seq_len"]
        ds = [d for d in DISTANCES if d <= t]
        return {
            "settings": self.settings,
            "accuracy": self.accuracy,
            "ratios": {
                c: {s: {str(d): self.ratio(c, s, d) for d in ds} for s in st} for c, st in self.norms.items()
            },
            "per_step_factor": {
                c: {s: self.per_step_factor(c, s, ds[-1]) for s in st} for c, st in self.norms.items()
            },
            "norms": self.norms,
            "h_norms": self.h_norms,
            "lstm_mean_forget_gate": self.forget_gate,
        }


def run_rnn_study(
    *,
    seq_len: int = 20,
    hidden: int = 32,
    symbols: int = 4,
    steps: int = 800,
    batch: int = 32,
    lr: float = 0.01,
    forget_bias: float = 1.0,
    seed: int = 0,
) -> RNNVanishingResult:
    """Train ``rnn:H`` (tanh) and ``lstm:H`` (forget-gate bias ``forget_bias``; PyTorch's init
    otherwise) on the first-symbol task with Adam (``lr``, clip 1)
    and measure ``‖∂E/∂h_t‖`` on a probe batch of 256 at initialisation and after ``steps`` steps."""
    rng = np.random.default_rng(seed)
    probe_x, probe_y = first_symbol_task(256, seq_len, symbols, rng)
    res = RNNVanishingResult(
        settings={
            "seq_len": seq_len,
            "hidden": hidden,
            "symbols": symbols,
            "steps": steps,
            "batch": batch,
            "optimizer": f"adam {lr}, clip 1",
            "lstm_forget_bias": forget_bias,
            "probe": 256,
            "task": "label = first symbol",
            "seed": seed,
        }
    )
    for cell in ("rnn", "lstm"):
        net = build(f"{cell}:{hidden} last dense:{symbols}", (seq_len, symbols), seed=seed, dtype=np.float64)
        if cell == "lstm":  # the usual forget-gate bias (Gers et al. 2000; Jozefowicz et al. 2015)
            net.layers[0].b.value[hidden : 2 * hidden] = forget_bias
        res.norms[cell], res.h_norms[cell] = {}, {}
        _measure(res, cell, "init", net, probe_x, probe_y)
        opt, clip = Adam(lr), ClipGradNorm(1.0)
        data_rng = np.random.default_rng(seed + 1)
        net.train()
        for _ in range(steps):
            xb, yb = first_symbol_task(batch, seq_len, symbols, data_rng)
            net.gradients(xb, yb)
            clip(net.params)
            opt.step(net.params)
        net.eval()
        _measure(res, cell, "trained", net, probe_x, probe_y)
        res.accuracy[cell] = float(np.mean(net.predict(probe_x) == probe_y))
    return res


def _measure(
    res: RNNVanishingResult, cell: str, stage: str, net: Sequential, x: np.ndarray, y: np.ndarray
) -> None:
    norms, h_norms = state_gradient_norms(net, x, y)
    res.norms[cell][stage], res.h_norms[cell][stage] = norms.tolist()[::-1], h_norms.tolist()[::-1]
    rec = net.layers[0]
    if isinstance(rec, LSTM):
        res.forget_gate[stage] = mean_forget_gate(rec, x)
