"""Sliding windows as matrices: im2col / col2im, and the convolution written as GEMMs.

Layout: images are ``(N, C, H, W)`` (NCHW, as PyTorch and the spec language's ``(C, H, W)``); a
kernel is ``(C_out, C, K, K)``. With stride ``s`` and zero padding ``p`` on every side::

    OH = (H + 2p − K) // s + 1          OW = (W + 2p − K) // s + 1

``im2col`` lays every receptive field out as one row::

    col[(n, i, j), (c, u, v)] = x_pad[n, c, s·i + u, s·j + v]      col: (N·OH·OW, C·K·K)

so that the convolution (a cross-correlation, as in every deep-learning library) is one matrix
product with the kernel flattened to ``Wm = reshape(W, (C_out, C·K·K))``::

    z[(n, i, j), o] = Σ_{c,u,v} col[(n, i, j), (c, u, v)] · Wm[o, (c, u, v)] + b[o]   z = col Wmᵀ + b

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
    "windows",
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


def windows(x: Any, k: int, stride: int) -> Any:
    """The ``K×K`` windows of ``x`` at stride ``s`` as a read-only view ``(N, C, OH, OW, K, K)``:
    ``view[n, c, i, j, u, v] = x[n, c, s·i + u, s·j + v]`` (no copy)."""
    n, c, h, w = x.shape
    oh, ow = out_size(h, k, stride), out_size(w, k, stride)
    if is_torch(x):
        return x.unfold(2, k, stride).unfold(3, k, stride)
    s0, s1, s2, s3 = x.strides
    shape, strides = (n, c, oh, ow, k, k), (s0, s1, s2 * stride, s3 * stride, s2, s3)
    if isinstance(x, np.ndarray):
        return np.lib.stride_tricks.as_strided(x, shape, strides, writeable=False)
    import cupy  # optional: the cuda extra (a CuPy array got here)

    return cupy.lib.stride_tricks.as_strided(x, shape, strides)


def im2col(x: Any, k: int, stride: int = 1, pad: int = 0, out: Any = None) -> Any:
    """Every receptive field of ``x (N, C, H, W)`` as a row: ``(N·OH·OW, C·K·K)`` (a copy; into
    ``out`` when given, a reused buffer of that shape)."""
    n, c = x.shape[:2]
    win = windows(pad_images(x, pad), k, stride)  # (N, C, OH, OW, K, K)
    oh, ow = win.shape[2], win.shape[3]
    rows = win.permute(0, 2, 3, 1, 4, 5) if is_torch(win) else win.transpose(0, 2, 3, 1, 4, 5)
    if out is not None:
        out.reshape(n, oh, ow, c, k, k)[...] = rows
        return out
    return namespace(x).reshape(rows, (n * oh * ow, c * k * k))


def col2im(col: Any, x_shape: tuple[int, ...], k: int, stride: int = 1, pad: int = 0) -> Any:
    """The adjoint of :func:`im2col`: ``dx[n, c, s·i+u−p, s·j+v−p] += col[(n, i, j), (c, u, v)]``
    summed over every window that read the pixel. ``col (N·OH·OW, C·K·K) -> (N, C, H, W)``."""
    n, c, h, w = x_shape
    oh, ow = out_size(h, k, stride, pad), out_size(w, k, stride, pad)
    xp = namespace(col)
    dxp = xp.zeros((n, c, h + 2 * pad, w + 2 * pad), dtype=col.dtype, **_device(col))
    d6 = xp.reshape(col, (n, oh, ow, c, k, k))
    for u in range(k):
        for v in range(k):
            part = d6[:, :, :, :, u, v]
            part = part.permute(0, 3, 1, 2) if is_torch(part) else part.transpose(0, 3, 1, 2)
            dxp[:, :, u : u + stride * (oh - 1) + 1 : stride, v : v + stride * (ow - 1) + 1 : stride] += part
    if pad == 0:
        return dxp
    return dxp[:, :, pad : pad + h, pad : pad + w] * 1  # a compact copy, not a view into the padding


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
    col = im2col(x, k, stride, pad)  # (N·OH·OW, C·K·K)
    z = col @ xp.reshape(W, (c_out, -1)).T  # (N·OH·OW, C_out)
    z += b
    z = xp.reshape(z, (n, oh, ow, c_out)).transpose(0, 3, 1, 2)  # NHWC rows -> NCHW
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
    d2 = xp.reshape(dz.transpose(0, 2, 3, 1), (-1, c_out))  # (N·OH·OW, C_out), a copy
    Wm = xp.reshape(W, (c_out, -1))  # (C_out, C·K·K)
    dW = xp.reshape(d2.T @ col, W.shape)  # Σ over every window: correlation of δ with x
    db = xp.sum(d2, axis=0)
    dx = col2im(d2 @ Wm, x_shape, k, stride, pad) if need_dx else None
    return dW, db, dx
