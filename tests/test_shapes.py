"""N-D shapes end to end: images ``(N, C, H, W)`` through the driver, fit, evaluate, gradcheck and
save/load, with nothing assuming 2-D input."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import chainrule as cr
from chainrule.errors import ShapeError
from chainrule.inspect.gradcheck import check_network, gradcheck
from chainrule.nn.layers import Dense, Flatten, ReLU, Tanh
from chainrule.nn.model import Sequential


def image_net(dtype: Any = np.float32, hidden: int = 32) -> Sequential:
    return Sequential(
        [
            Flatten(),
            Dense(784, hidden, init="he", rng=0, dtype=dtype),
            ReLU(),
            Dense(hidden, 10, rng=1, dtype=dtype),
        ],
        loss="softmax-ce",
        input_shape=(1, 28, 28),
    )


def test_shapes_are_answered_without_data() -> None:
    net = image_net()
    assert net.input_shape == (1, 28, 28) and net.input_dim is None
    assert net.output_shape() == (10,)
    assert [g.head.kind for g in net.groups()] == ["flatten", "dense", "dense"]


def test_images_train_evaluate_and_round_trip(tmp_path: Any) -> None:
    data = cr.load_data("default", flatten=False)
    assert data.x_train.shape[1:] == (1, 28, 28)
    net = image_net()
    history = cr.fit(net, data.x_train, data.y_train, lr=0.1, batch_size=64, epochs=2, progress=False)
    assert history.runner == "plain"  # no fast kernel for flatten: the plain path
    result = cr.evaluate(net, data.x_test, data.y_test)
    assert result["accuracy"] > 0.85 and result["confusion"].shape == (10, 10)
    path = tmp_path / "images.safetensors"
    cr.save(net, path)
    again = cr.load(path)
    assert again.input_shape == (1, 28, 28)
    np.testing.assert_array_equal(again.predict(data.x_test), net.predict(data.x_test))


def test_images_and_their_flattened_rows_give_the_same_gradients() -> None:
    r = np.random.default_rng(0)
    x, y = r.standard_normal((5, 2, 3, 4)), r.integers(0, 3, 5)
    img = Sequential(
        [Flatten(), Dense(24, 6, rng=2, dtype=np.float64), Tanh(), Dense(6, 3, rng=3, dtype=np.float64)],
        loss="softmax-ce",
    )
    flat = Sequential(
        [Dense(24, 6, rng=2, dtype=np.float64), Tanh(), Dense(6, 3, rng=3, dtype=np.float64)],
        loss="softmax-ce",
    )
    e_img, e_flat = float(img.loss_and_grad(x, y)), float(flat.loss_and_grad(x.reshape(5, -1), y))
    assert e_img == e_flat
    for p, q in zip(img.params, flat.params, strict=True):
        np.testing.assert_array_equal(p.grad, q.grad)
    result = gradcheck(img, x, y, check_input=True)
    assert result.ok and "input" in result.errors


def test_check_network_draws_inputs_of_the_network_shape() -> None:
    net = Sequential(
        [Flatten(), Dense(12, 3, rng=0, dtype=np.float64)], loss="softmax-ce", input_shape=(3, 4)
    )
    assert check_network(net, batch=3).ok


def test_wrong_sample_shape_is_one_clear_error() -> None:
    net = image_net()
    with pytest.raises(ShapeError, match=r"\(1, 28, 28\)"):
        net.forward(np.zeros((2, 28, 28), np.float32))
    with pytest.raises(cr.ChainruleError, match="samples"):
        cr.fit(net, np.zeros((4, 1, 28, 28), np.float32), np.zeros(3, np.int64), progress=False)
