"""The fast step's primitives on CuPy arrays: :class:`NumpyOps` with ``xp = cupy``, overriding only
what differs on the GPU.

Shared with NumPy (CuPy's ufuncs take ``out=`` as NumPy's do): the bias add, scaling, the bias
gradient ``Σ_rows δ``, the loss kernels (all three, but for one fused case), counting correct
rows, the layer and update dispatch. Overridden:

* GEMM and the bias update: cuBLAS ``gemm``/``gemv`` called directly with precomputed pointers
  (``beta = 1`` for the SGD updates);
* one ``RawKernel`` each for the batch gather, bias + activation, and the activation's
  derivative (the activation table maps a layer kind to the kernels' branch); softmax +
  cross-entropy + its gradient + the loss sum + the hit count for class-index labels;
* the optimisers' updates as fused ``ElementwiseKernel``s;
* totals on the device.

CuPy cannot capture cuBLAS calls in a graph (CuPy 14 raises ``NotImplementedError`` during stream
capture), so CuPy steps are launched one by one and made cheap instead. Importing this module
does not import CuPy; making a :class:`CupyOps` does.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

import numpy as np

from chainrule.accel.cupy_kernels import ACT_CODES, NVCC_OPTIONS, RAW_SOURCE, UPDATE_BODIES
from chainrule.accel.loss_kernels import LOSS_KERNELS
from chainrule.accel.numpy_ops import NumpyOps
from chainrule.accel.plan import ActKernel, Block, slope_not_negative

__all__ = ["CUPY_ACTS", "CUPY_UPDATES", "CupyOps"]


#: layer kind → the branch of the fused ``bias_act`` / ``act_bwd`` kernels (:mod:`.cupy_kernels`)
CUPY_ACTS = {kind: ActKernel(code=code) for kind, code in ACT_CODES.items()}
CUPY_ACTS["leaky_relu"] = ActKernel(
    code=ACT_CODES["leaky_relu"], scratch=("mask",), accepts=slope_not_negative
)


def _softmax_ce(ops: Any, out: Any, yb: Any, delta: Any, lb: dict[str, Any]) -> Any:
    """Class-index labels: one kernel, one thread per row, computes ``log p``, ``δ = (p − onehot(y))/N``
    and adds ``−log p_y`` and the hit to the epoch's totals. Other targets: the shared kernel."""
    if not lb["fused"]:
        return LOSS_KERNELS["softmax-ce"](ops, out, yb, delta, lb)
    n, k = out.shape
    ops.launch(
        "softmax_ce", out.dtype, n, (out, yb, delta, ops.loss_total, ops.hit_total, np.int32(n), np.int32(k))
    )
    return None


def _lr(ops: Any, opt: Any, T: Any) -> tuple[Any, ...]:
    return (T(opt.lr),)


def _lr_mu(ops: Any, opt: Any, T: Any) -> tuple[Any, ...]:
    return T(opt.lr), T(opt.momentum)


def _adam_hyper(ops: Any, opt: Any, T: Any) -> tuple[Any, ...]:
    c1, c2 = ops.bias_corrections(opt)
    b1, b2 = opt.beta1, opt.beta2
    return T(opt.lr), T(b1), T(b2), T(1 - b1), T(1 - b2), T(c1), T(c2), T(opt.eps)


def _fused(hyper: Callable[..., tuple[Any, ...]]) -> Callable[..., None]:
    """The update kernel that launches ``opt.name``'s fused ``ElementwiseKernel``
    (:data:`~chainrule.accel.cupy_kernels.UPDATE_BODIES`) with the hyperparameters ``hyper`` reads."""

    def update(ops: Any, opt: Any, w: Any, g: Any, state: Any, tmp: Any, tmp2: Any) -> None:
        kernel = ops.elementwise(opt.name, *UPDATE_BODIES[opt.name])
        states = state if isinstance(state, tuple) else (() if state is None else (state,))
        kernel(g, *hyper(ops, opt, w.dtype.type), w, *states)

    return update


#: optimiser name → its fused update (inputs ``g, hyperparameters``; outputs ``w, state``)
CUPY_UPDATES = {
    "sgd": _fused(_lr),
    "momentum": _fused(_lr_mu),
    "nesterov": _fused(_lr_mu),
    "adam": _fused(_adam_hyper),
}


class CupyOps(NumpyOps):
    """The fast step's primitives on CuPy arrays: direct cuBLAS calls and fused kernels."""

    name = "cupy"
    ACTS: ClassVar[dict[str, ActKernel]] = CUPY_ACTS
    LOSSES: ClassVar[dict[str, Callable[..., Any]]] = {**LOSS_KERNELS, "softmax-ce": _softmax_ce}
    UPDATES: ClassVar[dict[str, Callable[..., Any]]] = CUPY_UPDATES

    def __init__(self, device: str = "cuda") -> None:
        import cupy  # optional: the cuda extra; only a CuPy backend makes these ops

        self.xp, self.cublas = cupy, cupy.cuda.cublas
        self.device = cupy.cuda.Device(int(device.split(":", 1)[1]) if ":" in device else 0)
        self._kernels: dict[str, Any] = {}
        self._scalars: dict[tuple[Any, float], np.ndarray] = {}  # host alpha/beta for cuBLAS
        self._ones: dict[tuple[int, Any], Any] = {}
        with self.device:
            self.loss_total = cupy.zeros((), dtype=np.float64)
            self.hit_total = cupy.zeros((), dtype=np.uint64)

    # -- kernels (compiled on first use, cached by CuPy on disk) ----------------------------
    def elementwise(self, name: str, params_in: str, params_out: str, body: str) -> Any:
        """The ``ElementwiseKernel`` ``name`` (made on first use)."""
        k = self._kernels.get(name)
        if k is None:
            k = self.xp.ElementwiseKernel(
                params_in, params_out, body, f"chainrule_{name}", options=NVCC_OPTIONS
            )
            self._kernels[name] = k
        return k

    def launch(self, name: str, dtype: Any, threads: int, args: tuple[Any, ...], block: int = 128) -> None:
        """Launch ``RawKernel`` ``name`` (of :data:`RAW_SOURCE` for ``dtype``) over ``threads`` threads."""
        tname = "float" if np.dtype(dtype) == np.float32 else "double"
        key = f"{name}_{tname}"
        k = self._kernels.get(key)
        if k is None:
            module = self._kernels.get(f"module_{tname}")
            if module is None:
                module = self.xp.RawModule(code=RAW_SOURCE.format(T=tname), options=NVCC_OPTIONS)
                self._kernels[f"module_{tname}"] = module
            k = self._kernels[key] = module.get_function(key)
        k(((threads + block - 1) // block,), (block,), args)

    def _ptr(self, value: float, dtype: Any) -> int:
        """Host pointer to ``value`` as ``dtype`` (cuBLAS host pointer mode), kept alive."""
        key = (np.dtype(dtype), float(value))
        a = self._scalars.get(key)
        if a is None:
            a = self._scalars[key] = np.array(value, dtype=dtype)
        return a.ctypes.data

    # -- memory ----------------------------------------------------------------------------
    def empty(self, shape: tuple[int, ...], dtype: Any) -> Any:
        with self.device:
            return super().empty(shape, dtype)

    def index_array(self, order: np.ndarray) -> Any:
        """The epoch's permutation on the device (one copy per epoch); steps slice views of it."""
        with self.device:
            return self.xp.asarray(np.asarray(order, dtype=np.int64))

    def take_rows(self, src: Any, idx: Any, out: Any) -> None:
        self.xp.take(src, idx, axis=0, out=out)

    def gather_batch(self, x: Any, y: Any, idx: Any, bufs: dict[str, Any]) -> None:
        """``xb = x[idx]; yb = y[idx]``: one launch for a C-contiguous ``x`` and int64 labels."""
        xb, yb = bufs["x"], bufs["y"]
        if y.ndim != 1 or y.dtype != np.int64 or not (x.flags.c_contiguous and y.flags.c_contiguous):
            super().gather_batch(x, y, idx, bufs)
            return
        n, d = xb.shape
        self.launch("gather_rows", x.dtype, n * d, (x, y, idx, xb, yb, np.int64(n), np.int64(d)), block=256)

    def prepare(self, bufs: dict[str, Any], loss_kind: str) -> None:
        """Use the fused softmax-CE kernel for int64 class-index labels with more than one output."""
        lb, yb, out = bufs["loss"], bufs["y"], bufs["layers"][-1]["a"]
        lb["fused"] = loss_kind == "softmax-ce" and out.shape[1] > 1 and yb.ndim == 1 and yb.dtype == np.int64

    # -- cuBLAS, row-major arrays through the column-major API ------------------------------
    def _gemm(self, a: Any, b: Any, out: Any, alpha: float, beta: float) -> None:
        """``out = α a @ b + β out`` for C-contiguous ``out`` and ``a``/``b`` C-contiguous or
        transposed views of C-contiguous arrays: computed as ``outᵀ = bᵀ aᵀ`` in column major."""
        (m, k), n, cb = a.shape, b.shape[1], self.cublas
        opb, ldb = (cb.CUBLAS_OP_N, n) if b.flags.c_contiguous else (cb.CUBLAS_OP_T, k)
        opa, lda = (cb.CUBLAS_OP_N, k) if a.flags.c_contiguous else (cb.CUBLAS_OP_T, m)
        fn = cb.sgemm if out.dtype == np.float32 else cb.dgemm
        handle = self.xp.cuda.device.get_cublas_handle()
        alpha_p, beta_p = self._ptr(alpha, out.dtype), self._ptr(beta, out.dtype)
        fn(handle, opb, opa, n, m, k, alpha_p, b.data.ptr, ldb, a.data.ptr, lda, beta_p, out.data.ptr, n)

    def matmul(self, a: Any, b: Any, out: Any) -> None:
        self._gemm(a, b, out, 1.0, 0.0)

    def gemm_acc(self, a_t: Any, d: Any, w: Any, alpha: float, tmp: Any) -> None:
        """``w ← w + α (a_t @ d)``: one GEMM with ``beta = 1``."""
        self._gemm(a_t, d, w, alpha, 1.0)

    def bias_sgd(self, delta: Any, b: Any, lr: float, tmp: Any) -> None:
        """``b ← b − α Σ_rows δ`` as one ``gemv`` with a ones vector and ``beta = 1``."""
        n, k = delta.shape
        ones = self._ones.get((n, delta.dtype))
        if ones is None:
            with self.device:
                ones = self._ones[(n, delta.dtype)] = self.xp.ones(n, dtype=delta.dtype)
        cb = self.cublas
        fn = cb.sgemv if delta.dtype == np.float32 else cb.dgemv
        handle = self.xp.cuda.device.get_cublas_handle()
        alpha_p, beta_p = self._ptr(-lr, delta.dtype), self._ptr(1.0, delta.dtype)
        # δ (n, k) row-major is (k, n) column-major with ld k: b += −α δ_cm @ ones
        fn(
            handle,
            cb.CUBLAS_OP_N,
            k,
            n,
            alpha_p,
            delta.data.ptr,
            k,
            ones.data.ptr,
            1,
            beta_p,
            b.value.data.ptr,
            1,
        )

    # -- layers: the activation table gives each kind its branch of the fused kernels --------
    def _mask(self, buf: dict[str, Any]) -> Any:
        m = buf.get("mask")
        if m is None:  # the kernels take a mask pointer even where the activation has none
            m = buf["mask"] = self.empty((1,), np.bool_)
        return m

    def bias_act(self, z: Any, b: Any, blk: Block, buf: dict[str, Any]) -> None:
        """``z ← f(z + b)`` in one kernel."""
        args = (z, b, self._mask(buf), np.int64(z.size), np.int64(z.shape[1]))
        self.launch(
            "bias_act", z.dtype, z.size, (*args, np.int32(blk.kernel.code), z.dtype.type(blk.alpha)), 256
        )

    def act_backward(self, d: Any, a: Any, blk: Block, buf: dict[str, Any]) -> None:
        """``d ← d ⊙ f'`` in one kernel (nothing to do for identity)."""
        if blk.kind == "identity":
            return
        args = (d, a, self._mask(buf), np.int64(d.size), np.int32(blk.kernel.code), d.dtype.type(blk.alpha))
        self.launch("act_bwd", d.dtype, d.size, args, 256)

    # -- loss ------------------------------------------------------------------------------
    def count_correct(self, out: Any, yb: Any, lb: dict[str, Any]) -> Any:
        """``None`` where the fused softmax-CE kernel counts the hits; else the shared count."""
        return None if lb.get("fused") else super().count_correct(out, yb, lb)

    # -- running totals, on the device ------------------------------------------------------
    def reset_totals(self) -> None:
        """Zero the epoch's device totals (and make sure cuBLAS reads α, β from the host)."""
        self.loss_total.fill(0)
        self.hit_total.fill(0)
        handle = self.xp.cuda.device.get_cublas_handle()
        self.cublas.setPointerMode(handle, self.cublas.CUBLAS_POINTER_MODE_HOST)

    def add_totals(self, cost: Any, correct: Any, n: int) -> None:
        if cost is not None:
            self.loss_total += cost * n
        if correct is not None:
            self.hit_total += correct.astype(np.uint64)

    def read_totals(self) -> tuple[float, float]:
        return float(self.loss_total), float(self.hit_total)
