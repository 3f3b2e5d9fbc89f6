"""Every registered layer: float64 gradient check, PyTorch autograd oracle, invariants.

The registry (`chainrule.nn.layer.LAYERS`) drives the parametrisation: a newly registered layer fails
`test_every_layer_has_an_example` until it gets an example here, and is then covered by every test.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from chainrule.backend import numpy_backend
from chainrule.inspect.gradcheck import gradcheck_layer
from chainrule.nn.layer import LAYERS, layer_from_config
from chainrule.nn.layers import Dense, Identity, LeakyReLU, Maxout, ReLU, Sigmoid, Softmax, Softplus, Tanh

D_IN, D_OUT, N = 5, 4, 6


def _dense():
    return Dense(D_IN, D_OUT, rng=np.random.default_rng(0), dtype=np.float64)


def _maxout():
    return Maxout(D_IN, D_OUT, 3, rng=np.random.default_rng(0), dtype=np.float64)


# layer factory, input width, and the same function written in torch (params as torch tensors)
EXAMPLES = {
    "dense": (_dense, D_IN, lambda x, W, b: x @ W + b),
    "maxout": (_maxout, D_IN, lambda x, W, b: (x @ W + b).reshape(x.shape[0], D_OUT, 3).amax(-1)),
    "identity": (Identity, D_OUT, lambda x: x),
    "sigmoid": (Sigmoid, D_OUT, torch.sigmoid),
    "tanh": (Tanh, D_OUT, torch.tanh),
    "relu": (ReLU, D_OUT, torch.relu),
    "leaky_relu": (lambda: LeakyReLU(0.1), D_OUT, lambda x: F.leaky_relu(x, 0.1)),
    "softplus": (Softplus, D_OUT, F.softplus),
    "softmax": (Softmax, D_OUT, lambda x: torch.softmax(x, dim=1)),
}


def test_every_layer_has_an_example() -> None:
    assert set(LAYERS) <= set(EXAMPLES), f"add an example for {set(LAYERS) - set(EXAMPLES)}"


def _x(width: int, seed: int = 1) -> np.ndarray:
    x = np.random.default_rng(seed).standard_normal((N, width)) * 2.0
    return x


@pytest.mark.parametrize("kind", sorted(EXAMPLES))
def test_gradcheck(kind: str) -> None:
    make, width, _ = EXAMPLES[kind]
    result = gradcheck_layer(make(), _x(width))
    assert result.ok, f"{kind}:\n{result}"
    assert set(result.errors) == {"input"} | {p.name for p in make().params}


@pytest.mark.parametrize("kind", sorted(EXAMPLES))
def test_matches_torch_autograd(kind: str) -> None:
    make, width, torch_fn = EXAMPLES[kind]
    layer = make()
    x = _x(width)
    dy = np.random.default_rng(7).standard_normal(layer.forward(x).shape)
    y = layer.forward(x)
    dx = layer.backward(dy)

    xt = torch.tensor(x, requires_grad=True)
    pt = [torch.tensor(p.value, requires_grad=True) for p in layer.params]
    yt = torch_fn(xt, *pt)
    yt.backward(torch.tensor(dy))
    np.testing.assert_allclose(y, yt.detach().numpy(), rtol=0, atol=1e-12)
    np.testing.assert_allclose(dx, xt.grad.numpy(), rtol=0, atol=1e-10)
    for p, t in zip(layer.params, pt, strict=True):
        np.testing.assert_allclose(p.grad, t.grad.numpy(), rtol=0, atol=1e-10, err_msg=f"{kind}.{p.name}")


@pytest.mark.parametrize("kind", sorted(EXAMPLES))
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_invariants(kind: str, dtype: type) -> None:
    """Inputs are not mutated, dtype is preserved, grads have the parameter's shape."""
    make, width, _ = EXAMPLES[kind]
    layer = make()
    layer.to(numpy_backend, dtype)
    x = _x(width).astype(dtype)
    x_copy = x.copy()
    y = layer.forward(x)
    dy = np.random.default_rng(3).standard_normal(y.shape).astype(dtype)
    dy_copy = dy.copy()
    dx = layer.backward(dy)
    np.testing.assert_array_equal(x, x_copy)
    np.testing.assert_array_equal(dy, dy_copy)
    assert y.dtype == dtype and dx.dtype == dtype
    assert dx.shape == x.shape
    for p in layer.params:
        assert p.grad.shape == p.value.shape
        assert p.grad.dtype == dtype


@pytest.mark.parametrize("kind", sorted(k for k, v in EXAMPLES.items() if v[0]().params))
def test_gradients_accumulate(kind: str) -> None:
    """backward adds into param.grad (micrograd's +=): two passes give twice the gradient."""
    make, width, _ = EXAMPLES[kind]
    layer = make()
    x = _x(width)
    dy = np.ones_like(layer.forward(x))
    layer.backward(dy)
    once = [p.grad.copy() for p in layer.params]
    layer.forward(x)
    layer.backward(dy)
    for p, g in zip(layer.params, once, strict=True):
        np.testing.assert_allclose(p.grad, 2 * g, rtol=1e-13)


@pytest.mark.parametrize("kind", sorted(EXAMPLES))
def test_config_round_trip(kind: str) -> None:
    layer = EXAMPLES[kind][0]()
    rebuilt = layer_from_config(layer.config(), np.float64)
    assert type(rebuilt) is type(layer)
    assert rebuilt.config() == layer.config()
    assert [p.shape for p in rebuilt.params] == [p.shape for p in layer.params]


def test_param_copies_caller_array() -> None:
    W = np.ones((2, 3))
    layer = Dense(2, 3, W=W, b=np.zeros(3))
    layer.W.value -= 1.0
    assert np.all(W == 1.0)


def test_relu_derivative_at_zero_is_zero() -> None:
    layer = ReLU()
    layer.forward(np.array([[0.0, 1.0, -1.0]]))
    np.testing.assert_array_equal(layer.backward(np.ones((1, 3))), [[0.0, 1.0, 0.0]])


def test_activations_are_stable_for_extreme_inputs() -> None:
    z = np.array([[-1000.0, -50.0, 0.0, 50.0, 1000.0]])
    for layer in (Sigmoid(), Tanh(), Softplus(), Softmax()):
        a = layer.forward(z)
        assert np.all(np.isfinite(a)), type(layer).__name__
        assert np.all(np.isfinite(layer.backward(np.ones_like(z))))
    np.testing.assert_allclose(Softplus().forward(z)[0, -1], 1000.0)
    np.testing.assert_allclose(Sigmoid().forward(z)[0, [0, 4]], [0.0, 1.0])


def test_maxout_routes_gradient_to_winner_only() -> None:
    W = np.zeros((1, 4))
    W[0] = [1.0, 3.0, 2.0, -1.0]  # out unit 0: pieces (1, 3) -> winner 1; unit 1: (2, -1) -> winner 0
    layer = Maxout(1, 2, 2, W=W, b=np.zeros(4), dtype=np.float64)
    y = layer.forward(np.array([[1.0]]))
    np.testing.assert_array_equal(y, [[3.0, 2.0]])
    layer.backward(np.array([[10.0, 20.0]]))
    np.testing.assert_array_equal(layer.b.grad, [0.0, 10.0, 20.0, 0.0])
