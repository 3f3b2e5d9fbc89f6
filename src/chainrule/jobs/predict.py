"""Class predictions of a saved model for the rows of a ``.csv`` or ``.npy`` file."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from chainrule.errors import ShapeError
from chainrule.io import csvstream
from chainrule.io.serialize import load_with_info

__all__ = ["PredictConfig", "Prediction", "read_features", "run_predict"]


@dataclass
class PredictConfig:
    model: str
    input: str
    proba: bool = False


@dataclass
class Prediction:
    labels: list[Any]  # class names when the model has them, else class indices
    probabilities: np.ndarray | None = None  # (N, K) when asked for


def read_features(path: str, dtype: Any = np.float32) -> np.ndarray:
    """A non-empty, finite, numeric ``(N, D)`` table from ``.npy`` or ``.csv`` (optional header),
    read in bounded chunks (:func:`chainrule.io.csvstream.read_features`)."""
    return csvstream.read_features(path, dtype)


def run_predict(cfg: PredictConfig) -> Prediction:
    net, info = load_with_info(cfg.model)
    x = read_features(cfg.input, net.dtype)
    if net.input_dim is not None and x.shape[1] != net.input_dim:
        raise ShapeError(
            f"{cfg.input}: rows have {x.shape[1]} features but the model expects {net.input_dim}"
        )
    names = info.get("class_names")
    labels = [names[i] if names and i < len(names) else int(i) for i in net.predict(x)]
    return Prediction(labels=labels, probabilities=net.predict_proba(x) if cfg.proba else None)
