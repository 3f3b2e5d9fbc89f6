"""``chainrule bench --arch``: a spec network (conv nets) and its PyTorch twin with the same weights.

The twin is what a PyTorch user writes (``nn.Conv2d``, ``nn.MaxPool2d``, ``nn.Linear`` ...), one
module per chainrule layer, its parameters copied from the seeded chainrule network (a dense
layer's ``W (D_in, D_out)`` becomes ``nn.Linear.weight = Wᵀ``; a convolution's kernel has
PyTorch's layout already). Dropout is refused: the two sides could not draw the same masks.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from chainrule.errors import ConfigError, ShapeError
from chainrule.nn.model import Sequential
from chainrule.nn.spec import build, input_rank

__all__ = ["arch_net", "torch_twin"]


def arch_net(arch: str, sample_shape: tuple[int, ...], seed: int) -> Sequential:
    """The float32 spec network for data samples of ``sample_shape``; flat rows of ``S·S`` values
    feed an image network as ``(1, S, S)`` (as ``chainrule train`` does for MNIST)."""
    shape = tuple(sample_shape)
    if input_rank(arch) == 3 and len(shape) == 1:
        side = math.isqrt(shape[0])
        if side * side != shape[0]:
            raise ShapeError(f"samples of {shape[0]} values do not factor into square (1, H, W) images")
        shape = (1, side, side)
    return build(arch, shape, loss="softmax-ce", seed=seed, dtype=np.float32)


def _module(torch: Any, layer: Any, in_shape: tuple[int, ...]) -> Any:
    nn, kind = torch.nn, layer.kind
    simple = {
        "relu": nn.ReLU,
        "tanh": nn.Tanh,
        "sigmoid": nn.Sigmoid,
        "flatten": nn.Flatten,
        "identity": nn.Identity,
    }
    if kind in simple:
        return simple[kind]()
    if kind in ("maxpool", "avgpool"):
        return (nn.MaxPool2d if kind == "maxpool" else nn.AvgPool2d)(layer.kernel_size, layer.stride)
    if kind == "conv":
        m = nn.Conv2d(layer.in_channels, layer.out_channels, layer.kernel_size, layer.stride, layer.pad)
        weights = (layer.W.value, layer.b.value)
    elif kind == "dense":
        m = nn.Linear(layer.in_features, layer.out_features)
        weights = (layer.W.value.T, layer.b.value)
    elif kind == "batchnorm":
        m = (nn.BatchNorm2d if len(in_shape) == 3 else nn.BatchNorm1d)(layer.num_features)
        weights = (layer.gamma.value, layer.beta.value)
    else:
        raise ConfigError(f"bench --arch has no PyTorch twin for layer {kind!r}")
    with torch.no_grad():
        for p, w in zip(m.parameters(), weights, strict=True):
            p.copy_(torch.from_numpy(np.ascontiguousarray(w, dtype=np.float32)))
    return m


def torch_twin(torch: Any, net: Sequential) -> Any:
    """``nn.Sequential`` with one module per layer of ``net`` and ``net``'s initial weights."""
    mods, shape = [], tuple(net.input_shape or ())
    for layer in net.layers:
        mods.append(_module(torch, layer, shape))
        shape = layer.output_shape(shape)
    return torch.nn.Sequential(*mods)
