"""GradientFlow: the norms it records (against torch autograd and a direct loss_and_grad), the
measured update ratio, that it leaves training untouched on every runner, and its warnings."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
import torch

from chainrule import mlp
from chainrule.errors import ConfigError, DataError
from chainrule.io import load_default
from chainrule.nn.layer import Layer
from chainrule.nn.layers import Dense, Sigmoid, Tanh, TiedDense
from chainrule.nn.model import Sequential
from chainrule.nn.params import Param
from chainrule.train import Callback, fit
from chainrule.train.flow import METRICS, GradientFlow, GradientFlowWarning, flow_layers


def _data(n: int = 32, d: int = 12, k: int = 3, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    r = np.random.default_rng(seed)
    return r.standard_normal((n, d)), r.integers(0, k, n)


def _torch_norms(net, x: np.ndarray, y: np.ndarray) -> dict[str, list[float]]:
    """‖δ^l‖, ‖∂E/∂b^l‖, ‖∂E/∂W^l‖ of every Dense layer by torch autograd (an independent oracle)."""
    h = torch.tensor(x)
    zs, ws, bs = [], [], []
    for layer in net.layers:
        if isinstance(layer, Dense):
            W = torch.tensor(np.asarray(layer.W.value), requires_grad=True)
            b = torch.tensor(np.asarray(layer.b.value), requires_grad=True)
            h = h @ W + b
            h.retain_grad()
            zs.append(h)
            ws.append(W)
            bs.append(b)
        else:
            h = {"tanh": torch.tanh, "relu": torch.relu, "sigmoid": torch.sigmoid}[layer.kind](h)
    loss = torch.nn.functional.cross_entropy(h, torch.tensor(y))
    loss.backward()
    return {
        "delta_norm": [float(z.grad.norm()) for z in zs],
        "bias_grad_norm": [float(b.grad.norm()) for b in bs],
        "grad_norm": [float(W.grad.norm()) for W in ws],
        "weight_norm": [float(W.detach().norm()) for W in ws],
    }


@pytest.mark.parametrize("fast", [True, False])
def test_recorded_norms_match_torch_autograd(fast: bool) -> None:
    """Step 0 (initial weights) and the last step (final weights) agree with autograd on the probe."""
    x, y = _data()
    net = mlp([12, 10, 8, 3], "tanh", seed=3, dtype=np.float64)
    before = _torch_norms(net, x[:8], y[:8])
    flow = GradientFlow(interval=3, warn=False)
    # 32 rows in batches of 8: 4 steps per epoch, 3 epochs = 12 steps, recorded at 0, 3, 6, 9, 12
    hist = fit(net, x, y, lr=0.1, batch_size=8, epochs=3, progress=False, fast=fast, callbacks=[flow])
    assert (hist.runner != "plain") == fast  # the fast runner never calls the driver's hooks
    after = _torch_norms(net, x[:8], y[:8])
    assert flow.steps.tolist() == [0, 3, 6, 9, 12]
    for metric in ("delta_norm", "bias_grad_norm", "grad_norm", "weight_norm"):
        series = flow.series(metric)
        assert series.shape == (5, 3)
        np.testing.assert_allclose(series[0], before[metric], rtol=1e-10)
        np.testing.assert_allclose(series[-1], after[metric], rtol=1e-10)
    assert not np.allclose(flow.delta_norm[0], flow.delta_norm[-1])  # training changed something


def test_grad_norm_equals_a_direct_loss_and_grad_with_l2() -> None:
    """‖∂E/∂W‖ is what the driver itself computes on the probe batch, λW included."""
    x, y = _data(n=40)
    net = mlp([12, 16, 3], "relu", seed=0, dtype=np.float64)
    flow = GradientFlow(interval=5, probe_size=10, warn=False)
    fit(net, x, y, lr=0.05, batch_size=8, epochs=1, l2=0.01, progress=False, callbacks=[flow])
    assert flow.steps.tolist() == [0, 5]
    net.loss_and_grad(x[:10], y[:10], l2=0.01)
    direct = [float(np.linalg.norm(layer.W.grad)) for layer in net.layers if isinstance(layer, Dense)]
    np.testing.assert_allclose(flow.grad_norm[-1], direct, rtol=1e-12)


def test_update_ratio_is_the_measured_sgd_step() -> None:
    """Full-batch SGD: the probe batch is the whole training set, so the step that led to record k
    moved W by exactly lr·‖∂E/∂W‖ measured at record k−1."""
    x, y = _data(n=24)
    lr = 0.3
    net = mlp([12, 10, 3], "sigmoid", seed=1, dtype=np.float64)
    flow = GradientFlow(interval=1, warn=False)
    fit(net, x, y, lr=lr, batch_size=None, epochs=6, progress=False, callbacks=[flow])
    u, g, w = flow.update_ratio, flow.grad_norm, flow.weight_norm
    assert np.all(np.isnan(u[0]))  # no step before step 0
    np.testing.assert_allclose(u[1:], lr * g[:-1] / w[:-1], rtol=1e-9)


def test_update_ratio_at_a_longer_interval_is_one_step() -> None:
    """interval=4: the weights are copied one step before each record, so the ratio is one step's."""
    x, y = _data(n=24)
    lr = 0.2
    net = mlp([12, 10, 3], "tanh", seed=1, dtype=np.float64)
    seen = []

    class Spy(Callback):
        """Runs after the flow: keeps the weights after every step."""

        def on_step(self, step: int) -> None:
            seen.append([np.array(layer.W.value) for layer in net.layers if isinstance(layer, Dense)])

    flow = GradientFlow(interval=4, warn=False)
    fit(net, x, y, lr=lr, batch_size=None, epochs=9, progress=False, callbacks=[flow, Spy()])
    assert flow.steps.tolist() == [0, 4, 8]
    for k, step in enumerate(flow.steps[1:], start=1):
        w_now, w_prev = seen[step - 1], seen[step - 2]
        expected = [np.linalg.norm(a - b) / np.linalg.norm(b) for a, b in zip(w_now, w_prev, strict=True)]
        np.testing.assert_allclose(flow.update_ratio[k], expected, rtol=1e-12)


@pytest.mark.parametrize("fast", [True, False])
def test_training_is_unchanged_by_the_probe(fast: bool) -> None:
    """Same seed with and without the callback (probing at every step): identical weights, and
    the flow neither leaves a hook on the driver nor pushes fit off its fast runner."""
    d = load_default()
    x, y = d.x_train[:600], d.y_train[:600]
    nets = [mlp([784, 32, 16, 10], "relu", seed=0) for _ in range(2)]
    hooks_seen = []

    class HookSpy(Callback):
        def on_step(self, step: int) -> None:
            hooks_seen.append(len(nets[1].hooks))

    h0 = fit(nets[0], x, y, lr=0.1, batch_size=50, epochs=2, progress=False, fast=fast)
    flow = GradientFlow(interval=1, warn=False)
    h1 = fit(
        nets[1], x, y, lr=0.1, batch_size=50, epochs=2, progress=False, fast=fast, callbacks=[flow, HookSpy()]
    )
    assert h1.runner == h0.runner and (h1.runner != "plain") == fast
    assert set(hooks_seen) == {0}
    assert len(flow.steps) == 25  # step 0 and 24 steps
    for p, q in zip(nets[0].params, nets[1].params, strict=True):
        np.testing.assert_array_equal(p.value, q.value)
    assert h0.epochs[-1]["loss"] == h1.epochs[-1]["loss"]


def test_gradients_and_output_are_restored() -> None:
    x, y = _data()
    net = mlp([12, 8, 3], "relu", seed=0, dtype=np.float64)
    net.loss_and_grad(x[8:16], y[8:16])
    grads = [p.grad.copy() for p in net.params]
    out = net.output
    flow = GradientFlow(warn=False)
    flow.attach(net, x, y, batch_size=8)
    flow.record(0)
    assert net.output is out
    assert net.hooks == []
    for p, g in zip(net.params, grads, strict=True):
        np.testing.assert_array_equal(p.grad, g)


def _first_and_last(flow: GradientFlow) -> tuple[float, float]:
    d = flow.delta_norm[0]
    return float(d[0]), float(d[-1])


def test_vanishing_sigmoid_net_warns() -> None:
    x, y = _data(n=64, d=20, k=4)
    net = mlp([20] + [30] * 8 + [4], "sigmoid", init="xavier", seed=0)
    flow = GradientFlow()
    flow.attach(net, x, y, batch_size=64)
    with pytest.warns(GradientFlowWarning, match="vanishing gradient at step 0"):
        flow.record(0)
    first, last = _first_and_last(flow)
    assert first < 1e-3 * last  # the premise: it really did vanish by 1000×
    kinds = {w["kind"] for w in flow.warnings}
    assert kinds == {"vanishing"}
    assert flow.warnings[0]["layer"] == flow.layers[0]
    assert all(w["ratio"] < 1e-3 for w in flow.warnings)
    assert flow.layers[-1] not in {w["layer"] for w in flow.warnings}


def test_exploding_relu_net_warns() -> None:
    x, y = _data(n=64, d=20, k=4)
    net = mlp([20] + [30] * 6 + [4], "relu", init="normal", seed=0)
    flow = GradientFlow()
    flow.attach(net, x, y, batch_size=64)
    with pytest.warns(GradientFlowWarning, match="exploding gradient"):
        flow.record(0)
    first, last = _first_and_last(flow)
    assert first > 1e3 * last
    assert {w["kind"] for w in flow.warnings} == {"exploding"}  # the small output layer is not "vanishing"
    assert flow.warnings[0]["layer"] == flow.layers[0]


def test_nonfinite_gradient_warns() -> None:
    x, y = _data()
    net = mlp([12, 8, 8, 3], "tanh", seed=0)
    net.layers[2].W.value[0, 0] = np.nan
    flow = GradientFlow()
    flow.attach(net, x, y, batch_size=8)
    with pytest.warns(GradientFlowWarning, match="nonfinite"), np.errstate(invalid="ignore"):
        flow.record(0)
    assert "nonfinite" in {w["kind"] for w in flow.warnings}
    assert json.dumps(flow.to_dict(), allow_nan=False)  # NaN becomes null: strict JSON


def test_healthy_he_relu_net_does_not_warn() -> None:
    d = load_default()
    net = mlp([784, 256, 128, 10], "relu", init="he", seed=0)
    flow = GradientFlow(interval=10)
    with warnings.catch_warnings():
        warnings.simplefilter("error", GradientFlowWarning)
        fit(
            net,
            d.x_train[:2000],
            d.y_train[:2000],
            lr=0.1,
            batch_size=64,
            epochs=1,
            progress=False,
            callbacks=[flow],
        )
    assert flow.warnings == []
    d0 = flow.delta_norm
    assert np.all(np.isfinite(d0)) and np.all(d0.max(axis=1) / d0.min(axis=1) < 10)


def test_python_warning_once_per_layer_and_kind_list_per_episode() -> None:
    x, y = _data(n=64, d=20, k=4)
    net = mlp([20] + [30] * 8 + [4], "sigmoid", init="xavier", seed=0)
    flow = GradientFlow(interval=1)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fit(net, x, y, lr=0.1, batch_size=16, epochs=2, progress=False, callbacks=[flow])
    flagged = {(w["layer"], w["kind"]) for w in flow.warnings}
    assert len(flow.steps) == 9 and flagged
    assert len([c for c in caught if issubclass(c.category, GradientFlowWarning)]) == len(flagged)
    # a layer that stays vanishing for all 9 records is one episode, dated where it began
    assert len(flow.warnings) == len(flagged)
    assert {w["step"] for w in flow.warnings} == {0}


def test_to_dict_round_trip() -> None:
    x, y = _data()
    net = mlp([12, 8, 3], "relu", seed=0)
    flow = GradientFlow(interval=2, warn=False)
    fit(net, x, y, lr=0.1, batch_size=8, epochs=1, progress=False, callbacks=[flow])
    d = json.loads(json.dumps(flow.to_dict(), allow_nan=False))
    assert d["layers"] == [label for _, label in flow_layers(net)] == ["1: 12→8", "2: 8→3"]
    assert d["steps"] == [0, 2, 4]
    back = GradientFlow.from_dict(d)
    for m in METRICS:
        np.testing.assert_allclose(back.series(m), flow.series(m), rtol=1e-15, equal_nan=True)
    assert d["series"]["update_ratio"][0] == [None, None]


def test_maxout_layers_are_watched() -> None:
    x, y = _data()
    net = mlp([12, 6, 3], "maxout", seed=0, dtype=np.float64)
    flow = GradientFlow(warn=False)
    fit(net, x, y, lr=0.1, batch_size=8, epochs=1, progress=False, callbacks=[flow])
    assert flow.layers == ["1: 12→6", "2: 6→3"]
    assert np.all(np.isfinite(flow.delta_norm)) and np.all(flow.delta_norm > 0)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [({"interval": 0}, "interval"), ({"probe_size": 0}, "probe_size"), ({"vanish_ratio": 2.0}, "ratio")],
)
def test_bad_settings(kwargs: dict, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        GradientFlow(**kwargs)


@pytest.mark.parametrize(
    ("record", "match"),
    [
        ([], "must be an object"),
        ({"layers": ["a"], "steps": [0]}, "missing 'series'"),
        ({"layers": ["a"], "steps": [0], "series": {"delta_norm": [[1.0, 2.0]]}}, "list of 1 numbers"),
        ({"layers": ["a"], "steps": [0, 1], "series": {"delta_norm": [[1.0]]}}, "one row per step"),
        ({"layers": ["a"], "steps": ["0"], "series": {}}, "integers"),
        ({"layers": ["a"], "steps": [0], "series": {"delta_norm": [["x"]]}}, "not a number"),
    ],
)
def test_from_dict_rejects_malformed_records(record: object, match: str) -> None:
    with pytest.raises(DataError, match=match):
        GradientFlow.from_dict(record)  # type: ignore[arg-type]


def test_record_before_attach_is_an_error() -> None:
    with pytest.raises(ConfigError, match="attach"):
        GradientFlow().record(0)


def test_float32_norms_do_not_overflow() -> None:
    """‖W‖ ≈ 1e21 overflows a float32 sum of squares; the record falls back to float64."""
    x, y = _data()
    net = mlp([12, 8, 3], "relu", seed=0)  # float32
    net.layers[0].W.value[...] = np.float32(1e20)
    flow = GradientFlow(warn=False)
    flow.attach(net, x.astype(np.float32), y, batch_size=8)
    with np.errstate(over="ignore"):
        flow.record(0)
    expected = float(np.linalg.norm(net.layers[0].W.value.astype(np.float64)))
    assert np.isfinite(flow.weight_norm[0, 0])
    np.testing.assert_allclose(flow.weight_norm[0, 0], expected, rtol=1e-6)


def test_torch_backend_records_the_same_norms() -> None:
    """The probe runs on the training backend: torch tensors give NumPy's norms (float64)."""
    from chainrule import get_backend

    x, y = _data()
    flows = {}
    for name in ("numpy", "torch"):
        net = mlp([12, 10, 8, 3], "tanh", seed=3, dtype=np.float64)
        net.to(get_backend(name), "float64")
        flows[name] = GradientFlow(interval=3, warn=False)
        fit(net, x, y, lr=0.1, batch_size=8, epochs=3, progress=False, callbacks=[flows[name]])
    assert flows["torch"].steps.tolist() == flows["numpy"].steps.tolist() == [0, 3, 6, 9, 12]
    for m in METRICS:
        np.testing.assert_allclose(
            flows["torch"].series(m), flows["numpy"].series(m), rtol=1e-12, equal_nan=True
        )


def test_flow_layers_are_the_groups_whose_head_has_a_weight() -> None:
    """The seed-style layers of ``net.groups()``, not a list of layer classes: a leading
    parameter-free layer is skipped, and a tied decoder (bias ``c``) is watched like any other."""
    d0 = Dense(12, 5, rng=0, dtype=np.float64)
    net = Sequential([Tanh(), d0, Sigmoid(), TiedDense(d0, tied_to=1)], loss="squared")
    assert flow_layers(net) == [(1, "1: 12→5"), (3, "2: 5→12")]
    assert [g.indices[0] for g in net.groups() if getattr(g.head, "W", None) is not None] == [1, 3]
    x = np.random.default_rng(0).standard_normal((8, 12))
    flow = GradientFlow(warn=False)
    flow.attach(net, x, x)
    flow.record(0)
    net.zero_grad()
    net.gradients(x, x)
    expected = [float(np.linalg.norm(d0.b.grad)), float(np.linalg.norm(net.layers[3].c.grad))]
    np.testing.assert_allclose(flow.bias_grad_norm[0], expected, rtol=1e-12)
    np.testing.assert_allclose(flow.grad_norm[0], [np.linalg.norm(d0.W.grad)] * 2, rtol=1e-12)


def test_a_head_without_a_bias_records_nan_for_it() -> None:
    class NoBias(Layer):
        """``z = x W`` (a weight and nothing else)."""

        kind = "nobias_test"

        def __init__(self, W: np.ndarray) -> None:
            super().__init__()
            self.W = Param(W, "W", decay=True)
            self.params = [self.W]

        def forward(self, x):
            return x @ self.W.value, x

        def backward(self, dy, ctx, *, need_dx=True):
            self.W.grad += ctx.T @ dy
            return dy @ self.W.value.T

    rng = np.random.default_rng(1)
    net = Sequential(
        [NoBias(rng.standard_normal((4, 3))), Tanh(), Dense(3, 2, rng=0, dtype=np.float64)], loss="squared"
    )
    flow = GradientFlow(warn=False)
    flow.attach(net, rng.standard_normal((6, 4)), rng.standard_normal((6, 2)))
    flow.record(0)
    assert flow.layers == ["1: 4→3", "2: 3→2"]
    assert np.isnan(flow.bias_grad_norm[0, 0]) and np.isfinite(flow.bias_grad_norm[0, 1])
    assert np.all(np.isfinite(flow.delta_norm)) and np.all(np.isfinite(flow.grad_norm))


def test_a_network_without_weights_is_refused() -> None:
    with pytest.raises(ConfigError, match="weighted layers"):
        GradientFlow().attach(
            Sequential([Tanh(), Sigmoid()], loss="squared", input_dim=3), np.zeros((2, 3)), np.zeros((2, 3))
        )
