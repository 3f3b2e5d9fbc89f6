"""Acceptance: one class is enough for a new layer or loss.

This file defines a new element-wise activation (swish) and a new loss (log-cosh), registers them,
and gets — with no other file edited — a gradient check and the torch oracle, training on the
plain path, trace/explain output showing their formulas, a save/load round trip, and
``gradcheck --all`` coverage.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import chainrule as cr
from chainrule.backend import namespace
from chainrule.cli import main
from chainrule.inspect.explain import explain, render
from chainrule.inspect.gradcheck import check_registry, gradcheck, gradcheck_layer
from chainrule.inspect.trace import trace
from chainrule.nn.functional import sigmoid
from chainrule.nn.layer import LAYERS, Elementwise
from chainrule.nn.layers import Dense
from chainrule.nn.losses import LOSSES, Loss
from chainrule.nn.model import Sequential


class Swish(Elementwise):
    """``a = z σ(z)``; ``f'(z) = σ(z) + z σ(z)(1 − σ(z))``."""

    kind = "swish"
    symbol, symbol_latex = "swish", r"\operatorname{swish}"
    formula, formula_latex = "a = z σ(z)", r"a = z\,\sigma(z)"
    derivative = "σ(z) + z σ(z)(1 − σ(z))"
    derivative_latex = r"\sigma(z^{%(l)s}) + z^{%(l)s}\sigma(z^{%(l)s})(1 - \sigma(z^{%(l)s}))"

    def f(self, z: Any) -> Any:
        return z * sigmoid(z)

    def fprime(self, z: Any, a: Any) -> Any:
        s = sigmoid(z)
        return s + z * s * (1.0 - s)


class LogCosh(Loss):
    """``E = (1/N) Σ log cosh(a − y)``; ``∂E/∂a = tanh(a − y) / N``."""

    name = "logcosh"
    formula, formula_latex = (
        "E = (1/N) Σ log cosh(a − y)",
        r"E = \frac{1}{N} \sum_n \sum_k \log\cosh(a_{nk} - y_{nk})",
    )
    delta, delta_latex = "tanh(a − y) / N", r"\frac{\tanh(a - y)}{N}"

    def forward(self, out: Any, y: Any) -> tuple[Any, Any]:
        xp = namespace(out)
        d = out - cr.nn.functional.targets_like(out, y)
        # log cosh d = |d| + log1p(e^{−2|d|}) − log 2, without overflow
        per = xp.abs(d) + xp.log1p(xp.exp(-2.0 * xp.abs(d))) - np.log(2.0)
        return xp.sum(per) / out.shape[0], d

    def backward(self, ctx: Any) -> Any:
        d = ctx
        return namespace(d).tanh(d) / d.shape[0]


@pytest.fixture
def registered() -> Iterator[None]:
    """Register the two classes for one test and take them out again (the registry is global)."""
    LAYERS[Swish.kind] = Swish
    LOSSES[LogCosh.name] = LogCosh
    try:
        yield
    finally:
        del LAYERS[Swish.kind]
        del LOSSES[LogCosh.name]


def _net(dtype: Any = np.float64) -> Sequential:
    return cr.mlp([4, 6, 3], "swish", loss="logcosh", seed=0, dtype=dtype)


def _data(n: int = 8, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    r = np.random.default_rng(seed)
    return r.standard_normal((n, 4)), r.integers(0, 3, n)


def test_gradient_check_and_torch_oracle(registered: None) -> None:
    layer = Swish()
    x = np.random.default_rng(1).standard_normal((6, 5)) * 2
    assert gradcheck_layer(layer, x).ok
    y, ctx = layer.forward(x)
    dy = np.random.default_rng(2).standard_normal(y.shape)
    xt = torch.tensor(x, requires_grad=True)
    F.silu(xt).backward(torch.tensor(dy))
    np.testing.assert_allclose(y, F.silu(torch.tensor(x)).numpy(), rtol=0, atol=1e-12)
    np.testing.assert_allclose(layer.backward(dy, ctx), xt.grad.numpy(), rtol=0, atol=1e-12)

    net = _net()
    x, y = _data()
    result = gradcheck(net, x, y, l2=0.01, check_input=True, max_per_param=None)
    assert result.ok, str(result)
    cost = float(net.loss_and_grad(x, y, l2=0.01))
    params = [torch.tensor(p.value, requires_grad=True) for p in net.params]
    W1, b1, W2, b2 = params
    out = F.silu(torch.tensor(x) @ W1 + b1) @ W2 + b2  # mlp: no output activation after the last Dense
    t = torch.tensor(np.eye(3)[y])
    et = torch.log(torch.cosh(out - t)).sum() / len(y) + 0.005 * ((W1**2).sum() + (W2**2).sum())
    et.backward()
    assert cost == pytest.approx(et.item(), abs=1e-12)
    for p, q in zip(net.params, params, strict=True):
        np.testing.assert_allclose(p.grad, q.grad.numpy(), rtol=0, atol=1e-12, err_msg=p.name)


def test_trains_on_the_plain_path(registered: None) -> None:
    r = np.random.default_rng(3)
    x = r.standard_normal((200, 4)).astype(np.float32)
    y = (x[:, 0] > 0).astype(np.int64) + (x[:, 1] > 0)
    net = _net(np.float32)
    before = net.cost(x, y)
    history = cr.fit(net, x, y, lr=0.5, batch_size=20, epochs=15, progress=False)
    assert history.runner == "plain"  # no fast kernel for swish: the plain path, not an error
    assert history.final_loss < 0.6 * before
    assert cr.evaluate(net, x, y)["accuracy"] > 0.8


def test_trace_and_explain_show_the_formulas(registered: None) -> None:
    net = _net()
    x, y = _data(2)
    with trace(net) as tr:
        net.loss_and_grad(x, y)
    hidden = tr.layers()[0]
    assert hidden.activation == "swish"
    s = 1 / (1 + np.exp(-hidden.z))
    np.testing.assert_allclose(hidden.fprime, s + hidden.z * s * (1 - s), rtol=1e-13)

    ex = explain(net, x[:1], y[:1], lr=0.1)
    text, md = render(ex, "text"), render(ex, "markdown")
    data = json.loads(render(ex, "json"))
    assert Swish.derivative in text and LogCosh.formula in text and LogCosh.delta in text
    assert r"\operatorname{swish}" in md or Swish.derivative_latex % {"l": 1, "p": 0} in md
    assert LogCosh.delta_latex in md
    assert Swish.derivative in json.dumps(data, ensure_ascii=False)


def test_save_load_round_trip(registered: None, tmp_path: Any) -> None:
    net = _net(np.float32)
    x, _ = _data(5)
    path = tmp_path / "swish.safetensors"
    cr.save(net, path)
    again = cr.load(path)
    assert [layer.kind for layer in again.layers] == ["dense", "swish", "dense"]
    assert again.loss.name == "logcosh"
    np.testing.assert_array_equal(
        again.predict_scores(x.astype(np.float32)), net.predict_scores(x.astype(np.float32))
    )


def test_gradcheck_all_covers_them(registered: None, capsys: pytest.CaptureFixture[str]) -> None:
    results = check_registry()
    assert results["layer:swish"].ok
    assert results["swish/logcosh"].ok and results["swish/softmax-ce"].ok and results["relu/logcosh"].ok
    assert main(["gradcheck", "--all", "--json"]) == 0
    report = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert report["ok"] and "swish/logcosh" in report["results"] and "layer:swish" in report["results"]


def test_a_hand_built_network_with_the_new_layer(registered: None) -> None:
    """The class works in a Sequential built by hand too, and its config names its kind."""
    net = Sequential(
        [Dense(3, 3, rng=0, dtype=np.float64), Swish(), Dense(3, 2, rng=1, dtype=np.float64)], loss="logcosh"
    )
    assert net.config()["layers"][1] == {"type": "swish"}
    x = np.random.default_rng(4).standard_normal((4, 3))
    assert gradcheck(net, x, np.array([0, 1, 1, 0]), check_input=True).ok
