"""``chainrule sample``: text from a saved character language model (``chainrule lm --save``)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from chainrule.errors import ConfigError, ModelFileError
from chainrule.io.serialize import load_with_info
from chainrule.io.text import Vocabulary
from chainrule.nn.layers.recurrent import recurrent_layers
from chainrule.nn.layers.sequence import OneHot
from chainrule.train.sequence import generate

__all__ = ["SampleConfig", "load_lm", "run_sample"]


@dataclass
class SampleConfig:
    model: str = ""
    prime: str = "\n"
    length: int = 400
    temperature: float = 0.8
    seed: int = 0


def load_lm(path: str) -> tuple[object, Vocabulary]:
    """A saved language model and its vocabulary, checked: ``onehot:V``, recurrent layers, ``V``
    outputs, and a vocabulary of ``V`` distinct sorted characters in its info."""
    net, info = load_with_info(path)
    first, out = net.layers[0], net.layers[-1]
    if not isinstance(first, OneHot) or not recurrent_layers(net.layers):
        raise ModelFileError(f"{path}: not a character language model (it must start onehot:V, then a cell)")
    size = int(getattr(out, "out_features", -1))
    if size != first.vocab:
        raise ModelFileError(f"{path}: not a character language model ({first.vocab} inputs, {size} outputs)")
    vocab = Vocabulary.from_info(info, size, path)
    net.input_shape = None  # any sequence length
    return net, vocab


def run_sample(cfg: SampleConfig) -> str:
    """The prime followed by ``length`` sampled characters."""
    if not cfg.temperature > 0:
        raise ConfigError(f"--temperature must be positive, got {cfg.temperature}")
    if not cfg.prime:
        raise ConfigError("--prime needs at least one character")
    net, vocab = load_lm(cfg.model)
    prime = vocab.encode(cfg.prime, "--prime")
    ids = generate(net, prime, cfg.length, cfg.temperature, np.random.default_rng(cfg.seed))  # type: ignore[arg-type]
    return cfg.prime + vocab.decode(ids)
