"""CUDA source of CuPy's fused kernels (compiled on first use with ``--fmad=false``, so that
``a·b + c`` rounds twice, as the plain path's separate operations do).

* ``RAW_SOURCE``: ``RawKernel``s, one launch each (far cheaper to launch from Python than an
  ``ElementwiseKernel`` call): softmax + cross-entropy + its gradient ``(p − y)/N`` + the loss sum +
  the hit count; the batch gather; bias + activation; the activation's derivative. ``{T}`` is
  ``float`` or ``double``.
* ``ACT_CODES``: the layer kinds the bias + activation kernels implement, and the branch for each.
* ``UPDATE_BODIES``: the optimisers' updates as fused ``ElementwiseKernel`` bodies.
"""

from __future__ import annotations

__all__ = ["ACT_CODES", "NVCC_OPTIONS", "RAW_SOURCE", "UPDATE_BODIES"]

NVCC_OPTIONS = ("--fmad=false",)

#: layer kind → the ``act`` branch of ``bias_act`` / ``act_bwd`` below
ACT_CODES = {"identity": 0, "relu": 1, "leaky_relu": 2, "tanh": 3, "sigmoid": 4}

RAW_SOURCE = r"""
extern "C" __global__ void softmax_ce_{T}(const {T}* z, const long long* y, {T}* delta,
                                          double* loss_sum, unsigned long long* hits, int n, int k) {{
    // one thread per row: log p = z − max z − log Σ e^{{z − max z}};  δ = (p − onehot(y)) / N
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n) return;
    const {T}* zi = z + (long long)i * k;
    {T}* di = delta + (long long)i * k;
    {T} m = zi[0];
    int arg = 0;
    for (int j = 1; j < k; ++j) {{ if (zi[j] > m) {{ m = zi[j]; arg = j; }} }}
    {T} s = 0;
    for (int j = 0; j < k; ++j) s += exp(zi[j] - m);
    {T} lse = log(s);
    long long yi = y[i];
    for (int j = 0; j < k; ++j) {{
        {T} lp = (zi[j] - m) - lse;
        {T} p = exp(lp);
        di[j] = (p - (j == yi ? ({T})1 : ({T})0)) / ({T})n;
        if (j == yi) atomicAdd(loss_sum, -(double)lp);
    }}
    if (arg == yi) atomicAdd(hits, 1ULL);
}}

extern "C" __global__ void gather_rows_{T}(const {T}* x, const long long* y, const long long* idx,
                                           {T}* xb, long long* yb, long long n, long long d) {{
    // xb[r, :] = x[idx[r], :], yb[r] = y[idx[r]]
    long long t = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (t >= n * d) return;
    long long r = t / d, c = t - r * d;
    long long src = idx[r];
    xb[t] = x[src * d + c];
    if (c == 0) yb[r] = y[src];
}}

extern "C" __global__ void bias_act_{T}({T}* z, const {T}* b, bool* mask, long long total, long long d,
                                        int act, {T} alpha) {{
    // z = f(z + b) in place; act: 0 identity, 1 relu, 2 leaky_relu (mask = z ≤ 0), 3 tanh, 4 sigmoid
    long long t = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (t >= total) return;
    {T} v = z[t] + b[t % d];
    if (act == 1) {{
        v = v < ({T})0 ? ({T})0 : v;
    }} else if (act == 2) {{
        bool m = v <= ({T})0;
        mask[t] = m;
        v = m ? alpha * v : v;
    }} else if (act == 3) {{
        v = tanh(v);
    }} else if (act == 4) {{
        {T} e = exp(-fabs(v));
        v = v >= ({T})0 ? ({T})1 / (({T})1 + e) : e / (({T})1 + e);
    }}
    z[t] = v;
}}

extern "C" __global__ void act_bwd_{T}({T}* d, const {T}* a, const bool* mask, long long total, int act,
                                       {T} alpha) {{
    // d = d ⊙ f'(z), f' written from the output a (the mask for leaky_relu), in the plain
    // layers' order: relu d·[a > 0], leaky_relu α d where z ≤ 0, tanh d·(1 − a·a), sigmoid d·(a·(1 − a))
    long long t = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (t >= total) return;
    {T} g = d[t], y = a[t];
    if (act == 1) g = g * ({T})(y > ({T})0);
    else if (act == 2) g = mask[t] ? alpha * g : g;
    else if (act == 3) g = g * (({T})1 - y * y);
    else if (act == 4) g = g * (y * (({T})1 - y));
    d[t] = g;
}}
"""


#: optimiser name → (inputs, outputs, body) of its fused ElementwiseKernel (``optim``'s formulas)
UPDATE_BODIES = {
    "sgd": ("T g, T lr", "T w", "w = w - lr * g"),
    "momentum": ("T g, T lr, T mu", "T w, T v", "v = mu * v + g; w = w - lr * v"),
    "nesterov": ("T g, T lr, T mu", "T w, T v", "v = mu * v + g; w = w - lr * (g + mu * v)"),
    "adam": (
        "T g, T lr, T b1, T b2, T ob1, T ob2, T c1, T c2, T eps",
        "T w, T m, T s",
        "m = b1 * m + ob1 * g; s = b2 * s + (ob2 * g) * g; w = w - (lr * (m / c1)) / (sqrt(s / c2) + eps)",
    ),
}
