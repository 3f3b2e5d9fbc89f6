"""Metrics on held-out data: loss, accuracy and the confusion matrix."""

from __future__ import annotations

from typing import Any

import numpy as np

from chainrule.backend import to_numpy
from chainrule.errors import ConfigError, DataError
from chainrule.nn.functional import predicted_class
from chainrule.nn.model import Sequential
from chainrule.nn.regularizers import l2_penalty

__all__ = ["evaluate", "regression_metrics"]


def regression_metrics(pred: Any, y: Any) -> dict[str, float]:
    """``mse = mean (ŷ − y)²``, ``mae = mean |ŷ − y|``, ``r2 = 1 − Σ(ŷ − y)² / Σ(y − ȳ)²`` (float64;
    ``r2`` is NaN when ``y`` is constant), over all rows and outputs."""
    p = np.asarray(to_numpy(pred), dtype=np.float64).reshape(-1)
    t = np.asarray(to_numpy(y), dtype=np.float64).reshape(-1)
    if p.shape != t.shape:
        raise DataError(f"{p.shape[0]} predictions for {t.shape[0]} targets")
    err = p - t
    ss_tot = float(np.sum((t - t.mean()) ** 2))
    r2 = 1.0 - float(np.sum(err**2)) / ss_tot if ss_tot > 0 else float("nan")
    return {"mse": float(np.mean(err**2)), "mae": float(np.mean(np.abs(err))), "r2": r2}


def evaluate(
    net: Sequential, x: Any, y: Any, *, batch_size: int = 4096, l2: float = 0.0, task: str = "classify"
) -> dict[str, Any]:
    """Loss, accuracy and confusion matrix (rows: true class, columns: predicted) on ``(x, y)``;
    with ``task="regress"``: loss, ``mse``, ``mae`` and ``r2`` (:func:`regression_metrics`) of the
    network's outputs against the targets, in the units the network was trained on."""
    if x.shape[0] == 0:
        raise DataError("cannot evaluate on an empty dataset")
    if y.shape[0] != x.shape[0]:
        raise DataError(f"{x.shape[0]} samples but {y.shape[0]} labels")
    was_training = net.training
    net.eval()
    try:
        scores = net.predict_scores(x, batch_size)
    finally:
        net.train(was_training)
    if net.loss is None:
        raise ConfigError("the network has no loss to evaluate")
    loss = float(net.loss.value(scores, y)) + (float(l2_penalty(net.params, l2)) if l2 else 0.0)
    if task == "regress":
        return {"loss": loss, **regression_metrics(scores, y), "n": int(x.shape[0])}
    s = to_numpy(scores)
    yt = to_numpy(y)
    if yt.ndim == 2:
        yt = np.argmax(yt, axis=1)
    pred = to_numpy(predicted_class(s)).astype(np.int64)
    k = max(int(s.shape[1]) if s.shape[1] > 1 else 2, int(yt.max()) + 1)
    confusion = np.zeros((k, k), dtype=np.int64)
    np.add.at(confusion, (yt.astype(np.int64), pred), 1)
    return {
        "loss": loss,
        "accuracy": float(np.mean(pred == yt)),
        "confusion": confusion,
        "n": int(x.shape[0]),
    }
