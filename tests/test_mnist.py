"""Real MNIST runs (issue 2, acceptance 3 and 4). Marked slow: `pytest -m slow` (CI runs them).

Thresholds are the issue's: PyTorch reaches 96.5% on the 5-epoch config; a plain NumPy reference
reaches 97.9-98.1% after 20; Nielsen's book reports 95.42% for his chapter-1 network.
"""

from __future__ import annotations

import pytest

from chainrule import mlp
from chainrule.io import load_mnist
from chainrule.train import evaluate, fit

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def mnist(request):
    from conftest import missing, mnist_dir

    d = mnist_dir()
    if d is None:
        missing("real MNIST not found (set CHAINRULE_TEST_MNIST)")
    return load_mnist(d)


class TestAccuracy:
    # 25 MNIST epochs: about 1-2 minutes on a quiet 2-core machine, but over the suite's 600 s
    # pytest-timeout when the machine is shared (measured: 604 s at load 7-10)
    @pytest.mark.timeout(1800)
    def test_relu_mlp_5_then_20_epochs(self, mnist) -> None:
        """784-256-128-10 ReLU, softmax-CE, SGD lr 0.1, batch 128, seed 0."""
        net = mlp([784, 256, 128, 10], "relu", loss="softmax-ce", seed=0)
        fit(net, mnist.x_train, mnist.y_train, lr=0.1, batch_size=128, epochs=5, seed=0, progress=False)
        acc5 = evaluate(net, mnist.x_test, mnist.y_test)["accuracy"]
        assert acc5 >= 0.965, acc5
        net20 = mlp([784, 256, 128, 10], "relu", loss="softmax-ce", seed=0)
        fit(net20, mnist.x_train, mnist.y_train, lr=0.1, batch_size=128, epochs=20, seed=0, progress=False)
        acc20 = evaluate(net20, mnist.x_test, mnist.y_test)["accuracy"]
        assert acc20 >= 0.978, acc20

    def test_nielsen_chapter_1(self, mnist) -> None:
        """[784, 30, 10] sigmoid, squared loss, η = 3.0, batch 10, 30 epochs, N(0,1) weights."""
        net = mlp([784, 30, 10], "sigmoid", loss="squared", init="normal", seed=0)
        fit(net, mnist.x_train, mnist.y_train, lr=3.0, batch_size=10, epochs=30, seed=0, progress=False)
        acc = evaluate(net, mnist.x_test, mnist.y_test)["accuracy"]
        assert acc >= 0.95, acc
