"""NCHW vs NHWC for im2col/col2im (the measurement behind nn/convolution.py's layout choice).

python benchmarks/conv_layout.py        # single thread, float32, min of 7 runs, ms
"""

from __future__ import annotations

import time

import numpy as np
from threadpoolctl import threadpool_limits

from chainrule.nn.convolution import col2im, im2col  # NHWC inside


def im2col_nchw(x: np.ndarray, k: int) -> np.ndarray:
    n, c, h, w = x.shape
    oh, ow = h - k + 1, w - k + 1
    s0, s1, s2, s3 = x.strides
    win = np.lib.stride_tricks.as_strided(x, (n, c, oh, ow, k, k), (s0, s1, s2, s3, s2, s3), writeable=False)
    return win.transpose(0, 2, 3, 1, 4, 5).reshape(n * oh * ow, c * k * k)


def col2im_nchw(col: np.ndarray, shape: tuple[int, ...], k: int) -> np.ndarray:
    n, c, h, w = shape
    oh, ow = h - k + 1, w - k + 1
    dx = np.zeros(shape, col.dtype)
    d6 = col.reshape(n, oh, ow, c, k, k)
    for u in range(k):
        for v in range(k):
            dx[:, :, u : u + oh, v : v + ow] += d6[:, :, :, :, u, v].transpose(0, 3, 1, 2)
    return dx


def best(f, n: int = 7) -> float:
    f()
    ts = []
    for _ in range(n):
        t = time.perf_counter()
        f()
        ts.append(time.perf_counter() - t)
    return min(ts) * 1e3


def main() -> None:
    threadpool_limits(1)
    r = np.random.default_rng(0)
    print("layer (N, C, H, K)   im2col NCHW / NHWC   col2im NCHW / NHWC   (ms)")
    for n, c, h, k in [(128, 32, 13, 3), (64, 20, 12, 5), (128, 1, 28, 3), (64, 1, 28, 5)]:
        x = r.random((n, c, h, h), dtype=np.float32)
        dcol = r.random(im2col(x, k).shape, dtype=np.float32)
        a, b = best(lambda x=x, k=k: im2col_nchw(x, k)), best(lambda x=x, k=k: im2col(x, k))
        cc = best(lambda x=x, k=k, d=dcol: col2im_nchw(d, x.shape, k))
        d = best(lambda x=x, k=k, d=dcol: col2im(d, x.shape, k))
        print(f"{(n, c, h, k)}   {a:6.2f} / {b:6.2f}      {cc:6.2f} / {d:6.2f}")


if __name__ == "__main__":
    main()
