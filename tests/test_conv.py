"""The image layers of issue 8 beyond their registry examples (tests/test_layers.py covers those):
strides, padding, odd sizes, batch size 1, batch norm in both modes, dropout's mask, the torch
tensor path on the CPU, the full-convolution form of δ, the spec words and their errors, and a
small CNN trained on the embedded subset."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from chainrule.errors import ConfigError, ShapeError
from chainrule.inspect.gradcheck import check_network, gradcheck_layer
from chainrule.nn.convolution import col2im, im2col
from chainrule.nn.layers import AvgPool2D, BatchNorm, Conv2D, Dropout, MaxPool2D
from chainrule.nn.spec import build

TOL = 1e-10


def _x(shape: tuple[int, ...], seed: int = 1) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(shape) * 2.0


def _against_torch(layer, x: np.ndarray, torch_fn) -> None:
    """Forward and every gradient of ``layer`` equal torch autograd's on ``torch_fn`` within 1e-10."""
    y, ctx = layer.forward(x)
    dy = np.random.default_rng(7).standard_normal(y.shape)
    dx = layer.backward(dy, ctx)
    xt = torch.tensor(x, requires_grad=True)
    pt = [torch.tensor(p.value, requires_grad=True) for p in layer.params]
    yt = torch_fn(xt, *pt)
    yt.backward(torch.tensor(dy))
    np.testing.assert_allclose(y, yt.detach().numpy(), rtol=0, atol=TOL)
    np.testing.assert_allclose(dx, xt.grad.numpy(), rtol=0, atol=TOL)
    for p, t in zip(layer.params, pt, strict=True):
        np.testing.assert_allclose(p.grad, t.grad.numpy(), rtol=0, atol=TOL, err_msg=p.name)


# (N, C, H, W, C_out, K, stride, pad): strides, padding, odd sizes, batch size 1, 1x1 kernels
CONV_CASES = [
    (1, 1, 5, 5, 2, 3, 1, 0),
    (2, 3, 7, 6, 4, 3, 2, 1),
    (3, 2, 8, 8, 3, 5, 1, 2),
    (1, 2, 9, 7, 2, 3, 3, 0),
    (2, 4, 5, 5, 3, 1, 1, 0),
    (2, 1, 6, 6, 2, 4, 2, 1),
]


@pytest.mark.parametrize(("n", "c", "h", "w", "o", "k", "s", "p"), CONV_CASES)
def test_conv_matches_torch_and_gradcheck(n, c, h, w, o, k, s, p) -> None:
    rng = np.random.default_rng(0)
    layer = Conv2D(c, o, k, s, p, rng=rng, dtype=np.float64)
    layer.b.value[...] = rng.standard_normal(o)
    x = _x((n, c, h, w))
    _against_torch(layer, x, lambda xt, W, b: F.conv2d(xt, W, b, stride=s, padding=p))
    assert gradcheck_layer(layer, x).ok
    assert layer.output_shape((c, h, w)) == layer.forward(x)[0].shape[1:]


@pytest.mark.parametrize(
    ("n", "c", "h", "w", "k", "s"),
    [(1, 1, 4, 4, 2, 2), (2, 3, 7, 5, 2, 2), (2, 2, 7, 7, 3, 1), (1, 2, 6, 9, 3, 3)],
)
@pytest.mark.parametrize("kind", ["max", "avg"])
def test_pooling_matches_torch_and_gradcheck(kind, n, c, h, w, k, s) -> None:
    layer = (MaxPool2D if kind == "max" else AvgPool2D)(k, s)
    fn = F.max_pool2d if kind == "max" else F.avg_pool2d
    x = _x((n, c, h, w))
    _against_torch(layer, x, lambda xt: fn(xt, k, s))
    assert gradcheck_layer(layer, x).ok


def test_maxpool_routes_delta_to_the_argmax_only() -> None:
    x = np.array([[[[1.0, 5.0, 2.0, 0.0], [3.0, 4.0, 9.0, 1.0]]]])  # windows 2x2: winners 5 and 9
    layer = MaxPool2D(2)
    y, ctx = layer.forward(x)
    np.testing.assert_array_equal(y, [[[[5.0, 9.0]]]])
    dx = layer.backward(np.array([[[[10.0, 20.0]]]]), ctx)
    np.testing.assert_array_equal(dx, [[[[0.0, 10.0, 0.0, 0.0], [0.0, 0.0, 20.0, 0.0]]]])
    np.testing.assert_array_equal(layer.routes(ctx)[0, 0, 0], [[0, 1], [1, 2]])


@pytest.mark.parametrize("shape", [(6, 4), (4, 3, 5, 3), (1, 2, 3, 3)])
@pytest.mark.parametrize("training", [True, False])
def test_batchnorm_dense_and_conv_train_and_eval_match_torch(shape, training) -> None:
    rng = np.random.default_rng(0)
    c = shape[1]
    layer = BatchNorm(c, dtype=np.float64)
    layer.gamma.value[...] = rng.uniform(0.5, 1.5, c)
    layer.beta.value[...] = rng.standard_normal(c)
    layer.running_mean.value[...] = rng.standard_normal(c)
    layer.running_var.value[...] = rng.uniform(0.5, 2.0, c)
    rm, rv = torch.tensor(layer.running_mean.value), torch.tensor(layer.running_var.value)
    layer.train(training)
    x = _x(shape)
    _against_torch(
        layer, x, lambda xt, g, b: F.batch_norm(xt, rm, rv, g, b, training=training, momentum=0.1, eps=1e-5)
    )
    # torch updated its running statistics in place exactly as ours (unbiased variance), or not at all
    np.testing.assert_allclose(layer.running_mean.value, rm.numpy(), rtol=0, atol=TOL)
    np.testing.assert_allclose(layer.running_var.value, rv.numpy(), rtol=0, atol=TOL)
    assert gradcheck_layer(layer, x).ok


def test_batchnorm_needs_two_values_per_feature_in_training() -> None:
    with pytest.raises(ShapeError, match="batch ≥ 2"):
        BatchNorm(3, dtype=np.float64).forward(np.ones((1, 3)))
    assert BatchNorm(3, dtype=np.float64).eval().forward(np.ones((1, 3)))[0].shape == (1, 3)


def test_dropout_is_inverted_seeded_and_off_in_eval() -> None:
    x = np.ones((200, 50))
    a, b = Dropout(0.3, seed=5), Dropout(0.3, seed=5)
    ya, ctx = a.forward(x)
    np.testing.assert_array_equal(ya, b.forward(x)[0])  # same seed, same mask
    assert set(np.unique(ya)) == {0.0, 1 / 0.7}
    assert abs((ya == 0).mean() - 0.3) < 0.02 and abs(ya.mean() - 1.0) < 0.03  # E[y] = x
    dy = np.random.default_rng(0).standard_normal(x.shape)
    np.testing.assert_array_equal(a.backward(dy, ctx), dy * (ya / x))  # δ ⊙ m: the same mask
    a.eval()
    y, ctx = a.forward(x)
    assert y is x and a.backward(dy, ctx) is dy
    c = Dropout(0.3, seed=5)  # against torch's dropout written with the same mask
    yc, ctx_c = c.forward(x)
    xt = torch.tensor(x, requires_grad=True)
    yt = xt * torch.tensor((np.random.default_rng(5).random(x.shape) >= 0.3) / 0.7)
    yt.backward(torch.tensor(dy))
    np.testing.assert_allclose(yc, yt.detach().numpy(), rtol=0, atol=TOL)
    np.testing.assert_allclose(c.backward(dy, ctx_c), xt.grad.numpy(), rtol=0, atol=TOL)


def test_conv_input_gradient_is_the_full_convolution_with_the_flipped_kernel() -> None:
    """δ of the input, written as the docstring says: dilate δ by the stride, pad it by k − 1 − p,
    correlate with the kernel rotated by 180° (in/out channels swapped); equals the layer's."""
    rng = np.random.default_rng(3)
    for s, p in [(1, 0), (1, 1), (2, 0), (2, 1)]:
        layer = Conv2D(2, 3, 3, s, p, rng=rng, dtype=np.float64)
        x = rng.standard_normal((2, 2, 7, 7))
        y, ctx = layer.forward(x)
        d = rng.standard_normal(y.shape)
        dx = layer.backward(d, ctx)
        k, oh = 3, y.shape[2]
        dil = np.zeros((2, 3, s * (oh - 1) + 1, s * (oh - 1) + 1))
        dil[:, :, ::s, ::s] = d
        extra = 7 + 2 * p - k - s * (oh - 1)  # rows of x_pad no window reached: zero gradient there
        full = np.pad(dil, ((0, 0), (0, 0), (k - 1 - p, k - 1 - p + extra), (k - 1 - p, k - 1 - p + extra)))
        rot = np.flip(layer.W.value, axis=(2, 3)).transpose(1, 0, 2, 3).copy()  # (C, C_out, k, k)
        want = F.conv2d(torch.tensor(full), torch.tensor(rot)).numpy()
        np.testing.assert_allclose(dx, want, rtol=0, atol=1e-12)


def test_col2im_is_the_adjoint_of_im2col() -> None:
    """<im2col(x), c> = <x, col2im(c)> for every x, c: the defining property of the transpose."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 3, 7, 6))
    col = im2col(x, 3, 2, 1)
    c = rng.standard_normal(col.shape)
    assert abs(np.sum(col * c) - np.sum(x * col2im(c, x.shape, 3, 2, 1))) < 1e-10


@pytest.mark.parametrize(
    "make",
    [
        lambda: Conv2D(2, 3, 3, 2, 1, rng=0, dtype=np.float64),
        lambda: MaxPool2D(3, 2),
        lambda: AvgPool2D(2),
        lambda: BatchNorm(2, dtype=np.float64),
        lambda: Dropout(0.5, seed=1),
    ],
)
def test_torch_tensors_on_the_cpu_run_the_same_layers(make) -> None:
    """The torch path (conv primitives on plain tensors, no autograd) gives the NumPy path's numbers."""
    from chainrule.backend import get_backend, to_numpy

    a, b = make(), make()
    b.to(get_backend("torch", "cpu"), np.float64)
    x = _x((2, 2, 7, 6))
    ya, ca = a.forward(x)
    yb, cb = b.forward(torch.tensor(x))
    assert isinstance(yb, torch.Tensor) and not yb.requires_grad
    dy = np.random.default_rng(2).standard_normal(ya.shape)
    np.testing.assert_allclose(to_numpy(yb), ya, rtol=0, atol=1e-12)
    np.testing.assert_allclose(
        to_numpy(b.backward(torch.tensor(dy), cb)), a.backward(dy, ca), rtol=0, atol=1e-12
    )
    for pa, pb in zip(a.params, b.params, strict=True):
        np.testing.assert_allclose(to_numpy(pb.grad), pa.grad, rtol=0, atol=1e-12)


def test_spec_words_build_a_cnn_and_gradcheck_it() -> None:
    net = build(
        "conv:3:3:1:1 tanh maxpool:2 batchnorm conv:2:3 tanh avgpool:2 flatten dropout:0.25 dense:4",
        (2, 9, 9),
        dtype=np.float64,
    )
    assert [l.kind for l in net.layers][:4] == ["conv", "tanh", "maxpool", "batchnorm"]
    assert net.layers[0].config() == {
        "type": "conv",
        "in_channels": 2,
        "out_channels": 3,
        "kernel_size": 3,
        "stride": 1,
        "pad": 1,
    }
    assert net.output_shape() == (4,)
    assert check_network(net, batch=3, seed=1).ok


@pytest.mark.parametrize(
    ("spec", "error", "needle"),
    [
        ("conv:4:7 flatten dense:10", ShapeError, "7×7 kernel is larger than its 5×5 input"),
        ("conv:4:3 maxpool:4 flatten dense:10", ShapeError, "pooling below 1×1"),
        ("conv:4", ConfigError, "missing K"),
        ("conv:4:3:0", ConfigError, "STRIDE must be at least 1"),
        ("maxpool:2:x", ConfigError, "STRIDE must be an integer"),
        ("dropout:1.5", ConfigError, "P must be below 1"),
        ("batchnorm:3", ConfigError, "too many arguments; expected batchnorm"),
        ("dense:3 conv:2:1", ShapeError, "conv reads images"),
    ],
)
def test_bad_image_specs_name_the_word(spec, error, needle) -> None:
    with pytest.raises(error) as info:
        build(spec, (1, 5, 5) if not spec.startswith("dense") else (4,))
    assert needle in str(info.value)


def _cnn_gradients(
    backend, spec: str = "conv:3:3:1:1 relu maxpool:2 batchnorm conv:4:3:2 tanh avgpool:1 flatten dense:5"
):
    """One step's gradients of a small CNN (float64) on ``backend``, as NumPy arrays."""
    from chainrule.backend import to_numpy

    net = build(spec, (2, 9, 9), dtype=np.float64).to(backend, np.float64)
    rng = np.random.default_rng(4)
    x, y = rng.standard_normal((3, 2, 9, 9)), rng.integers(0, 5, 3)
    net.gradients(backend.asarray(x, dtype=np.float64), backend.asarray(y))
    return [to_numpy(p.grad) for p in net.params]


def test_a_cnn_step_on_torch_cpu_tensors_equals_numpy() -> None:
    """The GPU code path (torch conv primitives, plain tensors) exercised on the CPU."""
    from chainrule.backend import get_backend, numpy_backend

    for a, b in zip(_cnn_gradients(numpy_backend), _cnn_gradients(get_backend("torch", "cpu")), strict=True):
        np.testing.assert_allclose(b, a, rtol=0, atol=1e-10)


@pytest.mark.gpu
@pytest.mark.parametrize("name", ["torch", "cupy"])
def test_a_cnn_step_on_cuda_equals_numpy(name: str) -> None:
    """cuDNN (torch) or the im2col GEMMs (CuPy) on the GPU give the NumPy step's gradients."""
    from chainrule.backend import available_backends, get_backend, numpy_backend

    if f"{name}:cuda" not in available_backends():
        pytest.skip(f"no {name} CUDA backend here")
    torch.backends.cudnn.deterministic = True
    for a, b in zip(_cnn_gradients(numpy_backend), _cnn_gradients(get_backend(name, "cuda")), strict=True):
        np.testing.assert_allclose(b, a, rtol=0, atol=1e-9)
