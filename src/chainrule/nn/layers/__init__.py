"""Layers: :class:`Dense` (and its tied twin), :class:`Maxout`, the activations, the image layers and
the sequence layers."""

from chainrule.nn.layers.activations import Identity, LeakyReLU, ReLU, Sigmoid, Softmax, Softplus, Tanh
from chainrule.nn.layers.batchnorm import BatchNorm
from chainrule.nn.layers.conv import Conv2D
from chainrule.nn.layers.dense import Dense, TiedDense
from chainrule.nn.layers.dropout import Dropout
from chainrule.nn.layers.maxout import Maxout
from chainrule.nn.layers.pool import AvgPool2D, MaxPool2D
from chainrule.nn.layers.recurrent import GRU, LSTM, RNN
from chainrule.nn.layers.reshape import Flatten
from chainrule.nn.layers.sequence import Embed, Last, OneHot

__all__ = [
    "GRU",
    "LSTM",
    "RNN",
    "AvgPool2D",
    "BatchNorm",
    "Conv2D",
    "Dense",
    "Dropout",
    "Embed",
    "Flatten",
    "Identity",
    "Last",
    "LeakyReLU",
    "MaxPool2D",
    "Maxout",
    "OneHot",
    "ReLU",
    "Sigmoid",
    "Softmax",
    "Softplus",
    "Tanh",
    "TiedDense",
]
