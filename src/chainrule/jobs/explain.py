"""One training step of a small network, explained: which network (a fresh MLP, a saved model or seed
002's worked example), which input and target (given, seed 002's, or drawn at random), then
:func:`chainrule.inspect.explain.explain` (or ``summarize``) rendered as text, markdown or JSON."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from chainrule._io import atomic_write_text
from chainrule.errors import ConfigError
from chainrule.inspect.explain import check_size, explain, render, render_summary, summarize
from chainrule.inspect.rbm_explain import explain_cd1, render_cd1
from chainrule.io.serialize import load
from chainrule.jobs.common import check_outputs
from chainrule.jobs.explain_rnn import explain_recurrent_arch, recurrent_arch
from chainrule.jobs.explain_spec import explain_spec_step
from chainrule.nn.builders import mlp
from chainrule.studies import example as seed002

__all__ = ["SEED002_NOTE", "ExplainConfig", "ExplainOutput", "run_explain"]

SEED002_NOTE = (
    "seed 002's worked example. The post shares ONE bias b1 between both hidden units (and one b2 "
    "between both outputs); chainrule's Dense keeps one bias per unit, both starting at 0.5, so the "
    "post's tied ∂E/∂b is the sum of the entries of ∂E/∂b^l shown here and the update below is "
    "per unit. `chainrule example` applies the tie and compares every figure with the post."
)


@dataclass
class ExplainConfig:
    """What ``chainrule explain`` is asked to do. The network is ``model`` (a saved one), else
    seed 002's when ``seed002``, else an MLP of ``layers`` (default 3,2,2). ``input``/``target``
    are rows of numbers, ``label`` class indices; what is not given is drawn with ``seed``."""

    layers: list[int] | None = None
    model: str | None = None
    seed002: bool = False
    activation: str = "sigmoid"
    loss: str = "squared"
    seed: int = 0
    input: list[list[float]] | None = None
    target: list[list[float]] | None = None
    label: list[int] | None = None
    batch: int = 1
    lr: float | None = None  # default 0.1; 0.01 for seed 002
    format: str = "text"
    summary: bool = False
    out: str | None = None  # write here (atomically) too
    rbm: list[int] | None = None  # issue 10: D,H of a tiny RBM: one CD-1 step instead
    arch: str | None = None  # a layer-spec network (with input_shape): see jobs.explain_spec
    input_shape: list[int] | None = None


@dataclass
class ExplainOutput:
    text: str
    ok: bool  # every numeric check agreed


def run_explain(cfg: ExplainConfig) -> ExplainOutput:
    check_outputs({"--out": cfg.out}, {"--model": cfg.model})
    if cfg.arch is not None and recurrent_arch(cfg.arch):  # issue 9: BPTT unrolled, in its own module
        text, ok = explain_recurrent_arch(
            cfg.arch, cfg.input_shape, cfg.batch, cfg.label, cfg.seed, cfg.format
        )
        if cfg.out:
            atomic_write_text(cfg.out, text)
        return ExplainOutput(text=text, ok=ok)
    if cfg.rbm:  # issue 10: one CD-1 step of a tiny RBM
        return _explain_rbm(cfg)
    if cfg.arch is not None or cfg.input_shape is not None:  # a layer-spec network (issue 8)
        text, ok = explain_spec_step(cfg)
        if cfg.out:
            atomic_write_text(cfg.out, text)
        return ExplainOutput(text=text, ok=ok)
    net, notes = _network(cfg)
    rng = np.random.default_rng(cfg.seed)  # random input first, then random targets
    x = _inputs(cfg, net, rng, notes)
    y = _targets(cfg, net, x.shape[0], rng, notes)
    lr = cfg.lr if cfg.lr is not None else (0.01 if cfg.seed002 else 0.1)
    if cfg.summary:
        text, ok = render_summary(summarize(net, x, y, lr=lr, notes=notes), cfg.format), True
    else:
        check_size(net, x.shape[0])  # before any work: the message points to --summary
        ex = explain(net, x, y, lr=lr, notes=notes)
        text, ok = render(ex, cfg.format), ex.ok
    if cfg.out:
        atomic_write_text(cfg.out, text)
    return ExplainOutput(text=text, ok=ok)


def _explain_rbm(cfg: ExplainConfig) -> ExplainOutput:
    if len(cfg.rbm or []) != 2:
        raise ConfigError(f"--rbm takes D,H (visible,hidden), got {cfg.rbm}")
    d, h = cfg.rbm  # type: ignore[misc]
    st = explain_cd1(d, h, v0=cfg.input, batch=cfg.batch, lr=cfg.lr or 0.1, seed=cfg.seed)
    text = render_cd1(st, cfg.format)
    if cfg.out:
        atomic_write_text(cfg.out, text)
    return ExplainOutput(text=text, ok=st.ok)


def _network(cfg: ExplainConfig) -> tuple[Any, list[str]]:
    if cfg.seed002:
        return seed002.build_network(), [SEED002_NOTE]
    if cfg.model:
        return load(cfg.model), []
    sizes = cfg.layers or [3, 2, 2]
    return mlp(sizes, cfg.activation, loss=cfg.loss, seed=cfg.seed, dtype=np.float64), []


def _inputs(cfg: ExplainConfig, net: Any, rng: np.random.Generator, notes: list[str]) -> np.ndarray:
    d = net.input_dim
    if cfg.input is not None:
        x = np.array(cfg.input, dtype=np.float64)
        if d is not None and x.shape[1] != d:
            raise ConfigError(f"--input rows have {x.shape[1]} numbers but the network takes {d} inputs")
        return x
    if cfg.seed002:
        return seed002.X.copy()
    if d is None:
        raise ConfigError("the network does not know its input size; pass --input")
    notes.append(f"input: {cfg.batch} row(s) drawn from N(0, 1) with seed {cfg.seed}; choose with --input")
    return rng.standard_normal((cfg.batch, d))


def _targets(cfg: ExplainConfig, net: Any, n: int, rng: np.random.Generator, notes: list[str]) -> np.ndarray:
    k = net.output_dim()
    if cfg.target is not None:
        y = np.array(cfg.target, dtype=np.float64)
        if y.shape[0] != n:
            raise ConfigError(f"--target has {y.shape[0]} row(s) for {n} input row(s)")
        if k is not None and y.shape[1] != k:
            raise ConfigError(f"--target rows have {y.shape[1]} numbers but the network has {k} outputs")
        return y
    if cfg.label is not None:
        y = np.array(cfg.label, dtype=np.int64)
        if y.shape[0] != n:
            raise ConfigError(f"--label gives {y.shape[0]} label(s) for {n} input row(s)")
        limit = 2 if k == 1 else k
        if limit is not None and y.max() >= limit:
            raise ConfigError(f"label {int(y.max())} is out of range: the network has {k} output(s)")
        return y
    if cfg.seed002 and cfg.input is None:
        return seed002.T.copy()
    if k is None:
        raise ConfigError("the network does not know its output size; pass --target or --label")
    notes.append(f"target: drawn at random with seed {cfg.seed}; choose with --target or --label")
    loss = net.loss.name if net.loss is not None else None
    if loss == "softmax-ce":
        return rng.integers(0, k, n) if k > 1 else rng.integers(0, 2, n)
    if loss == "bce":
        return rng.integers(0, 2, (n, k)).astype(np.float64)
    return rng.uniform(0.0, 1.0, (n, k))
