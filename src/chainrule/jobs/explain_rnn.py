"""``chainrule explain --arch "rnn:3 last dense:2" --input-shape T,D``: BPTT unrolled (issue 9)."""

from __future__ import annotations

import numpy as np

from chainrule.errors import ConfigError
from chainrule.inspect.explain.recurrent import explain_rnn, render_rnn
from chainrule.nn.layers.recurrent import Recurrent
from chainrule.nn.spec import build, parse

__all__ = ["explain_recurrent_arch", "recurrent_arch"]


def recurrent_arch(arch: str) -> bool:
    """Whether the spec has a recurrent layer (explained unrolled through time)."""
    return any(issubclass(w.cls, Recurrent) for w in parse(arch))


def explain_recurrent_arch(
    arch: str, input_shape: list[int] | None, batch: int, labels: list[int] | None, seed: int, fmt: str
) -> tuple[str, bool]:
    """Build ``arch`` in float64 from ``seed``, draw ``batch`` sequences from N(0, 1) (and labels,
    unless given), and render the unrolled explanation."""
    if not input_shape or len(input_shape) != 2:
        raise ConfigError("--arch with a recurrent layer needs --input-shape T,D (e.g. 4,2)")
    if fmt not in ("text", "json"):
        raise ConfigError("the unrolled RNN explanation is rendered as text or json")
    net = build(arch, tuple(input_shape), seed=seed, dtype=np.float64)
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((batch, *input_shape))
    out = net.output_shape()
    if out is None or len(out) != 1:
        raise ConfigError(
            f"explain needs one output vector per sequence (end with 'last dense:K'), got {out}"
        )
    k = out[0]
    if labels is not None:
        y = np.array(labels, dtype=np.int64)
        if y.shape[0] != batch or y.max() >= k:
            raise ConfigError(f"--label needs {batch} label(s) in 0..{k - 1}")
    else:
        y = rng.integers(0, k, batch)
    ex = explain_rnn(net, x, y, arch=arch)
    return render_rnn(ex, fmt), ex.ok
