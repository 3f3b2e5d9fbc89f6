"""The fused NumPy convolution block (accel/conv.py) against the plain layers it replaces.

Every case runs the same network twice from the same weights and batch: through the driver
(``Sequential.gradients``, the readable layers) and through :func:`plan_conv`'s stages. In float64
every gradient and the cost agree to 1e-12 relative (the sums are the same, in a different order);
in float32 to 2e-5 relative (single-precision GEMMs summed in a different order). Odd sizes, batch
size 1, padding, strides, pools that leave rows over, and groups without ReLU or pool are covered.
"""

from __future__ import annotations

import numpy as np
import pytest

from chainrule.accel.conv import ConvBlock, ConvRunner, make_conv_runner, plan_conv
from chainrule.backend.threads import limit_threads
from chainrule.nn.spec import build
from chainrule.optim import Momentum
from chainrule.train.step import PlainRunner, make_runner

CASES = [
    # (arch, sample shape, batch)
    ("conv:4:3 relu maxpool:2 conv:5:3 relu maxpool:2 flatten dense:10", (2, 13, 11), 3),
    ("conv:4:3:1:1 relu maxpool:3 conv:5:2:2:1 relu flatten dense:10", (3, 14, 15), 1),  # pad, stride 2
    ("conv:4:5:1:2 conv:5:3 relu maxpool:2:1 flatten dense:10", (1, 9, 9), 2),  # no relu; overlapping pool
    ("conv:3:3:1:2 relu maxpool:2 flatten dense:10", (2, 7, 8), 1),  # padding 2 (k − 1)
    ("conv:6:1 relu maxpool:2 flatten dense:10", (3, 6, 5), 4),  # a 1×1 kernel, a leftover column
    ("conv:3:3:3 relu flatten dense:10", (2, 11, 10), 2),  # stride 3: col2im for ∂E/∂x
    ("conv:3:3 relu conv:4:3:1:2 relu maxpool:2 flatten dense:10", (2, 9, 8), 2),  # full conv, pad 2
    ("conv:3:2 conv:4:4:1:1 maxpool:3 flatten dense:10", (1, 12, 11), 1),  # even kernel, no relu
]


def _grads_both_ways(arch: str, shape: tuple[int, ...], n: int, dtype: type, seed: int = 0):
    net = build(arch, shape, loss="softmax-ce", seed=seed, dtype=dtype)
    rng = np.random.default_rng(seed + 1)
    for layer in net.layers:
        if layer.kind == "conv":  # a non-zero bias: the block adds it after the pool
            layer.b.value[...] = rng.standard_normal(layer.b.value.shape) * 0.3
    x = rng.standard_normal((n, *shape)).astype(dtype)
    y = rng.integers(0, 10, n)
    cost = float(net.gradients(x, y))
    plain = [p.grad.copy() for p in net.params]
    stages = plan_conv(net)
    assert stages is not None and any(isinstance(s, ConvBlock) for s in stages)
    net.zero_grad()
    runner = ConvRunner(net, stages, Momentum(0.1, 0.9), 0.0, ())
    a, ctxs = x, []
    for stage in runner.stages:
        a, ctx = stage.forward(a)
        ctxs.append(ctx)
    fused_cost, lctx = net.loss.forward(a, y)
    d = net.loss.backward(lctx)
    for i in range(len(stages) - 1, -1, -1):
        d = stages[i].backward(d, ctxs[i], need_dx=i > 0)
    return cost, float(fused_cost), plain, [p.grad for p in net.params]


def _assert_close(plain, fused, rtol):
    for i, (g, h) in enumerate(zip(plain, fused, strict=True)):
        scale = np.abs(g).max()
        assert scale > 0, f"gradient {i} is all zero: the case checks nothing"
        assert np.abs(g - h).max() <= rtol * scale, f"gradient {i}: {np.abs(g - h).max() / scale:.2e}"


@pytest.mark.parametrize("arch,shape,n", CASES)
def test_fused_block_equals_the_plain_layers_in_float64(arch, shape, n):
    cost, fused_cost, plain, fused = _grads_both_ways(arch, shape, n, np.float64)
    assert fused_cost == pytest.approx(cost, rel=1e-12)
    _assert_close(plain, fused, 1e-12)


@pytest.mark.parametrize("arch,shape,n", CASES[:3])
def test_fused_block_equals_the_plain_layers_in_float32(arch, shape, n):
    cost, fused_cost, plain, fused = _grads_both_ways(arch, shape, n, np.float32)
    assert fused_cost == pytest.approx(cost, rel=2e-5)
    _assert_close(plain, fused, 2e-5)


def test_the_plan_fuses_what_it_covers_and_leaves_the_rest_plain():
    net = build("conv:4:3 relu maxpool:2 conv:5:3 relu maxpool:2:1 flatten dense:10", (2, 13, 11), seed=0)
    kinds = [type(s).__name__ if isinstance(s, ConvBlock) else s.kind for s in plan_conv(net)]
    assert kinds == ["ConvBlock", "ConvBlock", "maxpool", "flatten", "dense"]  # overlapping pool stays plain
    first, second = plan_conv(net)[:2]
    assert (first.relu, first.pool, second.relu, second.pool) == (True, 2, True, 0)
    leaky = build("conv:4:3 leaky_relu:0.1 maxpool:2 flatten dense:10", (1, 8, 8), seed=0)
    assert [getattr(s, "kind", "block") for s in plan_conv(leaky)] == [
        "block",
        "leaky_relu",
        "maxpool",
        "flatten",
        "dense",
    ]
    assert plan_conv(build("dense:10", (5,), seed=0)) is None  # nothing to fuse


def test_a_driver_hook_keeps_the_plain_runner():
    net = build("conv:4:3 relu maxpool:2 flatten dense:10", (1, 8, 8), loss="softmax-ce", seed=0)
    assert isinstance(make_runner(net, Momentum(0.1, 0.9), 0.0), ConvRunner)
    net.hooks.append(object())
    assert make_conv_runner(net, Momentum(0.1, 0.9)) is None
    assert isinstance(make_runner(net, Momentum(0.1, 0.9), 0.0), PlainRunner)


def test_a_hook_attached_after_planning_sees_every_layer():
    """A runner planned first and a tracer-like hook attached later: the step goes through the
    driver, so the hook sees each of the five layers, and the update still happens."""
    net = build("conv:4:3 relu maxpool:2 flatten dense:10", (1, 8, 8), loss="softmax-ce", seed=0)
    runner = make_runner(net, Momentum(0.1, 0.9), 0.0)
    assert isinstance(runner, ConvRunner)

    class Seen:
        def __init__(self) -> None:
            self.forward, self.backward = [], []

        def on_forward(self, i, layer, x, y) -> None:
            self.forward.append(layer.kind)

        def on_backward(self, i, layer, dy, dx) -> None:
            self.backward.append(layer.kind)

    seen = Seen()
    net.hooks.append(seen)
    before = net.params[0].value.copy()
    rng = np.random.default_rng(0)
    runner.step(rng.standard_normal((3, 64)).astype(np.float32), rng.integers(0, 10, 3))
    assert seen.forward == ["conv", "relu", "maxpool", "flatten", "dense"]
    assert seen.backward == seen.forward[::-1]
    assert not np.array_equal(net.params[0].value, before)


@pytest.mark.parametrize("threads", [1, 2, 3])
def test_training_steps_equal_the_plain_runner_with_a_smaller_last_batch(threads):
    """Three momentum epochs with L2 over 11 samples in batches of 4 (the last batch has 3): the
    reused buffers shrink and grow again, and the weights stay equal to the plain runner's. With
    2 or 3 BLAS threads each block runs as that many batch slices in Python threads."""
    arch, shape = "conv:4:3:1:1 relu maxpool:2 conv:5:3 relu maxpool:2 flatten dense:10", (2, 9, 10)
    nets = [build(arch, shape, loss="softmax-ce", seed=3, dtype=np.float64) for _ in range(2)]
    rng = np.random.default_rng(5)
    x, y = rng.standard_normal((11, int(np.prod(shape)))), rng.integers(0, 10, 11)
    plain = PlainRunner(nets[0], Momentum(0.05, 0.9), 1e-3)
    fused = make_runner(nets[1], Momentum(0.05, 0.9), 1e-3)
    assert isinstance(fused, ConvRunner)
    for epoch in range(3):
        order = np.random.default_rng(epoch).permutation(11)
        lp = plain.run_epoch(x, y, order, 4, lambda: None)
        with limit_threads(threads):
            lf = fused.run_epoch(x, y, order, 4, lambda: None)
            split = [type(s).__name__ for s in fused._stages()]
        assert lf == pytest.approx(lp, rel=1e-12)
        assert split[:2] == (["SplitBlock"] * 2 if threads > 1 else ["ConvBlock"] * 2)
    for p, q in zip(nets[0].params, nets[1].params, strict=True):
        np.testing.assert_allclose(q.value, p.value, rtol=0, atol=1e-12)
