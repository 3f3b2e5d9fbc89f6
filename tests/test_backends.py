"""Backend parity on the CPU: NumPy and torch tensors (used as plain arrays) run the same layer
code and give the same numbers; missing or mixed backends fail with clear errors.

Every registered layer (``chainrule.nn.layer.LAYERS``) and loss (``chainrule.nn.losses.LOSSES``) is covered
automatically: a new layer kind needs an entry in ``LAYER_FACTORIES`` only if it cannot be built
without arguments.
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from chainrule import backend as backend_mod  # noqa: E402
from chainrule import mlp  # noqa: E402
from chainrule.accel import make_fast_runner  # noqa: E402
from chainrule.accel.torch_graph import TorchGraphRunner  # noqa: E402
from chainrule.accel.torch_ops import TorchOps  # noqa: E402
from chainrule.backend import get_backend, namespace, numpy_backend, to_numpy  # noqa: E402
from chainrule.errors import BackendError, MissingDependencyError  # noqa: E402
from chainrule.nn.layer import LAYERS  # noqa: E402
from chainrule.nn.losses import LOSSES  # noqa: E402
from chainrule.optim import get_optimizer  # noqa: E402
from chainrule.train import PlainRunner, fit  # noqa: E402

TORCH_CPU = get_backend("torch", "cpu")


def _layer(kind: str):
    """The registered class's own example (the same weights every call)."""
    return LAYERS[kind].example(np.random.default_rng(0), np.float64)


@pytest.mark.parametrize("kind", sorted(LAYERS))
def test_every_layer_gives_the_same_forward_and_backward_on_numpy_and_torch(kind: str) -> None:
    rng = np.random.default_rng(11)
    ref, shape = _layer(kind)
    other, _ = _layer(kind)
    other.to(TORCH_CPU, "float64")
    x = ref.example_input(rng, shape, 7)  # any sample shape; token ids for onehot/embed
    y_np, ctx_np = ref.forward(x)
    y_t, ctx_t = other.forward(TORCH_CPU.asarray(x))
    assert isinstance(y_t, torch.Tensor) and y_t.dtype == torch.float64
    np.testing.assert_allclose(to_numpy(y_t), y_np, rtol=1e-12, atol=1e-12)
    dy = rng.standard_normal(y_np.shape)
    dx_np = ref.backward(dy, ctx_np)
    dx_t = other.backward(TORCH_CPU.asarray(dy), ctx_t)
    np.testing.assert_allclose(to_numpy(dx_t), dx_np, rtol=1e-12, atol=1e-12)
    for p, q in zip(ref.params, other.params, strict=True):
        assert isinstance(q.grad, torch.Tensor)
        np.testing.assert_allclose(to_numpy(q.grad), p.grad, rtol=1e-12, atol=1e-12, err_msg=p.name)


@pytest.mark.parametrize("name", sorted(LOSSES))
def test_every_loss_gives_the_same_cost_and_delta_on_numpy_and_torch(name: str) -> None:
    rng = np.random.default_rng(12)
    out = rng.standard_normal((9, 4))
    if name == "squared":
        out = 1 / (1 + np.exp(-out))  # squared error usually sees sigmoid outputs
    y = rng.integers(0, 4, 9)
    ref, other = LOSSES[name](), LOSSES[name]()
    cost, ctx = ref.forward(out, y)
    cost_t, ctx_t = other.forward(TORCH_CPU.asarray(out), TORCH_CPU.asarray(y))
    assert float(cost_t) == pytest.approx(float(cost), rel=1e-12)
    np.testing.assert_allclose(to_numpy(other.backward(ctx_t)), ref.backward(ctx), rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("activation", ["relu", "tanh", "sigmoid", "leaky_relu"])
@pytest.mark.parametrize("optimizer", ["sgd", "momentum", "adam"])
def test_fast_step_gives_the_same_float64_gradients_on_every_cpu_backend(
    activation: str, optimizer: str
) -> None:
    rng = np.random.default_rng(13)
    x, y = rng.standard_normal((40, 10)), rng.integers(0, 3, 40)
    plain = mlp([10, 12, 7, 3], activation, seed=2, dtype=np.float64)
    plain.loss_and_grad(x, y, l2=0.05)
    for backend in (numpy_backend, TORCH_CPU):
        net = mlp([10, 12, 7, 3], activation, seed=2, dtype=np.float64).to(backend, "float64")
        runner = make_fast_runner(net, get_optimizer(optimizer, 0.1), 0.05)
        assert runner.name == f"fast-{backend.name}"
        runner.loss_and_grad(backend.asarray(x), backend.asarray(y))
        for p, q in zip(plain.params, net.params, strict=True):
            np.testing.assert_allclose(to_numpy(q.grad), p.grad, rtol=1e-10, atol=1e-12, err_msg=str(backend))


def _fit_weights(backend, fast: bool, optimizer: str, *, epochs: int = 2):
    rng = np.random.default_rng(14)
    x, y = rng.standard_normal((200, 10)).astype(np.float32), rng.integers(0, 3, 200)
    net = mlp([10, 16, 8, 3], "relu", seed=4).to(backend, "float32")
    lr = 0.01 if optimizer == "adam" else 0.1
    hist = fit(
        net,
        x,
        y,
        optimizer=optimizer,
        lr=lr,
        batch_size=48,
        epochs=epochs,
        l2=0.001,
        progress=False,
        fast=fast,
    )
    return [to_numpy(p.value) for p in net.params], hist


@pytest.mark.parametrize("optimizer", ["sgd", "nesterov", "adam"])
def test_same_float32_weights_after_fit_steps_on_every_cpu_backend_and_path(optimizer: str) -> None:
    ref, h_ref = _fit_weights(numpy_backend, False, optimizer)
    assert h_ref.runner == "plain"
    for backend, fast in ((numpy_backend, True), (TORCH_CPU, True), (TORCH_CPU, False)):
        got, hist = _fit_weights(backend, fast, optimizer)
        assert hist.runner == (f"fast-{backend.name}" if fast else "plain")
        # NumPy (OpenBLAS) and torch (MKL) sum GEMMs in different orders and the one-GEMM SGD
        # update rounds once where the plain path rounds twice: float32 differences of a few ulp
        # per step (seen: ≤ 8e-7 absolute after 10 steps on weights of order 0.1-1).
        for w_ref, w in zip(ref, got, strict=True):
            assert w.dtype == np.float32
            np.testing.assert_allclose(w, w_ref, rtol=1e-5, atol=2e-6, err_msg=f"{backend} fast={fast}")


def test_torch_fast_and_plain_paths_agree_tightly() -> None:
    """On one backend (same BLAS) the fast step is the plain arithmetic."""
    for optimizer in ("sgd", "momentum"):
        fast, _ = _fit_weights(TORCH_CPU, True, optimizer)
        plain, _ = _fit_weights(TORCH_CPU, False, optimizer)
        for a, b in zip(fast, plain, strict=True):
            np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_torch_runner_state_and_step_count_follow_the_optimizer() -> None:
    rng = np.random.default_rng(15)
    x = TORCH_CPU.asarray(rng.standard_normal((64, 10)), dtype="float32")
    y = TORCH_CPU.asarray(rng.integers(0, 3, 64))
    nets = [mlp([10, 8, 3], "tanh", seed=5).to(TORCH_CPU) for _ in range(2)]
    opts = [get_optimizer("adam", 0.01), get_optimizer("adam", 0.01)]
    fast = make_fast_runner(nets[0], opts[0], 0.0)
    plain = PlainRunner(nets[1], opts[1], 0.0)
    order = np.random.default_rng(0).permutation(64)
    for _ in range(3):
        lf, af = fast.run_epoch(x, y, order, 16, lambda: None)
        lp, ap = plain.run_epoch(x, y, order, 16, lambda: None)
        assert af == ap
        assert lf == pytest.approx(lp, rel=1e-5)
    assert opts[0].t == opts[1].t == 12
    for p, q in zip(nets[0].params, nets[1].params, strict=True):
        np.testing.assert_allclose(to_numpy(p.value), to_numpy(q.value), rtol=1e-5, atol=1e-6)


def test_asking_for_a_backend_that_is_not_installed_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    real_has = backend_mod._has
    monkeypatch.setattr(backend_mod, "_has", lambda mod: False if mod in ("cupy", "torch") else real_has(mod))
    with pytest.raises(MissingDependencyError, match=r"chainrule\[cuda\]"):
        get_backend("cupy")
    with pytest.raises(MissingDependencyError, match=r"chainrule\[torch\]"):
        get_backend("torch", "cpu")


def test_get_backend_cupy_without_cupy_is_a_missing_dependency() -> None:
    if backend_mod._has("cupy"):
        pytest.skip("cupy is installed here")
    with pytest.raises(MissingDependencyError) as info:
        get_backend("cupy", "cuda")
    assert info.value.package == "cupy"
    assert isinstance(info.value, ImportError)


def test_unknown_backend_or_device_or_missing_gpu_is_a_backend_error() -> None:
    with pytest.raises(BackendError, match="numpy, torch or cupy"):
        get_backend("jax")
    with pytest.raises(BackendError, match="cpu or cuda"):
        get_backend("numpy", "tpu")
    with pytest.raises(BackendError, match="CPU only"):
        get_backend("numpy", "cuda")
    if not torch.cuda.is_available():
        with pytest.raises(BackendError, match="CUDA"):
            get_backend("torch", "cuda")
        if not backend_mod._has("cupy"):
            with pytest.raises(BackendError, match="no CUDA GPU"):
                get_backend(None, "cuda")


def test_mixing_backends_is_an_error_not_a_silent_copy() -> None:
    a = np.ones((2, 3))
    t = torch.ones(2, 3)
    with pytest.raises(BackendError, match="different backends"):
        namespace(a, t)
    assert namespace(a) is np
    assert namespace(t) is not np


def test_cli_reports_a_missing_backend_in_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from chainrule.cli import main

    real_has = backend_mod._has
    monkeypatch.setattr(backend_mod, "_has", lambda mod: False if mod == "cupy" else real_has(mod))
    assert main(["bench", "--backend", "cupy", "--device", "cuda", "--quick", "--data", "default"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "chainrule[cuda]" in err[0]


class _CpuGraphRunner(TorchGraphRunner):
    """The CUDA-graph runner with its three CUDA calls replaced, so that everything around them
    (static buffers, position tensor, totals on the device, step count, state restored after the
    warm-up, re-capture, the fallback) runs on the CPU: "replay" runs the recorded step again."""

    records = 0

    def _warm_up(self, fn):
        fn()
        fn()

    def _record(self, fn):
        type(self).records += 1
        return SimpleNamespace(replay=fn)  # the captured step leaves the host step count to the runner

    def _sync(self):
        pass


@pytest.mark.parametrize(("opt", "l2"), [("sgd", 0.0), ("sgd", 0.01), ("momentum", 0.0), ("adam", 0.01)])
def test_graph_runner_logic_replays_the_plain_step(opt: str, l2: float) -> None:
    rng = np.random.default_rng(16)
    x = TORCH_CPU.asarray(rng.standard_normal((300, 10)), dtype="float32")
    y = TORCH_CPU.asarray(rng.integers(0, 3, 300))
    lr = 0.01 if opt == "adam" else 0.1
    nets = [mlp([10, 12, 3], "relu", seed=8).to(TORCH_CPU) for _ in range(2)]
    graph = _CpuGraphRunner(nets[0], get_optimizer(opt, lr), l2, TorchOps("cpu"))
    plain = PlainRunner(nets[1], get_optimizer(opt, lr), l2)
    steps = []
    for epoch in range(3):  # 300 = 4 × 64 + 44: two graphs, the partial one replayed once
        order = np.random.default_rng(epoch).permutation(300)
        lg, ag = graph.run_epoch(x, y, order, 64, lambda: steps.append(1))
        lp, ap = plain.run_epoch(x, y, order, 64, lambda: None)
        assert ag == ap
        if l2 == 0:
            assert lg == pytest.approx(lp, rel=1e-5)
    assert len(steps) == 15 and graph.optimizer.t == plain.optimizer.t == 15
    assert graph.name == "fast-torch-cuda-graph"
    for p, q in zip(nets[0].params, nets[1].params, strict=True):
        np.testing.assert_allclose(to_numpy(p.value), to_numpy(q.value), rtol=1e-5, atol=2e-6)


def test_graph_runner_recaptures_on_new_data_and_falls_back_when_capture_fails() -> None:
    rng = np.random.default_rng(17)
    y = TORCH_CPU.asarray(rng.integers(0, 3, 100))
    xs = [TORCH_CPU.asarray(rng.standard_normal((100, 6)), dtype="float32") for _ in range(2)]
    nets = [mlp([6, 5, 3], "tanh", seed=9).to(TORCH_CPU) for _ in range(2)]
    graph = _CpuGraphRunner(nets[0], get_optimizer("nesterov", 0.1), 0.0, TorchOps("cpu"))
    plain = PlainRunner(nets[1], get_optimizer("nesterov", 0.1), 0.0)
    order = np.arange(100)
    before = _CpuGraphRunner.records
    for x in (xs[0], xs[0], xs[1]):
        graph.run_epoch(x, y, order, 32, lambda: None)
        plain.run_epoch(x, y, order, 32, lambda: None)
    assert _CpuGraphRunner.records - before == 4  # two batch sizes, captured for xs[0] and again for xs[1]

    class Failing(_CpuGraphRunner):
        def _record(self, fn):
            raise RuntimeError("operation not permitted when stream is capturing")

    failing = Failing(nets[0], graph.optimizer, 0.0, TorchOps("cpu"))
    with pytest.warns(RuntimeWarning, match="capture failed"):
        failing.run_epoch(xs[1], y, order, 32, lambda: None)
    plain.run_epoch(xs[1], y, order, 32, lambda: None)
    assert failing.name == "fast-torch"
    failing.run_epoch(xs[0], y, order, 32, lambda: None)  # eager from now on, no second warning
    plain.run_epoch(xs[0], y, order, 32, lambda: None)
    for p, q in zip(nets[0].params, nets[1].params, strict=True):
        np.testing.assert_allclose(to_numpy(p.value), to_numpy(q.value), rtol=1e-5, atol=2e-6)
