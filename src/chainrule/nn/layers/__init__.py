"""Layers: :class:`Dense`, :class:`Maxout` and the activations."""

from chainrule.nn.layers.activations import (
    ACTIVATIONS,
    Identity,
    LeakyReLU,
    ReLU,
    Sigmoid,
    Softmax,
    Softplus,
    Tanh,
)
from chainrule.nn.layers.dense import Dense
from chainrule.nn.layers.maxout import Maxout

__all__ = [
    "ACTIVATIONS",
    "Dense",
    "Identity",
    "LeakyReLU",
    "Maxout",
    "ReLU",
    "Sigmoid",
    "Softmax",
    "Softplus",
    "Tanh",
]
