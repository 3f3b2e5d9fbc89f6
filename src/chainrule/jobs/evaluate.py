"""Evaluate a saved model on a dataset's test part (its training part when it has no test part).

The split is the model's own: the seed and test fraction stored at training time are reused (unless
given), so the held-out rows are the ones the model never trained on. The model's feature scaling is
applied; the label set must match the model's classes (names, or indices within its outputs), and
classes without rows are reported as warnings. A regression model is scored with MSE, MAE and R² in
the target's own units.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from chainrule.jobs.common import check_model_fits
from chainrule.jobs.tabular import Warn, check_labels_match, load_for_job, load_model, predict_rows, warn_user
from chainrule.train import evaluate
from chainrule.train.metrics import regression_metrics

__all__ = ["EvaluateConfig", "EvaluateResult", "run_evaluate"]


@dataclass
class EvaluateConfig:
    """What ``chainrule evaluate`` is asked to do (``progress``: download bars). ``seed`` and
    ``test_fraction`` default to the split stored in the model, ``task`` to the model's task."""

    model: str
    data: str = "default"
    data_dir: str | None = None
    download: bool = False
    target: str | None = None
    seed: int | None = None
    test_fraction: float | None = None
    progress: bool = True


@dataclass
class EvaluateResult:
    dataset: str
    accuracy: float  # NaN for a regression model
    loss: float
    n: int
    confusion: np.ndarray  # (K, K) counts; rows: true class, columns: predicted ((0, 0) for regression)
    task: str = "classify"
    class_names: list[str] = field(default_factory=list)
    metrics: dict[str, float] = field(default_factory=dict)  # regression: mse, mae, r2
    split_seed: int = 0

    @property
    def per_class_accuracy(self) -> list[float]:
        """Recall of each class (0 for a class with no samples), rounded to 3 decimals."""
        conf = self.confusion
        return np.round(np.diag(conf) / np.maximum(conf.sum(1), 1), 3).tolist()


def run_evaluate(cfg: EvaluateConfig, *, warn: Warn = None) -> EvaluateResult:
    net, minfo = load_model(cfg.model)
    split = minfo.split or {}
    seed = cfg.seed if cfg.seed is not None else int(split.get("seed", 0))
    fraction = cfg.test_fraction if cfg.test_fraction is not None else float(split.get("test_fraction", 0.2))
    data = load_for_job(
        cfg.data, cfg.data_dir, target=cfg.target, download=cfg.download, seed=seed,
        test_fraction=fraction, task=minfo.task, progress=cfg.progress,
    )  # fmt: skip
    for message in [*data.warnings, *check_labels_match(minfo, net, data, cfg.data)]:
        warn_user(warn, message)
    x, y = (data.x_test, data.y_test) if data.n_test else (data.x_train, data.y_train)
    if minfo.task == "regress":
        check_model_fits(net, data.n_features, 1)
        pred, _ = predict_rows(net, minfo, x)
        metrics = regression_metrics(pred, y)
        return EvaluateResult(
            dataset=data.name, accuracy=math.nan, loss=metrics["mse"], n=int(x.shape[0]),
            confusion=np.zeros((0, 0), dtype=np.int64), task="regress", metrics=metrics, split_seed=seed,
        )  # fmt: skip
    check_model_fits(net, data.n_features, data.n_classes)
    ev = evaluate(net, minfo.features(x, net.dtype), y)
    k = ev["confusion"].shape[0]
    return EvaluateResult(
        dataset=data.name, accuracy=ev["accuracy"], loss=ev["loss"], n=ev["n"], confusion=ev["confusion"],
        class_names=minfo.names_for(k), split_seed=seed,
    )  # fmt: skip
