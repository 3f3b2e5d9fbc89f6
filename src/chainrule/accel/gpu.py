"""The fast step's primitives for torch tensors (CPU and CUDA) and CuPy arrays, and the CUDA-graph
runner.

:class:`~chainrule.accel.fast.FastRunner` writes the training step once; this module supplies the
backend-specific "ops" it calls:

* :class:`TorchOps`: torch tensors used as plain arrays (autograd never runs: every tensor has
  ``requires_grad=False`` and the gradients are the hand-derived ones). ``out=`` / in-place
  kernels, ``addmm`` with the bias (``_addmm_activation`` with ReLU), ``addmm_``/``addmv_`` for
  the one-kernel SGD updates. On CUDA, :class:`TorchGraphRunner` captures
  the *whole* step (gather, forward, loss, backward, update, loss/accuracy accumulation) once per
  batch size as a CUDA graph and replays it: the dataset and the epoch's permutation live on the
  device, a static position tensor advances inside the graph, and the loss is read once per
  epoch, so there is no host/device synchronisation per step.
* :class:`CupyOps`: CuPy cannot capture cuBLAS calls in a graph (CuPy 14 raises
  ``NotImplementedError`` during stream capture), so CuPy steps are launched one by one and made
  cheap instead: cuBLAS ``gemm``/``gemv`` called directly with precomputed pointers (``beta = 1``
  for the SGD updates), one ``RawKernel`` each for the batch gather, bias + activation, the
  activation derivative, and softmax + cross-entropy + its gradient ``(p − y)/N`` + the loss sum
  + the hit count (``RawKernel`` launches cost far less host time than ``ElementwiseKernel``
  calls), and fused ``ElementwiseKernel``s for the momentum/Nesterov/Adam updates.

Importing this module imports neither torch nor CuPy; they are imported when an ops object is
made. Kernels are compiled with ``--fmad=false`` so that ``a·b + c`` rounds twice, as the plain
path's separate operations do.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import numpy as np

from chainrule.accel.fast import Block, FastRunner

__all__ = ["CupyOps", "TorchFastRunner", "TorchGraphRunner", "TorchOps", "make_runner"]


def make_runner(backend: Any, net: Any, optimizer: Any, l2: float, blocks: list[Block]) -> Any:
    """The fast runner for a torch or CuPy backend (``None`` for an unknown backend).

    torch on CUDA gets the CUDA-graph runner unless ``CHAINRULE_NO_CUDA_GRAPH=1``; torch on the
    CPU and CuPy get the op-by-op :class:`~chainrule.accel.fast.FastRunner`.
    """
    if backend.name == "torch":
        ops = TorchOps(backend.device)
        if ops.device.type == "cuda" and not os.environ.get("CHAINRULE_NO_CUDA_GRAPH"):
            return TorchGraphRunner(net, optimizer, l2, ops, blocks)
        return TorchFastRunner(net, optimizer, l2, ops, blocks)
    if backend.name == "cupy":
        return FastRunner(net, optimizer, l2, CupyOps(backend.device), blocks)
    return None


# --------------------------------------------------------------------------------------------
# torch
# --------------------------------------------------------------------------------------------


class TorchOps:
    """The fast step's primitives on torch tensors (CPU or CUDA), mirroring :class:`NumpyOps`."""

    name = "torch"

    def __init__(self, device: str) -> None:
        import torch

        self.torch = torch
        self.device = torch.device(device)
        self.bool_dtype, self.int_dtype = torch.bool, torch.int64
        self._loss = torch.zeros((), dtype=torch.float64, device=self.device)
        self._correct = torch.zeros((), dtype=torch.int64, device=self.device)
        #: Adam's step count on the device, so a captured graph sees it advance
        self._t = torch.zeros((), dtype=torch.float64, device=self.device)
        self._ones: dict[int, Any] = {}
        aten = torch.ops.aten
        self._addmm_relu = aten._addmm_activation.out if hasattr(aten, "_addmm_activation") else None

    # -- memory ----------------------------------------------------------------------------
    def empty(self, shape: tuple[int, ...], dtype: Any) -> Any:
        return self.torch.empty(shape, dtype=dtype, device=self.device)

    def int_range(self, n: int, step: int) -> Any:
        return self.torch.arange(0, n * step, step, dtype=self.torch.int64, device=self.device)

    def index_array(self, order: np.ndarray) -> Any:
        """The epoch's permutation on the device (one host-to-device copy per epoch)."""
        return self.torch.from_numpy(np.asarray(order, dtype=np.int64)).to(self.device)

    def take_rows(self, src: Any, idx: Any, out: Any) -> None:
        self.torch.index_select(src, 0, idx, out=out)

    def gather_batch(self, x: Any, y: Any, idx: Any, bufs: dict[str, Any]) -> None:
        self.torch.index_select(x, 0, idx, out=bufs["x"])
        self.torch.index_select(y, 0, idx, out=bufs["y"])

    def prepare(self, bufs: dict[str, Any], loss_kind: str) -> None:
        """Softmax-CE on class indices (more than one output) takes the fused path, and every
        batch size gets a ones vector for the bias ``gemv``."""
        lb, yb, out = bufs["loss"], bufs["y"], bufs["layers"][-1]["a"]
        lb["fused"] = loss_kind == "softmax-ce" and out.shape[1] > 1 and yb.ndim == 1
        lb["yb"] = yb
        lb["minus_one"] = self.torch.full((out.shape[0], 1), -1.0, dtype=out.dtype, device=self.device)
        n = out.shape[0]
        if n not in self._ones:  # for the bias gemv; made here so a graph capture finds it allocated
            self._ones[n] = self.torch.ones(n, dtype=out.dtype, device=self.device)

    # -- linear algebra --------------------------------------------------------------------
    def matmul(self, a: Any, b: Any, out: Any) -> None:
        self.torch.mm(a, b, out=out)

    def gemm_acc(self, a_t: Any, d: Any, w: Any, alpha: float, tmp: Any) -> None:
        """``w ← w + α (a_t @ d)``: one GEMM with ``beta = 1`` (``addmm_``)."""
        w.addmm_(a_t, d, alpha=alpha)

    def scale(self, w: Any, c: float) -> None:
        w.mul_(c)

    def col_sum(self, d: Any, out: Any) -> None:
        self.torch.sum(d, dim=0, out=out)

    def bias_sgd(self, delta: Any, b: Any, lr: float, tmp: Any) -> None:
        """``b ← b − α Σ_rows δ`` as one ``gemv`` (``addmv_`` with a ones vector)."""
        ones = self._ones.get(delta.shape[0])
        if ones is None:
            ones = self._ones[delta.shape[0]] = self.torch.ones(
                delta.shape[0], dtype=delta.dtype, device=self.device
            )
        b.value.addmv_(delta.T, ones, alpha=-lr)

    # -- activations -----------------------------------------------------------------------
    def linear_act(self, x: Any, w: Any, b: Any, z: Any, blk: Block, buf: dict[str, Any]) -> None:
        """``z ← f(x W + b)``: bias and GEMM in one ``addmm`` (for ReLU, ``_addmm_activation``,
        whose cuBLASLt epilogue adds the bias and clamps in the GEMM itself)."""
        if blk.act == "relu" and self._addmm_relu is not None:
            self._addmm_relu(b, x, w, out=z)
            return
        self.torch.addmm(b, x, w, out=z)
        self._act(z, blk, buf)

    def bias_act(self, z: Any, b: Any, blk: Block, buf: dict[str, Any]) -> None:
        z.add_(b)
        self._act(z, blk, buf)

    def _act(self, z: Any, blk: Block, buf: dict[str, Any]) -> None:
        torch = self.torch
        act = blk.act
        if act == "relu":
            z.clamp_min_(0.0)
        elif act == "leaky_relu":
            torch.le(z, 0.0, out=buf["mask"])
            torch.nn.functional.leaky_relu_(z, blk.alpha)
        elif act == "tanh":
            z.tanh_()
        elif act == "sigmoid":
            m, e, den = buf["mask"], buf["tmp"], buf["tmp2"]
            torch.ge(z, 0.0, out=m)
            torch.abs(z, out=e)
            e.neg_().exp_()
            torch.add(e, 1.0, out=den)
            e.masked_fill_(m, 1.0)
            torch.div(e, den, out=z)

    def act_backward(self, d: Any, a: Any, blk: Block, buf: dict[str, Any]) -> None:
        torch = self.torch
        act = blk.act
        if act == "relu":  # dy where a > 0, else 0: one kernel
            torch.ops.aten.threshold_backward.grad_input(d, a, 0.0, grad_input=d)
        elif act == "leaky_relu":
            d.copy_(torch.where(buf["mask"], d * blk.alpha, d))
        elif act == "tanh":
            t = buf["tmp"]
            torch.mul(a, a, out=t)
            t.neg_().add_(1.0)
            d.mul_(t)
        elif act == "sigmoid":
            t = buf["tmp"]
            torch.neg(a, out=t)
            t.add_(1.0)
            d.mul_(a)
            d.mul_(t)

    # -- loss ------------------------------------------------------------------------------
    def targets(self, yb: Any, t: Any, lb: dict[str, Any]) -> None:
        if lb.get("fused"):
            return  # the fused softmax-CE reads the labels directly
        if yb.ndim == 2:
            t.copy_(yb)
        elif t.shape[1] == 1:
            t[:, 0].copy_(yb)
        else:
            t.zero_()
            t.scatter_(1, yb.view(-1, 1), 1.0)

    def loss_grad(self, kind: str, out: Any, t: Any, delta: Any, lb: dict[str, Any]) -> Any:
        torch = self.torch
        n = out.shape[0]
        s, tmp = lb["s"], lb["tmp"]
        if lb.get("fused"):  # log p = log_softmax(z); N·E = −Σ log p_y; δ = (p − onehot(y))/N
            yb = lb["yb"].view(-1, 1)
            log_p = torch.log_softmax(out, dim=1)
            torch.exp(log_p, out=delta)
            self._loss.sub_(log_p.gather(1, yb).sum())  # straight into the epoch's total
            delta.scatter_add_(1, yb, lb["minus_one"])
            delta.div_(n)
            return None
        if kind == "softmax-ce":
            rmax, rsum = lb["rmax"], lb["rsum"]
            torch.amax(out, dim=1, keepdim=True, out=rmax)
            torch.sub(out, rmax, out=s)
            torch.exp(s, out=tmp)
            torch.sum(tmp, dim=1, keepdim=True, out=rsum)
            rsum.log_()
            s.sub_(rsum)  # log p
            torch.exp(s, out=delta)  # p
            torch.mul(t, s, out=tmp)
            cost = -tmp.sum() / n
            delta.sub_(t).div_(n)  # (p − t)/N
            return cost
        if kind == "bce":
            torch.abs(out, out=tmp)
            tmp.neg_().exp_().log1p_()
            torch.clamp_min(out, 0.0, out=s)
            torch.mul(t, out, out=delta)
            s.sub_(delta).add_(tmp)
            cost = s.sum() / n
            m, e, den = lb["mask"], lb["tmp"], lb["s"]
            torch.ge(out, 0.0, out=m)
            torch.abs(out, out=e)
            e.neg_().exp_()
            torch.add(e, 1.0, out=den)
            e.masked_fill_(m, 1.0)
            torch.div(e, den, out=delta)
            delta.sub_(t).div_(n)
            return cost
        torch.sub(out, t, out=s)
        torch.mul(s, s, out=tmp)
        cost = 0.5 * tmp.sum() / n
        torch.div(s, n, out=delta)
        return cost

    def count_correct(self, out: Any, yb: Any, lb: dict[str, Any]) -> Any:
        torch = self.torch
        pred, hit = lb["pred"], lb["hit"]
        if out.shape[1] == 1:
            pred.copy_(out[:, 0] > 0)
        else:
            torch.argmax(out, dim=1, out=pred)
        torch.eq(pred, torch.argmax(yb, dim=1) if yb.ndim == 2 else yb, out=hit)
        return hit.sum()

    # -- running totals, on the device ------------------------------------------------------
    def reset_totals(self) -> None:
        self._loss.zero_()
        self._correct.zero_()

    def add_totals(self, cost: Any, correct: Any, n: int) -> None:
        if cost is not None:  # None: the fused loss already added its sum
            self._loss.add_(cost, alpha=n)
        self._correct.add_(correct)

    def read_totals(self) -> tuple[float, float]:
        """The one synchronisation of an epoch."""
        return float(self._loss), float(self._correct)

    def begin_step(self, opt: Any) -> None:
        if opt.name == "adam":
            self._t.add_(1.0)

    def sync_step_count(self, opt: Any) -> None:
        """Set the device step count from ``opt.t`` (before an epoch)."""
        self._t.fill_(float(opt.t))

    # -- updates ---------------------------------------------------------------------------
    def add_l2(self, g: Any, w: Any, lam: float, tmp: Any) -> None:
        self.torch.mul(w, lam, out=tmp)
        g.add_(tmp)

    def update(self, opt: Any, w: Any, g: Any, state: Any, tmp: Any, tmp2: Any) -> None:
        torch = self.torch
        name, lr = opt.name, opt.lr
        if name == "sgd":
            torch.mul(g, lr, out=tmp)
        elif name == "momentum":
            state.mul_(opt.momentum).add_(g)
            torch.mul(state, lr, out=tmp)
        elif name == "nesterov":
            state.mul_(opt.momentum).add_(g)
            torch.mul(state, opt.momentum, out=tmp)
            torch.add(g, tmp, out=tmp)
            tmp.mul_(lr)
        else:  # adam, bias corrections from the device step count
            m, s = state
            m.mul_(opt.beta1)
            torch.mul(g, 1 - opt.beta1, out=tmp)
            m.add_(tmp)
            s.mul_(opt.beta2)
            torch.mul(g, 1 - opt.beta2, out=tmp)
            tmp.mul_(g)
            s.add_(tmp)
            c1 = 1 - torch.pow(opt.beta1, self._t)
            c2 = 1 - torch.pow(opt.beta2, self._t)
            torch.div(s, c2, out=tmp2)
            tmp2.sqrt_().add_(opt.eps)
            torch.div(m, c1, out=tmp)
            tmp.mul_(lr)
            tmp.div_(tmp2)
        w.sub_(tmp)


class TorchFastRunner(FastRunner):
    """:class:`FastRunner` that keeps torch's device step count in line with ``opt.t``."""

    def run_epoch(
        self, x: Any, y: Any, order: np.ndarray, batch_size: int, on_step: Callable[[], None]
    ) -> tuple[float, float]:
        self.ops.sync_step_count(self.optimizer)
        return super().run_epoch(x, y, order, batch_size, on_step)


class TorchGraphRunner(TorchFastRunner):
    """The fast step captured as CUDA graphs (one per batch size) and replayed.

    Per epoch: the permutation is copied to the device once, the totals and position tensors
    are reset, then each step is one ``graph.replay()`` (the graph gathers the batch at
    ``perm[pos]``, trains, accumulates the loss and hits, and advances ``pos``); the loss is read
    once at the end. Graphs are captured on first use and again whenever what they captured
    changes (data tensors, parameters or optimiser state reallocated, hyperparameters edited).
    Should capture fail, the runner says so once (a ``RuntimeWarning``), puts the state back and
    goes on launching the same step eagerly (``name`` becomes ``fast-torch``).
    """

    def __init__(self, net: Any, optimizer: Any, l2: float, ops: TorchOps, blocks: list[Block]) -> None:
        super().__init__(net, optimizer, l2, ops, blocks)
        self.name = "fast-torch-cuda-graph"
        self._graphs: dict[int, dict[str, Any]] = {}
        self._key: Any = None
        self._perm: Any = None

    def _capture_key(self, x: Any, y: Any, n: int, batch_size: int) -> Any:
        opt = self.optimizer
        hyper = tuple(sorted((k, v) for k, v in opt.config().items() if k != "name"))
        state = self._opt_state()
        ptrs = [p.value.data_ptr() for p in self.net.params] + [p.grad.data_ptr() for p in self.net.params]
        for s in state:
            for t in s if isinstance(s, tuple) else (s,):
                if t is not None:
                    ptrs.append(t.data_ptr())
        return (
            x.data_ptr(),
            y.data_ptr(),
            tuple(x.shape),
            tuple(y.shape),
            n,
            batch_size,
            self.l2,
            hyper,
            tuple(ptrs),
        )

    def _body(self, x: Any, y: Any, g: dict[str, Any]) -> None:
        """What one replay does: gather at ``perm[pos]``, step, advance ``pos``."""
        torch, ops = self.ops.torch, self.ops
        torch.index_select(self._perm, 0, g["pos"], out=g["idx"])
        ops.take_rows(x, g["idx"], out=g["bufs"]["x"])
        ops.take_rows(y, g["idx"], out=g["bufs"]["y"])
        self.step(g["bufs"])
        g["pos"].add_(g["nb"])

    def _capture(self, x: Any, y: Any, n: int, batch_size: int) -> None:
        torch, ops = self.ops.torch, self.ops
        self._graphs = {}
        self._perm = torch.arange(n, device=ops.device)
        nfull, rem = divmod(n, batch_size)
        sizes = [(batch_size, 0)] if nfull else []
        if rem:
            sizes.append((rem, nfull * batch_size))
        params = self.net.params
        state = self._opt_state()
        self._param_scratch()
        saved = self._save_state(params, state)
        try:
            for nb, first in sizes:
                pos0 = torch.arange(first, first + nb, device=ops.device)
                g = {
                    "nb": nb,
                    "pos0": pos0,
                    "pos": pos0.clone(),
                    "idx": torch.empty(nb, dtype=torch.int64, device=ops.device),
                    "bufs": self.buffers(nb, tuple(y.shape), y.dtype),  # static: allocated before capture
                }
                self._warm_up(lambda g=g, pos0=pos0: (g["pos"].copy_(pos0), self._body(x, y, g)))
                graph = self._record(lambda g=g: self._body(x, y, g))
                g["graph"] = graph
                self._graphs[nb] = g
        finally:  # the warm-up trained: put weights, optimiser state and counters back
            self._restore_state(params, state, saved)
            self._sync()

    # -- the three CUDA calls, apart so that the logic around them can be tested on the CPU -----
    def _warm_up(self, fn: Callable[[], Any]) -> None:
        """Run ``fn`` twice on a side stream (cuBLAS handles, workspaces), as PyTorch's
        CUDA-graph notes ask before a capture."""
        torch = self.ops.torch
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            fn()
            fn()
        torch.cuda.current_stream().wait_stream(side)

    def _record(self, fn: Callable[[], Any]) -> Any:
        """Capture ``fn`` as a CUDA graph (nothing runs now); ``.replay()`` runs it."""
        torch = self.ops.torch
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            fn()
        return graph

    def _sync(self) -> None:
        self.ops.torch.cuda.synchronize()

    def _save_state(self, params: list[Any], state: list[Any]) -> tuple[Any, Any, int]:
        values = [p.value.clone() for p in params]
        st = [
            tuple(t.clone() for t in s) if isinstance(s, tuple) else (None if s is None else s.clone())
            for s in state
        ]
        return values, st, self.optimizer.t

    def _restore_state(self, params: list[Any], state: list[Any], saved: tuple[Any, Any, int]) -> None:
        values, st, t = saved
        for p, v in zip(params, values, strict=True):
            p.value.copy_(v)
        for s, v in zip(state, st, strict=True):
            if isinstance(s, tuple):
                for a, b in zip(s, v, strict=True):
                    a.copy_(b)
            elif s is not None:
                s.copy_(v)
        self.optimizer.t = t

    def run_epoch(
        self, x: Any, y: Any, order: np.ndarray, batch_size: int, on_step: Callable[[], None]
    ) -> tuple[float, float]:
        torch, ops, opt = self.ops.torch, self.ops, self.optimizer
        n = len(order)
        if self._graphs is None:  # capture failed before: eager launches
            return super().run_epoch(x, y, order, batch_size, on_step)
        key = self._capture_key(x, y, n, batch_size)
        if key != self._key:
            try:
                self._capture(x, y, n, batch_size)
            except RuntimeError as exc:
                import warnings

                warnings.warn(
                    f"CUDA-graph capture failed ({exc}); running the step eagerly",
                    RuntimeWarning,
                    stacklevel=2,
                )
                self._graphs, self.name = None, "fast-torch"
                return super().run_epoch(x, y, order, batch_size, on_step)
            self._key = key
        self._perm.copy_(torch.from_numpy(np.asarray(order, dtype=np.int64)))
        ops.reset_totals()
        ops.sync_step_count(opt)
        steps = 0
        for nb in sorted(self._graphs, reverse=True):  # full batches first, then the remainder
            g = self._graphs[nb]
            g["pos"].copy_(g["pos0"])
            count = n // batch_size if nb == batch_size else 1
            for _ in range(count):
                g["graph"].replay()
                steps += 1
                on_step()
        opt.t += steps
        loss_sum, correct = ops.read_totals()
        return loss_sum / n, correct / n


# --------------------------------------------------------------------------------------------
# CuPy
# --------------------------------------------------------------------------------------------

_FMAD = ("--fmad=false",)
_ACT_CODE = {"identity": 0, "relu": 1, "leaky_relu": 2, "tanh": 3, "sigmoid": 4}  # as in the kernels

_KERNELS = r"""
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
    // d = d ⊙ f'(z), f' written from the output a (the mask for leaky_relu)
    long long t = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (t >= total) return;
    {T} g = d[t], y = a[t];
    if (act == 1) g = g * ({T})(y > ({T})0);
    else if (act == 2) g = mask[t] ? alpha * g : g;
    else if (act == 3) g = g * (({T})1 - y * y);
    else if (act == 4) g = (g * y) * (({T})1 - y);
    d[t] = g;
}}
"""


class CupyOps:
    """The fast step's primitives on CuPy arrays: direct cuBLAS calls and fused kernels.

    The softmax-cross-entropy kernel and the fused gather cover the usual case (class-index
    labels, more than one output); other targets and losses use CuPy array expressions that
    mirror :class:`~chainrule.accel.fast.NumpyOps`.
    """

    name = "cupy"
    bool_dtype, int_dtype = np.bool_, np.int64

    def __init__(self, device: str = "cuda") -> None:
        import cupy
        from cupy_backends.cuda.libs import cublas

        self.cp, self.cublas = cupy, cublas
        self.device = cupy.cuda.Device(int(device.split(":", 1)[1]) if ":" in device else 0)
        self._kernels: dict[str, Any] = {}
        self._scalars: dict[tuple[Any, float], np.ndarray] = {}  # host alpha/beta for cuBLAS
        with self.device:
            self._loss = cupy.zeros((), dtype=np.float64)
            self._hits = cupy.zeros((), dtype=np.uint64)
            self._ones: dict[tuple[int, Any], Any] = {}

    # -- kernels (compiled on first use, cached by CuPy on disk) ----------------------------
    def _ew(self, name: str, params_in: str, params_out: str, body: str) -> Any:
        k = self._kernels.get(name)
        if k is None:
            k = self.cp.ElementwiseKernel(params_in, params_out, body, f"chainrule_{name}", options=_FMAD)
            self._kernels[name] = k
        return k

    def _raw(self, name: str, dtype: Any) -> Any:
        tname = "float" if np.dtype(dtype) == np.float32 else "double"
        key = f"{name}_{tname}"
        k = self._kernels.get(key)
        if k is None:
            module = self._kernels.get(f"module_{tname}")
            if module is None:
                module = self.cp.RawModule(code=_KERNELS.format(T=tname), options=_FMAD)
                self._kernels[f"module_{tname}"] = module
            k = module.get_function(key)
            self._kernels[key] = k
        return k

    def _ptr(self, value: float, dtype: Any) -> int:
        """Host pointer to ``value`` as ``dtype`` (cuBLAS host pointer mode), kept alive."""
        key = (np.dtype(dtype), float(value))
        a = self._scalars.get(key)
        if a is None:
            a = np.array(value, dtype=dtype)
            self._scalars[key] = a
        return a.ctypes.data

    # -- memory ----------------------------------------------------------------------------
    def empty(self, shape: tuple[int, ...], dtype: Any) -> Any:
        with self.device:
            return self.cp.empty(shape, dtype=dtype)

    def int_range(self, n: int, step: int) -> Any:
        with self.device:
            return self.cp.arange(0, n * step, step, dtype=np.int64)

    def index_array(self, order: np.ndarray) -> Any:
        """The epoch's permutation on the device (one copy per epoch); steps slice views of it."""
        with self.device:
            return self.cp.asarray(np.asarray(order, dtype=np.int64))

    def take_rows(self, src: Any, idx: Any, out: Any) -> None:
        self.cp.take(src, idx, axis=0, out=out)

    def gather_batch(self, x: Any, y: Any, idx: Any, bufs: dict[str, Any]) -> None:
        """``xb = x[idx]; yb = y[idx]``: one launch for a C-contiguous ``x`` and int64 labels."""
        xb, yb = bufs["x"], bufs["y"]
        if y.ndim != 1 or y.dtype != np.int64 or not (x.flags.c_contiguous and y.flags.c_contiguous):
            self.take_rows(x, idx, xb)
            self.take_rows(y, idx, yb)
            return
        n, d = xb.shape
        self._raw("gather_rows", x.dtype)(
            ((n * d + 255) // 256,), (256,), (x, y, idx, xb, yb, np.int64(n), np.int64(d))
        )

    def prepare(self, bufs: dict[str, Any], loss_kind: str) -> None:
        """Use the fused softmax-CE kernel for class-index labels with more than one output."""
        lb, yb, out = bufs["loss"], bufs["y"], bufs["layers"][-1]["a"]
        lb["fused"] = loss_kind == "softmax-ce" and out.shape[1] > 1 and yb.ndim == 1 and yb.dtype == np.int64
        lb["yb"] = yb

    # -- cuBLAS, row-major arrays through the column-major API ------------------------------
    def _gemm(self, a: Any, b: Any, out: Any, alpha: float, beta: float) -> None:
        """``out = α a @ b + β out`` for C-contiguous ``out`` and ``a``/``b`` C-contiguous or
        transposed views of C-contiguous arrays: computed as ``outᵀ = bᵀ aᵀ`` in column major."""
        m, k = a.shape
        n = b.shape[1]
        cb = self.cublas
        if b.flags.c_contiguous:
            opb, ldb = cb.CUBLAS_OP_N, n
        else:  # b = cᵀ with c C-contiguous (n, k)
            opb, ldb = cb.CUBLAS_OP_T, k
        if a.flags.c_contiguous:
            opa, lda = cb.CUBLAS_OP_N, k
        else:  # a = cᵀ with c C-contiguous (k, m)
            opa, lda = cb.CUBLAS_OP_T, m
        fn = cb.sgemm if out.dtype == np.float32 else cb.dgemm
        handle = self.cp.cuda.device.get_cublas_handle()
        fn(
            handle,
            opb,
            opa,
            n,
            m,
            k,
            self._ptr(alpha, out.dtype),
            b.data.ptr,
            ldb,
            a.data.ptr,
            lda,
            self._ptr(beta, out.dtype),
            out.data.ptr,
            n,
        )

    def matmul(self, a: Any, b: Any, out: Any) -> None:
        self._gemm(a, b, out, 1.0, 0.0)

    def gemm_acc(self, a_t: Any, d: Any, w: Any, alpha: float, tmp: Any) -> None:
        self._gemm(a_t, d, w, alpha, 1.0)

    def col_sum(self, d: Any, out: Any, alpha: float = 1.0, beta: float = 0.0) -> None:
        """``out = α Σ_rows d + β out`` as one ``gemv`` with a ones vector."""
        n, k = d.shape
        key = (n, d.dtype)
        ones = self._ones.get(key)
        if ones is None:
            with self.device:
                ones = self.cp.ones(n, dtype=d.dtype)
            self._ones[key] = ones
        cb = self.cublas
        fn = cb.sgemv if d.dtype == np.float32 else cb.dgemv
        handle = self.cp.cuda.device.get_cublas_handle()
        # d (n, k) row-major is (k, n) column-major with ld k: out = d_cm @ ones
        fn(
            handle,
            cb.CUBLAS_OP_N,
            k,
            n,
            self._ptr(alpha, d.dtype),
            d.data.ptr,
            k,
            ones.data.ptr,
            1,
            self._ptr(beta, d.dtype),
            out.data.ptr,
            1,
        )

    def bias_sgd(self, delta: Any, b: Any, lr: float, tmp: Any) -> None:
        """``b ← b − α Σ_rows δ`` as one ``gemv`` with ``beta = 1``."""
        self.col_sum(delta, b.value, alpha=-lr, beta=1.0)

    def scale(self, w: Any, c: float) -> None:
        self._ew("scale", "T c", "T w", "w = c * w")(w.dtype.type(c), w)

    def linear_act(self, x: Any, w: Any, b: Any, z: Any, blk: Block, buf: dict[str, Any]) -> None:
        """``z ← f(x W + b)``: one GEMM, then one fused bias + activation kernel."""
        self._gemm(x, w, z, 1.0, 0.0)
        self.bias_act(z, b, blk, buf)

    # -- activations (RawKernels: far cheaper to launch from Python than ElementwiseKernels) ---
    def _mask(self, buf: dict[str, Any]) -> Any:
        m = buf.get("mask")
        if m is None:  # the kernels take a mask pointer even where the activation has none
            m = buf["mask"] = self.empty((1,), np.bool_)
        return m

    def bias_act(self, z: Any, b: Any, blk: Block, buf: dict[str, Any]) -> None:
        """``z ← f(z + b)`` in one kernel."""
        total, d = z.size, z.shape[1]
        self._raw("bias_act", z.dtype)(
            ((total + 255) // 256,),
            (256,),
            (
                z,
                b,
                self._mask(buf),
                np.int64(total),
                np.int64(d),
                np.int32(_ACT_CODE[blk.act]),
                z.dtype.type(blk.alpha),
            ),
        )

    def act_backward(self, d: Any, a: Any, blk: Block, buf: dict[str, Any]) -> None:
        """``d ← d ⊙ f'`` in one kernel (nothing to do for identity)."""
        if blk.act == "identity":
            return
        total = d.size
        self._raw("act_bwd", d.dtype)(
            ((total + 255) // 256,),
            (256,),
            (
                d,
                a,
                self._mask(buf),
                np.int64(total),
                np.int32(_ACT_CODE[blk.act]),
                d.dtype.type(blk.alpha),
            ),
        )

    # -- loss ------------------------------------------------------------------------------
    def targets(self, yb: Any, t: Any, lb: dict[str, Any]) -> None:
        cp = self.cp
        if lb.get("fused"):
            return  # the fused kernel reads the labels directly
        if yb.ndim == 2:
            t[...] = yb
        elif t.shape[1] == 1:
            t[:, 0] = yb
        else:
            t.fill(0)
            cp.put(t, lb["base"] + yb, 1.0)

    def loss_grad(self, kind: str, out: Any, t: Any, delta: Any, lb: dict[str, Any]) -> Any:
        cp = self.cp
        n = out.shape[0]
        if lb.get("fused"):  # softmax-ce on class indices: one kernel, totals accumulated in it
            k = out.shape[1]
            self._raw("softmax_ce", out.dtype)(
                ((n + 127) // 128,),
                (128,),
                (out, lb["yb"], delta, self._loss, self._hits, np.int32(n), np.int32(k)),
            )
            return None
        s, tmp = lb["s"], lb["tmp"]
        if kind == "softmax-ce":
            rmax, rsum = lb["rmax"], lb["rsum"]
            cp.max(out, axis=1, keepdims=True, out=rmax)
            cp.subtract(out, rmax, out=s)
            cp.exp(s, out=tmp)
            cp.sum(tmp, axis=1, keepdims=True, out=rsum)
            cp.log(rsum, out=rsum)
            cp.subtract(s, rsum, out=s)
            cp.exp(s, out=delta)
            cp.multiply(t, s, out=tmp)
            cost = -cp.sum(tmp) / n
            cp.subtract(delta, t, out=delta)
            cp.divide(delta, n, out=delta)
            return cost
        if kind == "bce":
            self._ew(
                "bce_terms",
                "T z, T t",
                "T per, T d",
                "T e = exp(-fabs(z)); per = ((z > (T)0 ? z : (T)0) - t * z) + log1p(e); "
                "T sig = z >= (T)0 ? (T)1 / ((T)1 + e) : e / ((T)1 + e); d = sig - t",
            )(out, t, s, delta)
            cost = cp.sum(s) / n
            cp.divide(delta, n, out=delta)
            return cost
        cp.subtract(out, t, out=s)
        cp.multiply(s, s, out=tmp)
        cost = 0.5 * cp.sum(tmp) / n
        cp.divide(s, n, out=delta)
        return cost

    def count_correct(self, out: Any, yb: Any, lb: dict[str, Any]) -> Any:
        cp = self.cp
        if lb.get("fused"):
            return None  # counted by the softmax-ce kernel
        pred = (out[:, 0] > 0).astype(yb.dtype) if out.shape[1] == 1 else cp.argmax(out, axis=1)
        target = cp.argmax(yb, axis=1) if yb.ndim == 2 else yb
        return cp.count_nonzero(pred == target)

    # -- running totals, on the device ------------------------------------------------------
    def reset_totals(self) -> None:
        """Zero the epoch's device totals (and make sure cuBLAS reads α, β from the host)."""
        self._loss.fill(0)
        self._hits.fill(0)
        handle = self.cp.cuda.device.get_cublas_handle()
        self.cublas.setPointerMode(handle, self.cublas.CUBLAS_POINTER_MODE_HOST)

    def add_totals(self, cost: Any, correct: Any, n: int) -> None:
        if cost is not None:
            self._loss += cost * n
        if correct is not None:
            self._hits += correct.astype(np.uint64)

    def read_totals(self) -> tuple[float, float]:
        return float(self._loss), float(self._hits)

    def begin_step(self, opt: Any) -> None:
        """(CuPy steps are not captured: Adam reads ``opt.t`` on the host.)"""

    # -- updates (one fused kernel each) ----------------------------------------------------
    def add_l2(self, g: Any, w: Any, lam: float, tmp: Any) -> None:
        self._ew("l2", "T w, T lam", "T g", "g = g + lam * w")(w, g.dtype.type(lam), g)

    def update(self, opt: Any, w: Any, g: Any, state: Any, tmp: Any, tmp2: Any) -> None:
        T = w.dtype.type
        name = opt.name
        if name == "sgd":
            self._ew("sgd", "T g, T lr", "T w", "w = w - lr * g")(g, T(opt.lr), w)
        elif name == "momentum":
            self._ew("momentum", "T g, T lr, T mu", "T w, T v", "v = mu * v + g; w = w - lr * v")(
                g, T(opt.lr), T(opt.momentum), w, state
            )
        elif name == "nesterov":
            self._ew("nesterov", "T g, T lr, T mu", "T w, T v", "v = mu * v + g; w = w - lr * (g + mu * v)")(
                g, T(opt.lr), T(opt.momentum), w, state
            )
        else:
            m, s = state
            self._ew(
                "adam",
                "T g, T lr, T b1, T b2, T ob1, T ob2, T c1, T c2, T eps",
                "T w, T m, T s",
                "m = b1 * m + ob1 * g; s = b2 * s + (ob2 * g) * g; w = w - (lr * (m / c1)) / (sqrt(s / c2) + eps)",
            )(
                g,
                T(opt.lr),
                T(opt.beta1),
                T(opt.beta2),
                T(1 - opt.beta1),
                T(1 - opt.beta2),
                T(1 - opt.beta1**opt.t),
                T(1 - opt.beta2**opt.t),
                T(opt.eps),
                w,
                m,
                s,
            )
