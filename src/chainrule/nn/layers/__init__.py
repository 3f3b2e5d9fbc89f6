"""Layers: :class:`Dense` (and its tied twin), :class:`Maxout` and the activations."""

from chainrule.nn.layers.activations import Identity, LeakyReLU, ReLU, Sigmoid, Softmax, Softplus, Tanh
from chainrule.nn.layers.dense import Dense, TiedDense
from chainrule.nn.layers.maxout import Maxout
from chainrule.nn.layers.recurrent import GRU, LSTM, RNN
from chainrule.nn.layers.reshape import Flatten
from chainrule.nn.layers.sequence import Embed, Last, OneHot

__all__ = [
    "GRU",
    "LSTM",
    "RNN",
    "Dense",
    "Embed",
    "Flatten",
    "Identity",
    "Last",
    "LeakyReLU",
    "Maxout",
    "OneHot",
    "ReLU",
    "Sigmoid",
    "Softmax",
    "Softplus",
    "Tanh",
    "TiedDense",
]
