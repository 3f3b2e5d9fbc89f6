"""Builders for the networks of the seeds: multilayer perceptrons, and networks from saved configs."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Any

import numpy as np

from chainrule.errors import ConfigError
from chainrule.limits import check_params
from chainrule.nn.layer import LAYERS, Layer, activation_kinds, layer_from_config
from chainrule.nn.layers import Dense, Maxout
from chainrule.nn.losses import get_loss
from chainrule.nn.model import Sequential

__all__ = ["from_config", "hidden_activations", "mlp", "output_activation_for"]


def hidden_activations() -> list[str]:
    """``--activation`` choices: every registered element-wise activation, and maxout."""
    return [*activation_kinds(), "maxout"]


def output_activation_for(loss: str, requested: str = "auto") -> str:
    """``auto``: what the loss asks for after the last Dense (``identity`` for the fused softmax-CE
    and BCE, which take logits; ``sigmoid`` for squared error, seed 002's and Nielsen's output)."""
    if requested != "auto":
        return requested
    return get_loss(loss).output_activation


def default_init(activation: str) -> str:
    """The activation class's own choice (He for the ReLU family, Xavier for the rest)."""
    cls = LAYERS.get(activation)
    return cls.default_init if cls is not None else "xavier"


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
    k = maxout_k if activation == "maxout" else 1
    check_params(sum((a * k + 1) * b for a, b in itertools.pairwise(sizes)), f"an MLP {sizes}")
    if activation not in hidden_activations():
        raise ConfigError(f"unknown activation {activation!r}; choose {', '.join(hidden_activations())}")
    loss_obj = get_loss(loss)
    out_act = output_activation_for(loss_obj.name, output_activation)
    if out_act not in activation_kinds() and out_act != "softmax":
        raise ConfigError(f"unknown output activation {out_act!r}; choose {', '.join(activation_kinds())}")
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
            layers.append(LAYERS[act]())
    return Sequential(layers, loss=loss_obj, input_dim=sizes[0])


def from_config(cfg: dict[str, Any], dtype: Any = np.float32) -> Sequential:
    """Rebuild a network (zero weights) from :meth:`Sequential.config`."""
    if not isinstance(cfg, dict) or not isinstance(cfg.get("layers"), list):
        raise ConfigError("an architecture must be an object with a 'layers' list")
    layers: list[Layer] = []
    for c in cfg["layers"]:
        layers.append(layer_from_config(c, dtype, layers))
    input_dim = cfg.get("input_dim")
    if input_dim is not None and (not isinstance(input_dim, int) or input_dim < 1):
        raise ConfigError(f"bad input_dim {input_dim!r}")
    shape = cfg.get("input_shape")
    if shape is not None:
        if not isinstance(shape, list) or not shape or not all(isinstance(s, int) and s > 0 for s in shape):
            raise ConfigError(f"bad input_shape {shape!r}")
        shape = tuple(shape)
    loss = cfg.get("loss")
    if loss is not None and not isinstance(loss, str):
        raise ConfigError(f"bad loss {loss!r}")
    return Sequential(layers, loss=loss, input_dim=input_dim, input_shape=shape)
