"""``chainrule explain --arch SPEC --input-shape C,H,W``: one checked step of any layer-spec network
(a tiny CNN), its input given (``--input``, flat, reshaped) or drawn from N(0, 1) with ``--seed``."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from chainrule.errors import ConfigError
from chainrule.inspect.explain.spec_render import render_spec
from chainrule.inspect.explain.spec_step import check_spec_size, explain_spec
from chainrule.nn.spec import build

__all__ = ["explain_spec_step"]


def explain_spec_step(cfg: Any) -> tuple[str, bool]:
    """``(rendered text, every check passed)`` for an ``ExplainConfig`` with ``arch`` set."""
    if cfg.arch is None or cfg.input_shape is None:
        raise ConfigError(
            "--arch and --input-shape go together, e.g. --arch 'conv:2:3 relu maxpool:2 "
            "flatten dense:3' --input-shape 1,6,6"
        )
    if cfg.target is not None:
        raise ConfigError(
            "--arch networks are trained with softmax cross-entropy: give --label, not --target"
        )
    shape = tuple(cfg.input_shape)
    net = build(cfg.arch, shape, loss="softmax-ce", seed=cfg.seed, dtype=np.float64)
    rng = np.random.default_rng(cfg.seed)
    notes = []
    if cfg.input is not None:
        x = np.array(cfg.input, dtype=np.float64)
        if x.shape[1] != math.prod(shape):
            raise ConfigError(
                f"--input rows have {x.shape[1]} numbers but --input-shape {','.join(map(str, shape))} "
                f"needs {math.prod(shape)}"
            )
        x = x.reshape(x.shape[0], *shape)
    else:
        x = rng.standard_normal((cfg.batch, *shape))
        notes.append(
            f"input: {cfg.batch} sample(s) drawn from N(0, 1) with seed {cfg.seed}; choose with --input"
        )
    check_spec_size(net, x.shape[0])
    k = net.output_dim()
    if cfg.label is not None:
        y = np.array(cfg.label, dtype=np.int64)
        if y.shape[0] != x.shape[0] or y.max() >= k:
            raise ConfigError(f"--label needs one label in 0..{k - 1} per sample, got {cfg.label}")
    else:
        y = rng.integers(0, k, x.shape[0])
        notes.append(f"label: drawn at random with seed {cfg.seed}; choose with --label")
    ex = explain_spec(net, x, y, spec=cfg.arch)
    ex.notes = notes
    return render_spec(ex, cfg.format), ex.ok
