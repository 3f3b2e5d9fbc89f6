"""Whole networks: gradient check on random architectures (hypothesis), PyTorch autograd oracle
with L2, the optimisers against torch.optim, and the L2 convention of seed 001."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from chainrule import gradcheck, mlp
from chainrule.errors import ConfigError, ShapeError
from chainrule.nn.builders import hidden_activations
from chainrule.nn.layers import Dense, Maxout
from chainrule.optim import OPTIMIZERS, get_optimizer

TORCH_ACT = {
    "identity": lambda z: z,
    "sigmoid": torch.sigmoid,
    "tanh": torch.tanh,
    "relu": torch.relu,
    "leaky_relu": lambda z: F.leaky_relu(z, 0.01),
    "softplus": F.softplus,
}


def torch_forward(net, x: torch.Tensor, params: list[torch.Tensor]) -> torch.Tensor:
    """The same network, written independently in torch from the layer list."""
    it = iter(params)
    h = x
    for layer in net.layers:
        if isinstance(layer, Dense):
            h = h @ next(it) + next(it)
        elif isinstance(layer, Maxout):
            W, b = next(it), next(it)
            h = (h @ W + b).reshape(h.shape[0], layer.out_features, layer.k).amax(-1)
        elif layer.kind == "softmax":
            h = torch.softmax(h, 1)
        else:
            h = TORCH_ACT[layer.kind](h)
    return h


def torch_cost(loss: str, out: torch.Tensor, y: np.ndarray, k: int) -> torch.Tensor:
    t = torch.tensor(np.eye(k)[y]) if k > 1 else torch.tensor(y[:, None], dtype=torch.float64)
    if loss == "squared":
        return 0.5 * ((out - t) ** 2).sum() / out.shape[0]
    if loss == "softmax-ce":
        return F.cross_entropy(out, torch.tensor(y))
    return F.binary_cross_entropy_with_logits(out, t, reduction="sum") / out.shape[0]


@pytest.mark.parametrize("activation", hidden_activations())
@pytest.mark.parametrize("loss", ["squared", "softmax-ce", "bce"])
def test_network_matches_torch_autograd(activation: str, loss: str) -> None:
    lam = 0.03
    net = mlp([6, 5, 4, 3], activation, loss=loss, seed=3, dtype=np.float64)
    r = np.random.default_rng(5)
    x = r.standard_normal((8, 6))
    y = r.integers(0, 3, 8)
    cost = float(net.loss_and_grad(x, y, l2=lam))

    params = [torch.tensor(p.value, requires_grad=True) for p in net.params]
    out = torch_forward(net, torch.tensor(x), params)
    weights = [t for t, p in zip(params, net.params, strict=True) if p.decay]
    ct = torch_cost(loss, out, y, 3) + lam / 2 * sum((w**2).sum() for w in weights)
    ct.backward()
    assert abs(cost - ct.item()) < 1e-10
    for (name, p), t in zip(net.named_params(), params, strict=True):
        np.testing.assert_allclose(p.grad, t.grad.numpy(), rtol=0, atol=1e-10, err_msg=name)


def near_kink(net, x: np.ndarray, margin: float = 2e-3) -> bool:
    """True when a ReLU input or a maxout's top-two gap is within ``margin`` of a kink, where the
    derivative is undefined and a finite difference of step ~1e-4 would straddle it."""
    h = x
    for layer in net.layers:
        if layer.kind in ("relu", "leaky_relu") and np.min(np.abs(h)) < margin:
            return True
        if layer.kind == "maxout" and layer.k > 1:
            z = np.sort(
                (h @ layer.W.value + layer.b.value).reshape(h.shape[0], layer.out_features, layer.k), -1
            )
            if np.min(z[..., -1] - z[..., -2]) < margin:
                return True
        h, _ = layer.forward(h)
    return False


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    hidden=st.lists(st.integers(1, 6), min_size=0, max_size=3),
    d_in=st.integers(1, 5),
    k=st.integers(2, 4),
    activation=st.sampled_from(hidden_activations()),
    loss=st.sampled_from(["squared", "softmax-ce", "bce"]),
    batch=st.integers(1, 5),
    l2=st.sampled_from([0.0, 0.1]),
    seed=st.integers(0, 2**16),
)
def test_random_architectures_pass_gradcheck(hidden, d_in, k, activation, loss, batch, l2, seed) -> None:
    net = mlp([d_in, *hidden, k], activation, loss=loss, seed=seed, dtype=np.float64)
    r = np.random.default_rng(seed)
    x = r.standard_normal((batch, d_in))
    y = r.integers(0, k, batch)
    assume(not near_kink(net, x))
    result = gradcheck(net, x, y, l2=l2, check_input=True, seed=seed)
    assert result.ok, str(result)


def test_l2_follows_seed_001() -> None:
    """J = mean loss + λ/2 ΣW² (biases excluded); ∂J/∂W gains λW, ∂J/∂b nothing."""
    net = mlp([3, 4, 2], "tanh", loss="squared", seed=0, dtype=np.float64)
    for p in net.params:
        p.value[...] = np.random.default_rng(1).standard_normal(p.shape)
    x, y = np.random.default_rng(2).standard_normal((5, 3)), np.array([0, 1, 1, 0, 1])
    plain = float(net.loss_and_grad(x, y))
    g0 = [p.grad.copy() for p in net.params]
    lam = 0.5
    reg = float(net.loss_and_grad(x, y, l2=lam))
    weights_sq = sum(float(np.sum(p.value**2)) for p in net.params if p.decay)
    assert reg == pytest.approx(plain + lam / 2 * weights_sq, rel=1e-14)
    for p, g in zip(net.params, g0, strict=True):
        expected = g + lam * p.value if p.decay else g
        np.testing.assert_allclose(p.grad, expected, rtol=1e-14, atol=1e-15)
    assert [p.decay for p in net.params] == [True, False, True, False]


TORCH_OPT = {
    "sgd": lambda ps, lr: torch.optim.SGD(ps, lr=lr),
    "momentum": lambda ps, lr: torch.optim.SGD(ps, lr=lr, momentum=0.9),
    "nesterov": lambda ps, lr: torch.optim.SGD(ps, lr=lr, momentum=0.9, nesterov=True),
    "adam": lambda ps, lr: torch.optim.Adam(ps, lr=lr),
}


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_optimizer_trajectory_matches_torch(name: str) -> None:
    assert set(OPTIMIZERS) == set(TORCH_OPT)
    lr = 0.05
    net = mlp([4, 6, 3], "tanh", loss="softmax-ce", seed=0, dtype=np.float64)
    params = [torch.tensor(p.value.copy(), requires_grad=True) for p in net.params]
    topt = TORCH_OPT[name](params, lr)
    opt = get_optimizer(name, lr, **({"momentum": 0.9} if name in ("momentum", "nesterov") else {}))
    r = np.random.default_rng(0)
    for _ in range(6):
        x, y = r.standard_normal((5, 4)), r.integers(0, 3, 5)
        net.loss_and_grad(x, y)
        opt.step(net.params)
        topt.zero_grad()
        F.cross_entropy(torch_forward(net, torch.tensor(x), params), torch.tensor(y)).backward()
        topt.step()
    for p, t in zip(net.params, params, strict=True):
        np.testing.assert_allclose(p.value, t.detach().numpy(), rtol=0, atol=1e-12)


def test_float32_training_stays_float32() -> None:
    net = mlp([4, 3, 2], "relu", seed=0)
    x = np.random.default_rng(0).standard_normal((6, 4)).astype(np.float32)
    net.loss_and_grad(x, np.array([0, 1, 0, 1, 1, 0]))
    get_optimizer("adam", 0.01).step(net.params)
    assert all(p.value.dtype == np.float32 and p.grad.dtype == np.float32 for p in net.params)


def test_same_seed_same_weights_different_seed_different() -> None:
    a, b, c = (mlp([5, 4, 3], "relu", seed=s) for s in (7, 7, 8))
    assert all(np.array_equal(p.value, q.value) for p, q in zip(a.params, b.params, strict=True))
    assert not np.array_equal(a.params[0].value, c.params[0].value)


def test_bad_architectures_and_inputs() -> None:
    with pytest.raises(ConfigError):
        mlp([5], "relu")
    with pytest.raises(ConfigError):
        mlp([5, 0, 2], "relu")
    with pytest.raises(ConfigError):
        mlp([5, 2], "swish")
    with pytest.raises(ConfigError):
        get_optimizer("sgd", -1.0)
    net = mlp([5, 2], "relu")
    with pytest.raises(ShapeError, match="5"):
        net.forward(np.zeros((3, 4), np.float32))
    with pytest.raises(ShapeError, match="batch"):
        net.forward(np.zeros(5, np.float32))


def test_gradcheck_leaves_the_analytic_gradients() -> None:
    net = mlp([3, 4, 2], "tanh", loss="softmax-ce", seed=0, dtype=np.float64)
    x, y = np.random.default_rng(0).standard_normal((5, 3)), np.array([0, 1, 1, 0, 1])
    net.loss_and_grad(x, y, l2=0.1)
    expected = [p.grad.copy() for p in net.params]
    values = [p.value.copy() for p in net.params]
    assert gradcheck(net, x, y, l2=0.1, check_input=True).ok
    for p, g, v in zip(net.params, expected, values, strict=True):
        np.testing.assert_array_equal(p.grad, g)
        np.testing.assert_array_equal(p.value, v)
        assert p.value.dtype == np.float64
