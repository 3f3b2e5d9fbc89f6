"""Fast epoch runners: the textbook step with reused buffers, in-place kernels and fused updates.

The plain runner (:class:`chainrule.train.loop.PlainRunner`) walks the layers through the driver and
allocates fresh arrays for every intermediate. A fast runner does *the same arithmetic* for the
networks it covers, written as one flat step over preallocated buffers:

* every intermediate lives in a buffer allocated once per batch size (a second set for the
  final partial batch), so the steady-state step allocates nothing;
* the batch is gathered into a reused buffer (``take(x, idx, out=xb)``);
* GEMMs write into their output (``matmul(a, b, out=c)``) and read transposed *views*
  (``xᵀ``, ``Wᵀ``) that BLAS consumes with a transpose flag, never a copy;
* bias, activation, activation derivative and the update run in place;
* the first layer skips its input gradient (nobody trains the data);
* with plain SGD each weight update is one GEMM with ``beta = 1`` (``W += −α xᵀδ``), so the
  weight gradient is never written out and read back; with the other optimisers gradients land
  in ``param.grad`` as usual;
* optimiser state (velocities, moments, the step count) is the optimiser's own, so the fast and
  plain runners can be swapped between epochs.

The step is written once (:class:`FastRunner`) against a small set of named primitives, an
"ops" object per backend: :class:`NumpyOps` here; torch (CPU and CUDA, with CUDA-graph capture)
and CuPy (fused ``ElementwiseKernel`` / ``RawKernel``) in :mod:`chainrule.accel.gpu`. Each
primitive mirrors the plain code's operations one for one, so on NumPy the fast path's float32
weights equal the plain path's: bit for bit, but for the one rounding the fused SGD update saves
(tests in ``tests/test_fast.py``).

The loss a fast runner reports is the data loss without the L2 penalty; :func:`~chainrule.train.loop.fit`
adds ``(λ/2) ΣW²`` once per epoch.

Covered: ``Dense`` layers, each optionally followed by one element-wise activation (identity,
relu, leaky_relu with α ≥ 0, sigmoid, tanh), any of the three losses, the four optimisers, L2.
Anything else (maxout, softplus, a standalone softmax, hooks) gets ``None`` from
:func:`make_fast_runner` and trains on the plain runner.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import math
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from chainrule.backend import backend_of

__all__ = ["FastRunner", "NumpyOps", "limit_threads", "make_fast_runner", "plan_blocks"]

#: element-wise activations the fast step implements (the plain layers' ``kind``)
FAST_ACTIVATIONS = ("identity", "relu", "leaky_relu", "sigmoid", "tanh")


# --------------------------------------------------------------------------------------------
# threads
# --------------------------------------------------------------------------------------------


@contextlib.contextmanager
def limit_threads(n: int | None) -> Iterator[None]:
    """Limit BLAS/OpenMP threads (threadpoolctl) and torch's intra-op threads to ``n`` inside a
    ``with`` block; ``None`` leaves everything as it is. Torch is only touched if already imported."""
    if not n:
        yield
        return
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - threadpoolctl is in the cli extra
        from chainrule.errors import MissingDependencyError

        raise MissingDependencyError("threadpoolctl", "limiting threads", "cli") from None
    torch = sys.modules.get("torch")
    old_torch = torch.get_num_threads() if torch is not None else None
    with threadpool_limits(limits=int(n)):
        if torch is not None:
            torch.set_num_threads(int(n))
        try:
            yield
        finally:
            if torch is not None and old_torch is not None:
                torch.set_num_threads(old_torch)


# --------------------------------------------------------------------------------------------
# the network, as the fast step sees it
# --------------------------------------------------------------------------------------------


@dataclass
class Block:
    """One ``Dense`` layer and the element-wise activation after it: ``a = f(x W + b)``."""

    dense: Any
    act: str = "identity"
    alpha: float = 0.0  # leaky_relu's slope


def plan_blocks(net: Any) -> list[Block] | None:
    """The network as Dense(+activation) blocks, or ``None`` if the fast step does not cover it."""
    from chainrule.nn.layers import Dense

    blocks: list[Block] = []
    for layer in net.layers:
        if isinstance(layer, Dense):
            blocks.append(Block(layer))
        elif layer.kind == "identity" and blocks:
            continue
        elif layer.kind in FAST_ACTIVATIONS and blocks and blocks[-1].act == "identity":
            alpha = float(getattr(layer, "alpha", 0.0))
            if layer.kind == "leaky_relu" and not alpha >= 0:
                return None  # a negative slope would make "a > 0" differ from "z > 0"
            blocks[-1].act, blocks[-1].alpha = layer.kind, alpha
        else:
            return None
    return blocks or None


# --------------------------------------------------------------------------------------------
# NumPy primitives
# --------------------------------------------------------------------------------------------


class NumpyOps:
    """The fast step's primitives on NumPy arrays, every one in place or into ``out``.

    Each mirrors the operations of the plain layer it replaces (same ufuncs, same order), so
    results agree bit for bit with the plain path on the same BLAS.
    """

    name = "numpy"
    bool_dtype, int_dtype = np.bool_, np.int64

    def __init__(self) -> None:
        self._gemm = _cblas_gemm()
        self._loss = 0.0
        self._correct = 0

    # -- memory ----------------------------------------------------------------------------
    def empty(self, shape: tuple[int, ...], dtype: Any) -> np.ndarray:
        return np.empty(shape, dtype=dtype)

    def int_range(self, n: int, step: int) -> np.ndarray:
        """``[0, step, 2·step, ...]`` (n entries, int64)."""
        return np.arange(0, n * step, step, dtype=np.int64)

    def index_array(self, order: np.ndarray) -> np.ndarray:
        """The epoch's permutation where the gather runs (the host, here)."""
        return np.asarray(order, dtype=np.intp)

    def take_rows(self, src: np.ndarray, idx: np.ndarray, out: np.ndarray) -> None:
        """``out = src[idx]``. ``mode='clip'`` lets NumPy write straight into ``out``
        (``mode='raise'`` buffers); the indices come from a permutation, so nothing is clipped."""
        np.take(src, idx, axis=0, out=out, mode="clip")

    def gather_batch(self, x: np.ndarray, y: np.ndarray, idx: np.ndarray, bufs: dict[str, Any]) -> None:
        """The batch ``x[idx], y[idx]`` into ``bufs['x'], bufs['y']``."""
        self.take_rows(x, idx, bufs["x"])
        self.take_rows(y, idx, bufs["y"])

    def prepare(self, bufs: dict[str, Any], loss_kind: str) -> None:
        """Backend-specific set-up of a new buffer set (nothing for NumPy)."""

    # -- linear algebra --------------------------------------------------------------------
    def matmul(self, a: np.ndarray, b: np.ndarray, out: np.ndarray) -> None:
        """``out = a @ b``; ``a``/``b`` may be transposed views (BLAS reads them with a flag)."""
        np.matmul(a, b, out=out)

    def gemm_acc(self, a_t: np.ndarray, d: np.ndarray, w: np.ndarray, alpha: float, tmp: np.ndarray) -> None:
        """``w ← w + α (a_t @ d)``, ``a_t`` being the transposed view ``aᵀ`` of a batch buffer.

        With the CBLAS entry point (:func:`_cblas_gemm`) this is one GEMM with ``beta = 1``:
        the SGD update of a weight without writing its gradient out and reading it back twice.
        Otherwise ``tmp = a_t @ d; tmp ← α tmp; w ← w + tmp``, which for ``α = −lr`` is exactly
        the plain ``W − lr·g``.
        """
        a = a_t.T
        fn = self._gemm.get(w.dtype) if self._gemm is not None else None
        if fn is not None and a.flags.c_contiguous and d.flags.c_contiguous and w.flags.c_contiguous:
            _gemm_at_d(fn, a, d, w, alpha)
            return
        np.matmul(a_t, d, out=tmp)
        np.multiply(tmp, alpha, out=tmp)
        np.add(w, tmp, out=w)

    def scale(self, w: np.ndarray, c: float) -> None:
        """``w ← c · w`` in place."""
        np.multiply(w, c, out=w)

    def col_sum(self, d: np.ndarray, out: np.ndarray) -> None:
        """``out = Σ_rows d`` (the bias gradient)."""
        np.sum(d, axis=0, out=out)

    def bias_sgd(self, delta: np.ndarray, b: Any, lr: float, tmp: np.ndarray) -> None:
        """``∂E/∂b = Σ_rows δ`` into ``b.grad``, then ``b ← b − α ∂E/∂b``."""
        np.sum(delta, axis=0, out=b.grad)
        np.multiply(b.grad, lr, out=tmp)
        np.subtract(b.value, tmp, out=b.value)

    # -- activations -----------------------------------------------------------------------
    def linear_act(
        self, x: np.ndarray, w: np.ndarray, b: np.ndarray, z: np.ndarray, blk: Block, buf: dict[str, Any]
    ) -> None:
        """``z ← f(x W + b)``: the GEMM into the buffer, then bias and activation in place."""
        np.matmul(x, w, out=z)
        self.bias_act(z, b, blk, buf)

    def bias_act(self, z: np.ndarray, b: np.ndarray, blk: Block, buf: dict[str, Any]) -> None:
        """``z ← f(z + b)`` in place (``buf`` holds the masks/scratch a backward needs)."""
        np.add(z, b, out=z)
        act = blk.act
        if act == "relu":  # max(z, 0)
            np.maximum(z, 0.0, out=z)
        elif act == "leaky_relu":  # where(z > 0, z, αz): scale the z ≤ 0 entries in place
            m = buf["mask"]
            np.less_equal(z, 0.0, out=m)
            np.multiply(z, blk.alpha, out=z, where=m)
        elif act == "tanh":
            np.tanh(z, out=z)
        elif act == "sigmoid":
            _sigmoid_into(z, z, buf["mask"], buf["tmp"], buf["tmp2"])

    def act_backward(self, d: np.ndarray, a: np.ndarray, blk: Block, buf: dict[str, Any]) -> None:
        """``d ← d ⊙ f'`` in place, ``f'`` written from the output ``a`` as the plain layer does."""
        act = blk.act
        if act == "relu":  # dy ⊙ [z > 0]; z > 0 ⇔ a > 0
            m = buf["mask"]
            np.greater(a, 0.0, out=m)
            np.multiply(d, m, out=d)
        elif act == "leaky_relu":  # where(z > 0, dy, α dy); the mask (z ≤ 0) is kept from forward
            np.multiply(d, blk.alpha, out=d, where=buf["mask"])
        elif act == "tanh":  # dy ⊙ (1 − a²)
            t = buf["tmp"]
            np.multiply(a, a, out=t)
            np.subtract(1.0, t, out=t)
            np.multiply(d, t, out=d)
        elif act == "sigmoid":  # dy ⊙ a ⊙ (1 − a)
            t = buf["tmp"]
            np.subtract(1.0, a, out=t)
            np.multiply(d, a, out=d)
            np.multiply(d, t, out=d)

    # -- loss ------------------------------------------------------------------------------
    def targets(self, yb: np.ndarray, t: np.ndarray, lb: dict[str, Any]) -> None:
        """``t`` = the targets as rows of the output dtype (one-hot for class indices)."""
        k = t.shape[1]
        if yb.ndim == 2:
            np.copyto(t, yb, casting="unsafe")
        elif k == 1:
            np.copyto(t[:, 0], yb, casting="unsafe")
        else:  # one-hot: put 1 at flat index row·K + y
            lin = lb["lin"]
            np.add(lb["base"], yb, out=lin)
            t.fill(0)
            np.put(t, lin, 1.0)

    def loss_grad(
        self, kind: str, out: np.ndarray, t: np.ndarray, delta: np.ndarray, lb: dict[str, Any]
    ) -> Any:
        """The batch-mean loss ``E`` (0-d) and ``delta ← ∂E/∂out``, as in :mod:`chainrule.nn.losses`."""
        n = out.shape[0]
        s, tmp = lb["s"], lb["tmp"]
        if kind == "softmax-ce":
            rmax, rsum = lb["rmax"], lb["rsum"]
            np.max(out, axis=1, keepdims=True, out=rmax)
            np.subtract(out, rmax, out=s)  # shifted = z − max z
            np.exp(s, out=tmp)
            np.sum(tmp, axis=1, keepdims=True, out=rsum)
            np.log(rsum, out=rsum)
            np.subtract(s, rsum, out=s)  # log p = shifted − log Σ e^shifted
            np.exp(s, out=delta)  # p
            np.multiply(t, s, out=tmp)
            cost = -np.sum(tmp) / n  # E = −(1/N) Σ t log p
            np.subtract(delta, t, out=delta)
            np.divide(delta, n, out=delta)  # δ = (p − t)/N
            return cost
        if kind == "bce":
            np.abs(out, out=tmp)
            np.negative(tmp, out=tmp)
            np.exp(tmp, out=tmp)
            np.log1p(tmp, out=tmp)  # log1p(e^{−|z|})
            np.maximum(out, 0.0, out=s)
            np.multiply(t, out, out=delta)
            np.subtract(s, delta, out=s)
            np.add(s, tmp, out=s)  # max(z,0) − t z + log1p(e^{−|z|})
            cost = np.sum(s) / n
            _sigmoid_into(out, delta, lb["mask"], lb["tmp"], lb["s"])  # δ ← σ(z)
            np.subtract(delta, t, out=delta)
            np.divide(delta, n, out=delta)  # δ = (σ(z) − t)/N
            return cost
        # squared: E = ½ Σ (a − t)² / N, δ = (a − t)/N
        np.subtract(out, t, out=s)
        np.multiply(s, s, out=tmp)
        cost = 0.5 * np.sum(tmp) / n
        np.divide(s, n, out=delta)
        return cost

    def count_correct(self, out: np.ndarray, yb: np.ndarray, lb: dict[str, Any]) -> Any:
        """Rows whose predicted class (argmax, or logit > 0 for one output) equals the label."""
        pred, hit = lb["pred"], lb["hit"]
        if out.shape[1] == 1:
            np.greater(out[:, 0], 0, out=hit)
            np.copyto(pred, hit, casting="unsafe")
        else:
            np.argmax(out, axis=1, out=pred)
        if yb.ndim == 2:
            np.equal(pred, np.argmax(yb, axis=1), out=hit)
        else:
            np.equal(pred, yb, out=hit)
        return np.count_nonzero(hit)

    # -- running totals of an epoch (host numbers: reading a NumPy scalar costs nothing) -----
    def reset_totals(self) -> None:
        self._loss, self._correct = 0.0, 0

    def add_totals(self, cost: Any, correct: Any, n: int) -> None:
        """Add a batch's mean loss (weighted by its size ``n``) and its correct rows."""
        self._loss += float(cost) * n
        self._correct += int(correct)

    def read_totals(self) -> tuple[float, float]:
        """``(Σ batch loss × batch size, Σ correct)`` since :meth:`reset_totals`."""
        return self._loss, float(self._correct)

    def begin_step(self, opt: Any) -> None:
        """Called once per update step after ``opt.t`` has been incremented (no-op here)."""

    # -- updates (optim.py's formulas, in place) -------------------------------------------
    def add_l2(self, g: np.ndarray, w: np.ndarray, lam: float, tmp: np.ndarray) -> None:
        """``g ← g + λ W`` (seed 001; weights only)."""
        np.multiply(w, lam, out=tmp)
        np.add(g, tmp, out=g)

    def update(
        self, opt: Any, w: np.ndarray, g: np.ndarray, state: Any, tmp: np.ndarray, tmp2: np.ndarray
    ) -> None:
        """One optimiser update of ``w`` from ``g`` (``opt.t`` already counts this step)."""
        name, lr = opt.name, opt.lr
        if name == "sgd":  # W ← W − α g
            np.multiply(g, lr, out=tmp)
        elif name == "momentum":  # v ← μ v + g;  W ← W − α v
            np.multiply(state, opt.momentum, out=state)
            np.add(state, g, out=state)
            np.multiply(state, lr, out=tmp)
        elif name == "nesterov":  # v ← μ v + g;  W ← W − α (g + μ v)
            np.multiply(state, opt.momentum, out=state)
            np.add(state, g, out=state)
            np.multiply(state, opt.momentum, out=tmp)
            np.add(g, tmp, out=tmp)
            np.multiply(tmp, lr, out=tmp)
        else:  # adam: m ← β₁m + (1−β₁)g; s ← β₂s + (1−β₂)g²; W ← W − α m̂ / (√ŝ + ε)
            m, s = state
            np.multiply(m, opt.beta1, out=m)
            np.multiply(g, 1 - opt.beta1, out=tmp)
            np.add(m, tmp, out=m)
            np.multiply(s, opt.beta2, out=s)
            np.multiply(g, 1 - opt.beta2, out=tmp)
            np.multiply(tmp, g, out=tmp)
            np.add(s, tmp, out=s)
            np.divide(s, 1 - opt.beta2**opt.t, out=tmp2)  # ŝ
            np.sqrt(tmp2, out=tmp2)
            np.add(tmp2, opt.eps, out=tmp2)
            np.divide(m, 1 - opt.beta1**opt.t, out=tmp)  # m̂
            np.multiply(tmp, lr, out=tmp)
            np.divide(tmp, tmp2, out=tmp)
        np.subtract(w, tmp, out=w)


def _sigmoid_into(z: np.ndarray, out: np.ndarray, mask: np.ndarray, e: np.ndarray, den: np.ndarray) -> None:
    """``out ← σ(z)`` stably, as :func:`chainrule.nn.layers.activations.sigmoid`, in scratch buffers:
    ``e = exp(−|z|)``; ``σ = 1/(1+e)`` where z ≥ 0, ``e/(1+e)`` elsewhere. ``out`` may be ``z``."""
    np.greater_equal(z, 0.0, out=mask)
    np.abs(z, out=e)
    np.negative(e, out=e)
    np.exp(e, out=e)
    np.add(1.0, e, out=den)
    np.copyto(e, 1.0, where=mask)
    np.divide(e, den, out=out)


_ROW_MAJOR, _NO_TRANS, _TRANS = 101, 111, 112


@functools.cache
def _cblas_gemm() -> dict[np.dtype, Any] | None:
    """``cblas_sgemm`` / ``cblas_dgemm`` of the OpenBLAS NumPy itself loaded, via ctypes.

    NumPy's ``matmul`` always overwrites its output; the SGD update wants ``W += −α xᵀ δ``,
    which BLAS does in one pass with ``beta = 1``. The library is the one threadpoolctl reports
    for NumPy (so thread limits apply to it); the entry points are looked up under the names
    NumPy's wheels (``scipy_cblas_sgemm64_``, ILP64) and plain OpenBLAS builds use. A tiny
    self-test against ``np.matmul`` must pass, else this returns ``None`` and the caller keeps
    the two-step update. ``CHAINRULE_NO_CBLAS=1`` turns it off.
    """
    import os

    if os.environ.get("CHAINRULE_NO_CBLAS"):
        return None
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return None
    np_dir = os.path.dirname(os.path.dirname(np.__file__))
    for info in threadpool_info():
        path = info.get("filepath") or ""
        if info.get("internal_api") != "openblas" or not (
            "scipy_openblas" in os.path.basename(path) or path.startswith(np_dir + os.sep + "numpy")
        ):
            continue
        try:
            lib = ctypes.CDLL(path)
        except OSError:
            continue
        for prefix, suffix, int_t in (
            ("scipy_cblas_", "64_", ctypes.c_int64),
            ("cblas_", "64_", ctypes.c_int64),
            ("scipy_cblas_", "", ctypes.c_int),
            ("cblas_", "", ctypes.c_int),
        ):
            fns = {}
            for letter, dtype, real in (
                ("s", np.float32, ctypes.c_float),
                ("d", np.float64, ctypes.c_double),
            ):
                fn = getattr(lib, f"{prefix}{letter}gemm{suffix}", None)
                if fn is None:
                    break
                e, i, p = ctypes.c_int, int_t, ctypes.c_void_p
                fn.argtypes = [e, e, e, i, i, i, real, p, i, p, i, real, p, i]
                fn.restype = None
                fns[np.dtype(dtype)] = fn
            if len(fns) == 2 and _gemm_self_test(fns):
                return fns
    return None


def _gemm_at_d(fn: Any, a: np.ndarray, d: np.ndarray, w: np.ndarray, alpha: float) -> None:
    """``w ← w + α aᵀ d`` through CBLAS ``?gemm`` (row major, ``beta = 1``); all C-contiguous."""
    (k, m), n = a.shape, d.shape[1]
    ptr_a, ptr_d, ptr_w = a.ctypes.data, d.ctypes.data, w.ctypes.data
    fn(_ROW_MAJOR, _TRANS, _NO_TRANS, m, n, k, alpha, ptr_a, m, ptr_d, n, 1.0, ptr_w, n)


def _gemm_self_test(fns: dict[np.dtype, Any]) -> bool:
    rng = np.random.default_rng(0)
    for dtype, fn in fns.items():
        a = rng.standard_normal((5, 3)).astype(dtype)
        d = rng.standard_normal((5, 4)).astype(dtype)
        w = rng.standard_normal((3, 4)).astype(dtype)
        want = w + 0.5 * (a.T @ d)
        _gemm_at_d(fn, a, d, w, 0.5)
        if not np.allclose(w, want, rtol=1e-5, atol=1e-6):
            return False
    return True


# --------------------------------------------------------------------------------------------
# the step, written once
# --------------------------------------------------------------------------------------------


class FastRunner:
    """Epoch runner for Dense(+activation) stacks: the plain step, flattened onto buffers.

    For blocks ``l = 1..L`` with ``a⁰ = x_batch``::

        forward    z^l = a^{l-1} W^l + b^l ;  a^l = f_l(z^l)            (in place: a^l overwrites z^l)
        loss       E, δ^L_a = ∂E/∂a^L                                    (fused per loss)
        backward   δ^l = δ^l_a ⊙ f_l'(a^l)                               (in place)
                   ∂E/∂W^l = (a^{l-1})ᵀ δ^l  [+ λ W^l] ;  ∂E/∂b^l = Σ_rows δ^l
                   δ^{l-1}_a = δ^l (W^l)ᵀ                                (skipped for l = 1)
        update     W^l, b^l ← optimiser(∂E/∂W^l, ∂E/∂b^l)

    Each layer is updated as soon as its input gradient ``δ^{l-1}_a`` has been computed from the
    old ``W^l``, so the result is the plain runner's (all gradients first, then all updates).
    """

    def __init__(self, net: Any, optimizer: Any, l2: float, ops: Any, blocks: list[Block]) -> None:
        self.net, self.optimizer, self.l2, self.ops, self.blocks = net, optimizer, float(l2), ops, blocks
        self.loss_kind = net.loss.name
        self.name = f"fast-{ops.name}"
        self._buffers: dict[tuple[int, tuple[int, ...], Any], dict[str, Any]] = {}
        pos = {id(p): k for k, p in enumerate(net.params)}
        #: per block, the positions of W and b in ``net.params`` (= in the optimiser's state list)
        self._pos = [(pos[id(blk.dense.W)], pos[id(blk.dense.b)]) for blk in blocks]
        self._scratch: list[tuple[Any, Any]] | None = None

    # -- buffers ---------------------------------------------------------------------------
    def buffers(self, n: int, y_shape: tuple[int, ...], y_dtype: Any) -> dict[str, Any]:
        """Every array one step of batch size ``n`` needs, allocated on first use."""
        key = (n, tuple(y_shape), y_dtype)
        bufs = self._buffers.get(key)
        if bufs is not None:
            return bufs
        ops = self.ops
        dt = self.blocks[0].dense.W.value.dtype
        d_in = self.blocks[0].dense.in_features
        k = self.blocks[-1].dense.out_features
        layers = []
        for blk in self.blocks:
            d = blk.dense.out_features
            lb: dict[str, Any] = {"a": ops.empty((n, d), dt), "delta": ops.empty((n, d), dt)}
            if blk.act in ("relu", "leaky_relu", "sigmoid"):
                lb["mask"] = ops.empty((n, d), ops.bool_dtype)
            if blk.act in ("tanh", "sigmoid"):
                lb["tmp"] = ops.empty((n, d), dt)
            if blk.act == "sigmoid":
                lb["tmp2"] = ops.empty((n, d), dt)
            layers.append(lb)
        loss = {
            "t": ops.empty((n, k), dt),
            "s": ops.empty((n, k), dt),
            "tmp": ops.empty((n, k), dt),
            "mask": ops.empty((n, k), ops.bool_dtype),
            "rmax": ops.empty((n, 1), dt),
            "rsum": ops.empty((n, 1), dt),
            "pred": ops.empty((n,), ops.int_dtype),
            "hit": ops.empty((n,), ops.bool_dtype),
            "lin": ops.empty((n,), ops.int_dtype),
        }
        loss["base"] = ops.int_range(n, k)  # row · K, for one-hot rows
        bufs = {
            "x": ops.empty((n, d_in), dt),
            "y": ops.empty((n, *tuple(y_shape[1:])), y_dtype),
            "layers": layers,
            "loss": loss,
        }
        ops.prepare(bufs, self.loss_kind)
        self._buffers[key] = bufs
        return bufs

    def _param_scratch(self) -> list[tuple[Any, Any]]:
        scratch = self._scratch
        if scratch is None:
            ops = self.ops
            dt = self.blocks[0].dense.W.value.dtype
            scratch = [(ops.empty(p.value.shape, dt), ops.empty(p.value.shape, dt)) for p in self.net.params]
            self._scratch = scratch
        return scratch

    def _opt_state(self) -> list[Any]:
        """The optimiser's own state list (velocity, moments), created as ``Optimizer.step`` does."""
        opt, params = self.optimizer, self.net.params
        return opt.state_for(params)

    # -- the step --------------------------------------------------------------------------
    def step(self, bufs: dict[str, Any], *, update: bool = True) -> None:
        """Forward, loss, backward (and update) on the batch already in ``bufs['x']``/``['y']``.

        The batch's loss ``E`` (without the L2 penalty, which :func:`~chainrule.train.loop.fit` adds
        once per epoch) and its correct rows go to the ops' running totals. With plain SGD the
        weight update is one GEMM per layer and the gradients need not be stored (``W.grad`` is
        not written; on torch and CuPy ``b.grad`` neither).
        """
        ops, blocks, layers, lb = self.ops, self.blocks, bufs["layers"], bufs["loss"]
        n = bufs["x"].shape[0]
        # forward: z^l = a^{l-1} W^l + b^l ;  a^l = f(z^l)
        a_prev = bufs["x"]
        for blk, buf in zip(blocks, layers, strict=True):
            ops.linear_act(a_prev, blk.dense.W.value, blk.dense.b.value, buf["a"], blk, buf)
            a_prev = buf["a"]
        out, yb = layers[-1]["a"], bufs["y"]
        correct = ops.count_correct(out, yb, lb)
        # loss: E and δ^L_a = ∂E/∂a^L
        ops.targets(yb, lb["t"], lb)
        cost = ops.loss_grad(self.loss_kind, out, lb["t"], layers[-1]["delta"], lb)
        ops.add_totals(cost, correct, n)
        # backward, last block first, each block updated once its δ has gone down
        opt, l2 = self.optimizer, self.l2
        scratch = self._param_scratch()
        if update:
            state = self._opt_state()
            opt.tick()
            ops.begin_step(opt)
        sgd = update and opt.name == "sgd"
        for i in range(len(blocks) - 1, -1, -1):
            blk, buf = blocks[i], layers[i]
            W, b, delta = blk.dense.W, blk.dense.b, buf["delta"]
            a_in = layers[i - 1]["a"] if i > 0 else bufs["x"]
            jw, jb = self._pos[i]
            ops.act_backward(delta, buf["a"], blk, buf)  # δ^l = δ^l_a ⊙ f'(a^l)
            if i > 0:  # the first layer skips ∂E/∂x: nobody trains the data
                ops.matmul(delta, W.value.T, out=layers[i - 1]["delta"])  # δ^{l-1}_a = δ^l (W^l)ᵀ
            if sgd:  # W ← W − α (a^{l-1})ᵀ δ^l as one GEMM; with L2, W ← (1 − αλ) W first
                if l2 and W.decay:
                    ops.scale(W.value, 1 - opt.lr * l2)
                ops.gemm_acc(a_in.T, delta, W.value, -opt.lr, scratch[jw][0])
                ops.bias_sgd(delta, b, opt.lr, scratch[jb][0])  # b ← b − α Σ_rows δ^l
                continue
            ops.col_sum(delta, out=b.grad)  # ∂E/∂b = Σ_rows δ^l
            ops.matmul(a_in.T, delta, out=W.grad)  # ∂E/∂W = (a^{l-1})ᵀ δ^l
            if l2 and W.decay:
                ops.add_l2(W.grad, W.value, l2, scratch[jw][0])  # ∂E/∂W += λ W
            if update:
                ops.update(opt, W.value, W.grad, state[jw], *scratch[jw])
                ops.update(opt, b.value, b.grad, state[jb], *scratch[jb])

    def loss_and_grad(self, x: Any, y: Any) -> float:
        """``E`` of the batch ``(x, y)`` (no L2 penalty) with its gradients left in every
        ``param.grad`` (``+ λW`` for weights with L2) and no update: the fast counterpart of
        :meth:`Sequential.loss_and_grad`, used by the tests."""
        bufs = self.buffers(x.shape[0], tuple(y.shape), y.dtype)
        bufs["x"][...] = x
        bufs["y"][...] = y
        self.ops.reset_totals()
        self.step(bufs, update=False)
        return self.ops.read_totals()[0] / x.shape[0]

    # -- the epoch -------------------------------------------------------------------------
    def run_epoch(
        self, x: Any, y: Any, order: np.ndarray, batch_size: int, on_step: Callable[[], None]
    ) -> tuple[float, float]:
        """Train one epoch over ``x[order]`` in batches; returns (mean batch loss weighted by
        batch size, running accuracy). ``on_step()`` is called after every step."""
        ops = self.ops
        n = len(order)
        idx_all = ops.index_array(order)
        ops.reset_totals()
        for start in range(0, n, batch_size):
            stop = min(start + batch_size, n)
            bufs = self.buffers(stop - start, tuple(y.shape), y.dtype)
            ops.gather_batch(x, y, idx_all[start:stop], bufs)  # x[idx], y[idx] into reused buffers
            self.step(bufs)
            on_step()
        loss_sum, correct = ops.read_totals()
        return loss_sum / n, correct / n


# --------------------------------------------------------------------------------------------
# dispatch
# --------------------------------------------------------------------------------------------


def make_fast_runner(net: Any, optimizer: Any, l2: float) -> Any:
    """A fast runner for ``net`` with ``optimizer`` and L2 strength ``l2``, or ``None`` when the
    network, loss or optimiser is not covered (the caller then uses the plain runner)."""
    if getattr(net, "hooks", None) or net.loss is None:
        return None
    if getattr(optimizer, "name", None) not in ("sgd", "momentum", "nesterov", "adam"):
        return None
    if net.loss.name not in ("softmax-ce", "bce", "squared"):
        return None
    blocks = plan_blocks(net)
    if blocks is None:
        return None
    dtypes = {str(p.value.dtype) for p in net.params}
    if len(dtypes) != 1 or not (math.isfinite(l2) and l2 >= 0):
        return None
    backend = backend_of(net.params[0].value)
    if backend.name == "numpy":
        return FastRunner(net, optimizer, l2, NumpyOps(), blocks)
    from chainrule.accel import gpu as fast_gpu

    return fast_gpu.make_runner(backend, net, optimizer, l2, blocks)
