"""Explain backpropagation through time for a tiny vanilla RNN, unrolled step by step.

For a network ``[layers before] rnn:H[:ACT] [layers after]`` (e.g. ``rnn:3 last dense:2``) on a few
sequences of ``T`` steps, :func:`explain_rnn` shows::

    forward    z_t = x_t W + h_{t−1} U + b,   h_t = f(z_t)                 t = 1 .. T
    backward   δh_t = dy_t + δz_{t+1} Uᵀ                                     t = T .. 1
               δz_t = δh_t ⊙ f′(z_t)
    weights    ∂E/∂U = Σ_t h_{t−1}ᵀ δz_t  (each term shown),  ∂E/∂W = Σ_t x_tᵀ δz_t,  ∂E/∂b = Σ_t Σ_n δz_t

Every ``δh_t``, ``δz_t`` and weight gradient sits beside its central-difference value. The numeric
``∂E/∂h_t`` perturbs ``h_t`` itself and re-runs the rest of the sequence from it (the layer's
initial state is exactly the way to start a run from a given ``h_t``), so each check is of the
recurrence, not of the total only.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from chainrule.errors import ConfigError
from chainrule.inspect.gradcheck import relative_error
from chainrule.nn.layers.recurrent import RNN
from chainrule.nn.model import Sequential

__all__ = ["RNNExplanation", "explain_rnn", "render_rnn"]

EPS = 1e-6
TOLERANCE = 1e-7
MAX_T, MAX_H, MAX_N = 8, 8, 4


@dataclass
class RNNExplanation:
    """The unrolled pass as numbers: per step ``z_t``, ``h_t``, ``δh_t``, ``δz_t`` (with numeric
    twins), the per-step terms of ``∂E/∂U``, and each parameter's gradient with its check."""

    arch: str
    activation: str
    loss: float
    steps: list[dict[str, Any]] = field(default_factory=list)
    u_terms: list[np.ndarray] = field(default_factory=list)
    grads: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def worst(self) -> float:
        errs = [s[k] for s in self.steps for k in ("err_dh", "err_dz")] + [
            g["error"] for g in self.grads.values()
        ]
        return float(max(errs))

    @property
    def ok(self) -> bool:
        return self.worst < TOLERANCE


def _split(net: Sequential) -> tuple[list[Any], RNN, list[Any]]:
    rnns = [i for i, layer in enumerate(net.layers) if isinstance(layer, RNN)]
    if len(rnns) != 1 or any(type(layer).__name__ in ("LSTM", "GRU") for layer in net.layers):
        raise ConfigError(
            "explain unrolls a network with exactly one vanilla rnn layer (e.g. 'rnn:3 last dense:2')"
        )
    i = rnns[0]
    return net.layers[:i], net.layers[i], net.layers[i + 1 :]  # type: ignore[return-value]


def _run(layers: list[Any], x: Any) -> Any:
    for layer in layers:
        x, _ = layer.forward(x)
    return x


def _numeric(f: Any, at: np.ndarray) -> np.ndarray:
    g = np.zeros_like(at)
    for idx in np.ndindex(at.shape):
        old = at[idx]
        at[idx] = old + EPS
        hi = f()
        at[idx] = old - EPS
        lo = f()
        at[idx] = old
        g[idx] = (hi - lo) / (2 * EPS)
    return g


def explain_rnn(net: Sequential, x: np.ndarray, y: np.ndarray, arch: str = "") -> RNNExplanation:
    """Unroll ``net`` (float64) on ``x (N, T, D)`` with targets ``y``; see the module docstring."""
    before, rnn, after = _split(net)
    t_len, n, h = x.shape[1], x.shape[0], rnn.hidden
    if t_len > MAX_T or h > MAX_H or n > MAX_N:
        raise ConfigError(f"explain unrolls at most {MAX_T} steps, {MAX_H} units and {MAX_N} sequences")
    loss = net._loss()
    xs = _run(before, x)
    cost = float(net.gradients(x, y))
    ys, ctx = rnn.run(xs)
    _, hs, zs = ctx

    def energy_from(t: int, h_t: np.ndarray) -> float:
        """E with h_t replaced (the steps after t re-run from it)."""
        seq = ys.copy()
        seq[:, t] = h_t
        if t + 1 < t_len:
            seq[:, t + 1 :] = rnn.run(xs[:, t + 1 :], (h_t,))[0]
        return float(loss.value(_run(after, seq), y))

    dys = _after_gradient(after, loss, ys, y)  # ∂E/∂y_t from the layers above, (N, T, H)
    ut = rnn.U.value.T
    ex = RNNExplanation(arch=arch, activation=rnn.activation, loss=cost)
    dz_next = np.zeros((n, h))
    rows = []
    for t in range(t_len - 1, -1, -1):
        dh = dys[:, t] + dz_next @ ut  # δh_t = dy_t + δz_{t+1} Uᵀ
        fprime = rnn.f.fprime(zs[t], hs[t + 1])
        dz = dh * fprime  # δz_t = δh_t ⊙ f′(z_t)
        h_t = hs[t + 1].copy()
        num_dh = _numeric(lambda t=t, h_t=h_t: energy_from(t, h_t), h_t)
        z_t = zs[t].copy()
        num_dz = _numeric(lambda t=t, z_t=z_t: energy_from(t, rnn.f.f(z_t)), z_t)
        rows.append(
            {
                "t": t + 1,
                "x": xs[:, t],
                "z": zs[t],
                "h": hs[t + 1],
                "dy": dys[:, t],
                "fprime": fprime,
                "dh": dh,
                "dh_numeric": num_dh,
                "err_dh": relative_error(dh, num_dh),
                "dz": dz,
                "dz_numeric": num_dz,
                "err_dz": relative_error(dz, num_dz),
            }
        )
        ex.u_terms.insert(0, hs[t].T @ dz)  # h_{t−1}ᵀ δz_t
        dz_next = dz
    ex.steps = rows[::-1]
    for i, layer in enumerate(net.layers):
        for p in layer.params:
            num = _numeric(lambda: net.cost(x, y), p.value)
            ex.grads[f"{i}.{p.name}"] = {
                "analytic": p.grad.copy(),
                "numeric": num,
                "error": relative_error(p.grad, num),
            }
    return ex


def _after_gradient(after: list[Any], loss: Any, ys: np.ndarray, y: np.ndarray) -> np.ndarray:
    """``∂E/∂y`` at the recurrent layer's output, by the layers above (their backward)."""
    tape, v = [], ys
    for layer in after:
        out, c = layer.forward(v)
        tape.append((layer, c))
        v = out
    saved = [p.grad.copy() for layer, _ in tape for p in layer.params]
    _, lctx = loss.forward(v, y)
    d = loss.backward(lctx)
    for layer, c in reversed(tape):
        d = layer.backward(d, c)
    for p, g in zip([p for layer, _ in tape for p in layer.params], saved, strict=True):
        p.grad[...] = g  # this pass only reads δ: leave the gradients of net.gradients as they were
    return d


def _vec(a: np.ndarray) -> str:
    return np.array2string(
        np.asarray(a), precision=6, suppress_small=False, separator=", ", max_line_width=200
    )


def render_rnn(ex: RNNExplanation, fmt: str = "text") -> str:
    """Text (aligned, every check beside its value) or JSON."""
    if fmt == "json":
        return json.dumps(_json(ex), indent=1) + "\n"
    f = ex.activation
    lines = [
        f"BPTT through a vanilla RNN ({ex.arch or 'rnn'}), f = {f}, unrolled over {len(ex.steps)} steps",
        f"E = {ex.loss:.10g}",
        "",
        "forward:  z_t = x_t W + h_{t−1} U + b,   h_t = f(z_t)",
    ]
    for s in ex.steps:
        lines.append(f"  t={s['t']}  x_t = {_vec(s['x'])}")
        lines.append(f"       z_t = {_vec(s['z'])}")
        lines.append(f"       h_t = {_vec(s['h'])}")
    lines += ["", "backward (t = T .. 1):  δh_t = dy_t + δz_{t+1} Uᵀ,   δz_t = δh_t ⊙ f′(z_t)"]
    for s in reversed(ex.steps):
        lines.append(f"  t={s['t']}  dy_t   = {_vec(s['dy'])}     (from the layers above)")
        lines.append(f"       δh_t   = {_vec(s['dh'])}")
        lines.append(
            f"       check  = {_vec(s['dh_numeric'])}   central difference, rel. error {s['err_dh']:.1e}"
        )
        lines.append(f"       f′(z_t) = {_vec(s['fprime'])}")
        lines.append(f"       δz_t   = {_vec(s['dz'])}")
        lines.append(
            f"       check  = {_vec(s['dz_numeric'])}   central difference, rel. error {s['err_dz']:.1e}"
        )
    lines += ["", "∂E/∂U = Σ_t h_{t−1}ᵀ δz_t  (the same U at every step: its gradient sums over time)"]
    for t, term in enumerate(ex.u_terms, start=1):
        lines.append(f"  t={t}  h_{t - 1}ᵀ δz_{t} = {_vec(term)}")
    lines += ["", "gradients (analytic | central difference | rel. error):"]
    for name, g in ex.grads.items():
        lines.append(f"  ∂E/∂{name} = {_vec(g['analytic'])}")
        lines.append(f"  {'check':>{len(name) + 4}} = {_vec(g['numeric'])}   rel. error {g['error']:.1e}")
    verdict = "all checks pass" if ex.ok else "SOME CHECKS FAIL"
    lines += ["", f"worst relative error {ex.worst:.1e} (tolerance {TOLERANCE:.0e}): {verdict}"]
    return "\n".join(_align(line) for line in lines) + "\n"


def _align(line: str) -> str:
    """A matrix's later rows under its first one."""
    if "\n" not in line:
        return line
    col = line.index("= [") + 2
    return line.replace("\n", "\n" + " " * col)


def _json(ex: RNNExplanation) -> dict[str, Any]:
    def conv(v: Any) -> Any:
        return v.tolist() if isinstance(v, np.ndarray) else v

    return {
        "arch": ex.arch,
        "activation": ex.activation,
        "loss": ex.loss,
        "ok": ex.ok,
        "worst_error": ex.worst,
        "steps": [{k: conv(v) for k, v in s.items()} for s in ex.steps],
        "u_terms": [u.tolist() for u in ex.u_terms],
        "grads": {k: {kk: conv(vv) for kk, vv in g.items()} for k, g in ex.grads.items()},
    }
