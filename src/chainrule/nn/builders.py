"""Builders for the networks of the seeds: multilayer perceptrons."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Any

import numpy as np

from chainrule.errors import ConfigError
from chainrule.nn.init import default_init
from chainrule.nn.layer import Layer, layer_from_config
from chainrule.nn.layers import ACTIVATIONS, Dense, LeakyReLU, Maxout
from chainrule.nn.losses import get_loss
from chainrule.nn.model import Sequential

__all__ = ["HIDDEN_ACTIVATIONS", "from_config", "mlp"]

HIDDEN_ACTIVATIONS = ("identity", "sigmoid", "tanh", "relu", "leaky_relu", "softplus", "maxout")


def _activation(name: str) -> Layer:
    if name == "leaky_relu":
        return LeakyReLU()
    return ACTIVATIONS[name]()


def output_activation_for(loss: str, requested: str = "auto") -> str:
    """``auto``: none after the last Dense for the fused losses (softmax-ce, bce take logits);
    sigmoid for squared error (seed 002's and Nielsen's output layer)."""
    if requested != "auto":
        return requested
    return "sigmoid" if loss == "squared" else "identity"


def mlp(
    sizes: Sequence[int],
    activation: str = "relu",
    *,
    loss: str = "softmax-ce",
    output_activation: str = "auto",
    init: str = "auto",
    init_scale: float = 1.0,
    maxout_k: int = 2,
    seed: int | None = 0,
    dtype: Any = np.float32,
) -> Sequential:
    """A fully connected net ``sizes[0] -> ... -> sizes[-1]``.

    Hidden layers are ``Dense`` + ``activation`` (or ``Maxout`` with ``maxout_k`` pieces). The
    last layer is ``Dense`` followed by ``output_activation`` (see :func:`output_activation_for`).
    Weights come from NumPy's generator seeded with ``seed``, drawn in float64 and cast to
    ``dtype``; biases start at zero.

    >>> net = mlp([784, 256, 128, 10], "relu", loss="softmax-ce", seed=0)
    """
    sizes = [int(s) for s in sizes]
    if len(sizes) < 2 or min(sizes) < 1:
        raise ConfigError(f"layer sizes must be at least two positive integers, got {sizes}")
    if activation not in HIDDEN_ACTIVATIONS:
        raise ConfigError(f"unknown activation {activation!r}; choose {', '.join(HIDDEN_ACTIVATIONS)}")
    loss_obj = get_loss(loss)
    out_act = output_activation_for(loss_obj.name, output_activation)
    if out_act not in ACTIVATIONS:
        raise ConfigError(f"unknown output activation {out_act!r}; choose {', '.join(ACTIVATIONS)}")
    if init == "auto":
        init = default_init(activation)
    rng = np.random.default_rng(seed)
    layers: list[Layer] = []
    for i, (d_in, d_out) in enumerate(itertools.pairwise(sizes)):
        last = i == len(sizes) - 2
        if activation == "maxout" and not last:
            layers.append(Maxout(d_in, d_out, maxout_k, init=init, scale=init_scale, rng=rng, dtype=dtype))
            continue
        layers.append(Dense(d_in, d_out, init=init, scale=init_scale, rng=rng, dtype=dtype))
        act = out_act if last else activation
        if act != "identity" or not last:
            layers.append(_activation(act))
    return Sequential(layers, loss=loss_obj, input_dim=sizes[0])


def from_config(cfg: dict[str, Any], dtype: Any = np.float32) -> Sequential:
    """Rebuild a network (zero weights) from :meth:`Sequential.config`."""
    if not isinstance(cfg, dict) or not isinstance(cfg.get("layers"), list):
        raise ConfigError("an architecture must be an object with a 'layers' list")
    layers = [layer_from_config(c, dtype) for c in cfg["layers"]]
    input_dim = cfg.get("input_dim")
    if input_dim is not None and (not isinstance(input_dim, int) or input_dim < 1):
        raise ConfigError(f"bad input_dim {input_dim!r}")
    return Sequential(layers, loss=cfg.get("loss"), input_dim=input_dim)
