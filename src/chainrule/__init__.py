"""chainrule: neural networks whose every gradient is derived by hand with the chain rule.

Layout: rows are samples. ``x`` is ``(N, D_in)``, ``W`` is ``(D_in, D_out)`` and a dense layer is
``z = x W + b``; the seeds' column form ``z = W a + b`` is its transpose.

Quick start::

    import chainrule as cr
    data = cr.load_data("default")                      # embedded MNIST subset, offline
    net = cr.mlp([784, 128, 10], "relu", loss="softmax-ce", seed=0)
    history = cr.fit(net, data.x_train, data.y_train, optimizer="sgd", lr=0.1, epochs=5)
    print(cr.evaluate(net, data.x_test, data.y_test)["accuracy"])
    cr.save(net, "net.safetensors"); net2 = cr.load("net.safetensors")
"""

from __future__ import annotations

from chainrule.backend import Backend, available_backends, get_backend, numpy_backend, to_numpy
from chainrule.errors import ChainruleError
from chainrule.inspect.gradcheck import gradcheck, gradcheck_layer
from chainrule.io import Dataset, load_data, load_default, load_mnist
from chainrule.io.serialize import load, save
from chainrule.nn.builders import mlp
from chainrule.nn.layer import Layer
from chainrule.nn.layers import Dense, Identity, LeakyReLU, Maxout, ReLU, Sigmoid, Softmax, Softplus, Tanh
from chainrule.nn.losses import SigmoidBinaryCrossEntropy, SoftmaxCrossEntropy, SquaredError, get_loss
from chainrule.nn.model import Sequential
from chainrule.nn.params import Param
from chainrule.optim import SGD, Adam, Momentum, Nesterov, get_optimizer
from chainrule.train import History, evaluate, fit

__version__ = "0.1.0"

__all__ = [
    "SGD",
    "Adam",
    "Backend",
    "ChainruleError",
    "Dataset",
    "Dense",
    "History",
    "Identity",
    "Layer",
    "LeakyReLU",
    "Maxout",
    "Momentum",
    "Nesterov",
    "Param",
    "ReLU",
    "Sequential",
    "Sigmoid",
    "SigmoidBinaryCrossEntropy",
    "Softmax",
    "SoftmaxCrossEntropy",
    "Softplus",
    "SquaredError",
    "Tanh",
    "__version__",
    "available_backends",
    "evaluate",
    "fit",
    "get_backend",
    "get_loss",
    "get_optimizer",
    "gradcheck",
    "gradcheck_layer",
    "load",
    "load_data",
    "load_default",
    "load_mnist",
    "mlp",
    "numpy_backend",
    "save",
    "to_numpy",
]
