"""Check every gradient of a network (a fresh MLP, each activation × loss, or a saved model)
against central differences, in float64 on random inputs."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from chainrule.inspect.gradcheck import GradcheckResult, check_network, check_registry
from chainrule.io.serialize import load
from chainrule.nn.builders import mlp

__all__ = ["GradcheckConfig", "GradcheckReport", "run_gradcheck"]


@dataclass
class GradcheckConfig:
    layers: list[int] = field(default_factory=lambda: [4, 5, 3])
    activation: str = "tanh"
    loss: str = "softmax-ce"
    l2: float = 0.0
    batch: int = 4
    seed: int = 0
    model: str | None = None  # check a saved model instead
    every_kind: bool = False  # the whole registry (``--all``)


@dataclass
class GradcheckReport:
    results: dict[str, GradcheckResult]  # "tanh/softmax-ce" (or the model path) → result

    @property
    def ok(self) -> bool:
        return all(r.ok for r in self.results.values())


def run_gradcheck(cfg: GradcheckConfig) -> GradcheckReport:
    """One network (a fresh MLP or a saved model), or with ``every_kind`` the whole registry:
    every layer kind on its own and every hidden activation × every loss."""
    if cfg.model:
        return GradcheckReport(
            {cfg.model: check_network(load(cfg.model), batch=cfg.batch, seed=cfg.seed, l2=cfg.l2)}
        )
    if cfg.every_kind:
        return GradcheckReport(check_registry(cfg.layers, batch=cfg.batch, seed=cfg.seed, l2=cfg.l2))
    net = mlp(cfg.layers, cfg.activation, loss=cfg.loss, seed=cfg.seed, dtype=np.float64)
    return GradcheckReport(
        {f"{cfg.activation}/{cfg.loss}": check_network(net, batch=cfg.batch, seed=cfg.seed, l2=cfg.l2)}
    )
