"""Weight initialisers, all drawn from NumPy's seeded generator.

Weights are drawn on the host in float64 and only then cast and moved to a backend, so a CPU run
and a GPU run from the same seed start from identical weights.

``fan_in = D_in`` and ``fan_out = D_out`` for a weight of shape ``(D_in, D_out)``.

* ``normal``: N(0, 1), the "default" of Nielsen's chapter 1 (large: it saturates sigmoids);
* ``xavier`` (Glorot uniform): U(-r, r) with r = sqrt(6 / (fan_in + fan_out)), which keeps the
  variance of activations and gradients about equal across tanh/sigmoid layers;
* ``he``: N(0, 2 / fan_in), the variance-preserving choice for ReLU, which zeroes half its input;
* ``lecun``: N(0, 1 / fan_in).
"""

from __future__ import annotations

import numpy as np

from chainrule.errors import ConfigError

__all__ = ["INITIALIZERS", "init_weight"]


def _normal(rng: np.random.Generator, fan_in: int, fan_out: int) -> np.ndarray:
    return rng.standard_normal((fan_in, fan_out))


def _xavier(rng: np.random.Generator, fan_in: int, fan_out: int) -> np.ndarray:
    r = np.sqrt(6.0 / (fan_in + fan_out))
    return rng.uniform(-r, r, size=(fan_in, fan_out))


def _he(rng: np.random.Generator, fan_in: int, fan_out: int) -> np.ndarray:
    return rng.standard_normal((fan_in, fan_out)) * np.sqrt(2.0 / fan_in)


def _lecun(rng: np.random.Generator, fan_in: int, fan_out: int) -> np.ndarray:
    return rng.standard_normal((fan_in, fan_out)) * np.sqrt(1.0 / fan_in)


INITIALIZERS = {"normal": _normal, "xavier": _xavier, "he": _he, "lecun": _lecun}


def init_weight(
    name: str, fan_in: int, fan_out: int, rng: np.random.Generator, scale: float = 1.0
) -> np.ndarray:
    """A float64 ``(fan_in, fan_out)`` weight matrix from initialiser ``name`` times ``scale``."""
    if name not in INITIALIZERS:
        raise ConfigError(f"unknown initialiser {name!r}; choose {', '.join(INITIALIZERS)}")
    return INITIALIZERS[name](rng, fan_in, fan_out) * scale
