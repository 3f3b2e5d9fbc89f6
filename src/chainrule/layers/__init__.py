"""Layers: :class:`Dense`, :class:`Maxout` and the activations."""

from .activations import (
    ACTIVATIONS,
    Identity,
    LeakyReLU,
    ReLU,
    Sigmoid,
    Softmax,
    Softplus,
    Tanh,
    sigmoid,
    softmax,
    softplus,
)
from .dense import Dense
from .maxout import Maxout

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
    "sigmoid",
    "softmax",
    "softplus",
]
