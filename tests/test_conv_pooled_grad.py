"""∂E/∂x of a fused ``conv`` → ``relu`` → ``maxpool:q`` block with stride 1 (accel/conv.py,
``ConvBlock._pooled_input_grad``): per-(pool offset, tap) GEMMs added into phase planes.

Each case is checked twice in float64, to 1e-12 relative: against the plain layers (``Conv2D``,
``ReLU``, ``MaxPool2D``, their own forward and backward) and against PyTorch autograd through
``F.conv2d`` → ``F.relu`` → ``F.max_pool2d``. Kernels 1 to 5 (even ones too), pools 2 and 3, padding
0 to 2, odd and non-square images, rows and columns the pool leaves over, batch 1, channel counts
that are multiples of nothing in particular.
"""

from __future__ import annotations

import numpy as np
import pytest

from chainrule.accel.conv import ConvBlock, plan_conv
from chainrule.backend.threads import limit_threads
from chainrule.nn.spec import build
from chainrule.optim import SGD
from chainrule.studies.bench_arch import torch_twin
from chainrule.train.step import make_runner

torch = pytest.importorskip("torch")
F = torch.nn.functional

CASES = [
    # (in channels, out channels, kernel, pad, pool, H, W, batch)
    (3, 5, 3, 0, 2, 13, 13, 2),  # the reference conv2's shape, small
    (7, 3, 3, 1, 2, 9, 12, 1),  # batch 1, padding 1
    (2, 7, 5, 2, 3, 11, 10, 3),  # 5×5 kernel, pool 3 with leftovers
    (5, 4, 2, 0, 2, 8, 11, 2),  # even kernel
    (3, 6, 4, 1, 3, 12, 9, 1),  # even kernel, pool 3
    (4, 5, 1, 0, 2, 7, 6, 2),  # 1×1 kernel: no shift at all
    (1, 3, 3, 2, 2, 6, 7, 2),  # padding k − 1: the gradient reaches the padding's rim
]


def _block(c_in, c_out, k, pad, q, h, w, seed=0):
    net = build(
        f"conv:{c_out}:{k}:1:{pad} relu maxpool:{q} flatten dense:4",
        (c_in, h, w),
        seed=seed,
        dtype=np.float64,
    )
    block = plan_conv(net)[0]
    assert isinstance(block, ConvBlock) and (block.relu, block.pool) == (True, q)
    rng = np.random.default_rng(seed + 1)
    block.conv.b.value[...] = rng.standard_normal(c_out) * 0.3
    return net, block, rng


def _plain_grads(net, x, da):
    """The three plain layers' forward and backward (the chain rule, layer by layer)."""
    conv, relu, pool = net.layers[:3]
    z, cz = conv.forward(x)
    r, cr = relu.forward(z)
    a, cp = pool.forward(r)
    conv.W.grad[...] = 0
    conv.b.grad[...] = 0
    dx = conv.backward(relu.backward(pool.backward(da, cp), cr), cz)
    return a, dx, conv.W.grad.copy(), conv.b.grad.copy()


def _torch_grads(block, x, da, q):
    conv = block.conv
    xt = torch.tensor(x, requires_grad=True)
    wt = torch.tensor(conv.W.value, requires_grad=True)
    bt = torch.tensor(conv.b.value, requires_grad=True)
    a = F.max_pool2d(F.relu(F.conv2d(xt, wt, bt, stride=1, padding=conv.pad)), q)
    (a * torch.tensor(da)).sum().backward()
    return a.detach().numpy(), xt.grad.numpy(), wt.grad.numpy(), bt.grad.numpy()


def _close(got, want, rtol=1e-12):
    scale = np.abs(want).max()
    assert scale > 0, "an all-zero reference checks nothing"
    assert np.abs(got - want).max() <= rtol * scale, f"{np.abs(got - want).max() / scale:.2e}"


@pytest.mark.parametrize("case", CASES)
def test_pooled_input_gradient_equals_the_plain_layers_and_torch(case):
    c_in, c_out, k, pad, q, h, w, n = case
    net, block, rng = _block(c_in, c_out, k, pad, q, h, w)
    x = rng.standard_normal((n, c_in, h, w))
    a, ctx = block.forward(x)
    da = rng.standard_normal(a.shape)
    dW, db, dx = block.parts(da, ctx, True)
    assert "planes" in block.bufs.flat  # the phase-plane path ran, not the full convolution
    for want in (_plain_grads(net, x, da), _torch_grads(block, x, da, q)):
        _close(a, want[0])
        _close(dx, want[1])
        _close(dW, want[2])
        _close(db, want[3])


def test_the_buffers_are_reused_across_batch_sizes():
    """A batch of 3, then 1, then 3 again: the planes and the padded gradient shrink and grow in
    place and each call still gives PyTorch's ∂E/∂x."""
    _, block, rng = _block(3, 4, 3, 1, 2, 9, 10)
    for n in (3, 1, 3):
        x = rng.standard_normal((n, 3, 9, 10))
        a, ctx = block.forward(x)
        da = rng.standard_normal(a.shape)
        _close(block.parts(da, ctx, True)[2], _torch_grads(block, x, da, 2)[1])


@pytest.mark.parametrize("threads", [1, 2])
def test_a_two_block_net_step_equals_torch_through_threads(threads):
    """The whole reference shape, small (odd channels, batch 5): two fused blocks, the second's ∂E/∂x
    feeding the first, against PyTorch autograd on the same weights, with 1 and 2 BLAS threads
    (2: each block runs as two batch slices)."""
    arch = "conv:5:3 relu maxpool:2 conv:7:3 relu maxpool:2 flatten dense:10"
    net = build(arch, (3, 13, 13), loss="softmax-ce", seed=2, dtype=np.float64)
    twin = torch_twin(torch, net).double()  # the twin copies float32 weights: put the float64 ones back
    with torch.no_grad():
        for m, i in zip([m for m in twin if hasattr(m, "weight")], (0, 3, 7), strict=True):
            m.weight.copy_(torch.tensor(net.layers[i].W.value.T if i == 7 else net.layers[i].W.value))
            m.bias.copy_(torch.tensor(net.layers[i].b.value))
    rng = np.random.default_rng(9)
    x, y = rng.standard_normal((5, 3, 13, 13)), rng.integers(0, 10, 5)
    out = twin(torch.tensor(x))
    F.cross_entropy(out, torch.tensor(y)).backward()
    want = [m.weight.grad for m in twin if hasattr(m, "weight")]
    runner = make_runner(net, SGD(0.1), 0.0)
    with limit_threads(threads):
        runner._gradients(x, y)
    got = [net.layers[i].W.grad for i in (0, 3, 7)]
    _close(got[0], want[0].numpy())
    _close(got[1], want[1].numpy())
    _close(got[2], want[2].numpy().T)


def test_ties_in_a_pool_window_route_to_the_first_maximum_as_the_layer_does():
    """Integer images through a 1×1 kernel of small integers: many windows hold their maximum twice
    or more; the block sends δ to the same (first, row-major) entry as ``MaxPool2D``."""
    net, block, rng = _block(1, 2, 1, 0, 2, 6, 8)
    block.conv.W.value[...] = np.array([1.0, 2.0]).reshape(2, 1, 1, 1)
    block.conv.b.value[...] = 0.5
    x = rng.integers(0, 3, (2, 1, 6, 8)).astype(np.float64)
    a, ctx = block.forward(x)
    da = rng.standard_normal(a.shape)
    want = _plain_grads(net, x, da)
    z = x[:, :, :6, :8].reshape(2, 1, 3, 2, 4, 2).transpose(0, 1, 2, 4, 3, 5).reshape(2, 1, 3, 4, 4)
    assert ((z == z.max(axis=-1, keepdims=True)).sum(axis=-1) > 1).sum() >= 5  # ties present
    for got, w in zip((a, *block.parts(da, ctx, True)), (want[0], want[2], want[3], want[1]), strict=True):
        _close(got, w)  # a δ routed to another entry of its window would be off by O(1)
