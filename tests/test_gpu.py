"""GPU paths: the CUDA-graph torch runner and the CuPy runner against the CPU and plain paths.

Marked ``gpu`` (deselected by default; run with ``pytest -m gpu`` on a machine with a CUDA GPU) and
skipped when no GPU is visible. What they prove:

* a CPU run and a GPU run from the same seed, weights and shuffle agree in loss to 1e-4 after one
  epoch (torch CUDA graph, torch without graph, CuPy);
* the fast GPU runners give the plain GPU path's weights after several epochs, for every optimiser,
  with and without L2, with a partial final batch;
* float64 gradients of the fast GPU step equal the CPU driver's;
* each CuPy primitive (cuBLAS orientation of transposed views, fused kernels) equals NumPy's;
* graphs are re-captured when what they captured changes.
"""

from __future__ import annotations

import itertools
import json

import numpy as np
import pytest

from chainrule import mlp
from chainrule.accel import Block, make_fast_runner
from chainrule.backend import get_backend, numpy_backend, to_numpy
from chainrule.io import load_default
from chainrule.optim import get_optimizer
from chainrule.train import PlainRunner, make_runner

pytestmark = pytest.mark.gpu


def _torch_cuda():
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("no CUDA GPU visible to torch")
    return get_backend("torch", "cuda")


def _cupy():
    cupy = pytest.importorskip("cupy")
    try:
        if cupy.cuda.runtime.getDeviceCount() < 1:
            pytest.skip("no CUDA GPU visible to cupy")
    except Exception:  # pragma: no cover - driver missing
        pytest.skip("no CUDA driver for cupy")
    return get_backend("cupy", "cuda")


def _gpu_backend(name: str):
    return _cupy() if name == "cupy" else _torch_cuda()


@pytest.fixture(scope="module")
def mnist_small():
    data = load_default()
    return data.x_train[:3000], data.y_train[:3000]


def _epoch(net, backend, x, y, order, *, batch=128, opt="sgd", lr=0.1, l2=0.0, fast=True):
    runner = (
        make_fast_runner(net, get_optimizer(opt, lr), l2)
        if fast
        else PlainRunner(net, get_optimizer(opt, lr), l2)
    )
    assert runner is not None
    return runner, runner.run_epoch(
        backend.asarray(x, dtype=net.dtype), backend.asarray(y), order, batch, lambda: None
    )


@pytest.mark.parametrize("which", ["torch-graph", "torch-eager", "cupy"])
def test_cpu_and_gpu_loss_agree_after_one_epoch(
    which: str, mnist_small, monkeypatch: pytest.MonkeyPatch
) -> None:
    backend = _gpu_backend("cupy" if which == "cupy" else "torch")
    if which == "torch-eager":
        monkeypatch.setenv("CHAINRULE_NO_CUDA_GRAPH", "1")
    x, y = mnist_small
    order = np.random.default_rng(0).permutation(len(x))
    cpu = mlp([784, 256, 128, 10], "relu", seed=0)
    _, (loss_cpu, acc_cpu) = _epoch(cpu, numpy_backend, x, y, order)
    gpu = mlp([784, 256, 128, 10], "relu", seed=0).to(backend)
    runner, (loss_gpu, acc_gpu) = _epoch(gpu, backend, x, y, order)
    expected = {"torch-graph": "fast-torch-cuda-graph", "torch-eager": "fast-torch", "cupy": "fast-cupy"}[
        which
    ]
    assert runner.name == expected
    assert abs(loss_gpu - loss_cpu) <= 1e-4
    assert abs(acc_gpu - acc_cpu) <= 2 / len(x)
    for p, q in zip(cpu.params, gpu.params, strict=True):
        np.testing.assert_allclose(to_numpy(q.value), p.value, rtol=1e-3, atol=1e-4)


@pytest.mark.parametrize("which", ["torch", "cupy"])
@pytest.mark.parametrize(
    ("opt", "l2"), list(itertools.product(["sgd", "momentum", "nesterov", "adam"], [0.0, 0.01]))
)
def test_fast_gpu_runner_gives_the_plain_gpu_weights(which: str, opt: str, l2: float) -> None:
    backend = _gpu_backend(which)
    rng = np.random.default_rng(1)
    x, y = rng.standard_normal((1000, 20)).astype(np.float32), rng.integers(0, 5, 1000)
    lr = 0.01 if opt == "adam" else 0.1
    nets = [mlp([20, 32, 16, 5], "relu", seed=2).to(backend) for _ in range(2)]
    runners = [
        make_fast_runner(nets[0], get_optimizer(opt, lr), l2),
        PlainRunner(nets[1], get_optimizer(opt, lr), l2),
    ]
    xd, yd = backend.asarray(x), backend.asarray(y)
    for epoch in range(3):  # 1000 = 7 × 128 + 104: a partial last batch every epoch
        order = np.random.default_rng(epoch).permutation(1000)
        (lf, af), (lp, ap) = (r.run_epoch(xd, yd, order, 128, lambda: None) for r in runners)
        assert abs(af - ap) <= 2 / 1000
        if l2 == 0:
            assert lf == pytest.approx(lp, rel=1e-5, abs=1e-6)
    assert runners[0].optimizer.t == runners[1].optimizer.t == 24
    for p, q in zip(nets[0].params, nets[1].params, strict=True):
        np.testing.assert_allclose(to_numpy(p.value), to_numpy(q.value), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("which", ["torch", "cupy"])
def test_gradient_hooks_on_the_gpu_see_the_plain_gpu_gradients(which: str) -> None:
    """With a hook the fast GPU runner materialises every gradient (``+ λW``) before the update, and
    torch on CUDA runs op by op (a Python hook cannot be replayed in a graph)."""
    backend = _gpu_backend(which)
    rng = np.random.default_rng(8)
    x, y = rng.standard_normal((300, 12)), rng.integers(0, 4, 300)
    nets = [mlp([12, 16, 4], "relu", seed=3, dtype=np.float64).to(backend, "float64") for _ in range(2)]
    seen: list[list[list[np.ndarray]]] = [[], []]

    def record(i: int):
        return lambda params: seen[i].append([to_numpy(p.grad).copy() for p in params])

    plain = make_runner(nets[0], get_optimizer("momentum", 0.1), 0.01, fast=False, grad_hooks=[record(0)])
    fast = make_runner(nets[1], get_optimizer("momentum", 0.1), 0.01, grad_hooks=[record(1)])
    assert fast.name == f"fast-{which}"
    xd, yd = backend.asarray(x), backend.asarray(y)
    order = np.random.default_rng(0).permutation(300)
    for runner in (plain, fast):
        runner.run_epoch(xd, yd, order, 64, lambda: None)
    assert len(seen[0]) == len(seen[1]) == 5
    for step_plain, step_fast in zip(*seen, strict=True):
        for g_plain, g_fast in zip(step_plain, step_fast, strict=True):
            np.testing.assert_allclose(g_fast, g_plain, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("which", ["torch", "cupy"])
@pytest.mark.parametrize(
    ("activation", "loss"),
    list(
        itertools.product(
            ["relu", "tanh", "sigmoid", "leaky_relu", "identity"], ["softmax-ce", "bce", "squared"]
        )
    ),
)
def test_float64_gradients_on_the_gpu_equal_the_cpu_driver(which: str, activation: str, loss: str) -> None:
    backend = _gpu_backend(which)
    rng = np.random.default_rng(3)
    x, y = rng.standard_normal((33, 9)), rng.integers(0, 4, 33)
    plain = mlp([9, 11, 6, 4], activation, loss=loss, seed=4, dtype=np.float64)
    cost = float(plain.loss_and_grad(x, y, l2=0.02))
    net = mlp([9, 11, 6, 4], activation, loss=loss, seed=4, dtype=np.float64).to(backend, "float64")
    runner = make_fast_runner(net, get_optimizer("momentum", 0.1), 0.02)
    got = runner.loss_and_grad(backend.asarray(x), backend.asarray(y))
    from chainrule.nn.regularizers import l2_penalty

    assert got == pytest.approx(cost - float(l2_penalty(plain.params, 0.02)), rel=1e-10)
    for p, q in zip(plain.params, net.params, strict=True):
        np.testing.assert_allclose(to_numpy(q.grad), p.grad, rtol=1e-9, atol=1e-12, err_msg=p.name)


def test_cupy_primitives_equal_numpy() -> None:
    _cupy()
    import cupy

    from chainrule.accel.cupy_ops import CupyOps
    from chainrule.accel.numpy_ops import NumpyOps

    rng = np.random.default_rng(5)
    gpu, cpu = CupyOps("cuda"), NumpyOps()
    for dtype, tol in ((np.float32, 1e-5), (np.float64, 1e-12)):
        a = rng.standard_normal((6, 5)).astype(dtype)
        b = rng.standard_normal((5, 4)).astype(dtype)
        c = rng.standard_normal((6, 4)).astype(dtype)
        for lhs, rhs in ((a, b), (np.ascontiguousarray(a.T).T, b), (a, np.ascontiguousarray(b.T).T)):
            out = cupy.empty((6, 4), dtype)
            gpu.matmul(
                cupy.asarray(lhs) if lhs.flags.c_contiguous else cupy.asarray(lhs.T).T,
                cupy.asarray(rhs) if rhs.flags.c_contiguous else cupy.asarray(rhs.T).T,
                out,
            )
            np.testing.assert_allclose(out.get(), lhs @ rhs, rtol=tol, atol=tol)
        w = rng.standard_normal((5, 4)).astype(dtype)
        wg = cupy.asarray(w)
        d = rng.standard_normal((6, 4)).astype(dtype)
        gpu.gemm_acc(cupy.asarray(a).T, cupy.asarray(d), wg, -0.25, None)
        np.testing.assert_allclose(wg.get(), w - 0.25 * (a.T @ d), rtol=tol, atol=tol)
        s = cupy.empty(4, dtype)
        gpu.col_sum(cupy.asarray(c), s)
        np.testing.assert_allclose(s.get(), c.sum(axis=0), rtol=tol, atol=tol)
        for act in ("identity", "relu", "leaky_relu", "tanh", "sigmoid"):
            alpha = 0.1 if act == "leaky_relu" else 0.0
            blk_cpu = Block(None, None, act, NumpyOps.ACTS[act], None, None, alpha)
            blk_gpu = Block(None, None, act, CupyOps.ACTS[act], None, None, alpha)
            bias = rng.standard_normal(4).astype(dtype)
            z_cpu, z_gpu = c.copy(), cupy.asarray(c)
            buf_cpu = {"mask": np.empty(c.shape, bool), "tmp": np.empty_like(c), "tmp2": np.empty_like(c)}
            buf_gpu = {k: cupy.asarray(v) for k, v in buf_cpu.items()}
            cpu.bias_act(z_cpu, bias, blk_cpu, buf_cpu)
            gpu.bias_act(z_gpu, cupy.asarray(bias), blk_gpu, buf_gpu)
            np.testing.assert_allclose(z_gpu.get(), z_cpu, rtol=tol, atol=tol, err_msg=act)
            dd_cpu, dd_gpu = d.copy(), cupy.asarray(d)
            cpu.act_backward(dd_cpu, z_cpu, blk_cpu, buf_cpu)
            gpu.act_backward(dd_gpu, z_gpu, blk_gpu, buf_gpu)
            np.testing.assert_allclose(dd_gpu.get(), dd_cpu, rtol=tol, atol=tol, err_msg=act)


def test_torch_graph_runner_recaptures_when_the_data_changes() -> None:
    backend = _torch_cuda()
    rng = np.random.default_rng(6)
    x1, x2 = (rng.standard_normal((300, 8)).astype(np.float32) for _ in range(2))
    y = rng.integers(0, 3, 300)
    nets = [mlp([8, 10, 3], "tanh", seed=7).to(backend) for _ in range(2)]
    graph = make_fast_runner(nets[0], get_optimizer("momentum", 0.1), 0.0)
    plain = PlainRunner(nets[1], get_optimizer("momentum", 0.1), 0.0)
    assert graph.name == "fast-torch-cuda-graph"
    yd = backend.asarray(y)
    for x in (x1, x2, x1):
        xd = backend.asarray(x)
        order = np.random.default_rng(0).permutation(300)
        (lg, _), (lp, _) = (
            graph.run_epoch(xd, yd, order, 64, lambda: None),
            plain.run_epoch(xd, yd, order, 64, lambda: None),
        )
        assert lg == pytest.approx(lp, rel=1e-5)
    for p, q in zip(nets[0].params, nets[1].params, strict=True):
        np.testing.assert_allclose(to_numpy(p.value), to_numpy(q.value), rtol=1e-4, atol=1e-5)


def test_bench_on_cuda_reports_graphs_and_the_cpu_reference(capsys: pytest.CaptureFixture[str]) -> None:
    _torch_cuda()
    from chainrule.cli import main

    assert (
        main(
            [
                "bench",
                "--device",
                "cuda",
                "--data",
                "default",
                "--quick",
                "--no-memory",
                "--cooldown",
                "0",
                "--quiet",
            ]
        )
        == 0
    )
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert result["contestants"] == ["chainrule", "torch_eager", "torch_cuda_graph"]
    assert result["runner"] == "fast-torch-cuda-graph"
    assert result["cpu_reference"]["abs_diff"] <= 1e-4
    assert "chainrule/torch_cuda_graph" in result["ratios"]
