"""Class predictions of a saved model for the rows of a ``.csv`` or ``.npy`` file."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from chainrule.errors import DataError, DataNotFoundError, ShapeError
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


def read_features(path: str) -> np.ndarray:
    """A non-empty, finite, numeric ``(N, D)`` table from ``.npy`` or ``.csv`` (optional header)."""
    p = Path(path)
    if not p.exists():
        raise DataNotFoundError(f"input file not found: {path}")
    if p.suffix.lower() == ".npy":
        try:
            x = np.load(p, allow_pickle=False)
        except ValueError as exc:
            raise DataError(f"{path}: cannot read ({exc})") from None
        if x.ndim == 1:
            x = x[None, :]
    else:
        x = _read_csv(p, path)
    if x.ndim != 2 or x.shape[0] == 0:
        raise DataError(f"{path}: expected a non-empty 2-D table of features, got shape {x.shape}")
    if x.dtype.kind not in "fiu":
        raise DataError(f"{path}: features must be numeric, got dtype {x.dtype}")
    if not np.all(np.isfinite(x)):
        raise DataError(f"{path}: features contain NaN or Inf")
    return x


def _read_csv(p: Path, path: str) -> np.ndarray:
    with open(p, newline="", encoding="utf-8") as fh:
        rows = [r for r in csv.reader(fh) if r and any(cell.strip() for cell in r)]
    if not rows:
        raise DataError(f"{path}: no rows")
    try:
        float(rows[0][0])
    except ValueError:
        rows = rows[1:]  # a header
    try:
        return np.array([[float(v) for v in r] for r in rows], dtype=np.float64)
    except ValueError as exc:
        raise DataError(f"{path}: non-numeric value ({exc})") from None


def run_predict(cfg: PredictConfig) -> Prediction:
    net, info = load_with_info(cfg.model)
    x = read_features(cfg.input)
    if net.input_dim is not None and x.shape[1] != net.input_dim:
        raise ShapeError(
            f"{cfg.input}: rows have {x.shape[1]} features but the model expects {net.input_dim}"
        )
    x = x.astype(net.dtype)
    names = info.get("class_names")
    labels = [names[i] if names and i < len(names) else int(i) for i in net.predict(x)]
    return Prediction(labels=labels, probabilities=net.predict_proba(x) if cfg.proba else None)
