"""Metrics on held-out data: loss, accuracy and the confusion matrix."""

from __future__ import annotations

from typing import Any

import numpy as np

from chainrule.backend import to_numpy
from chainrule.errors import ConfigError, DataError
from chainrule.nn.functional import predicted_class
from chainrule.nn.model import Sequential
from chainrule.nn.regularizers import l2_penalty

__all__ = ["evaluate"]


def evaluate(net: Sequential, x: Any, y: Any, *, batch_size: int = 4096, l2: float = 0.0) -> dict[str, Any]:
    """Loss, accuracy and confusion matrix (rows: true class, columns: predicted) on ``(x, y)``."""
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
