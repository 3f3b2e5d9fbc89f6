"""Layers: :class:`Dense` (and its tied twin), :class:`Maxout` and the activations."""

from chainrule.nn.layers.activations import Identity, LeakyReLU, ReLU, Sigmoid, Softmax, Softplus, Tanh
from chainrule.nn.layers.dense import Dense, TiedDense
from chainrule.nn.layers.maxout import Maxout
from chainrule.nn.layers.reshape import Flatten

__all__ = [
    "Dense",
    "Flatten",
    "Identity",
    "LeakyReLU",
    "Maxout",
    "ReLU",
    "Sigmoid",
    "Softmax",
    "Softplus",
    "Tanh",
    "TiedDense",
]
