"""The fused convolution block for NumPy: conv → ReLU → max-pool in one pass over reused buffers.

The plain path runs ``Conv2D``, ``ReLU`` and ``MaxPool2D`` as three layers: seven passes over the
convolution's full-size output ``z`` (bias, ReLU, its mask, the k² pooling maxima, the routing of δ)
and a transpose of ``z`` and of ``δ`` into and out of NCHW. Here one :class:`ConvBlock` does the
same arithmetic with the group's large arrays kept **channel-major**, ``(C_out, N, OH, OW)``, which
is what the GEMM ``zᵀ = Km colᵀ`` writes and what ``∂E/∂Km = Dᵀ col`` reads, so neither is
transposed. What changes, and why the numbers are the same:

* **Bias and ReLU after the pool.** Per channel, ``max(z + b) = max(z) + b`` and
  ``max(relu(v)) = relu(max(v))`` (both maps are monotone), so the block pools ``z`` first and adds
  the bias and applies ReLU to the ``k²``-times smaller pooled array. In floating point the same
  holds, since ``fl(z + b)`` is monotone in ``z``: the outputs are identical. The window's winner
  is the first maximum of ``z`` in row-major order, as the plain layer picks it; the two could only
  pick differently if two distinct ``z`` of one window round to the same ``z + b``.
* **The winner is stored** (a ``uint8`` offset per window) instead of being found again in backward.
  Backward masks the pooled δ with ``[a > 0]`` (ReLU's ``f'``, with ``f'(0) = 0``), writes it to the
  winning offset of each window of the channel-major ``D`` and leaves every other entry zero.
  ``∂E/∂b = Σ D`` is summed on the pooled δ (each of its entries lands in exactly one place of ``D``).
* **∂E/∂x behind a pool** (stride 1, when CBLAS is reachable) is ``col2im(D Km)`` computed per
  (pool offset, tap): ``q²·k²`` GEMMs added into ``q²`` phase planes of ``∂E/∂x``, which multiply
  only the positions a pool window covers (:meth:`ConvBlock._pooled_input_grad`).
* **∂E/∂x without a pool as the full convolution with the flipped kernel** (stride 1, CBLAS):
  ``D`` is padded with ``k − 1`` zeros into a channel-major ``(C_out, N, H_f, W_f)`` buffer, and
  ``∂E/∂x_pad = Σ_{u,v} rot180(K)[u, v]ᵀ · D_pad`` shifted by ``(u, v)``. On the flattened buffer a
  shift by ``(u, v)`` is a column offset ``u·W_f + v``, so each term is one GEMM on a strided view,
  accumulated in place by ``beta = 1``: ``k²`` GEMMs and no ``col2im``. Positions whose window
  wraps across a row or an image are computed and dropped (a ``H_f·W_f / (H_p·W_p)`` overhead).
  Strided convolutions keep the plain ``col2im(D Km)``.

The big buffers (``col``, ``zᵀ``, ``D``, the phase planes, the padded ``D``, the input gradient
before cropping) are allocated once per block at the largest batch seen and reused by every later
step (a smaller last batch uses their leading part). A step's context lives until that step's backward, which the
runner (:class:`ConvRunner`) guarantees; the arrays handed to other layers are fresh.

:func:`plan_conv` covers a ``conv`` group of a NumPy float network (``conv``, optionally ``relu``,
optionally ``maxpool`` with ``stride = k``); every other layer runs its own plain ``forward`` and
``backward``, in order, inside the same runner.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from itertools import pairwise
from typing import Any

import numpy as np

from chainrule.accel.cblas import blas_thread_control, cblas_gemm
from chainrule.nn.convolution import col2im, out_size, pad_images
from chainrule.nn.functional import count_correct
from chainrule.nn.layer import Layer
from chainrule.nn.layers.activations import ReLU
from chainrule.nn.layers.conv import Conv2D
from chainrule.nn.layers.pool import MaxPool2D
from chainrule.nn.model import Sequential
from chainrule.nn.regularizers import add_l2_grad
from chainrule.optim import Optimizer

__all__ = ["ConvBlock", "ConvRunner", "make_conv_runner", "plan_conv"]

_ROW_MAJOR, _NO_TRANS, _TRANS = 101, 111, 112


class _Buffers:
    """Named flat buffers, grown to the largest request; ``get`` views the leading part."""

    def __init__(self) -> None:
        self.flat: dict[str, np.ndarray] = {}
        self.shapes: dict[str, tuple[int, ...]] = {}

    def get(self, name: str, shape: tuple[int, ...], dtype: Any, *, zero: bool = False) -> np.ndarray:
        """A C-contiguous ``shape`` view of buffer ``name``. ``zero``: all zeros whenever the shape
        differs from the last request's (the caller writes the same entries every time it asks for
        one shape, and relies on the others staying zero)."""
        size = int(np.prod(shape))
        buf = self.flat.get(name)
        if buf is None or buf.size < size or buf.dtype != dtype:
            buf = self.flat[name] = np.empty(size, dtype)
            self.shapes.pop(name, None)
        view = buf[:size].reshape(shape)
        if zero and self.shapes.get(name) != shape:
            view.fill(0)
        self.shapes[name] = shape
        return view


class ConvBlock:
    """``conv`` [→ ``relu``] [→ ``maxpool`` with ``stride = k``] of one group, fused (module docstring).

    ``forward(x) -> (a, ctx)`` and ``backward(da, ctx, need_dx) -> dx`` take and give NCHW arrays,
    as the layers do; ``∂E/∂K`` and ``∂E/∂b`` are added into the conv layer's ``param.grad``."""

    def __init__(self, conv: Conv2D, relu: bool, pool: int) -> None:
        self.conv, self.relu, self.pool = conv, relu, pool
        self.nhwc_out = False  # set by plan_conv when a convolution block reads the output
        self.layers = 1 + int(relu) + int(pool > 0)
        self.bufs = _Buffers()
        self._scatter: tuple[Any, np.ndarray] | None = None

    # -- forward ---------------------------------------------------------------------------------
    def output_shape(self, x_shape: tuple[int, ...]) -> tuple[int, int, int]:
        """``(C_out, PH, PW)`` of the group's output for input images of ``x_shape``."""
        c_out, oh, ow = self.conv.output_shape(tuple(x_shape[1:]))
        if not self.pool:
            return c_out, oh, ow
        return c_out, out_size(oh, self.pool, self.pool), out_size(ow, self.pool, self.pool)

    def new_output(self, x_shape: tuple[int, ...], dtype: Any) -> np.ndarray:
        """A fresh output array in this block's memory layout: NCHW, or NHWC when the next stage
        is a convolution block (whose im2col then reads it without a transposing copy)."""
        c_out, ph, pw = self.output_shape(x_shape)
        return np.empty((x_shape[0], ph, pw, c_out) if self.nhwc_out else (x_shape[0], c_out, ph, pw), dtype)

    def forward(self, x: np.ndarray, out: np.ndarray | None = None) -> tuple[np.ndarray, Any]:
        """``(a, ctx)`` with ``a`` NCHW-shaped (a view of NHWC memory when ``nhwc_out``); ``out``:
        where to write it (from :meth:`new_output`, or a batch slice of one)."""
        conv = self.conv
        c_out = conv.W.value.shape[0]
        col, grid = self._im2col(x)
        wm = conv.W.value.transpose(0, 2, 3, 1).reshape(c_out, -1)  # (C_out, K·K·C), columns (u, v, c)
        zt = self.bufs.get("zt", (c_out, col.shape[0]), x.dtype)
        np.matmul(wm, col.T, out=zt)  # zᵀ = Km colᵀ, channel-major, no bias yet
        if self.pool:
            m, idx = self._pool_forward(zt, grid)
        else:
            m, idx = zt.reshape(c_out, *grid), None
        m += conv.b.value[:, None, None, None]  # max(z) + b = max(z + b)
        if self.relu:
            np.maximum(m, 0, out=m)
        a = self.new_output(x.shape, x.dtype) if out is None else out
        if self.nhwc_out:
            np.copyto(a, m.transpose(1, 2, 3, 0))
            return a.transpose(0, 3, 1, 2), (col, x.shape, m, idx)
        np.copyto(a, m.transpose(1, 0, 2, 3))
        return a, (col, x.shape, m, idx)

    def _im2col(self, x: np.ndarray) -> tuple[np.ndarray, tuple[int, int, int]]:
        """The im2col matrix in the reused buffer, and the grid ``(N, OH, OW)`` of ``m``.

        Without a pool the rows are the positions ``(n, i, j)`` in order. With a ``k×k`` pool they
        are grouped by window offset, ``(u', v', n, i', j')`` for the position ``(n, k·i' + u',
        k·j' + v')``, and positions no window covers are left out: each offset's outputs are then one
        contiguous slab of ``zᵀ``, and the pool and its routing are whole-slab operations."""
        conv = self.conv
        _, c, k, _ = conv.W.value.shape
        win = _windows(x, k, conv.stride, conv.pad)  # (N, OH, OW, K, K, C)
        n, oh, ow = win.shape[:3]
        if not self.pool:
            col = self.bufs.get("col", (n * oh * ow, k * k * c), x.dtype)
            np.copyto(col.reshape(win.shape), win)
            return col, (n, oh, ow)
        q = self.pool
        ph, pw = out_size(oh, q, q), out_size(ow, q, q)
        col = self.bufs.get("col", (q * q, n, ph, pw, k, k, c), x.dtype)
        for code, (rows, cols) in enumerate(_offsets(q, ph, pw)):
            np.copyto(col[code], win[:, rows, cols])
        return col.reshape(q * q * n * ph * pw, k * k * c), (n, ph, pw)

    def _pool_forward(self, zt: np.ndarray, grid: tuple[int, int, int]) -> tuple[np.ndarray, np.ndarray]:
        """Max over the ``k²`` offset slabs of ``zt (C_out, k²·N·PH·PW)`` and the first winning offset."""
        c_out, q2 = zt.shape[0], self.pool**2
        slabs = zt.reshape(c_out, q2, -1)
        shape = (c_out, slabs.shape[2])
        m = self.bufs.get("m", shape, zt.dtype)
        idx = self.bufs.get("idx", shape, np.uint8)
        gt = self.bufs.get("gt", shape, np.bool_)
        tmp = self.bufs.get("tmp", shape, np.uint8)
        np.copyto(m, slabs[:, 0])
        idx.fill(0)
        for code in range(1, q2):
            np.greater(slabs[:, code], m, out=gt)  # strictly greater: the first maximum keeps a tie
            np.maximum(m, slabs[:, code], out=m)
            # the last offset that beat the running maximum wins; codes grow, so it is the largest
            # (multiply + maximum: np.copyto(idx, code, where=gt) measured 10x slower)
            np.multiply(gt.view(np.uint8), code, out=tmp)
            np.maximum(idx, tmp, out=idx)
        return m.reshape(c_out, *grid), idx.reshape(c_out, *grid)

    # -- backward --------------------------------------------------------------------------------
    def backward(self, da: np.ndarray, ctx: Any, *, need_dx: bool = True) -> np.ndarray | None:
        dW, db, dx = self.parts(da, ctx, need_dx)
        self.conv.W.grad += dW
        self.conv.b.grad += db
        return dx

    def parts(
        self, da: np.ndarray, ctx: Any, need_dx: bool, dx_out: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray, Any]:
        """``(∂E/∂K, ∂E/∂b, ∂E/∂x or None)``, without touching the parameters; ``∂E/∂x`` is written
        into ``dx_out`` when given."""
        col, x_shape, m, idx = ctx
        conv = self.conv
        c_out, c, k, _ = conv.W.value.shape
        dm = self.bufs.get("dm", m.shape, m.dtype)
        np.copyto(dm, da.transpose(1, 0, 2, 3))  # δ of the group's output, channel-major
        if self.relu:
            np.multiply(dm, m > 0, out=dm)  # ReLU: f'(z) = [z > 0] = [a > 0]
        db = dm.sum(axis=(1, 2, 3))  # ∂E/∂b = Σ D: each pooled δ lands once in D
        dt = self._route(dm, idx) if self.pool else dm  # D, in col's row order
        dwm = dt.reshape(c_out, -1) @ col  # ∂E/∂Km = Dᵀ col: δ correlated with the input, (C_out, K·K·C)
        dW = dwm.reshape(c_out, k, k, c).transpose(0, 3, 1, 2)
        if not need_dx:
            return dW, db, None
        gemm = cblas_gemm()
        fn = gemm.get(np.dtype(dt.dtype)) if gemm is not None else None
        s, p = conv.stride, conv.pad
        full = s == 1 and fn is not None
        if full and self.pool:
            dx = self._pooled_input_grad(fn, dt, x_shape)
        elif full:
            dx = self._full_convolution(fn, self._on_grid(dt, x_shape, k - 1), x_shape)
        else:
            grid = self._on_grid(dt, x_shape, 0)
            wm = conv.W.value.transpose(0, 2, 3, 1).reshape(c_out, -1)
            dx = col2im(grid.reshape(c_out, -1).T @ wm, x_shape, k, s, p)
        if dx_out is None:
            return dW, db, np.ascontiguousarray(dx)
        np.copyto(dx_out, dx)
        return dW, db, dx_out

    def _route(self, dm: np.ndarray, idx: np.ndarray) -> np.ndarray:
        """``D`` in col's row order, ``(C_out, k², N·PH·PW)``: slab ``(u', v')`` holds each pooled δ
        whose window that offset won, and zero elsewhere."""
        c_out, q2 = dm.shape[0], self.pool**2
        dt = self.bufs.get("dt", (c_out, q2, dm[0].size), dm.dtype)
        eq = self.bufs.get("eq", (c_out, dm[0].size), np.bool_)
        flat, flat_idx = dm.reshape(c_out, -1), idx.reshape(c_out, -1)
        for code in range(q2):
            np.equal(flat_idx, code, out=eq)
            np.multiply(flat, eq, out=dt[:, code])
        return dt

    def _on_grid(self, dt: np.ndarray, x_shape: tuple[int, ...], border: int) -> np.ndarray:
        """``D`` on the output grid, channel-major ``(C_out, N, OH + 2e, OW + 2e)`` with ``e = border``
        zeros around it (and at the positions no pool window covers)."""
        conv = self.conv
        c_out, _, k, _ = conv.W.value.shape
        n, s, p = x_shape[0], conv.stride, conv.pad
        oh, ow = out_size(x_shape[2], k, s, p), out_size(x_shape[3], k, s, p)
        if not self.pool and not border:
            return dt
        e = border
        grid = self.bufs.get("grid", (c_out, n, oh + 2 * e, ow + 2 * e), dt.dtype, zero=True)
        inner = grid[:, :, e : e + oh, e : e + ow]
        if not self.pool:
            inner[...] = dt
            return grid
        key = (grid.shape, e)
        if self._scatter is None or self._scatter[0] != key:  # where each entry of D goes in grid
            q = self.pool
            ph, pw = out_size(oh, q, q), out_size(ow, q, q)
            o, code, b, i, j = np.indices((c_out, q * q, n, ph, pw), sparse=True)  # D's axes
            rows, cols = e + q * i + code // q, e + q * j + code % q
            target = ((o * n + b) * grid.shape[2] + rows) * grid.shape[3] + cols
            self._scatter = (key, target.ravel().astype(np.intp))
        grid.reshape(-1)[self._scatter[1]] = dt.reshape(-1)  # one indexed scatter, not k² strided copies
        return grid

    def _pooled_input_grad(self, fn: Any, dt: np.ndarray, x_shape: tuple[int, ...]) -> np.ndarray:
        """``∂E/∂x`` for stride 1 behind a ``q×q`` pool, from ``D`` in col's row order (:meth:`_route`):
        ``col2im(D Km)`` with the columns grouped by tap and the rows by pool offset.

        Conv output ``(q·i' + a, q·j' + b)`` (pool offset ``(a, b)``, window ``(i', j')``) read the
        padded input at ``(q·i' + a + u, q·j' + b + v)`` through tap ``(u, v)``, so
        ``∂E/∂x_pad[n, q·i' + a + u, q·j' + b + v, c] += Σ_o D[o, (a, b), n, i', j'] · K[o, c, u, v]``.
        Write ``a + u = q·δ + ρ`` (``ρ = (a + u) mod q``) and ``b + v = q·ε + σ``: the target is
        entry ``[n, i' + δ, j' + ε, c]`` of the phase plane ``P_ρσ[n, I, J, c] = ∂E/∂x_pad[n, q·I + ρ,
        q·J + σ, c]``. So each of the ``q²·k²`` (offset, tap) pairs is one GEMM
        ``D_(a,b)ᵀ K[:, :, u, v]``, ``(N·PH·PW, C_out) @ (C_out, C) → (N, PH, PW, C)``. The pairs with
        the same ``(a + u, b + v)`` land on the same window, so they are summed into one ``T`` by
        ``beta = 1`` and ``T`` is added to that shifted window of its plane, where ``(J, c)`` is one
        contiguous run of ``PW·C`` numbers: ``(q + k − 1)²`` adds. The planes are interleaved into
        ``∂E/∂x_pad`` once at the end. That is ``2·N·PH·PW·q²·k²·C·C_out``
        flops, the positions the pool covers only: for the reference conv2 (13×13 → 11×11, pool 2)
        2.25× fewer than the full convolution of ``D`` padded by ``k − 1`` (15×15 positions).
        Returns an NCHW view; the caller copies it."""
        W = self.conv.W.value
        c_out, c, k, _ = W.shape
        q, p = self.pool, self.conv.pad
        n, _, h, w = x_shape
        ph, pw = out_size(h + 2 * p - k + 1, q, q), out_size(w + 2 * p - k + 1, q, q)
        npp = n * ph * pw
        e = (q - 1 + k - 1) // q  # the largest shift δ or ε
        hq, wq = ph + e, pw + e
        planes = self.bufs.get("planes", (q, q, n, hq, wq, c), dt.dtype)
        planes.fill(0)
        t = self.bufs.get("tap", (npp, c), dt.dtype)
        t4 = t.reshape(n, ph, pw, c)
        wk = np.ascontiguousarray(W.transpose(2, 3, 0, 1))  # K[:, :, u, v] as (C_out, C) matrices
        dflat = dt.reshape(c_out, q * q * npp)
        for r in range(q + k - 1):  # r = a + u, s = b + v: the pairs that share a plane window
            dr, rho = divmod(r, q)
            for s in range(q + k - 1):
                ds, sigma = divmod(s, q)
                pairs = [
                    (a * q + b, r - a, s - b)
                    for a in range(q)
                    for b in range(q)
                    if 0 <= r - a < k and 0 <= s - b < k
                ]
                for i, (code, u, v) in enumerate(pairs):  # T = Σ D_(a,b)ᵀ K[:, :, u, v], beta = 1
                    fn(
                        _ROW_MAJOR,
                        _TRANS,
                        _NO_TRANS,
                        npp,
                        c,
                        c_out,
                        1.0,
                        dflat[:, code * npp :].ctypes.data,
                        q * q * npp,
                        wk[u, v].ctypes.data,
                        c,
                        1.0 if i else 0.0,
                        t.ctypes.data,
                        c,
                    )
                target = planes[rho, sigma, :, dr : dr + ph, ds : ds + pw]
                np.add(target, t4, out=target)
        hp, wp = max(h + 2 * p, q * hq), max(w + 2 * p, q * wq)
        dxp = self.bufs.get("dxp", (n, c, hp, wp), dt.dtype, zero=True)  # rows past q·hq stay zero
        for rho in range(q):
            for sigma in range(q):
                dxp[:, :, rho : rho + q * hq : q, sigma : sigma + q * wq : q] = planes[rho, sigma].transpose(
                    0, 3, 1, 2
                )
        return dxp[:, :, p : p + h, p : p + w]

    def _full_convolution(self, fn: Any, dp: np.ndarray, x_shape: tuple[int, ...]) -> np.ndarray:
        """``∂E/∂x`` for stride 1 from ``dp``, ``D`` padded by ``k − 1``: its correlation with
        ``rot180(K)`` (channels swapped), as ``k²`` shifted GEMMs on the flattened buffer."""
        W = self.conv.W.value
        c_out, c, k, _ = W.shape
        p = self.conv.pad
        n, _, h, w = x_shape
        _, _, hf, wf = dp.shape  # H + 2p + k − 1
        length = n * hf * wf
        rows = length - ((k - 1) * wf + k - 1)  # every output position whose window fits
        out = self.bufs.get("dxf", (c, n, hf, wf), dp.dtype)
        flat, dflat = out.reshape(c, length), dp.reshape(c_out, length)
        wr = np.ascontiguousarray(W[:, :, ::-1, ::-1].transpose(2, 3, 1, 0))  # rot180(K)[u, v]: (C, C_out)
        for u in range(k):
            for v in range(k):
                off = u * wf + v
                fn(
                    _ROW_MAJOR,
                    _NO_TRANS,
                    _NO_TRANS,
                    c,
                    rows,
                    c_out,
                    1.0,
                    wr[u, v].ctypes.data,
                    c_out,
                    dflat[:, off:].ctypes.data,
                    length,
                    0.0 if off == 0 else 1.0,
                    flat.ctypes.data,
                    length,
                )
        return out[:, :, p : p + h, p : p + w].transpose(1, 0, 2, 3)  # a view: the caller copies


def _offsets(q: int, ph: int, pw: int) -> list[tuple[slice, slice]]:
    """Offset ``(u', v')`` of every ``q×q`` pool window (stride ``q``), row-major: the slices of
    the conv output grid that pick it, cut to ``PH × PW`` windows."""
    return [
        (slice(u, u + q * (ph - 1) + 1, q), slice(v, v + q * (pw - 1) + 1, q))
        for u in range(q)
        for v in range(q)
    ]


def _windows(x: np.ndarray, k: int, stride: int, pad: int) -> np.ndarray:
    """``(N, OH, OW, K, K, C)`` windows of ``x (N, C, H, W)`` through a channels-last copy: the
    im2col rows of :func:`chainrule.nn.convolution.im2col`, columns ``(u, v, c)``, as a view."""
    xh = np.ascontiguousarray(pad_images(x, pad).transpose(0, 2, 3, 1))
    n, h, w, c = xh.shape
    oh, ow = out_size(h, k, stride), out_size(w, k, stride)
    s0, s1, s2, s3 = xh.strides
    shape, strides = (n, oh, ow, k, k, c), (s0, s1 * stride, s2 * stride, s1, s2, s3)
    return np.lib.stride_tricks.as_strided(xh, shape, strides, writeable=False)


def plan_conv(net: Sequential) -> list[Any] | None:
    """The stages of a fused step: a :class:`ConvBlock` for each ``conv`` [``relu``] [``maxpool``
    with ``stride = k``] run, every other layer as itself; ``None`` when there is no convolution to
    fuse, or the network is not a NumPy float network without driver hooks."""
    if net.backend.name != "numpy" or net.hooks or net.loss is None:
        return None
    layers = list(net.layers)
    stages: list[Any] = []
    i = 0
    while i < len(layers):
        layer = layers[i]
        if isinstance(layer, Conv2D) and layer.W.value.dtype in (np.float32, np.float64):
            relu = i + 1 < len(layers) and type(layers[i + 1]) is ReLU
            j = i + 1 + int(relu)
            after = layers[j] if j < len(layers) else None
            pool = after.kernel_size if _fusable_pool(after) and relu else 0
            block = ConvBlock(layer, relu, pool)
            stages.append(block)
            i += block.layers
        else:
            stages.append(layer)
            i += 1
    for stage, after in pairwise(stages):
        if isinstance(stage, ConvBlock) and isinstance(after, ConvBlock):
            stage.nhwc_out = True
    return stages if any(isinstance(s, ConvBlock) for s in stages) else None


def _fusable_pool(layer: Layer | None) -> bool:
    return type(layer) is MaxPool2D and layer.stride == layer.kernel_size and layer.kernel_size <= 15


class SplitBlock:
    """One :class:`ConvBlock` per slice of the batch, run side by side in Python threads.

    NumPy releases the GIL inside its array loops and BLAS calls, so ``workers`` threads that each
    take ``1/workers`` of the batch (each with one BLAS thread, through OpenBLAS's per-thread
    setting) run the im2col copies, the pooling and the routing in parallel too, where BLAS threads
    would parallelise only the GEMMs. The threads wait on each other once per call, blocking rather
    than spinning. The slices' ``∂E/∂K`` and ``∂E/∂b`` are added in slice order (deterministic for a
    given thread count); their outputs and ``∂E/∂x`` are joined along the batch axis."""

    def __init__(self, block: ConvBlock, workers: int, pool: ThreadPoolExecutor) -> None:
        self.conv, self.layers = block.conv, block.layers
        self.blocks = [block] + [ConvBlock(block.conv, block.relu, block.pool) for _ in range(workers - 1)]
        for twin in self.blocks[1:]:
            twin.nhwc_out = block.nhwc_out
        self.pool = pool

    def _map(self, fn: Callable[..., Any], args: list[tuple[Any, ...]]) -> list[Any]:
        futures = [self.pool.submit(fn, i, *a) for i, a in enumerate(args[1:], start=1)]
        first = fn(0, *args[0])
        return [first] + [f.result() for f in futures]

    def _slices(self, n: int) -> list[slice]:
        cuts = np.linspace(0, n, min(len(self.blocks), n) + 1).round().astype(int)
        return [slice(int(a), int(b)) for a, b in pairwise(cuts)]

    def forward(self, x: np.ndarray) -> tuple[np.ndarray, Any]:
        parts = self._slices(x.shape[0])
        out = self.blocks[0].new_output(x.shape, x.dtype)
        outs = self._map(lambda i, sl: self.blocks[i].forward(x[sl], out[sl]), [(sl,) for sl in parts])
        a = out.transpose(0, 3, 1, 2) if self.blocks[0].nhwc_out else out
        return a, (parts, [c for _, c in outs])

    def backward(self, da: np.ndarray, ctx: Any, *, need_dx: bool = True) -> np.ndarray | None:
        parts, ctxs = ctx
        x_shape = (da.shape[0], *ctxs[0][1][1:])  # ctx[1]: the slice's input shape
        dx = np.empty(x_shape, da.dtype) if need_dx else None
        outs = self._map(
            lambda i, sl, c: self.blocks[i].parts(da[sl], c, need_dx, None if dx is None else dx[sl]),
            list(zip(parts, ctxs, strict=True)),
        )
        for dW, db, _ in outs:
            self.conv.W.grad += dW
            self.conv.b.grad += db
        return dx


def _one_blas_thread() -> None:
    control = blas_thread_control()
    if control is not None:
        control[1](1)


class ConvRunner:
    """The plain step (gradients, hooks, update) with the convolution groups fused: the same
    arithmetic as :class:`chainrule.train.step.PlainRunner`, driven over :func:`plan_conv`'s stages."""

    name = "numpy-conv"

    def __init__(
        self, net: Sequential, stages: list[Any], optimizer: Optimizer, l2: float, grad_hooks: Sequence[Any]
    ) -> None:
        self.net, self.stages, self.optimizer, self.l2 = net, stages, optimizer, l2
        self.grad_hooks = list(grad_hooks)
        self._split: tuple[int, list[Any]] | None = None
        self._pool: ThreadPoolExecutor | None = None

    def _stages(self) -> list[Any]:
        """The stages for the BLAS thread count set now: with ``t ≥ 2`` threads and the per-thread
        BLAS setting available, each convolution block runs as ``t`` slices (:class:`SplitBlock`)."""
        control = blas_thread_control()
        workers = control[0]() if control is not None and cblas_gemm() is not None else 1
        if workers < 2:
            return self.stages
        if self._split is None or self._split[0] != workers:
            if self._pool is not None:
                self._pool.shutdown()
            self._pool = ThreadPoolExecutor(workers - 1, initializer=_one_blas_thread)
            split = [
                SplitBlock(s, workers, self._pool) if isinstance(s, ConvBlock) else s for s in self.stages
            ]
            self._split = (workers, split)
        return self._split[1]

    def step(self, xb: Any, yb: Any) -> tuple[Any, Any]:
        """One update; returns the batch's data loss and its number of correct predictions."""
        params = self.net.params
        if self.net.hooks:  # a driver hook attached after planning: the driver's tape must run
            cost = self.net.gradients(xb, yb, l2=self.l2)
            out = self.net.output
        else:
            cost, out = self._gradients(xb, yb)
            if self.l2:
                add_l2_grad(params, self.l2)
        for hook in self.grad_hooks:
            hook(params)
        self.optimizer.step(params)
        return cost, count_correct(out, yb)

    def _gradients(self, xb: Any, yb: Any) -> tuple[Any, Any]:
        """Stage one through the stages: zero the gradients, forward, loss, backward; returns the
        data cost and the network's output."""
        net = self.net
        net.zero_grad()
        stages = self._stages()
        control = blas_thread_control() if stages is not self.stages else None
        threads = control[1](1) if control is not None else 0  # this thread's share: one BLAS thread
        try:
            a, ctxs = net.as_batch(xb), []
            for stage in stages:
                a, ctx = stage.forward(a)
                ctxs.append(ctx)
            cost, lctx = net.loss.forward(a, yb)
            d = net.loss.backward(lctx)
            for i in range(len(stages) - 1, -1, -1):
                d = stages[i].backward(d, ctxs[i], need_dx=i > 0)
        finally:
            if control is not None:
                control[1](threads)
        return cost, a

    def run_epoch(
        self, x: Any, y: Any, order: np.ndarray, batch_size: int, on_step: Callable[[], None]
    ) -> tuple[float, float]:
        n, total_loss, total_correct = len(order), 0.0, 0.0
        for start in range(0, n, batch_size):
            idx = order[start : start + batch_size]
            cost, correct = self.step(x[idx], y[idx])
            total_loss = total_loss + cost * len(idx)
            total_correct = total_correct + correct
            on_step()
        return float(total_loss) / n, float(total_correct) / n


def make_conv_runner(
    net: Sequential, optimizer: Optimizer, l2: float = 0.0, grad_hooks: Sequence[Any] = ()
) -> ConvRunner | None:
    """A :class:`ConvRunner` when :func:`plan_conv` finds a convolution group to fuse, else ``None``."""
    stages = plan_conv(net)
    return None if stages is None else ConvRunner(net, stages, optimizer, l2, grad_hooks)
