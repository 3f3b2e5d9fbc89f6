"""The fit loop: modes of gradient descent, determinism, validation, early stopping, errors."""

from __future__ import annotations

import math

import numpy as np
import pytest

from chainrule import mlp
from chainrule.errors import ConfigError, DataError, ShapeError
from chainrule.io import load_default
from chainrule.train import Callback, TrainingDiverged, evaluate, fit


def _blobs(n: int = 120, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    r = np.random.default_rng(seed)
    y = r.integers(0, 3, n)
    centers = np.array([[2.0, 0.0], [-2.0, 0.0], [0.0, 2.5]])
    return (centers[y] + r.standard_normal((n, 2)) * 0.5).astype(np.float32), y


class StepCounter(Callback):
    def __init__(self) -> None:
        self.steps = 0

    def on_step(self, step: int) -> None:
        self.steps = step


@pytest.mark.parametrize(("batch_size", "steps"), [(None, 3), (1, 360), (32, 12), (120, 3), (500, 3)])
def test_gradient_descent_modes(batch_size: int | None, steps: int) -> None:
    """full batch: 1 step/epoch; online: N steps/epoch; mini-batch: ceil(N/B) steps/epoch."""
    x, y = _blobs()
    counter = StepCounter()
    fit(
        mlp([2, 8, 3], "tanh", seed=0),
        x,
        y,
        batch_size=batch_size,
        epochs=3,
        lr=0.1,
        progress=False,
        callbacks=[counter],
    )
    assert counter.steps == steps


def test_learns_a_separable_problem() -> None:
    x, y = _blobs()
    net = mlp([2, 16, 3], "relu", seed=0)
    hist = fit(net, x, y, lr=0.2, batch_size=16, epochs=30, progress=False)
    assert hist["loss"][-1] < hist["loss"][0] / 5
    assert evaluate(net, x, y)["accuracy"] > 0.97


def test_deterministic_under_a_seed() -> None:
    x, y = _blobs()
    nets = [mlp([2, 8, 3], "relu", seed=1) for _ in range(3)]
    for net, seed in zip(nets, (5, 5, 6), strict=True):
        fit(net, x, y, epochs=2, batch_size=8, seed=seed, progress=False)
    assert all(np.array_equal(p.value, q.value) for p, q in zip(nets[0].params, nets[1].params, strict=True))
    assert not np.array_equal(nets[0].params[0].value, nets[2].params[0].value)


def test_fit_does_not_mutate_caller_data() -> None:
    x, y = _blobs()
    x0, y0 = x.copy(), y.copy()
    fit(mlp([2, 4, 3], "relu"), x, y, epochs=2, validation_split=0.2, progress=False)
    np.testing.assert_array_equal(x, x0)
    np.testing.assert_array_equal(y, y0)


def test_history_and_validation() -> None:
    x, y = _blobs()
    hist = fit(mlp([2, 8, 3], "relu"), x, y, epochs=3, validation_split=0.25, progress=False)
    assert len(hist.epochs) == 3
    for e in hist.epochs:
        assert {"loss", "accuracy", "val_loss", "val_accuracy", "seconds"} <= set(e)
        assert 0 <= e["accuracy"] <= 1 and 0 <= e["val_accuracy"] <= 1 and e["seconds"] > 0
    assert hist.final_loss == hist.epochs[-1]["loss"]


def test_early_stopping_restores_best_weights() -> None:
    x, y = _blobs()
    net = mlp([2, 8, 3], "relu", seed=0)
    vx, vy = _blobs(60, seed=9)
    vy = (vy + 1) % 3  # a validation set the model can only get worse on as it learns the train set
    hist = fit(net, x, y, epochs=40, lr=0.2, validation_data=(vx, vy), early_stopping=2, progress=False)
    assert hist.stopped_early and len(hist.epochs) < 40
    best = min(hist["val_loss"])
    assert hist.best_epoch is not None and hist["val_loss"][hist.best_epoch - 1] == best
    assert evaluate(net, vx, vy)["loss"] == pytest.approx(best, rel=1e-5)


def test_divergence_is_reported() -> None:
    x, y = _blobs()
    x = x * 1e3
    with pytest.raises(TrainingDiverged, match="learning rate"):
        fit(
            mlp([2, 8, 3], "relu", loss="squared", output_activation="identity"),
            x,
            y,
            lr=1e6,
            epochs=3,
            progress=False,
        )


def test_evaluate_confusion_matrix() -> None:
    x, y = _blobs()
    net = mlp([2, 8, 3], "relu")
    ev = evaluate(net, x, y)
    conf = ev["confusion"]
    assert conf.shape == (3, 3) and conf.sum() == len(y)
    np.testing.assert_array_equal(conf.sum(1), np.bincount(y, minlength=3))
    assert ev["accuracy"] == pytest.approx(np.trace(conf) / len(y))
    np.testing.assert_array_equal(conf.sum(0), np.bincount(net.predict(x), minlength=3))


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"epochs": 0}, ConfigError, "epochs"),
        ({"validation_split": 1.0}, ConfigError, "validation_split"),
        ({"l2": -1.0}, ConfigError, "l2"),
        ({"lr": 0.0}, ConfigError, "learning rate"),
        ({"optimizer": "rmsprop"}, ConfigError, "optimizer"),
    ],
)
def test_bad_options(kwargs: dict, error: type, match: str) -> None:
    x, y = _blobs()
    with pytest.raises(error, match=match):
        fit(mlp([2, 4, 3], "relu"), x, y, progress=False, **kwargs)


def test_bad_data() -> None:
    x, y = _blobs()
    net = mlp([2, 4, 3], "relu")
    with pytest.raises(DataError, match=r"labels must be in 0\.\.2"):
        fit(net, x, y + 1, progress=False)
    with pytest.raises(DataError, match="120 samples but 119 labels"):
        fit(net, x, y[:-1], progress=False)
    with pytest.raises(DataError, match="no samples"):
        fit(net, x[:0], y[:0], progress=False)
    with pytest.raises(ShapeError, match="3 features"):
        fit(net, np.zeros((4, 3), np.float32), y[:4], progress=False)


def test_default_dataset_trains_quickly() -> None:
    d = load_default()
    net = mlp([784, 64, 10], "relu", seed=0)
    fit(net, d.x_train, d.y_train, lr=0.1, epochs=2, progress=False)
    acc = evaluate(net, d.x_test, d.y_test)["accuracy"]
    assert acc > 0.85
    assert math.isfinite(evaluate(net, d.x_test, d.y_test)["loss"])


def test_l2_penalty_is_counted_once_in_the_reported_loss() -> None:
    """History loss = mean batch data loss + (λ/2)ΣW² at the epoch's end, on every runner."""
    x, y = _blobs()
    lam = 0.5
    plain = mlp([2, 8, 3], "tanh", seed=0)
    fast = mlp([2, 8, 3], "tanh", seed=0)
    hp = fit(plain, x, y, lr=0.05, epochs=2, l2=lam, progress=False, fast=False)
    hf = fit(fast, x, y, lr=0.05, epochs=2, l2=lam, progress=False, fast=True)
    assert hp.runner == "plain" and hf.runner != "plain"
    np.testing.assert_allclose(hp["loss"], hf["loss"], rtol=1e-5)
    # one epoch of full-batch descent: the data loss is E(W before the step); add λ/2ΣW² after it
    net = mlp([2, 8, 3], "tanh", seed=0)
    before = net.cost(x, y)
    h = fit(net, x, y, lr=0.05, epochs=1, batch_size=None, l2=lam, progress=False, fast=False)
    penalty = lam / 2 * sum(float(np.sum(p.value.astype(np.float64) ** 2)) for p in net.params if p.decay)
    assert h["loss"][0] == pytest.approx(before + penalty, rel=1e-5)
