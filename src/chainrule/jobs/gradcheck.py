"""Check every gradient of a network (a fresh MLP, each activation × loss, or a saved model)
against central differences, in float64 on random inputs."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from chainrule.backend import numpy_backend
from chainrule.inspect.gradcheck import GradcheckResult, gradcheck
from chainrule.io.serialize import load
from chainrule.nn.builders import mlp

__all__ = ["ACTIVATIONS", "LOSSES", "GradcheckConfig", "GradcheckReport", "run_gradcheck"]

#: what ``--all`` checks: every activation with every loss
ACTIVATIONS = ("identity", "sigmoid", "tanh", "relu", "leaky_relu", "softplus", "maxout")
LOSSES = ("squared", "softmax-ce", "bce")


@dataclass
class GradcheckConfig:
    layers: list[int] = field(default_factory=lambda: [4, 5, 3])
    activation: str = "tanh"
    loss: str = "softmax-ce"
    l2: float = 0.0
    batch: int = 4
    seed: int = 0
    model: str | None = None  # check a saved model instead
    every_kind: bool = False  # every activation × loss (``--all``)


@dataclass
class GradcheckReport:
    results: dict[str, GradcheckResult]  # "tanh/softmax-ce" (or the model path) → result

    @property
    def ok(self) -> bool:
        return all(r.ok for r in self.results.values())


def run_gradcheck(cfg: GradcheckConfig) -> GradcheckReport:
    if cfg.model:
        return GradcheckReport({cfg.model: _check(load(cfg.model), cfg)})
    kinds = (
        [(a, lo) for a in ACTIVATIONS for lo in LOSSES] if cfg.every_kind else [(cfg.activation, cfg.loss)]
    )
    results = {}
    for act, loss in kinds:
        net = mlp(cfg.layers, act, loss=loss, seed=cfg.seed, dtype=np.float64)
        results[f"{act}/{loss}"] = _check(net, cfg)
    return GradcheckReport(results)


def _check(net: Any, cfg: GradcheckConfig) -> GradcheckResult:
    rng = np.random.default_rng(cfg.seed)
    net.to(numpy_backend, "float64")
    d, k = net.input_dim, net.output_dim()
    x = rng.standard_normal((cfg.batch, d))
    y = rng.integers(0, k, cfg.batch) if k > 1 else rng.integers(0, 2, cfg.batch)
    return gradcheck(net, x, y, l2=cfg.l2, check_input=True, seed=cfg.seed)
