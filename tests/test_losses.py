"""Losses: float64 gradient check, PyTorch oracle, numerical stability, target handling."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from chainrule.errors import ShapeError
from chainrule.inspect.gradcheck import relative_error
from chainrule.nn.losses import LOSSES, SigmoidBinaryCrossEntropy, SoftmaxCrossEntropy, SquaredError, get_loss

N, K = 7, 4


def torch_loss(name: str, out: torch.Tensor, y: np.ndarray) -> torch.Tensor:
    t = torch.tensor(np.eye(K)[y])
    if name == "squared":
        return 0.5 * ((out - t) ** 2).sum() / out.shape[0]
    if name == "softmax-ce":
        return F.cross_entropy(out, torch.tensor(y))
    return F.binary_cross_entropy_with_logits(out, t, reduction="sum") / out.shape[0]


def _data(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    r = np.random.default_rng(seed)
    return r.standard_normal((N, K)) * 3, r.integers(0, K, N)


def test_registry_is_covered() -> None:
    assert {"squared", "softmax-ce", "bce"} <= set(LOSSES)


@pytest.mark.parametrize("name", ["bce", "softmax-ce", "squared"])
def test_matches_torch(name: str) -> None:
    out, y = _data()
    loss = get_loss(name)
    e, ctx = loss.forward(out, y)
    d = loss.backward(ctx)
    ot = torch.tensor(out, requires_grad=True)
    et = torch_loss(name, ot, y)
    et.backward()
    assert abs(e - et.item()) < 1e-12
    np.testing.assert_allclose(d, ot.grad.numpy(), rtol=0, atol=1e-12)


@pytest.mark.parametrize("name", ["bce", "softmax-ce", "squared"])
def test_gradcheck(name: str) -> None:
    out, y = _data(1)
    loss = get_loss(name)
    analytic = loss.backward(loss.forward(out, y)[1]).copy()
    eps = 1e-6
    numeric = np.zeros_like(out)
    for i in np.ndindex(out.shape):
        p, m = out.copy(), out.copy()
        p[i] += eps
        m[i] -= eps
        numeric[i] = (float(loss.value(p, y)) - float(loss.value(m, y))) / (2 * eps)
    assert relative_error(analytic, numeric) < 1e-7


@pytest.mark.parametrize("name", ["bce", "softmax-ce", "squared"])
def test_one_hot_targets_equal_index_targets(name: str) -> None:
    out, y = _data(2)
    a = float(get_loss(name).value(out, y))
    b = float(get_loss(name).value(out, np.eye(K)[y]))
    assert a == pytest.approx(b, rel=1e-14)


def test_cross_entropy_is_stable_for_huge_logits() -> None:
    out = np.array([[1000.0, -1000.0, 0.0], [-1000.0, 1000.0, 5.0]])
    y = np.array([1, 1])
    ce = SoftmaxCrossEntropy()
    e = float(ce.value(out, y))
    assert np.isfinite(e) and e == pytest.approx(1000.0, rel=1e-12)  # sample 0 costs 2000, sample 1 ~0
    assert np.all(np.isfinite(ce.backward(ce.forward(out, y)[1])))
    bce = SigmoidBinaryCrossEntropy()
    e = float(bce.value(out, np.eye(3)[y]))
    assert np.isfinite(e) and np.all(np.isfinite(bce.backward(bce.forward(out, np.eye(3)[y])[1])))


def test_fused_deltas_are_the_textbook_ones() -> None:
    """softmax-CE: δ = (p − y)/N; sigmoid-BCE: δ = (σ(z) − y)/N; squared: δ = (a − y)/N."""
    out, y = _data(3)
    t = np.eye(K)[y]
    p = np.exp(out) / np.exp(out).sum(1, keepdims=True)
    ce = SoftmaxCrossEntropy()
    np.testing.assert_allclose(ce.backward(ce.forward(out, y)[1]), (p - t) / N, atol=1e-15)
    bce = SigmoidBinaryCrossEntropy()
    np.testing.assert_allclose(
        bce.backward(bce.forward(out, y)[1]), (1 / (1 + np.exp(-out)) - t) / N, atol=1e-15
    )
    sq = SquaredError()
    np.testing.assert_allclose(sq.backward(sq.forward(out, y)[1]), (out - t) / N, atol=1e-15)


def test_single_output_binary_targets() -> None:
    out = np.array([[2.0], [-1.0]])
    e = float(SigmoidBinaryCrossEntropy().value(out, np.array([1, 0])))
    expected = (np.log1p(np.exp(-2.0)) + np.log1p(np.exp(-1.0))) / 2
    assert e == pytest.approx(expected, rel=1e-14)


def test_target_shape_mismatch() -> None:
    out, _ = _data()
    with pytest.raises(ShapeError):
        SquaredError().forward(out, np.zeros((N, K + 1)))
    with pytest.raises(ShapeError):
        SquaredError().forward(out, np.zeros(N + 1, dtype=int))
