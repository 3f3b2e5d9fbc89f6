"""The recurrent fast path (NumPy): the same BPTT as :mod:`chainrule.nn.layers.recurrent`, with every
per-step operation written in place into buffers allocated once per call, and everything that does
not depend on the recurrence moved out of the time loop.

What the layer already does for both paths: the input projection ``x_t W + b`` for all steps is one
GEMM, the gates share one recurrent GEMM per step, and ``∂E/∂U``, ``∂E/∂W`` are one GEMM each over
all ``T·N`` rows (:meth:`Recurrent.accumulate`). The kernels here replace the two time loops:

* after ``onehot`` the projection is a row gather ``(W + b)[ids]`` (a one-hot row times ``W`` picks
  a row exactly), not a ``(T·N, V)·(V, G·H)`` GEMM;
* LSTM, forward: the gates are stored gate-major, ``(T, 4, N, H)``, so each gate is one contiguous
  ``(N, H)`` block. On this machine NumPy's element-wise loops run several times slower on the
  ``(N, H)`` column slices of an ``(N, 4H)`` array than on contiguous blocks, and a step is about
  ten such operations. One ``tanh`` serves all four gates through ``σ(z) = ½ + ½ tanh(z/2)`` (the
  sigmoid blocks of ``W``, ``U``, ``b`` are halved first: exact, a power of two);
* LSTM, backward: per step, the δ-independent local derivatives (``o(1 − tanh²c)``,
  ``g·i(1 − i)``, ``c_{t−1}·f(1 − f)``, ``i(1 − g²)``, ``tanh(c)·o(1 − o)``) go into one small
  contiguous buffer, then ``δh``, ``δc``, two products for ``δa`` (written in the layer's ``(T, N, 4H)``
  layout, so the weight gradients stay one GEMM each), ``δc ⊙ f`` and the GEMM ``δa Uᵀ``;
* tanh RNN: three operations per step forward, two backward (``tanh′ = 1 − h²`` from the output).

:func:`install` attaches a kernel to every LSTM and tanh RNN of a NumPy network (``layer.kernel``);
other cells and backends keep the readable loops. Tests check both paths agree to 1e-13 in float64.
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
    :func:`install`), a row gather ``(W + b)[ids]`` with ``ids = argmax x`` (the same numbers: a
    one-hot row times ``W`` picks one row, exactly). The weight gradients are the layer's own
    all-steps GEMMs (:meth:`Recurrent.accumulate`)."""

    onehot_input = False

    def project(self, layer: Recurrent, x_rows: np.ndarray, tn: tuple[int, int]) -> np.ndarray:
        w, b = layer.W.value, layer.b.value
        if self.onehot_input:
            a = (w + b)[np.argmax(x_rows, axis=1)]  # one (T·N, G·H) write, no second pass for b
        else:
            a = x_rows @ w
            a += b
        return a.reshape(*tn, w.shape[1])

    def accumulate(
        self, layer: Recurrent, x_rows: np.ndarray, hs: np.ndarray, da: Any, dr: Any, need_dx: bool
    ) -> Any:
        return layer.accumulate(np, x_rows, hs, da, dr, need_dx)


#: the LSTM kernel's gate blocks, by the index of the gate in the layer's ``i, f, g, o``: ``o, i, f, g``
#: puts the three sigmoid gates side by side (forward) and the three that ``δc`` multiplies (backward)
_ORDER = (3, 0, 1, 2)


class NumpyLSTMLoop(_Projection):
    """In-place time loops of :class:`~chainrule.nn.layers.recurrent.LSTM`, gate-major.

    Layout: a step's gates are ``(4, N, H)``, one contiguous ``(N, H)`` block per gate in the order
    ``o, i, f, g`` (``_ORDER``), so every element-wise operation runs over contiguous memory (NumPy
    is several times slower on the ``(N, H)`` column slices of an ``(N, 4H)`` array). The recurrent
    product is one batched GEMM ``h_{t−1} (N, H) · U_k (4, H, H)``. The sigmoid gates are
    ``σ(z) = ½ + ½ tanh(z/2)``: their blocks of ``W``, ``U``, ``b`` are halved (exact, a power of
    two), so one ``tanh`` serves all four gates. ``δa`` is kept ``(4, T, N, H)``, so each gate's
    weight gradient is one GEMM over all ``T·N`` rows (:meth:`accumulate`).
    """

    name = "numpy-lstm"

    @staticmethod
    def _blocks(m: np.ndarray, halve: bool) -> np.ndarray:
        """``(R, 4H) -> (4, R, H)`` in ``_ORDER``; the sigmoid gates' blocks halved if ``halve``."""
        h = m.shape[1] // 4
        half = np.asarray(0.5 if halve else 1.0, m.dtype)
        return np.stack([m[:, g * h : (g + 1) * h] * (half if g != 2 else 1) for g in _ORDER])

    def project(self, layer: Recurrent, x_rows: np.ndarray, tn: tuple[int, int]) -> np.ndarray:
        t, n = tn
        w4, b4 = self._blocks(layer.W.value, True), self._blocks(layer.b.value[None], True)
        d, h = w4.shape[1], w4.shape[2]
        if self.onehot_input:
            table = (w4 + b4).reshape(4 * d, h)  # row k·V + v: gate k of token v
            ids = np.argmax(x_rows, axis=1).reshape(t, 1, n)
            return table[ids + d * np.arange(4).reshape(1, 4, 1)]  # (T, 4, N, H)
        a = np.matmul(x_rows.reshape(t, 1, n, d), w4)
        a += b4
        return a

    def loop(self, layer: LSTM, a: np.ndarray, state0: tuple[Any, ...]) -> tuple[Any, Any]:
        t, _, n, h = a.shape
        half = np.asarray(0.5, a.dtype)
        u4 = self._blocks(layer.U.value, True)  # tanh(z/2) straight from the GEMM for σ gates
        hs, cs = np.empty((t + 1, n, h), a.dtype), np.empty((t + 1, n, h), a.dtype)
        tcs, ig, rec = np.empty((t, n, h), a.dtype), np.empty((n, h), a.dtype), np.empty((4, n, h), a.dtype)
        hs[0], cs[0] = state0
        for s in range(t):
            gs = a[s]  # the projection becomes the step's gates, in place
            np.matmul(hs[s], u4, out=rec)
            gs += rec
            np.tanh(gs, out=gs)
            sig = gs[:3]
            sig *= half
            sig += half  # o, i, f = ½ + ½·tanh(z/2) = σ(z)
            o, i, f, g = gs
            np.multiply(f, cs[s], out=cs[s + 1])
            np.multiply(i, g, out=ig)
            cs[s + 1] += ig  # c_t = f ⊙ c_{t−1} + i ⊙ g
            np.tanh(cs[s + 1], out=tcs[s])
            np.multiply(o, tcs[s], out=hs[s + 1])  # h_t = o ⊙ tanh(c_t)
        return hs, (cs, a, tcs)

    @staticmethod
    def local_derivatives(c_prev: Any, gates: Any, tc: Any, p: np.ndarray, k_c: np.ndarray) -> None:
        """What BPTT multiplies ``δh_t`` and ``δc_t`` by at one step (no ``δ`` needed), written into
        ``k_c = o(1 − tanh²c_t)`` and, per gate block (``o, i, f, g``),
        ``p = [tanh(c_t)·o(1−o), g·i(1−i), c_{t−1}·f(1−f), i(1−g²)]``."""
        one = np.ones((), p.dtype)
        o, i, _, g = gates
        np.subtract(one, gates[:3], out=p[:3])
        p[:3] *= gates[:3]  # σ(1 − σ) for o, i, f at once (adjacent blocks)
        np.multiply(g, g, out=p[3])
        np.subtract(one, p[3], out=p[3])  # 1 − g²
        for q, factor in zip(p, (tc, g, c_prev, i), strict=True):
            q *= factor
        np.multiply(tc, tc, out=k_c)
        np.subtract(one, k_c, out=k_c)
        k_c *= o  # o ⊙ (1 − tanh²c_t)

    def loop_backward(
        self, layer: LSTM, dys: np.ndarray, ctx: Any, dstate: tuple[Any, ...]
    ) -> tuple[Any, Any, tuple[Any, ...]]:
        _, _, (cs, gates, tcs) = ctx
        t, _, n, h = gates.shape
        dtype = gates.dtype
        da = np.empty((t, n, 4 * h), dtype)  # the layer's layout (i, f, g, o): its GEMMs follow
        da_ifg = da.reshape(t, n, 4, h)[:, :, :3].transpose(0, 2, 1, 3)  # (T, 3, N, H) view
        ut = np.ascontiguousarray(layer.U.value.T)
        p, k_c = np.empty((4, n, h), dtype), np.empty((n, h), dtype)
        dh, dc = np.empty((n, h), dtype), np.empty((n, h), dtype)
        dh_next, dc_next = np.array(dstate[0], copy=True), np.array(dstate[1], copy=True)
        for s in range(t - 1, -1, -1):
            self.local_derivatives(cs[s], gates[s], tcs[s], p, k_c)
            np.add(dys[s], dh_next, out=dh)  # δh_t = dy_t + δa_{t+1} Uᵀ
            np.multiply(dh, k_c, out=dc)
            dc += dc_next  # δc_t
            np.multiply(dh, p[0], out=da[s, :, 3 * h :])  # δa_o
            np.multiply(dc, p[1:], out=da_ifg[s])  # δa_i, δa_f, δa_g
            np.multiply(dc, gates[s, 2], out=dc_next)  # δc_t ⊙ f_t
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
