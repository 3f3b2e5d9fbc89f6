"""The GPU kernels' formulas, exercised on the CPU (issue 13: the GPU tests never run in CI).

- CuPy: the CUDA source of :mod:`chainrule.accel.cupy_kernels` (the ``RawKernel`` module and the
  optimisers' ``ElementwiseKernel`` bodies) is compiled as C++ with a few shims (``__global__``,
  the thread index, ``atomicAdd``) and launched one thread at a time through ``CupyOps``' own
  methods (``_softmax_ce``, ``bias_act``, ``act_backward``, ``gather_batch``, ``CUPY_UPDATES``),
  on NumPy arrays. Each result is compared with the registered layer, loss or optimiser.
- torch: every ``TorchOps`` loss kernel (fused and shared, every target kind) and activation
  kernel runs on torch CPU tensors and is compared with the NumPy plain path and with autograd.
"""

from __future__ import annotations

import ctypes
import shutil
import subprocess
import types
from typing import Any

import numpy as np
import pytest

from chainrule.accel import cupy_ops as cu
from chainrule.accel.cupy_kernels import ACT_CODES, RAW_SOURCE, UPDATE_BODIES
from chainrule.accel.numpy_ops import NumpyOps
from chainrule.nn.layer import LAYERS
from chainrule.nn.losses import LOSSES
from chainrule.optim import get_optimizer

SHIM = """
#include <cmath>
using std::exp; using std::log; using std::tanh; using std::fabs; using std::sqrt;
struct Dim { unsigned long long x; };
static Dim blockIdx, blockDim, threadIdx;
#define __global__
static double atomicAdd(double* p, double v) { double o = *p; *p += v; return o; }
static unsigned long long atomicAdd(unsigned long long* p, unsigned long long v) {
    unsigned long long o = *p; *p += v; return o; }
extern "C" void set_thread(long long t) { blockIdx.x = t; blockDim.x = 1; threadIdx.x = 0; }
"""


def _update_source(name: str, params_in: str, params_out: str, body: str, T: str) -> str:
    """An ElementwiseKernel as a C++ loop: the first input is an array, the others scalars."""
    ins = [p.split()[1] for p in params_in.split(",")]
    outs = [p.split()[1] for p in params_out.split(",")]
    args = [f"const {T}* {ins[0]}_", *(f"{T} {n}" for n in ins[1:]), *(f"{T}* {n}_" for n in outs)]
    refs = [f"const {T} {ins[0]} = {ins[0]}_[i];", *(f"{T}& {n} = {n}_[i];" for n in outs)]
    return (
        f'extern "C" void update_{name}_{T}(long long n, {", ".join(args)}) {{\n'
        f"  for (long long i = 0; i < n; ++i) {{ {' '.join(refs)} {body}; }}\n}}\n"
    )


@pytest.fixture(scope="module")
def kernels(tmp_path_factory: pytest.TempPathFactory) -> Any:
    if shutil.which("g++") is None:
        from conftest import missing

        missing("g++ is needed to compile the CUDA kernels' source for the CPU")
    d = tmp_path_factory.mktemp("kernels")
    src = SHIM
    for T in ("float", "double"):
        src += RAW_SOURCE.format(T=T)
        src += "".join(_update_source(n, *UPDATE_BODIES[n], T) for n in UPDATE_BODIES)
    (d / "k.cpp").write_text(src)
    # -ffp-contract=off: like nvcc --fmad=false, a·b + c rounds twice
    subprocess.run(
        ["g++", "-O1", "-ffp-contract=off", "-shared", "-fPIC", "-o", str(d / "k.so"), str(d / "k.cpp")],
        check=True,
        capture_output=True,
    )
    return ctypes.CDLL(str(d / "k.so"))


def _c(arg: Any) -> Any:
    if isinstance(arg, np.ndarray):
        assert arg.flags.c_contiguous
        return ctypes.c_void_p(arg.ctypes.data)
    return {
        np.int32: ctypes.c_int,
        np.int64: ctypes.c_longlong,
        np.float32: ctypes.c_float,
        np.float64: ctypes.c_double,
    }[type(arg)](arg)


def cpu_cupy_ops(lib: Any) -> Any:
    """A ``CupyOps`` whose ``xp`` is NumPy and whose kernels are the compiled CUDA source."""
    ops = cu.CupyOps.__new__(cu.CupyOps)
    ops.xp = np
    ops.loss_total = np.zeros((), np.float64)
    ops.hit_total = np.zeros((), np.uint64)

    def launch(name: str, dtype: Any, threads: int, args: tuple[Any, ...], block: int = 128) -> None:
        fn = getattr(lib, f"{name}_{'float' if np.dtype(dtype) == np.float32 else 'double'}")
        cargs = [_c(a) for a in args]
        for t in range(threads):
            lib.set_thread(ctypes.c_longlong(t))
            fn(*cargs)

    def elementwise(name: str, params_in: str, params_out: str, body: str) -> Any:
        def run(g: np.ndarray, *rest: Any) -> None:
            scalars, arrays = rest[: len(params_in.split(",")) - 1], rest[len(params_in.split(",")) - 1 :]
            T = "float" if g.dtype == np.float32 else "double"
            fn = getattr(lib, f"update_{name}_{T}")
            fn(ctypes.c_longlong(g.size), _c(g), *(_c(s) for s in scalars), *(_c(a) for a in arrays))

        return run

    ops.launch = launch
    ops.elementwise = elementwise
    ops.bias_corrections = lambda opt: opt.bias_corrections()
    return ops


DTYPES = [np.float32, np.float64]


@pytest.mark.parametrize("dtype", DTYPES)
def test_cupy_softmax_ce_kernel_is_the_registered_loss(kernels: Any, dtype: Any) -> None:
    rng = np.random.default_rng(0)
    z = (rng.standard_normal((9, 5)) * 4).astype(dtype)
    y = rng.integers(0, 5, 9).astype(np.int64)
    ops = cpu_cupy_ops(kernels)
    delta = np.empty_like(z)
    assert cu._softmax_ce(ops, z.copy(), y, delta, {"fused": True}) is None
    loss = LOSSES["softmax-ce"]()
    e, ctx = loss.forward(z.astype(np.float64), y)
    tol = 1e-6 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(delta, loss.backward(ctx), rtol=tol * 10, atol=tol)  # (p − onehot)/N
    assert float(ops.loss_total) == pytest.approx(9 * e, rel=tol * 10)  # N·E: the running total
    assert int(ops.hit_total) == int(np.sum(z.argmax(1) == y))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kind", sorted(ACT_CODES))
def test_cupy_bias_act_and_act_bwd_kernels_are_the_layers(kernels: Any, kind: str, dtype: Any) -> None:
    rng = np.random.default_rng(1)
    z = rng.standard_normal((6, 7)).astype(dtype)
    z[0, :3] = 0  # f'(0) too
    b = rng.standard_normal(7).astype(dtype)
    dy = rng.standard_normal((6, 7)).astype(dtype)
    alpha = 0.1
    layer = LAYERS[kind](alpha) if kind == "leaky_relu" else LAYERS[kind]()
    blk = types.SimpleNamespace(kernel=cu.CUPY_ACTS[kind], alpha=alpha, kind=kind)
    ops = cpu_cupy_ops(kernels)
    buf: dict[str, Any] = {"mask": np.zeros(z.shape if kind == "leaky_relu" else (1,), np.bool_)}
    a = z.copy()
    ops.bias_act(a, b, blk, buf)
    want, ctx = layer.forward((z + b).astype(np.float64))
    tol = 1e-6 if dtype == np.float32 else 1e-13
    np.testing.assert_allclose(a, want, rtol=tol, atol=tol)
    d = dy.copy()
    ops.act_backward(d, a, blk, buf)
    np.testing.assert_allclose(d, layer.backward(dy.astype(np.float64), ctx), rtol=10 * tol, atol=10 * tol)


def test_cupy_gather_kernel_takes_the_rows(kernels: Any) -> None:
    rng = np.random.default_rng(2)
    x = rng.standard_normal((10, 3)).astype(np.float32)
    y = rng.integers(0, 4, 10).astype(np.int64)
    idx = np.array([7, 0, 3, 3], np.int64)
    bufs = {"x": np.empty((4, 3), np.float32), "y": np.empty(4, np.int64)}
    ops = cpu_cupy_ops(kernels)
    ops.launch("gather_rows", x.dtype, 12, (x, y, idx, bufs["x"], bufs["y"], np.int64(4), np.int64(3)))
    np.testing.assert_array_equal(bufs["x"], x[idx])
    np.testing.assert_array_equal(bufs["y"], y[idx])


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", sorted(UPDATE_BODIES))
def test_cupy_update_kernels_are_the_optimisers_rule(kernels: Any, name: str, dtype: Any) -> None:
    rng = np.random.default_rng(3)
    kwargs = {"momentum": 0.9} if name in ("momentum", "nesterov") else {}
    opts = [get_optimizer(name, 0.05, **kwargs) for _ in range(2)]
    w0 = rng.standard_normal(20).astype(dtype)
    ws, states = [w0.copy(), w0.copy()], []
    for opt, w in zip(opts, ws, strict=True):
        p = types.SimpleNamespace(value=w)
        states.append(opt.state_for([p])[0])  # type: ignore[list-item]
    ops = cpu_cupy_ops(kernels)
    for step in range(3):
        g = rng.standard_normal(20).astype(dtype)
        for opt in opts:
            opt.tick()
        cu.CUPY_UPDATES[name](ops, opts[0], ws[0], g, states[0], None, None)
        tmp, tmp2 = np.empty_like(g), np.empty_like(g)
        NumpyOps.UPDATES[name](NumpyOps.__new__(NumpyOps), opts[1], ws[1], g, states[1], tmp, tmp2)
        tol = 1e-6 if dtype == np.float32 else 1e-14
        np.testing.assert_allclose(ws[0], ws[1], rtol=tol, atol=tol, err_msg=f"step {step}")


# --- torch kernels on CPU tensors --------------------------------------------------------------


def _targets(kind: str, n: int, k: int, rng: np.random.Generator) -> np.ndarray:
    labels = rng.integers(0, k, n)
    if kind == "class indices":
        return labels.astype(np.int64)
    if kind == "one-hot":
        return np.eye(k)[labels]
    return rng.integers(0, 2, (n, 1)).astype(np.float64)  # single logit, 0/1 targets


LOSS_TARGETS = [
    ("softmax-ce", "class indices", 5),
    ("softmax-ce", "one-hot", 5),
    ("bce", "one-hot", 5),
    ("bce", "single logit", 1),
    ("squared", "one-hot", 5),
    ("squared", "single logit", 1),
    ("squared", "class indices", 5),
]


@pytest.mark.parametrize(("name", "target", "k"), LOSS_TARGETS)
def test_torch_loss_kernels_on_cpu_equal_the_plain_loss_and_autograd(name: str, target: str, k: int) -> None:
    torch = pytest.importorskip("torch")
    from chainrule.accel.torch_ops import TorchOps

    rng = np.random.default_rng(4)
    n = 8
    z = rng.standard_normal((n, k)) * 3
    y = _targets(target, n, k, rng)
    ops = TorchOps("cpu")
    ops.reset_totals()
    out = torch.tensor(z)
    yb = torch.tensor(y)
    delta = torch.empty_like(out)
    lb = {
        "fused": name == "softmax-ce" and target == "class indices",
        "minus_one": torch.full((n, 1), -1.0, dtype=out.dtype),
    }
    e = ops.loss_grad(name, out, yb, delta, lb)
    loss = LOSSES[name]()
    want_e, ctx = loss.forward(z, y)
    want_delta = loss.backward(ctx)
    np.testing.assert_allclose(delta.numpy(), want_delta, rtol=1e-12, atol=1e-14)
    got_e = ops.read_totals()[0] / n if e is None else float(e)
    assert got_e == pytest.approx(want_e, rel=1e-12)
    # the oracle: autograd of the same cost (mean over the batch) in torch
    zt = torch.tensor(z, requires_grad=True)
    if name == "softmax-ce":
        yt = torch.tensor(y) if target == "class indices" else torch.tensor(y).argmax(1)
        cost = torch.nn.functional.cross_entropy(zt, yt)
    elif name == "bce":
        cost = torch.nn.functional.binary_cross_entropy_with_logits(zt, torch.tensor(y), reduction="sum") / n
    else:
        t = torch.tensor(np.eye(k)[y] if target == "class indices" else y)
        cost = 0.5 * ((zt - t) ** 2).sum() / n  # the output activation is a layer of its own
    cost.backward()
    assert cost.item() == pytest.approx(want_e, rel=1e-12)
    np.testing.assert_allclose(delta.numpy(), zt.grad.numpy(), rtol=1e-10, atol=1e-14)


@pytest.mark.parametrize("kind", ["relu", "leaky_relu", "tanh", "sigmoid"])
def test_torch_activation_kernels_on_cpu_equal_the_layers(kind: str) -> None:
    torch = pytest.importorskip("torch")
    from chainrule.accel.torch_ops import TORCH_ACTS, TorchOps

    rng = np.random.default_rng(5)
    z = rng.standard_normal((6, 7))
    z[0, :3] = 0
    dy = rng.standard_normal((6, 7))
    layer = LAYERS[kind](0.1) if kind == "leaky_relu" else LAYERS[kind]()
    blk = types.SimpleNamespace(kernel=TORCH_ACTS[kind], alpha=0.1, kind=kind)
    ops = TorchOps("cpu")
    buf = {
        name: torch.empty(z.shape, dtype=torch.bool if name == "mask" else torch.float64)
        for name in ("mask", "tmp")
    }
    a = torch.tensor(z)
    TORCH_ACTS[kind].forward(ops, a, blk, buf)
    want, ctx = layer.forward(z)
    np.testing.assert_allclose(a.numpy(), want, rtol=1e-14, atol=1e-15)
    d = torch.tensor(dy)
    TORCH_ACTS[kind].backward(ops, d, a, blk, buf)
    np.testing.assert_allclose(d.numpy(), layer.backward(dy, ctx), rtol=1e-13, atol=1e-15)
