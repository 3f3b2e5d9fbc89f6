"""Tests that kill the mutation survivors of benchmarks/mutation_run.py group "fast-path kernels"
(accel/loss_kernels.py, accel/update_kernels.py). The expected values are written out from the
formulas here, independently of chainrule.nn.losses and chainrule.optim."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np

from chainrule.accel.loss_kernels import registered_loss
from chainrule.accel.update_kernels import optimizer_update
from chainrule.optim import SGD, Adam

OUT = np.array([[1.0, -2.0, 0.5], [0.0, 3.0, -1.0]])
Y = np.array([[0.0, 0.0, 1.0], [0.0, 1.0, 0.0]])


def _kernel(name: str) -> tuple[float, np.ndarray, str]:
    kernel = registered_loss(name)  # built here, not at import, so the test sees the kernel's code
    delta = np.full_like(OUT, np.nan)
    cost = kernel(None, OUT.copy(), Y.copy(), delta, {})
    return float(cost), delta, kernel.__name__


def test_teeth_softmax_ce_kernel() -> None:
    p = np.exp(OUT) / np.exp(OUT).sum(axis=1, keepdims=True)
    cost, delta, name = _kernel("softmax-ce")
    assert np.isclose(cost, -np.mean(np.log(p[[0, 1], [2, 1]])), rtol=1e-12)
    np.testing.assert_allclose(delta, (p - Y) / 2, rtol=1e-12)
    assert name == "registered_loss[softmax-ce]"


def test_teeth_squared_and_bce_kernels() -> None:
    cost, delta, name = _kernel("squared")
    assert np.isclose(cost, 0.5 * np.sum((OUT - Y) ** 2) / 2, rtol=1e-12)
    np.testing.assert_allclose(delta, (OUT - Y) / 2, rtol=1e-12)
    assert name == "registered_loss[squared]"
    s = 1 / (1 + np.exp(-OUT))
    cost, delta, name = _kernel("bce")
    assert np.isclose(cost, -np.sum(Y * np.log(s) + (1 - Y) * np.log(1 - s)) / 2, rtol=1e-12)
    np.testing.assert_allclose(delta, (s - Y) / 2, rtol=1e-12)
    assert name == "registered_loss[bce]"


def test_teeth_adam_update_takes_its_bias_corrections_from_the_ops() -> None:
    # a runner that keeps t on a device hands the corrections in; here they are deliberately not opt.t's
    opt = Adam(lr=0.1, beta1=0.5, beta2=0.75, eps=1e-8)
    opt.t = 1
    c1, c2 = 0.25, 0.5
    ops = SimpleNamespace(xp=np, bias_corrections=lambda o: (c1, c2))
    w, g = np.array([1.0, -2.0]), np.array([0.5, 4.0])
    m, s = np.array([0.2, 0.0]), np.array([0.1, 1.0])
    m_new, s_new = 0.5 * m + 0.5 * g, 0.75 * s + 0.25 * g * g
    expected = w - 0.1 * (m_new / c1) / (np.sqrt(s_new / c2) + 1e-8)
    state = (m.copy(), s.copy())
    optimizer_update(ops, opt, w, g, state, np.empty(2), np.empty(2))
    np.testing.assert_allclose(w, expected, rtol=1e-12)
    np.testing.assert_allclose(state[0], m_new, rtol=1e-12)


def test_teeth_sgd_update_asks_the_ops_for_nothing() -> None:
    opt = SGD(lr=0.5)
    ops = SimpleNamespace(xp=np)  # no bias_corrections: SGD must not ask for them
    w, g = np.array([1.0, -2.0]), np.array([0.5, 4.0])
    optimizer_update(ops, opt, w, g, None, np.empty(2), np.empty(2))
    np.testing.assert_allclose(w, [0.75, -4.0], rtol=1e-12)
