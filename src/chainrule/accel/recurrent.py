"""The recurrent fast path (NumPy): the same BPTT as :mod:`chainrule.nn.layers.recurrent`, with every
per-step operation written in place into buffers allocated once per call, and everything that does
not depend on the recurrence moved out of the time loop.

What the layer already does for both paths: the input projection ``x_t W + b`` for all steps is one
GEMM, the four (three) gates share one ``(N, H)·(H, G·H)`` GEMM per step, and ``∂E/∂U``, ``∂E/∂W``
are one GEMM each over all ``T·N`` rows. The kernels here replace only the two time loops:

* forward, per step: ``a_t + h_{t−1} U`` into the step's gate buffer, then one ``tanh`` for all
  gates, using ``σ(z) = ½ + ½ tanh(z/2)`` (the columns of the sigmoid gates are halved before and
  mapped ``½ + ½·`` after: two multiply-adds over ``(N, G·H)`` instead of a sigmoid per gate);
* backward: the local derivatives that do not depend on ``δ`` (``o(1 − tanh²c)``, ``g·i(1 − i)``,
  ``c_{t−1}·f(1 − f)``, ``i(1 − g²)``, ``tanh(c)·o(1 − o)``) are computed once over all ``T`` steps
  before the loop; the loop is then ``δh``, ``δc``, one product for ``δa_{i,f,g}``, one for
  ``δa_o``, ``δc ⊙ f`` and the GEMM ``δa Uᵀ``.

:func:`install` attaches a kernel to every LSTM and tanh RNN of a NumPy network (``layer.kernel``);
other cells and backends keep the readable loops. Tests check both paths agree to 1e-12 in float64.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from chainrule.nn.layers.recurrent import LSTM, RNN, Recurrent, recurrent_layers
from chainrule.nn.layers.sequence import OneHot
from chainrule.nn.model import Sequential

__all__ = ["NumpyLSTMLoop", "NumpyTanhRNNLoop", "install", "uninstall"]


class _Projection:
    """``A_t = x_t W + b`` for all steps: one GEMM, or, when the layer below is ``onehot`` (set by
    :func:`install`), a row gather ``W[ids] + b`` with ``ids = argmax x`` (the same numbers: a
    one-hot row times ``W`` picks one row)."""

    onehot_input = False

    def project(self, layer: Recurrent, x_rows: np.ndarray, tn: tuple[int, int]) -> np.ndarray:
        w, b = layer.W.value, layer.b.value
        if self.onehot_input:
            a = w[np.argmax(x_rows, axis=1)]
            a += b
        else:
            a = x_rows @ w + b
        return a.reshape(*tn, w.shape[1])


class NumpyLSTMLoop(_Projection):
    """In-place time loops of :class:`~chainrule.nn.layers.recurrent.LSTM` (gate order i, f, g, o)."""

    name = "numpy-lstm"

    @staticmethod
    def _affine(h: int, dtype: Any) -> tuple[np.ndarray, np.ndarray]:
        scale = np.full(4 * h, 0.5, dtype)
        scale[2 * h : 3 * h] = 1.0  # g is a tanh gate
        shift = np.full(4 * h, 0.5, dtype)
        shift[2 * h : 3 * h] = 0.0
        return scale, shift

    def loop(self, layer: LSTM, a: np.ndarray, state0: tuple[Any, ...]) -> tuple[Any, Any]:
        t, n, g4 = a.shape
        h = g4 // 4
        scale, shift = self._affine(h, a.dtype)
        u = layer.U.value * scale  # halved sigmoid columns: tanh(z/2) directly
        a_half = a * scale
        hs, cs = np.empty((t + 1, n, h), a.dtype), np.empty((t + 1, n, h), a.dtype)
        gates, tcs = np.empty(a.shape, a.dtype), np.empty((t, n, h), a.dtype)
        hs[0], cs[0] = state0
        ig = np.empty((n, h), a.dtype)
        for s in range(t):
            gs = gates[s]
            np.matmul(hs[s], u, out=gs)
            gs += a_half[s]
            np.tanh(gs, out=gs)
            gs *= scale
            gs += shift  # i, f, o = σ(·), g = tanh(·)
            np.multiply(gs[:, h : 2 * h], cs[s], out=cs[s + 1])
            np.multiply(gs[:, :h], gs[:, 2 * h : 3 * h], out=ig)
            cs[s + 1] += ig  # c_t = f ⊙ c_{t−1} + i ⊙ g
            np.tanh(cs[s + 1], out=tcs[s])
            np.multiply(gs[:, 3 * h :], tcs[s], out=hs[s + 1])  # h_t = o ⊙ tanh(c_t)
        return hs, (cs, gates, tcs)

    def loop_backward(
        self, layer: LSTM, dys: np.ndarray, ctx: Any, dstate: tuple[Any, ...]
    ) -> tuple[Any, Any, tuple[Any, ...]]:
        _, _, (cs, gates, tcs) = ctx
        t, n, g4 = gates.shape
        h = g4 // 4
        i, f, g, o = (gates[:, :, k * h : (k + 1) * h] for k in range(4))
        one = np.ones((), gates.dtype)
        k_c = o * (one - tcs * tcs)  # ∂c_t/∂h_t along the output: o ⊙ (1 − tanh²c_t)
        p = np.empty(gates.shape, gates.dtype)  # local derivatives, all steps at once
        np.multiply(g, i * (one - i), out=p[:, :, :h])
        np.multiply(cs[:-1], f * (one - f), out=p[:, :, h : 2 * h])
        np.multiply(i, one - g * g, out=p[:, :, 2 * h : 3 * h])
        np.multiply(tcs, o * (one - o), out=p[:, :, 3 * h :])
        p3 = p.reshape(t, n, 4, h)
        da = np.empty(gates.shape, gates.dtype)
        da3 = da.reshape(t, n, 4, h)
        ut = np.ascontiguousarray(layer.U.value.T)
        dh, dc = np.empty((n, h), gates.dtype), np.empty((n, h), gates.dtype)
        dh_next, dc_next = np.array(dstate[0], copy=True), np.array(dstate[1], copy=True)
        for s in range(t - 1, -1, -1):
            np.add(dys[s], dh_next, out=dh)  # δh_t = dy_t + δa_{t+1} Uᵀ
            np.multiply(dh, k_c[s], out=dc)
            dc += dc_next  # δc_t
            np.multiply(dc[:, None, :], p3[s, :, :3], out=da3[s, :, :3])  # δa_i, δa_f, δa_g
            np.multiply(dh, p3[s, :, 3], out=da3[s, :, 3])  # δa_o
            np.multiply(dc, f[s], out=dc_next)  # δc_t ⊙ f_t
            np.matmul(da[s], ut, out=dh_next)
        return da, da, (dh_next, dc_next)


class NumpyTanhRNNLoop(_Projection):
    """In-place time loops of a tanh :class:`~chainrule.nn.layers.recurrent.RNN`."""

    name = "numpy-rnn-tanh"

    def loop(self, layer: RNN, a: np.ndarray, state0: tuple[Any, ...]) -> tuple[Any, Any]:
        t, n, h = a.shape
        hs = np.empty((t + 1, n, h), a.dtype)
        hs[0] = state0[0]
        u = layer.U.value
        for s in range(t):
            np.matmul(hs[s], u, out=hs[s + 1])
            hs[s + 1] += a[s]
            np.tanh(hs[s + 1], out=hs[s + 1])  # h_t = tanh(x_t W + b + h_{t−1} U)
        return hs, None  # tanh′(z) = 1 − h²: z is not needed

    def loop_backward(
        self, layer: RNN, dys: np.ndarray, ctx: Any, dstate: tuple[Any, ...]
    ) -> tuple[Any, Any, tuple[Any, ...]]:
        _, hs, _ = ctx
        t, n, h = hs.shape[0] - 1, hs.shape[1], hs.shape[2]
        fprime = hs[1:] * hs[1:]
        np.subtract(np.ones((), hs.dtype), fprime, out=fprime)  # 1 − h_t², all steps
        dz = np.empty((t, n, h), hs.dtype)
        ut = np.ascontiguousarray(layer.U.value.T)
        dh_next = np.array(dstate[0], copy=True)
        for s in range(t - 1, -1, -1):
            np.add(dys[s], dh_next, out=dz[s])  # δh_t
            dz[s] *= fprime[s]  # δz_t = δh_t ⊙ (1 − h_t²)
            np.matmul(dz[s], ut, out=dh_next)
        return dz, dz, (dh_next,)


def _kernel_for(layer: Recurrent) -> Any:
    if not isinstance(layer.U.value, np.ndarray):
        return None
    if isinstance(layer, LSTM):
        return NumpyLSTMLoop()
    if isinstance(layer, RNN) and layer.activation == "tanh":
        return NumpyTanhRNNLoop()
    return None


def install(net: Sequential) -> list[str]:
    """Attach the fast loops to every recurrent layer that has one (NumPy LSTM, tanh RNN); returns
    their names. Anything else keeps the readable loops."""
    names = []
    for below, layer in zip([None, *net.layers[:-1]], net.layers, strict=True):
        if not isinstance(layer, Recurrent):
            continue
        layer.kernel = _kernel_for(layer)
        if layer.kernel is not None:
            layer.kernel.onehot_input = isinstance(below, OneHot)
            names.append(layer.kernel.name + ("+onehot-gather" if layer.kernel.onehot_input else ""))
    return names


def uninstall(net: Sequential) -> None:
    """Back to the readable loops."""
    for layer in recurrent_layers(net.layers):
        layer.kernel = None
