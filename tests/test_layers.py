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
from chainrule.nn.layers import Dense, Maxout, ReLU, Sigmoid, Softmax, Softplus, Tanh

N = 6

# the same function written in torch, per registered kind (parameters as torch tensors, in order)
TORCH = {
    "dense": lambda x, W, b: x @ W + b,
    "dense_tied": lambda x, W, c: x @ W.T + c,
    "maxout": lambda x, W, b: (x @ W + b).reshape(x.shape[0], W.shape[1] // 3, 3).amax(-1),
    "identity": lambda x: x,
    "sigmoid": torch.sigmoid,
    "tanh": torch.tanh,
    "relu": torch.relu,
    "leaky_relu": lambda x: F.leaky_relu(x, 0.1),
    "softplus": F.softplus,
    "softmax": lambda x: torch.softmax(x, dim=1),
    "flatten": lambda x: x.reshape(x.shape[0], -1),
    # the image layers' examples (issue 8): conv 2->3, 3x3, stride 2, pad 1; pooling 3x3 at stride 2;
    # dropout p = 0.5 drawing from default_rng(3); batch norm in training mode
    "conv": lambda x, W, b: F.conv2d(x, W, b, stride=2, padding=1),
    "maxpool": lambda x: F.max_pool2d(x, 3, 2),
    "avgpool": lambda x: F.avg_pool2d(x, 3, 2),
    "dropout": lambda x: x * torch.tensor((np.random.default_rng(3).random(tuple(x.shape)) >= 0.5) / 0.5),
    "batchnorm": lambda x, g, b: F.batch_norm(x, None, None, g, b, training=True, eps=1e-5),
    # sequences (issue 9): the recurrences written out in torch, autograd for the gradients
    "rnn": lambda x, W, U, b: _torch_scan(x, W, b, U, lambda a, s: (torch.tanh(a + s[0] @ U),), 1),
    "lstm": lambda x, W, U, b: _torch_scan(x, W, b, U, lambda a, s: _torch_lstm_cell(a, s, U), 2),
    "gru": lambda x, W, U, b, c: _torch_scan(x, W, b, U, lambda a, s: _torch_gru_cell(a, s, U, c), 1),
    "onehot": lambda x: F.one_hot(x.long(), 5).to(x.dtype),
    "embed": lambda x, E: E[x.long()],
    "last": lambda x: x[:, -1],
}


def _torch_scan(x, W, b, U, cell, n_state):
    """Every step's hidden state (N, T, H) of a cell run from a zero state."""
    state = tuple(torch.zeros(x.shape[0], U.shape[0], dtype=x.dtype) for _ in range(n_state))
    ys = []
    for t in range(x.shape[1]):
        state = cell(x[:, t] @ W + b, state)
        ys.append(state[0])
    return torch.stack(ys, 1)


def _torch_lstm_cell(a, s, U):
    h, c = s
    i, f, g, o = (a + h @ U).chunk(4, 1)
    c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
    return torch.sigmoid(o) * torch.tanh(c), c


def _torch_gru_cell(a, s, U, c):
    (h,) = s
    ar, az, an = a.chunk(3, 1)
    hr, hz, hn = (h @ U).chunk(3, 1)
    r, z = torch.sigmoid(ar + hr), torch.sigmoid(az + hz)
    n = torch.tanh(an + r * (hn + c))
    return ((1 - z) * n + z * h,)


def make(kind: str, dtype=np.float64):
    """The registered class's own example instance and per-sample input shape."""
    return LAYERS[kind].example(np.random.default_rng(0), dtype)


def test_every_layer_has_a_torch_oracle() -> None:
    assert set(LAYERS) <= set(TORCH), f"add a torch oracle for {set(LAYERS) - set(TORCH)}"


def _x(layer, shape: tuple[int, ...], seed: int = 1) -> np.ndarray:
    """``2·N(0, 1)`` inputs, or token ids for a layer that reads them."""
    return layer.example_input(np.random.default_rng(seed), shape, N)


@pytest.mark.parametrize("kind", sorted(TORCH))
def test_gradcheck(kind: str) -> None:
    layer, shape = make(kind)
    result = gradcheck_layer(layer, _x(layer, shape))
    assert result.ok, f"{kind}:\n{result}"
    inputs = set() if layer.index_input else {"input"}  # token ids have no gradient
    assert set(result.errors) == inputs | {p.name for p in layer.params}


@pytest.mark.parametrize("kind", sorted(TORCH))
def test_matches_torch_autograd(kind: str) -> None:
    layer, shape = make(kind)
    x = _x(layer, shape)
    y, ctx = layer.forward(x)
    dy = np.random.default_rng(7).standard_normal(y.shape)
    dx = layer.backward(dy, ctx)

    xt = torch.tensor(x, requires_grad=True)
    pt = [torch.tensor(p.value, requires_grad=True) for p in layer.params]
    yt = TORCH[kind](xt, *pt)
    np.testing.assert_allclose(y, yt.detach().numpy(), rtol=0, atol=1e-12)
    if layer.index_input:  # token ids: no input gradient
        if pt:
            yt.backward(torch.tensor(dy))
    else:
        yt.backward(torch.tensor(dy))
        np.testing.assert_allclose(dx, xt.grad.numpy(), rtol=0, atol=1e-10)
    for p, t in zip(layer.params, pt, strict=True):
        np.testing.assert_allclose(p.grad, t.grad.numpy(), rtol=0, atol=1e-10, err_msg=f"{kind}.{p.name}")


@pytest.mark.parametrize("kind", sorted(TORCH))
def test_state_shapes_match_the_built_layer(kind: str) -> None:
    """The size guard's shapes (computed without allocating) are the real ones."""
    layer, _ = make(kind)
    shapes = type(layer).state_shapes(layer.config())
    if kind == "dense_tied":  # its W belongs to the source layer; only c is its own
        assert shapes == {}
        return
    assert shapes == {p.name: p.shape for p in [*layer.params, *layer.buffers]}


@pytest.mark.parametrize("kind", sorted(TORCH))
def test_output_shape_is_what_forward_returns(kind: str) -> None:
    layer, shape = make(kind)
    assert layer.output_shape(shape) == layer.forward(_x(layer, shape))[0].shape[1:]


@pytest.mark.parametrize("kind", sorted(TORCH))
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_invariants(kind: str, dtype: type) -> None:
    """Inputs are not mutated, dtype is preserved, grads have the parameter's shape."""
    layer, shape = make(kind)
    layer.to(numpy_backend, dtype)
    x = _x(layer, shape).astype(dtype)
    x_copy = x.copy()
    y, ctx = layer.forward(x)
    dy = np.random.default_rng(3).standard_normal(y.shape).astype(dtype)
    dy_copy = dy.copy()
    dx = layer.backward(dy, ctx)
    np.testing.assert_array_equal(x, x_copy)
    np.testing.assert_array_equal(dy, dy_copy)
    assert y.dtype == dtype and dx.dtype == dtype
    assert dx.shape == x.shape
    for p in layer.params:
        assert p.grad.shape == p.value.shape
        assert p.grad.dtype == dtype


@pytest.mark.parametrize("kind", sorted(k for k in TORCH if make(k)[0].params))
def test_gradients_accumulate(kind: str) -> None:
    """backward adds into param.grad (micrograd's +=): two passes give twice the gradient."""
    layer, shape = make(kind)
    x = _x(layer, shape)
    y, ctx = layer.forward(x)
    dy = np.ones_like(y)
    layer.backward(dy, ctx)
    once = [p.grad.copy() for p in layer.params]
    layer.backward(dy, layer.forward(x)[1])
    for p, g in zip(layer.params, once, strict=True):
        np.testing.assert_allclose(p.grad, 2 * g, rtol=1e-13)


@pytest.mark.parametrize("kind", sorted(TORCH))
def test_config_round_trip(kind: str) -> None:
    layer, _ = make(kind)
    built = [layer.source] if kind == "dense_tied" else []
    rebuilt = layer_from_config(layer.config(), np.float64, built)
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
    _, ctx = layer.forward(np.array([[0.0, 1.0, -1.0]]))
    np.testing.assert_array_equal(layer.backward(np.ones((1, 3)), ctx), [[0.0, 1.0, 0.0]])


def test_activations_are_stable_for_extreme_inputs() -> None:
    z = np.array([[-1000.0, -50.0, 0.0, 50.0, 1000.0]])
    for layer in (Sigmoid(), Tanh(), Softplus(), Softmax()):
        a, ctx = layer.forward(z)
        assert np.all(np.isfinite(a)), type(layer).__name__
        assert np.all(np.isfinite(layer.backward(np.ones_like(z), ctx)))
    np.testing.assert_allclose(Softplus().forward(z)[0][0, -1], 1000.0)
    np.testing.assert_allclose(Sigmoid().forward(z)[0][0, [0, 4]], [0.0, 1.0])


def test_maxout_routes_gradient_to_winner_only() -> None:
    W = np.zeros((1, 4))
    W[0] = [1.0, 3.0, 2.0, -1.0]  # out unit 0: pieces (1, 3) -> winner 1; unit 1: (2, -1) -> winner 0
    layer = Maxout(1, 2, 2, W=W, b=np.zeros(4), dtype=np.float64)
    y, ctx = layer.forward(np.array([[1.0]]))
    np.testing.assert_array_equal(y, [[3.0, 2.0]])
    layer.backward(np.array([[10.0, 20.0]]), ctx)
    np.testing.assert_array_equal(layer.b.grad, [0.0, 10.0, 20.0, 0.0])
