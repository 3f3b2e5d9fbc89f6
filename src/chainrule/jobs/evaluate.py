"""Evaluate a saved model on a dataset's test part (its training part when it has no test part)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from chainrule.io.serialize import load
from chainrule.jobs.common import check_model_fits, load_dataset
from chainrule.train import evaluate

__all__ = ["EvaluateConfig", "EvaluateResult", "run_evaluate"]


@dataclass
class EvaluateConfig:
    """What ``chainrule evaluate`` is asked to do (``progress``: download bars)."""

    model: str
    data: str = "default"
    data_dir: str | None = None
    download: bool = False
    target: str | None = None
    seed: int = 0
    progress: bool = True


@dataclass
class EvaluateResult:
    dataset: str
    accuracy: float
    loss: float
    n: int
    confusion: np.ndarray  # (K, K) counts; rows: true class, columns: predicted

    @property
    def per_class_accuracy(self) -> list[float]:
        """Recall of each class (0 for a class with no samples), rounded to 3 decimals."""
        conf = self.confusion
        return np.round(np.diag(conf) / np.maximum(conf.sum(1), 1), 3).tolist()


def run_evaluate(cfg: EvaluateConfig) -> EvaluateResult:
    net = load(cfg.model)
    data = load_dataset(
        cfg.data, cfg.data_dir, target=cfg.target, download=cfg.download, seed=cfg.seed, progress=cfg.progress
    )
    check_model_fits(net, data.n_features, data.n_classes)
    x, y = (data.x_test, data.y_test) if data.n_test else (data.x_train, data.y_train)
    ev = evaluate(net, x.astype(net.dtype, copy=False), y)
    return EvaluateResult(
        dataset=data.name, accuracy=ev["accuracy"], loss=ev["loss"], n=ev["n"], confusion=ev["confusion"]
    )
