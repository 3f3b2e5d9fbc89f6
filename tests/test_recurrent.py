"""Recurrent layers (issue 9): each cell against three references, always from a *given* initial
state (stateful truncated BPTT), plus the sequence plumbing.

1. a float64 central-difference check through the whole unrolled sequence, the initial state included;
2. PyTorch ``nn.RNN``/``nn.LSTM``/``nn.GRU`` with copied weights: outputs, final state and every gradient
   within 1e-10;
3. a few Adam steps with clipping and a carried state that follow PyTorch's trajectory.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from chainrule.errors import ConfigError, DataError, ShapeError
from chainrule.inspect.gradcheck import numeric_gradient, relative_error
from chainrule.nn.layers import GRU, LSTM, RNN, Dense, Last, OneHot
from chainrule.nn.model import Sequential
from chainrule.nn.spec import build
from chainrule.optim import Adam
from chainrule.train.clip import ClipGradNorm
from chainrule.train.sequence import reset_state, tbptt_step

N, T, D, H = 3, 5, 4, 6
CELLS = {
    "rnn-tanh": lambda rng: RNN(D, H, rng=rng, dtype=np.float64),
    "rnn-relu": lambda rng: RNN(D, H, activation="relu", rng=rng, dtype=np.float64),
    "lstm": lambda rng: LSTM(D, H, rng=rng, dtype=np.float64),
    "gru": lambda rng: GRU(D, H, rng=rng, dtype=np.float64),
}


def _setup(name: str, seed: int = 0):
    rng = np.random.default_rng(seed)
    layer = CELLS[name](rng)
    x = rng.standard_normal((N, T, D))
    state = tuple(rng.standard_normal((N, H)) * 0.5 for _ in range(layer.state_size))
    dy = rng.standard_normal((N, T, H))
    dstate = tuple(rng.standard_normal((N, H)) for _ in range(layer.state_size))
    return layer, x, state, dy, dstate


@pytest.mark.parametrize("name", sorted(CELLS))
def test_gradcheck_through_the_unrolled_sequence_and_initial_state(name: str) -> None:
    """E = Σ y ⊙ R + Σ state_T ⊙ S: checks δ through every step, into W, U, b, x and the initial state."""
    layer, x, state, dy, dstate = _setup(name)
    _y, ctx = layer.run(x, state)
    dx, dstate0 = layer.run_backward(dy, ctx, dstate)

    def energy() -> float:
        yy, cc = layer.run(x, state)
        fin = layer.final_state(cc)
        return float(np.sum(yy * dy) + sum(np.sum(f * s) for f, s in zip(fin, dstate, strict=True)))

    errors = {"x": relative_error(dx, numeric_gradient(energy, x, 1e-5))}
    for i, (s0, g) in enumerate(zip(state, dstate0, strict=True)):
        errors[f"state{i}"] = relative_error(g, numeric_gradient(energy, s0, 1e-5))
    grads = {p.name: p.grad.copy() for p in layer.params}
    for p in layer.params:
        errors[p.name] = relative_error(grads[p.name], numeric_gradient(energy, p.value, 1e-5))
    assert max(errors.values()) < 1e-7, errors


def _torch_module(layer):
    """The PyTorch module with ``layer``'s weights copied in (PyTorch stores W transposed; it has two
    biases where chainrule has one: ``b_hh`` is zero except the GRU's candidate part, ``c``)."""
    h, d = layer.hidden, layer.in_features
    if isinstance(layer, LSTM):
        mod = torch.nn.LSTM(d, h, batch_first=True)
    elif isinstance(layer, GRU):
        mod = torch.nn.GRU(d, h, batch_first=True)
    else:
        mod = torch.nn.RNN(d, h, nonlinearity=layer.activation, batch_first=True)
    mod = mod.double()
    with torch.no_grad():
        mod.weight_ih_l0.copy_(torch.tensor(layer.W.value.T))
        mod.weight_hh_l0.copy_(torch.tensor(layer.U.value.T))
        mod.bias_ih_l0.copy_(torch.tensor(layer.b.value))
        mod.bias_hh_l0.zero_()
        if isinstance(layer, GRU):
            mod.bias_hh_l0[2 * h :] = torch.tensor(layer.c.value)
    return mod


@pytest.mark.parametrize("name", sorted(CELLS))
def test_matches_pytorch_module_with_copied_weights(name: str) -> None:
    layer, x, state, dy, dstate = _setup(name, seed=1)
    y, ctx = layer.run(x, state)
    dx, dstate0 = layer.run_backward(dy, ctx, dstate)
    final = layer.final_state(ctx)

    mod = _torch_module(layer)
    xt = torch.tensor(x, requires_grad=True)
    st = [torch.tensor(s[None], requires_grad=True) for s in state]  # (layers, N, H)
    yt, fin = mod(xt, tuple(st) if isinstance(layer, LSTM) else st[0])
    fin = fin if isinstance(fin, tuple) else (fin,)
    energy = (yt * torch.tensor(dy)).sum() + sum(
        (f[0] * torch.tensor(s)).sum() for f, s in zip(fin, dstate, strict=True)
    )
    energy.backward()

    tol = {"rtol": 0, "atol": 1e-10}
    np.testing.assert_allclose(y, yt.detach().numpy(), **tol)
    for ours, theirs in zip(final, fin, strict=True):
        np.testing.assert_allclose(ours, theirs[0].detach().numpy(), **tol)
    np.testing.assert_allclose(dx, xt.grad.numpy(), **tol)
    for ours, theirs in zip(dstate0, st, strict=True):
        np.testing.assert_allclose(ours, theirs.grad[0].numpy(), **tol)
    np.testing.assert_allclose(layer.W.grad, mod.weight_ih_l0.grad.numpy().T, **tol)
    np.testing.assert_allclose(layer.U.grad, mod.weight_hh_l0.grad.numpy().T, **tol)
    np.testing.assert_allclose(layer.b.grad, mod.bias_ih_l0.grad.numpy(), **tol)
    if isinstance(layer, GRU):
        np.testing.assert_allclose(layer.c.grad, mod.bias_hh_l0.grad[2 * H :].numpy(), **tol)


class _TorchLM(torch.nn.Module):
    def __init__(self, net: Sequential) -> None:
        super().__init__()
        rec, dense = net.layers[1], net.layers[2]
        self.vocab = net.layers[0].vocab
        self.rnn = _torch_module(rec)
        # chainrule has one bias where PyTorch has b_ih and b_hh: keep b_hh at zero (except the GRU's
        # candidate part, chainrule's c) by masking its gradient, so both train the same parameters
        mask = torch.zeros_like(self.rnn.bias_hh_l0)
        if isinstance(rec, GRU):
            mask[2 * rec.hidden :] = 1
        self.rnn.bias_hh_l0.register_hook(lambda g: g * mask)
        self.out = torch.nn.Linear(rec.hidden, self.vocab).double()
        with torch.no_grad():
            self.out.weight.copy_(torch.tensor(dense.W.value.T))
            self.out.bias.copy_(torch.tensor(dense.b.value))

    def forward(self, ids, state):
        x = torch.nn.functional.one_hot(ids, self.vocab).double()
        y, state = self.rnn(x, state)
        return self.out(y), state


@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn"])
def test_training_steps_follow_pytorch_with_a_carried_state(cell: str) -> None:
    """Adam + global-norm clipping over consecutive windows of one stream, the state carried."""
    v, steps, window = 7, 4, 6
    rng = np.random.default_rng(3)
    stream = rng.integers(0, v, (2, steps * window + 1))
    net = build(f"onehot:{v} {cell}:5 dense:{v}", (window,), seed=0, dtype=np.float64)
    tnet = _TorchLM(net)
    opt, clip = Adam(0.01), ClipGradNorm(0.25)
    topt = torch.optim.Adam(tnet.parameters(), lr=0.01)
    state, clipped = None, []
    for k in range(steps):
        xs = stream[:, k * window : (k + 1) * window]
        ys = stream[:, k * window + 1 : (k + 1) * window + 1]
        cost = tbptt_step(net, xs.astype(np.float64), ys, opt, [clip])
        topt.zero_grad()
        logits, state = tnet(torch.tensor(xs), state)
        loss = torch.nn.functional.cross_entropy(logits.reshape(-1, v), torch.tensor(ys).reshape(-1))
        loss.backward()
        tnorm = torch.nn.utils.clip_grad_norm_(tnet.parameters(), 0.25)
        topt.step()
        state = tuple(s.detach() for s in state) if isinstance(state, tuple) else state.detach()
        assert abs(float(cost) - loss.item()) < 1e-10
        assert abs(clip.last_norm - tnorm.item()) < 1e-10
        clipped.append(tnorm.item() > 0.25)
    assert any(clipped)  # the clipping path is exercised
    rec = net.layers[1]
    np.testing.assert_allclose(rec.W.value, tnet.rnn.weight_ih_l0.detach().numpy().T, rtol=0, atol=1e-10)
    np.testing.assert_allclose(rec.U.value, tnet.rnn.weight_hh_l0.detach().numpy().T, rtol=0, atol=1e-10)
    np.testing.assert_allclose(net.layers[2].W.value, tnet.out.weight.detach().numpy().T, rtol=0, atol=1e-10)
    reset_state(net)
    assert rec.initial_state is None


def test_sequence_model_through_the_driver_gradchecks() -> None:
    """onehot → lstm → time-distributed dense → softmax-CE over every step, and lstm → last → dense."""
    from chainrule.inspect.gradcheck import gradcheck

    rng = np.random.default_rng(0)
    net = build("onehot:5 lstm:4 dense:5", (6,), seed=0, dtype=np.float64)
    ids = rng.integers(0, 5, (2, 6)).astype(np.float64)
    assert gradcheck(net, ids, rng.integers(0, 5, (2, 6))).ok
    net2 = build("gru:4 last dense:3", (5, 2), seed=0, dtype=np.float64)
    res = gradcheck(net2, rng.standard_normal((3, 5, 2)), rng.integers(0, 3, 3), check_input=True)
    assert res.ok, res


def test_onehot_skips_the_input_gradient_of_the_layer_above() -> None:
    net = build("onehot:5 rnn:4 dense:5", (3,), seed=0, dtype=np.float64)
    calls = []
    orig = net.layers[1].run_backward
    net.layers[1].run_backward = lambda *a, **k: calls.append(k["need_dx"]) or orig(*a, **k)
    net.gradients(np.zeros((2, 3)), np.zeros((2, 3), dtype=np.int64))
    assert calls == [False]


def test_last_scatters_delta_to_the_last_step() -> None:
    dx = Last().backward(np.ones((2, 4)), (2, 3, 4))
    assert dx[:, -1].sum() == 8 and dx[:, :-1].sum() == 0


def test_spec_words_and_errors() -> None:
    net = build("rnn:8:relu last dense:10", (28, 28))
    assert net.layers[0].activation == "relu" and net.output_shape() == (10,)
    assert build("lstm:16 dense:3", (7, 2)).output_shape() == (7, 3)
    with pytest.raises(ConfigError, match="ACT"):
        build("rnn:8:dense", (28, 28))
    with pytest.raises(ShapeError, match="sequences"):
        build("lstm:8", (784,))
    with pytest.raises(DataError, match="token ids"):
        OneHot(3).forward(np.array([[0.0, 3.0]]))
    with pytest.raises(ShapeError, match="initial state"):
        layer = LSTM(2, 3)
        layer.initial_state = (np.zeros((1, 3)),)
        layer.forward(np.zeros((1, 2, 2), np.float32))


def test_same_code_on_torch_cpu_tensors() -> None:
    """The GPU path is the layers' own code on torch tensors; here on CPU tensors."""
    from chainrule.backend import get_backend

    for name in sorted(CELLS):
        layer, x, state, dy, dstate = _setup(name, seed=2)
        y, ctx = layer.run(x, state)
        dx, ds0 = layer.run_backward(dy, ctx, dstate)
        grads = [p.grad.copy() for p in layer.params]
        tb = get_backend("torch", "cpu")
        layer.to(tb, "float64")
        yt, ctxt = layer.run(tb.asarray(x), tuple(tb.asarray(s) for s in state))
        dxt, ds0t = layer.run_backward(tb.asarray(dy), ctxt, tuple(tb.asarray(s) for s in dstate))
        np.testing.assert_allclose(y, yt.numpy(), rtol=0, atol=1e-12)
        np.testing.assert_allclose(dx, dxt.numpy(), rtol=0, atol=1e-12)
        for a, b in zip(ds0, ds0t, strict=True):
            np.testing.assert_allclose(a, b.numpy(), rtol=0, atol=1e-12)
        for g, p in zip(grads, layer.params, strict=True):
            np.testing.assert_allclose(g, p.grad.numpy(), rtol=0, atol=1e-12)


def test_dense_is_time_distributed() -> None:
    rng = np.random.default_rng(0)
    layer = Dense(3, 2, rng=rng, dtype=np.float64)
    x, dy = rng.standard_normal((4, 5, 3)), rng.standard_normal((4, 5, 2))
    _y, ctx = layer.forward(x)
    dx = layer.backward(dy, ctx)
    np.testing.assert_allclose(layer.W.grad, np.einsum("ntd,nto->do", x, dy), rtol=1e-12)
    np.testing.assert_allclose(dx, dy @ layer.W.value.T, rtol=1e-12)


@pytest.mark.gpu
@pytest.mark.parametrize("name", sorted(CELLS))
def test_same_code_on_cuda_tensors(name: str) -> None:
    """The GPU path: each cell's own loops on CUDA tensors, against NumPy float64."""
    from chainrule.backend import get_backend

    if not torch.cuda.is_available():
        pytest.skip("no CUDA GPU visible to torch")
    layer, x, state, dy, dstate = _setup(name, seed=4)
    y, ctx = layer.run(x, state)
    dx, ds0 = layer.run_backward(dy, ctx, dstate)
    grads = [p.grad.copy() for p in layer.params]
    gpu = get_backend("torch", "cuda")
    layer.to(gpu, "float64")
    yg, ctxg = layer.run(gpu.asarray(x), tuple(gpu.asarray(s) for s in state))
    dxg, _ = layer.run_backward(gpu.asarray(dy), ctxg, tuple(gpu.asarray(s) for s in dstate))
    np.testing.assert_allclose(y, yg.cpu().numpy(), rtol=0, atol=1e-12)
    np.testing.assert_allclose(dx, dxg.cpu().numpy(), rtol=0, atol=1e-12)
    for g, p in zip(grads, layer.params, strict=True):
        np.testing.assert_allclose(g, p.grad.cpu().numpy(), rtol=0, atol=1e-12)
    assert ds0 is not None


def test_fast_loops_match_the_readable_ones() -> None:
    """accel/recurrent's in-place loops (and the one-hot gather) give the readable loops' numbers."""
    from chainrule.accel.recurrent import install, uninstall

    for cell in ("lstm", "rnn"):
        rng = np.random.default_rng(5)
        net = build(f"onehot:6 {cell}:5 dense:6", (7,), seed=1, dtype=np.float64)
        ids = rng.integers(0, 6, (3, 7)).astype(np.float64)
        ys = rng.integers(0, 6, (3, 7))
        net.layers[1].initial_state = tuple(
            rng.standard_normal((3, 5)) for _ in range(net.layers[1].state_size)
        )
        plain_cost = float(net.gradients(ids, ys))
        plain = [p.grad.copy() for p in net.params]
        assert install(net) == [f"numpy-{'lstm' if cell == 'lstm' else 'rnn-tanh'}+onehot-gather"]
        assert abs(float(net.gradients(ids, ys)) - plain_cost) < 1e-14
        for g, p in zip(plain, net.params, strict=True):
            np.testing.assert_allclose(p.grad, g, rtol=0, atol=1e-13)
        uninstall(net)
        assert net.layers[1].kernel is None


def test_fast_loops_match_the_readable_ones_at_the_lm_shapes() -> None:
    """The LM benchmark's widths (issue 9: onehot:76, 256 units, 32 streams; 16 of its 64 steps, to
    keep the float64 readable loops quick), from a carried state: the fast path (gate-major LSTM
    buffers, one-hot gather) gives the readable loops' loss and gradients."""
    from chainrule.accel.recurrent import install, uninstall

    v, h, n, t = 76, 256, 32, 16
    rng = np.random.default_rng(9)
    ids = rng.integers(0, v, (n, t)).astype(np.float64)
    ys = rng.integers(0, v, (n, t))
    for cell in ("lstm", "rnn"):
        net = build(f"onehot:{v} {cell}:{h} dense:{v}", (t,), seed=2, dtype=np.float64)
        rec = net.layers[1]
        state = tuple(0.5 * rng.standard_normal((n, h)) for _ in range(rec.state_size))
        rec.initial_state = state
        plain_cost = float(net.gradients(ids, ys))
        plain = [p.grad.copy() for p in net.params]
        install(net)
        assert rec.kernel is not None and rec.kernel.onehot_input
        rec.initial_state = state
        fast_cost = float(net.gradients(ids, ys))
        assert abs(fast_cost - plain_cost) < 1e-12
        for g, p in zip(plain, net.params, strict=True):
            assert np.abs(g).max() > 0
            np.testing.assert_allclose(p.grad, g, rtol=0, atol=1e-12 * max(1.0, float(np.abs(g).max())))
        uninstall(net)
