"""Sliding windows as matrices: im2col / col2im, and the convolution written as GEMMs.

Layout: images are ``(N, C, H, W)`` (NCHW, as PyTorch and the spec language's ``(C, H, W)``); a
kernel is ``(C_out, C, K, K)``. With stride ``s`` and zero padding ``p`` on every side::

    OH = (H + 2p − K) // s + 1          OW = (W + 2p − K) // s + 1

``im2col`` lays every receptive field out as one row::

    col[(n, i, j), (u, v, c)] = x_pad[n, c, s·i + u, s·j + v]      col: (N·OH·OW, K·K·C)

so that the convolution (a cross-correlation, as in every deep-learning library) is one matrix
product with the kernel flattened to ``Wm[o, (u, v, c)] = W[o, c, u, v]``, ``(C_out, K·K·C)``::

    z[(n, i, j), o] = Σ_{u,v,c} col[(n, i, j), (u, v, c)] · Wm[o, (u, v, c)] + b[o]   z = col Wmᵀ + b

Memory layout, chosen by measurement. Layers exchange NCHW arrays (PyTorch's layout, and the spec
language's ``(C, H, W)``), but the copy into ``col`` and the adds of ``col2im`` go through a
channels-last (NHWC) copy of the input, where one window row ``(v, c)`` is a contiguous run of
``K·C`` values instead of ``K`` values in NCHW; the GEMM's output ``(N·OH·OW, C_out)`` is NHWC too,
and is transposed back once. (The GEMMs are arranged so that their outputs are channel-major,
``zᵀ = Wm colᵀ``, and the NCHW⇄channel-major copies move whole ``OH·OW`` planes.) Single-thread timings on this machine (ms, float32, min of 7;
``benchmarks/conv_layout.py``)::

    layer (N, C, H, K)          im2col NCHW / NHWC      col2im NCHW / NHWC
    (128, 32, 13, 3) ref conv2   27.5 / 1.8              59.6 / 17.9
    (64, 20, 12, 5)  Nielsen     3.2 / 0.4               21.1 / 17.8
    (128, 1, 28, 3)  ref conv1   1.9 / 1.9               1.1 / 1.2     (C = 1: the same memory)

The transposes cost one copy of the input and of the output, small next to ``col`` (``K²`` times the
input). ``col`` is the only large buffer; NumPy's allocator hands the same blocks back step after
step, so no explicit pool is kept (one would have to know when the tape lets go of a context).

``col2im`` is the adjoint (transpose) of ``im2col``: it adds every row's entries back into the
positions of ``x`` they were read from. That is what the chain rule asks of ``∂E/∂x`` (one input
pixel appears in up to K² rows), so ``∂E/∂x = col2im(∂E/∂z · Wm)``.

The functions accept NumPy or CuPy arrays (their ``as_strided`` views) and torch tensors
(``Tensor.unfold``); :func:`conv_forward` / :func:`conv_backward` route torch tensors to torch's
own convolution primitives (``F.conv2d`` and ``aten.convolution_backward``, cuDNN on a GPU) called
on plain tensors, never autograd. Both routes compute the same sums; the tests compare them.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from chainrule.backend import namespace
from chainrule.errors import ShapeError

__all__ = [
    "col2im",
    "conv_backward",
    "conv_forward",
    "im2col",
    "is_torch",
    "out_size",
    "pad_images",
    "route_max_numpy",
]


def is_torch(x: Any) -> bool:
    return type(x).__module__.split(".", 1)[0] == "torch"


def out_size(n: int, k: int, stride: int, pad: int = 0) -> int:
    """``(n + 2·pad − k) // stride + 1``; a :class:`ShapeError` when the window does not fit."""
    if n + 2 * pad < k:
        raise ShapeError(f"a {k}×{k} window does not fit a {n}-pixel side (padding {pad})")
    return (n + 2 * pad - k) // stride + 1


def pad_images(x: Any, pad: int) -> Any:
    """``x`` with ``pad`` zeros on each side of the last two axes (``x`` itself when ``pad = 0``)."""
    if pad == 0:
        return x
    xp = namespace(x)
    n, c, h, w = x.shape
    out = xp.zeros((n, c, h + 2 * pad, w + 2 * pad), dtype=x.dtype, **_device(x))
    out[:, :, pad : pad + h, pad : pad + w] = x
    return out


def _device(x: Any) -> dict[str, Any]:
    return {} if isinstance(x, np.ndarray) else {"device": x.device}


def _nhwc_windows(xh: Any, k: int, stride: int) -> Any:
    """``(N, OH, OW, K, K, C)`` view of channels-last images ``xh (N, H, W, C)``: row ``(n, i, j)``
    of the im2col matrix is ``view[n, i, j]``, whose ``(v, c)`` part is contiguous in ``xh``."""
    n, h, w, c = xh.shape
    oh, ow = out_size(h, k, stride), out_size(w, k, stride)
    s0, s1, s2, s3 = xh.strides
    shape, strides = (n, oh, ow, k, k, c), (s0, s1 * stride, s2 * stride, s1, s2, s3)
    if isinstance(xh, np.ndarray):
        return np.lib.stride_tricks.as_strided(xh, shape, strides, writeable=False)
    import cupy  # optional: the cuda extra (a CuPy array got here)

    return cupy.lib.stride_tricks.as_strided(xh, shape, strides)


def im2col(x: Any, k: int, stride: int = 1, pad: int = 0) -> Any:
    """Every receptive field of ``x (N, C, H, W)`` as a row, ``(N·OH·OW, K·K·C)``, columns ordered
    ``(u, v, c)``: ``col[(n, i, j), (u, v, c)] = x_pad[n, c, s·i + u, s·j + v]`` (a copy).

    The copy goes through channels-last (NHWC) memory, where each window row ``(v, c)`` is one
    contiguous run of ``K·C`` values; see the module docstring for why."""
    xp = namespace(x)
    xh = xp.ascontiguousarray(pad_images(x, pad).transpose(0, 2, 3, 1)) if xp is np else None
    if xh is None:  # CuPy: the same, with its own calls
        xh = pad_images(x, pad).transpose(0, 2, 3, 1).copy()
    win = _nhwc_windows(xh, k, stride)
    n, oh, ow = win.shape[:3]
    return xp.reshape(win, (n * oh * ow, k * k * x.shape[1]))


def col2im(col: Any, x_shape: tuple[int, ...], k: int, stride: int = 1, pad: int = 0) -> Any:
    """The adjoint of :func:`im2col`: ``dx[n, c, s·i+u−p, s·j+v−p] += col[(n, i, j), (u, v, c)]``
    summed over every window that read the pixel. ``col (N·OH·OW, K·K·C) -> (N, C, H, W)``."""
    n, c, h, w = x_shape
    oh, ow = out_size(h, k, stride, pad), out_size(w, k, stride, pad)
    xp = namespace(col)
    dxp = xp.zeros((n, h + 2 * pad, w + 2 * pad, c), dtype=col.dtype)  # channels-last, padded
    d6 = xp.reshape(col, (n, oh, ow, k, k, c))
    for u in range(k):
        for v in range(k):
            dxp[:, u : u + stride * (oh - 1) + 1 : stride, v : v + stride * (ow - 1) + 1 : stride, :] += d6[
                :, :, :, u, v, :
            ]
    dx = dxp[:, pad : pad + h, pad : pad + w, :].transpose(0, 3, 1, 2)
    return xp.ascontiguousarray(dx) if xp is np else dx.copy()


def _kernel_matrix(W: Any) -> Any:
    """``K (C_out, C, K, K)`` as the ``(C_out, K·K·C)`` matrix whose columns match :func:`im2col`'s."""
    c_out = W.shape[0]
    return namespace(W).reshape(W.transpose(0, 2, 3, 1), (c_out, -1))


def conv_forward(x: Any, W: Any, b: Any, stride: int, pad: int) -> tuple[Any, Any]:
    """``z = x ⋆ W + b`` (cross-correlation) for ``x (N, C, H, W)``, ``W (C_out, C, K, K)``;
    returns ``(z (N, C_out, OH, OW), ctx)``. NumPy/CuPy: ``im2col(x) · Wmᵀ``; torch:
    ``F.conv2d``."""
    c_out, _, k, _ = W.shape
    if is_torch(x):
        import torch.nn.functional as F  # optional: the torch extra (a torch tensor got here)

        return F.conv2d(x, W, b, stride=stride, padding=pad), x
    xp = namespace(x)
    n, _, h, w = x.shape
    oh, ow = out_size(h, k, stride, pad), out_size(w, k, stride, pad)
    col = im2col(x, k, stride, pad)  # (N·OH·OW, K·K·C)
    zt = _kernel_matrix(W) @ col.T  # (C_out, N·OH·OW) = (col Wmᵀ)ᵀ: channel-major rows
    zt += b[:, None]
    z = xp.reshape(zt, (c_out, n, oh, ow)).transpose(1, 0, 2, 3)  # -> NCHW, blocks of OH·OW move
    return xp.ascontiguousarray(z) if xp is np else z.copy(), (col, tuple(x.shape))


def conv_backward(
    dz: Any, ctx: Any, W: Any, stride: int, pad: int, need_dx: bool = True
) -> tuple[Any, Any, Any]:
    """``(∂E/∂W, ∂E/∂b, ∂E/∂x)`` from ``dz = ∂E/∂z (N, C_out, OH, OW)`` (``∂E/∂x`` is ``None``
    unless ``need_dx``). NumPy/CuPy: three GEMMs and a col2im; torch:
    ``aten.convolution_backward``."""
    c_out, _, k, _ = W.shape
    if is_torch(dz):
        import torch  # optional: the torch extra (a torch tensor got here)

        x = ctx
        dx, dW, db = torch.ops.aten.convolution_backward(
            dz, x, W, [c_out], [stride] * 2, [pad] * 2, [1, 1], False, [0, 0], 1, [need_dx, True, True]
        )
        return dW, db, dx
    col, x_shape = ctx
    xp = namespace(dz)
    dt = xp.reshape(dz.transpose(1, 0, 2, 3), (c_out, -1))  # Dᵀ: (C_out, N·OH·OW), a copy
    Wm = _kernel_matrix(W)  # (C_out, K·K·C)
    dWm = xp.reshape(dt @ col, (c_out, k, k, -1))  # Dᵀ col: Σ over every window, δ correlated with x
    dW = dWm.transpose(0, 3, 1, 2)  # back to (C_out, C, K, K)
    db = xp.sum(dt, axis=1)
    dx = col2im(dt.T @ Wm, x_shape, k, stride, pad) if need_dx else None  # D Wm, back onto the pixels
    return dW, db, dx


def route_max_numpy(x: np.ndarray, y: np.ndarray, dy: np.ndarray, k: int, stride: int) -> np.ndarray:
    """Max-pooling's backward on NumPy arrays, in place over three ``y``-sized buffers: for each
    window offset in row-major order, ``won = (x == y) ∧ ¬taken``; ``dx[offset] (+)= dy ⊙ won``.
    The same arithmetic as :meth:`MaxPool2D.backward <chainrule.nn.layers.pool.MaxPool2D.backward>`
    (first maximum wins a tie); windows that cannot overlap (``stride ≥ k``) assign instead of add."""
    oh, ow = y.shape[2:]
    dx = np.zeros(x.shape, dtype=dy.dtype)
    taken, won = np.zeros(y.shape, bool), np.empty(y.shape, bool)
    tmp = None if stride >= k else np.empty_like(dy)
    for u in range(k):
        for v in range(k):
            rows, cols = (
                slice(u, u + stride * (oh - 1) + 1, stride),
                slice(v, v + stride * (ow - 1) + 1, stride),
            )
            np.equal(x[:, :, rows, cols], y, out=won)
            np.greater(won, taken, out=won)  # won ∧ ¬taken
            np.logical_or(taken, won, out=taken)
            if tmp is None:
                np.multiply(dy, won, out=dx[:, :, rows, cols])
            else:
                np.multiply(dy, won, out=tmp)
                dx[:, :, rows, cols] += tmp
    return dx
