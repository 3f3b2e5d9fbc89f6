"""Acceptance: tied weights, re-entrant layers and buffers, through the driver's tape.

* A tied autoencoder (decoder ``W`` = the encoder's, transposed) passes a float64 gradient check,
  agrees with torch autograd, and its shared weight is stepped, decayed and saved once.
* A network that applies the same Dense layer twice passes a gradient check (two tape entries).
* A layer with a buffer round-trips through save/load and behaves differently in train and eval.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
import torch

import chainrule as cr
from chainrule.backend import namespace
from chainrule.inspect.gradcheck import gradcheck, gradcheck_layer
from chainrule.nn.layer import LAYERS, Layer
from chainrule.nn.layers import Dense, Sigmoid, Tanh, TiedDense
from chainrule.nn.model import Sequential
from chainrule.nn.params import Buffer
from chainrule.nn.regularizers import l2_penalty
from chainrule.optim import SGD


def tied_autoencoder(dtype: Any = np.float64) -> tuple[Sequential, Dense]:
    enc = Dense(6, 3, rng=0, dtype=dtype)
    net = Sequential([enc, Sigmoid(), TiedDense(enc, tied_to=0), Sigmoid()], loss="squared")
    return net, enc


def _x(n: int = 5, d: int = 6, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).uniform(0.05, 0.95, (n, d))


def test_tied_autoencoder_passes_a_gradient_check() -> None:
    net, _ = tied_autoencoder()
    x = _x()
    result = gradcheck(net, x, x, l2=0.01, check_input=True, max_per_param=None)
    assert result.ok, str(result)
    assert sorted(result.errors) == ["0.W", "0.b", "2.c", "input"]  # W appears once


def test_tied_autoencoder_matches_torch_autograd() -> None:
    net, enc = tied_autoencoder()
    x = _x()
    cost = float(net.loss_and_grad(x, x, l2=0.01))
    W = torch.tensor(enc.W.value, requires_grad=True)
    b = torch.tensor(enc.b.value, requires_grad=True)
    c = torch.tensor(net.layers[2].c.value, requires_grad=True)
    xt = torch.tensor(x)
    out = torch.sigmoid(torch.sigmoid(xt @ W + b) @ W.T + c)
    et = 0.5 * ((out - xt) ** 2).sum() / len(x) + 0.005 * (W**2).sum()  # W decayed once
    et.backward()
    assert cost == pytest.approx(et.item(), abs=1e-13)
    np.testing.assert_allclose(enc.W.grad, W.grad.numpy(), rtol=0, atol=1e-13)
    np.testing.assert_allclose(enc.b.grad, b.grad.numpy(), rtol=0, atol=1e-13)
    np.testing.assert_allclose(net.layers[2].c.grad, c.grad.numpy(), rtol=0, atol=1e-13)


def test_shared_weight_is_one_parameter_stepped_and_decayed_once() -> None:
    net, enc = tied_autoencoder()
    assert [name for name, _ in net.named_params()] == ["0.W", "0.b", "2.c"]
    assert net.num_params() == 6 * 3 + 3 + 6
    lam = 0.1
    assert float(l2_penalty(net.params, lam)) == pytest.approx(lam / 2 * float(np.sum(enc.W.value**2)))
    x = _x()
    net.loss_and_grad(x, x)
    before, grad = enc.W.value.copy(), enc.W.grad.copy()
    SGD(0.5).step(net.params)
    np.testing.assert_allclose(enc.W.value, before - 0.5 * grad, rtol=0, atol=1e-15)  # once, not twice
    assert net.layers[2].W is enc.W


def test_tied_autoencoder_trains_and_round_trips(tmp_path: Any) -> None:
    net, _ = tied_autoencoder(np.float32)
    x = _x(64, seed=1).astype(np.float32)
    before = net.cost(x, x)
    cr.fit(net, x, x, lr=2.0, batch_size=16, epochs=30, progress=False)
    assert net.cost(x, x) < 0.7 * before
    path = tmp_path / "ae.safetensors"
    cr.save(net, path)
    again = cr.load(path)
    assert again.layers[2].W is again.layers[0].W  # the tie survives loading
    assert [name for name, _ in again.named_params()] == ["0.W", "0.b", "2.c"]
    np.testing.assert_array_equal(again.predict_scores(x), net.predict_scores(x))


def test_the_same_dense_layer_applied_twice() -> None:
    shared = Dense(4, 4, rng=3, dtype=np.float64)
    net = Sequential(
        [shared, Tanh(), shared, Tanh(), Dense(4, 3, rng=4, dtype=np.float64)], loss="softmax-ce"
    )
    r = np.random.default_rng(5)
    x, y = r.standard_normal((6, 4)), r.integers(0, 3, 6)
    result = gradcheck(net, x, y, check_input=True, max_per_param=None)
    assert result.ok, str(result)
    assert len(net.params) == 4  # shared W, b once; the head's W, b
    cost = float(net.loss_and_grad(x, y))
    W = torch.tensor(shared.W.value, requires_grad=True)
    b = torch.tensor(shared.b.value, requires_grad=True)
    W2, b2 = (torch.tensor(p.value) for p in net.layers[4].params)
    h = torch.tanh(torch.tanh(torch.tensor(x) @ W + b) @ W + b)
    et = torch.nn.functional.cross_entropy(h @ W2 + b2, torch.tensor(y))
    et.backward()
    assert cost == pytest.approx(et.item(), abs=1e-13)
    np.testing.assert_allclose(shared.W.grad, W.grad.numpy(), rtol=0, atol=1e-13)
    np.testing.assert_allclose(shared.b.grad, b.grad.numpy(), rtol=0, atol=1e-13)
    assert len(net.tape) == 5 and net.tape[0].layer is net.tape[2].layer


class RunningCenter(Layer):
    """``y = x − m``: ``m`` is the batch mean in training mode (and a running mean ``μ`` is kept in
    a buffer, ``μ ← 0.9 μ + 0.1 m``), and ``μ`` in evaluation mode.

    Backward in training mode: ``dx = dy − mean_rows(dy)`` (the mean depends on every row);
    in evaluation mode ``dx = dy``.
    """

    kind = "running_center"
    formula, derivative = "y = x − mean(x)", "dx = dy − mean(dy)"

    def __init__(self, features: int, mu: Any = None) -> None:
        super().__init__()
        self.features = int(features)
        self.mu = Buffer(np.zeros(self.features) if mu is None else mu, "mu")
        self.buffers = [self.mu]

    @classmethod
    def state_shapes(cls, cfg: dict[str, Any]) -> dict[str, tuple[int, ...]]:
        return {"mu": (int(cfg["features"]),)}

    def forward(self, x: Any) -> tuple[Any, Any]:
        xp = namespace(x)
        if not self.training:
            return x - self.mu.value, False
        m = xp.mean(x, axis=0)
        self.mu.value[...] = 0.9 * self.mu.value + 0.1 * m
        return x - m, True

    def backward(self, dy: Any, ctx: Any, *, need_dx: bool = True) -> Any:
        return dy - namespace(dy).mean(dy, axis=0) if ctx else dy

    def config(self) -> dict[str, Any]:
        return {"type": self.kind, "features": self.features}


@pytest.fixture
def running_center() -> Iterator[type[RunningCenter]]:
    LAYERS[RunningCenter.kind] = RunningCenter
    try:
        yield RunningCenter
    finally:
        del LAYERS[RunningCenter.kind]


def test_buffer_layer_modes_gradients_and_round_trip(running_center: type, tmp_path: Any) -> None:
    x = np.random.default_rng(6).standard_normal((8, 3)) + 2.0
    layer = running_center(3)
    assert gradcheck_layer(layer, x).ok  # training mode: dx = dy − mean(dy)

    net = Sequential(
        [Dense(3, 3, rng=7, dtype=np.float64), running_center(3), Dense(3, 2, rng=8, dtype=np.float64)],
        loss="softmax-ce",
    )
    y = np.array([0, 1] * 4)
    assert gradcheck(net, x, y, check_input=True).ok
    net.layers[1].mu.value[...] = 0.0  # the gradient check's passes moved it; start afresh
    for _ in range(2):  # training-mode passes move the running mean part of the way to the batch mean
        net.forward(x)
    mu = net.layers[1].mu.value.copy()
    assert np.all(mu != 0)
    train_out = net.train().forward(x)
    assert not np.allclose(net.layers[1].mu.value, mu)  # training mode updates the buffer
    mu = net.layers[1].mu.value.copy()
    eval_out = net.eval().forward(x)
    np.testing.assert_array_equal(net.layers[1].mu.value, mu)  # evaluation mode leaves it alone
    assert not np.allclose(train_out, eval_out)  # the two modes differ

    path = tmp_path / "center.safetensors"
    cr.save(net, path)
    again = cr.load(path)
    np.testing.assert_array_equal(again.layers[1].mu.value, mu)
    np.testing.assert_array_equal(again.eval().forward(x), eval_out)
    assert [name for name, _ in again.named_buffers()] == ["1.mu"]


def test_a_shared_layer_trains_the_same_on_the_fast_and_plain_paths() -> None:
    """The fast planner must not treat two applications of one Dense as two weights (a fused
    update per application would step W twice with half its gradient each time)."""
    r = np.random.default_rng(9)
    x, y = r.standard_normal((64, 4)), r.integers(0, 3, 64)
    weights = []
    for fast in (True, False):
        shared = Dense(4, 4, rng=3, dtype=np.float64)
        net = Sequential(
            [shared, Tanh(), shared, Tanh(), Dense(4, 3, rng=4, dtype=np.float64)], loss="softmax-ce"
        )
        cr.fit(net, x, y, lr=0.3, batch_size=16, epochs=2, progress=False, fast=fast)
        weights.append([p.value.copy() for p in net.params])
    for a, b in zip(*weights, strict=True):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-12)
