"""The fast runners change nothing but speed.

For every activation / loss / optimiser / L2 combination the fast NumPy step covers: the same
float64 gradients as the driver (``Sequential.loss_and_grad``) and the same float32 weights, loss
and accuracy after several epochs (partial final batch included) as :class:`PlainRunner`. Plus the
invariants: caller data untouched, no allocation in the steady-state step, ``None`` where the fast
step does not apply, optimiser state shared with the plain runner, and ``chainrule bench``'s JSON.
"""

from __future__ import annotations

import itertools
import json
import subprocess
import sys
import tracemalloc
from collections.abc import Iterator

import numpy as np
import pytest

from chainrule import mlp
from chainrule.accel import FastRunner, NumpyOps, limit_threads, make_fast_runner, plan_blocks
from chainrule.nn.functional import sigmoid
from chainrule.nn.layer import LAYERS, Elementwise
from chainrule.nn.layers import Dense, LeakyReLU, Softmax
from chainrule.nn.model import Sequential
from chainrule.nn.regularizers import l2_penalty
from chainrule.optim import Optimizer, get_optimizer
from chainrule.train import PlainRunner, fit, make_runner

ACTIVATIONS = ["relu", "leaky_relu", "sigmoid", "tanh", "identity"]
LOSSES = ["softmax-ce", "bce", "squared"]
OPTIMIZERS = ["sgd", "momentum", "nesterov", "adam"]
SIZES = [12, 16, 8, 4]


def _data(n: int = 300, d: int = 12, k: int = 4, dtype: type = np.float32, seed: int = 0):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, d)).astype(dtype), rng.integers(0, k, n)


def _lr(opt: str) -> float:
    return 0.01 if opt == "adam" else 0.1


def _train(runner, x, y, epochs: int = 3, batch: int = 64, seed: int = 1):
    """Epochs on fixed permutations; 300 rows in batches of 64 end with a partial batch of 44."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(epochs):
        out.append(runner.run_epoch(x, y, rng.permutation(x.shape[0]), batch, lambda: None))
    return out


@pytest.mark.parametrize("activation", ACTIVATIONS)
@pytest.mark.parametrize("loss", LOSSES)
@pytest.mark.parametrize("l2", [0.0, 0.01])
def test_float64_gradients_equal_the_driver(activation: str, loss: str, l2: float) -> None:
    x, y = _data(50, dtype=np.float64)
    plain = mlp(SIZES, activation, loss=loss, seed=3, dtype=np.float64)
    fast = mlp(SIZES, activation, loss=loss, seed=3, dtype=np.float64)
    cost = float(plain.loss_and_grad(x, y, l2=l2)) - float(l2_penalty(plain.params, l2))
    runner = make_fast_runner(fast, get_optimizer("momentum", 0.1), l2)
    assert isinstance(runner, FastRunner)
    assert runner.loss_and_grad(x, y) == pytest.approx(cost, rel=1e-12, abs=1e-14)
    for p, q in zip(plain.params, fast.params, strict=True):
        np.testing.assert_allclose(q.grad, p.grad, rtol=1e-10, atol=1e-12, err_msg=p.name)
        assert q.grad.dtype == np.float64


@pytest.mark.parametrize(
    ("activation", "loss", "opt", "l2"),
    list(itertools.product(ACTIVATIONS, LOSSES, OPTIMIZERS, [0.0, 0.01])),
)
def test_float32_weights_after_epochs_equal_plain(activation: str, loss: str, opt: str, l2: float) -> None:
    x, y = _data()
    nets = [mlp(SIZES, activation, loss=loss, seed=1) for _ in range(2)]
    o_plain, o_fast = get_optimizer(opt, _lr(opt)), get_optimizer(opt, _lr(opt))
    plain = PlainRunner(nets[0], o_plain, l2)
    fast = make_fast_runner(nets[1], o_fast, l2)
    assert fast is not None and fast.name == "fast-numpy"
    hist_plain, hist_fast = _train(plain, x, y), _train(fast, x, y)
    for p, q in zip(nets[0].params, nets[1].params, strict=True):
        assert q.value.dtype == np.float32
        np.testing.assert_allclose(q.value, p.value, rtol=1e-5, atol=1e-6, err_msg=f"{p.name}")
    for (lp, ap), (lf, af) in zip(hist_plain, hist_fast, strict=True):
        assert af == ap  # the same rows were classified right, batch by batch
        if l2 == 0:  # PlainRunner's loss also holds the per-step L2 penalty; the fast one does not
            assert lf == pytest.approx(lp, rel=1e-5)
    assert o_fast.t == o_plain.t == 3 * 5


def test_fallback_update_is_bit_for_bit_the_plain_arithmetic() -> None:
    """Without the CBLAS ``beta = 1`` GEMM the SGD step is ``W − lr·g`` exactly as the plain path
    computes it, so the weights agree to the last bit."""
    x, y = _data()
    nets = [mlp(SIZES, "relu", seed=2) for _ in range(2)]
    plain = PlainRunner(nets[0], get_optimizer("sgd", 0.1), 0.0)
    ops = NumpyOps()
    ops._gemm = None
    fast = FastRunner(nets[1], get_optimizer("sgd", 0.1), 0.0, ops, plan_blocks(nets[1], ops))
    _train(plain, x, y, epochs=2)
    _train(fast, x, y, epochs=2)
    for p, q in zip(nets[0].params, nets[1].params, strict=True):
        np.testing.assert_array_equal(q.value, p.value)


def test_gemm_acc_is_w_plus_alpha_at_d() -> None:
    rng = np.random.default_rng(0)
    ops = NumpyOps()
    for dtype, tol in ((np.float32, 1e-5), (np.float64, 1e-12)):
        a = rng.standard_normal((7, 5)).astype(dtype)
        d = rng.standard_normal((7, 3)).astype(dtype)
        w = rng.standard_normal((5, 3)).astype(dtype)
        want = w + (-0.3) * (a.T @ d)
        ops.gemm_acc(a.T, d, w, -0.3, np.empty_like(w))
        np.testing.assert_allclose(w, want, rtol=tol, atol=tol)
        # a non-contiguous operand takes the NumPy route, same result
        a2 = np.asfortranarray(a)[:, :]
        w2 = rng.standard_normal((5, 3)).astype(dtype)
        want2 = w2 + 0.5 * (a2.T @ d)
        ops.gemm_acc(a2[::1].T, d, w2, 0.5, np.empty_like(w2))
        np.testing.assert_allclose(w2, want2, rtol=tol, atol=tol)


def test_online_and_full_batch() -> None:
    x, y = _data(20)
    for batch in (1, 20, 7):
        nets = [mlp(SIZES, "tanh", seed=4) for _ in range(2)]
        _train(PlainRunner(nets[0], get_optimizer("sgd", 0.05), 0.0), x, y, epochs=2, batch=batch)
        _train(make_fast_runner(nets[1], get_optimizer("sgd", 0.05), 0.0), x, y, epochs=2, batch=batch)
        for p, q in zip(nets[0].params, nets[1].params, strict=True):
            np.testing.assert_allclose(q.value, p.value, rtol=1e-5, atol=1e-6)


def test_one_hot_and_single_logit_targets() -> None:
    x, y = _data(90, k=3)
    onehot = np.eye(3, dtype=np.float32)[y]
    for sizes, targets, loss in (([12, 8, 3], onehot, "softmax-ce"), ([12, 8, 1], y % 2, "bce")):
        nets = [mlp(sizes, "relu", loss=loss, seed=5) for _ in range(2)]
        hp = _train(PlainRunner(nets[0], get_optimizer("momentum", 0.1), 0.0), x, targets, epochs=2, batch=32)
        hf = _train(
            make_fast_runner(nets[1], get_optimizer("momentum", 0.1), 0.0), x, targets, epochs=2, batch=32
        )
        assert [a for _, a in hf] == [a for _, a in hp]
        for p, q in zip(nets[0].params, nets[1].params, strict=True):
            np.testing.assert_allclose(q.value, p.value, rtol=1e-5, atol=1e-6)


def test_caller_data_is_not_mutated_and_on_step_counts_steps() -> None:
    x, y = _data(130)
    x0, y0 = x.copy(), y.copy()
    net = mlp(SIZES, "sigmoid", loss="squared", seed=0)
    runner = make_fast_runner(net, get_optimizer("nesterov", 0.1), 0.01)
    calls = []
    order = np.random.default_rng(0).permutation(130)
    order0 = order.copy()
    runner.run_epoch(x, y, order, 64, lambda: calls.append(1))
    assert len(calls) == 3  # 64 + 64 + 2
    np.testing.assert_array_equal(x, x0)
    np.testing.assert_array_equal(y, y0)
    np.testing.assert_array_equal(order, order0)


def test_steady_state_step_allocates_no_batch_sized_arrays() -> None:
    """After the first epoch every intermediate lives in a reused buffer. (NumPy's ufunc
    machinery may still take its fixed 8192-element casting buffer for ``δ ⊙ [a > 0]``; that is
    below the threshold here, which is the size of the smallest per-step array.)"""
    x, y = _data(2000, d=128, k=10)
    net = mlp([128, 128, 128, 10], "relu", seed=0)
    runner = make_fast_runner(net, get_optimizer("sgd", 0.1), 0.0)
    order = np.random.default_rng(0).permutation(2000)
    runner.run_epoch(x, y, order, 128, lambda: None)  # buffers for 128 and for the last 80 rows
    tracemalloc.start()
    try:
        runner.run_epoch(x, y, order, 128, lambda: None)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    one_batch = 128 * 128 * 4  # a batch of x or of a hidden layer: 128 × 128 float32 = 64 KiB
    assert peak < one_batch, f"a steady-state epoch allocated {peak} bytes at peak"


def test_switching_runners_mid_training_keeps_optimizer_state() -> None:
    x, y = _data()
    nets = [mlp(SIZES, "relu", seed=6) for _ in range(2)]
    opt_a, opt_b = get_optimizer("adam", 0.01), get_optimizer("adam", 0.01)
    rng_a, rng_b = np.random.default_rng(0), np.random.default_rng(0)
    plain_a = PlainRunner(nets[0], opt_a, 0.0)
    for _ in range(2):
        plain_a.run_epoch(x, y, rng_a.permutation(300), 64, lambda: None)
    fast_b, plain_b = make_fast_runner(nets[1], opt_b, 0.0), PlainRunner(nets[1], opt_b, 0.0)
    fast_b.run_epoch(x, y, rng_b.permutation(300), 64, lambda: None)
    plain_b.run_epoch(x, y, rng_b.permutation(300), 64, lambda: None)
    assert opt_a.t == opt_b.t == 10
    for p, q in zip(nets[0].params, nets[1].params, strict=True):
        np.testing.assert_allclose(q.value, p.value, rtol=1e-5, atol=1e-6)


def test_fit_uses_the_fast_runner_and_matches_plain() -> None:
    x, y = _data(256)
    nets = [mlp(SIZES, "relu", seed=7) for _ in range(2)]
    h_fast = fit(nets[0], x, y, lr=0.1, batch_size=50, epochs=2, progress=False)
    h_plain = fit(nets[1], x, y, lr=0.1, batch_size=50, epochs=2, progress=False, fast=False)
    assert h_fast.runner == "fast-numpy" and h_plain.runner == "plain"
    assert h_fast["accuracy"] == h_plain["accuracy"]
    for p, q in zip(nets[0].params, nets[1].params, strict=True):
        np.testing.assert_allclose(p.value, q.value, rtol=1e-5, atol=1e-6)


def test_networks_the_fast_step_does_not_cover_get_none() -> None:
    sgd = get_optimizer("sgd", 0.1)
    assert make_fast_runner(mlp([6, 5, 3], "maxout", seed=0), sgd, 0.0) is None
    assert make_fast_runner(mlp([6, 5, 3], "softplus", seed=0), sgd, 0.0) is None
    softmax_out = Sequential([Dense(6, 3, rng=0), Softmax()], loss="squared")
    assert make_fast_runner(softmax_out, sgd, 0.0) is None
    negative_slope = Sequential([Dense(6, 5, rng=0), LeakyReLU(-0.5), Dense(5, 3, rng=1)], loss="softmax-ce")
    assert make_fast_runner(negative_slope, sgd, 0.0) is None
    act_first = Sequential([LeakyReLU(), Dense(6, 3, rng=0)], loss="softmax-ce")
    assert make_fast_runner(act_first, sgd, 0.0) is None
    net = mlp([6, 5, 3], "relu", seed=0)
    net.hooks.append(object())
    assert make_fast_runner(net, sgd, 0.0) is None

    class Custom(Optimizer):
        name = "custom"

        def update(self, p, state):  # pragma: no cover - never called
            p.value -= self.lr * p.grad

    assert make_fast_runner(mlp([6, 5, 3], "relu", seed=0), Custom(0.1), 0.0) is None
    # and what it does cover: stacked Dense layers, identity layers anywhere after a Dense
    covered = Sequential(
        [Dense(6, 5, rng=0), Dense(5, 4, rng=1), LeakyReLU(0.2), Dense(4, 3, rng=2)], loss="bce"
    )
    blocks = plan_blocks(covered, NumpyOps)
    assert [(b.kind, b.alpha) for b in blocks] == [("identity", 0.0), ("leaky_relu", 0.2), ("identity", 0.0)]


@pytest.fixture
def swish() -> Iterator[type[Elementwise]]:
    """A newly registered activation that no backend has a fast kernel for (removed afterwards)."""

    class Swish(Elementwise):
        kind = "test_swish"
        formula, derivative = "a = z σ(z)", "σ(z) + a (1 − σ(z))"

        def f(self, z):
            return z * sigmoid(z)

        def fprime(self, z, a):
            s = sigmoid(z)
            return s + a * (1.0 - s)

    LAYERS[Swish.kind] = Swish
    try:
        yield Swish
    finally:
        del LAYERS[Swish.kind]


def test_an_activation_without_a_fast_kernel_trains_on_the_plain_path(swish: type[Elementwise]) -> None:
    x, y = _data(120)
    net = Sequential([Dense(12, 8, rng=0), swish(), Dense(8, 4, rng=1)], loss="softmax-ce")
    sgd = get_optimizer("sgd", 0.1)
    assert plan_blocks(net, NumpyOps) is None
    assert make_fast_runner(net, sgd, 0.0) is None
    assert make_runner(net, sgd, 0.0).name == "plain"
    before = [p.value.copy() for p in net.params]
    hist = fit(net, x, y, lr=0.1, batch_size=32, epochs=2, progress=False)
    assert hist.runner == "plain"
    for p, w0 in zip(net.params, before, strict=True):
        assert np.all(np.isfinite(p.value)) and not np.array_equal(p.value, w0)


class _Record:
    """A gradient hook that keeps a copy of every gradient it is shown."""

    def __init__(self) -> None:
        self.steps: list[list[np.ndarray]] = []

    def __call__(self, params) -> None:
        self.steps.append([p.grad.copy() for p in params])


def _scale_by_zero(params) -> None:
    for p in params:
        p.grad *= 0.0


@pytest.mark.parametrize("opt", OPTIMIZERS)
@pytest.mark.parametrize("l2", [0.0, 0.01])
def test_a_hook_that_zeroes_the_gradients_leaves_the_fast_runners_weights_unchanged(
    opt: str, l2: float
) -> None:
    x, y = _data()
    net = mlp(SIZES, "relu", seed=8)
    runner = make_runner(net, get_optimizer(opt, _lr(opt)), l2, grad_hooks=[_scale_by_zero])
    assert runner.name == "fast-numpy"
    before = [p.value.copy() for p in net.params]
    _train(runner, x, y, epochs=2)
    for p, w0 in zip(net.params, before, strict=True):
        np.testing.assert_array_equal(p.value, w0, err_msg=p.name)


@pytest.mark.parametrize(
    ("activation", "loss"), [("relu", "softmax-ce"), ("sigmoid", "squared"), ("tanh", "bce")]
)
@pytest.mark.parametrize("opt", OPTIMIZERS)
@pytest.mark.parametrize("l2", [0.0, 0.01])
def test_a_hook_sees_the_plain_runners_gradients(activation: str, loss: str, opt: str, l2: float) -> None:
    """Stage two on the fast runner: every step's gradients (``+ λW``) as the plain runner has them."""
    x, y = _data(150, dtype=np.float64)
    nets = [mlp(SIZES, activation, loss=loss, seed=9, dtype=np.float64) for _ in range(2)]
    seen_plain, seen_fast = _Record(), _Record()
    plain = make_runner(nets[0], get_optimizer(opt, _lr(opt)), l2, fast=False, grad_hooks=[seen_plain])
    fast = make_runner(nets[1], get_optimizer(opt, _lr(opt)), l2, grad_hooks=[seen_fast])
    assert plain.name == "plain" and fast.name == "fast-numpy"
    _train(plain, x, y, epochs=2)
    _train(fast, x, y, epochs=2)
    assert len(seen_fast.steps) == len(seen_plain.steps) == 2 * 3
    for step, (gp, gf) in enumerate(zip(seen_plain.steps, seen_fast.steps, strict=True)):
        for p, a, b in zip(nets[0].params, gp, gf, strict=True):
            np.testing.assert_allclose(b, a, rtol=1e-12, atol=1e-12, err_msg=f"step {step} {p.name}")
    for p, q in zip(nets[0].params, nets[1].params, strict=True):
        np.testing.assert_allclose(q.value, p.value, rtol=1e-12, atol=1e-12, err_msg=p.name)


def test_hooks_are_called_with_the_networks_parameters_once_per_step() -> None:
    x, y = _data(130)
    net = mlp(SIZES, "tanh", seed=3)
    calls: list[list[int]] = []
    runner = make_fast_runner(net, get_optimizer("sgd", 0.1), 0.0, grad_hooks=[lambda ps: calls.append(ps)])
    runner.run_epoch(x, y, np.arange(130), 64, lambda: None)
    assert len(calls) == 3 and all([id(p) for p in ps] == [id(p) for p in net.params] for ps in calls)


def test_limit_threads_limits_and_restores() -> None:
    threadpoolctl = pytest.importorskip("threadpoolctl")
    before = [d["num_threads"] for d in threadpoolctl.threadpool_info()]
    with limit_threads(1):
        assert all(d["num_threads"] == 1 for d in threadpoolctl.threadpool_info())
    assert [d["num_threads"] for d in threadpoolctl.threadpool_info()] == before
    with limit_threads(None):  # None changes nothing
        assert [d["num_threads"] for d in threadpoolctl.threadpool_info()] == before


def test_importing_the_speed_modules_imports_neither_torch_nor_cupy() -> None:
    code = (
        "import sys, chainrule, chainrule.accel, chainrule.studies.bench, chainrule.cli.commands.bench\n"
        "bad = [m for m in ('torch', 'cupy') if m in sys.modules]\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


# --------------------------------------------------------------------------------------------
# chainrule bench
# --------------------------------------------------------------------------------------------


def test_bench_prints_one_json_object_with_the_figures(capsys: pytest.CaptureFixture[str]) -> None:
    from chainrule.cli import main

    code = main(
        [
            "bench",
            "--data",
            "default",
            "--quick",
            "--no-memory",
            "--threads",
            "1",
            "--cooldown",
            "0",
            "--layers",
            "784,32,10",
            "--quiet",
        ]
    )
    assert code == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 1
    result = json.loads(lines[-1])
    assert result["contestants"] == ["chainrule", "torch_eager"]
    assert result["runner"] == "fast-numpy" and result["backend"] == "numpy:cpu"
    for name in result["contestants"]:
        secs = result["epoch_seconds"][name]
        assert len(secs) == 2 and all(s > 0 for s in secs)
        assert result["median_epoch_seconds"][name] == pytest.approx(float(np.median(secs)), abs=1e-4)
        assert 0.5 < result["test_accuracy"][name] <= 1.0
    ratio = result["median_epoch_seconds"]["chainrule"] / result["median_epoch_seconds"]["torch_eager"]
    assert result["ratios"]["chainrule/torch_eager"] == pytest.approx(ratio, rel=1e-3)
    # same weights, same shuffles, same hyperparameters: the first epoch's loss agrees closely
    losses = result["train_loss"]
    assert losses["chainrule"][0] == pytest.approx(losses["torch_eager"][0], rel=1e-4)
    assert abs(result["test_accuracy_gap_points"]) < 1.0
    assert any(b["internal_api"] == "openblas" for b in result["environment"]["blas"])


def test_bench_memory_worker_reports_peaks() -> None:
    from chainrule.studies.bench import BenchConfig, _measure_memory

    cfg = BenchConfig(layers=[784, 32, 10], data="default", epochs=1, threads=1)
    mem = _measure_memory("chainrule", cfg)
    assert "error" not in mem, mem
    assert mem["torch_imported"] is False  # the NumPy contestant runs without torch
    assert mem["rss_before_training_mb"] > 10  # the 6000×784 float32 training set alone is 18 MB
    if mem["peak_rss_training_mb"] is not None:
        assert mem["peak_rss_training_mb"] >= mem["rss_before_training_mb"] * 0.9
        assert mem["peak_rss_setup_mb"] >= mem["rss_before_training_mb"]


def test_bench_refuses_unknown_contestant_setups() -> None:
    from chainrule.cli import main

    assert (
        main(
            [
                "bench",
                "--data",
                "default",
                "--activation",
                "softplus",
                "--no-torch",
                "--no-memory",
                "--quick",
                "--quiet",
            ]
        )
        == 1
    )  # softplus has no fast runner: an error, not a slow "fast" figure
