"""Predictions of a saved model for the rows of a ``.csv``, ``.npy`` or ``.npz`` file, or of a CSV
table on standard input (``-``).

The model's stored feature scaling is applied. A column named by ``target`` (default: the target
the model was trained with, when the file has a header) is dropped if present, so the training
file itself can be given. A classifier gives class names (or indices) and, when asked, one
probability per class; a regressor gives values in the target's units. ``out`` writes a CSV with a
header: ``prediction`` then ``p_<class>`` per class (probabilities always included there).
"""

from __future__ import annotations

import csv
import io
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from chainrule._io import atomic_open
from chainrule.errors import ConfigError, DataError, DataNotFoundError, ShapeError
from chainrule.io import csvstream
from chainrule.jobs.tabular import load_model, predict_rows

__all__ = ["PredictConfig", "Prediction", "read_features", "run_predict"]


@dataclass
class PredictConfig:
    model: str
    input: str
    proba: bool = False
    out: str | None = None
    target: str | None = None


@dataclass
class Prediction:
    labels: list[
        Any
    ]  # class names (classifier; indices as strings without names) or float values (regressor)
    probabilities: np.ndarray | None = None  # (N, K) when asked for (or written to --out)
    class_names: list[str] | None = None  # the probability columns, in order
    task: str = "classify"


def read_features(path: str, drop: str | None = None) -> np.ndarray:
    """A non-empty, finite, numeric ``(N, D)`` table from ``.npy``, ``.npz`` (``x``, ``x_test`` or a
    single array), ``.csv`` (optional header) or ``-`` (CSV on stdin). ``drop`` names a header
    column to leave out (the target)."""
    if path == "-":
        x = _read_csv(sys.stdin.read(), "<stdin>", drop)
    else:
        p = Path(path)
        if not p.exists():
            raise DataNotFoundError(f"input file not found: {path}")
        suffix = p.suffix.lower()
        if suffix == ".npy":
            x = csvstream.read_npy(p)  # magic and header checked before the data is read
        elif suffix == ".npz":
            x = _read_numpy(p, path)
        else:  # bounded lines and fields, read in chunks (chainrule.io.csvstream)
            x = csvstream.read_float_table(p, np.float64, drop=drop)
    if x.ndim == 1:
        x = x[None, :]
    if x.ndim != 2 or x.shape[0] == 0:
        raise DataError(f"{path}: expected a non-empty 2-D table of features, got shape {x.shape}")
    if x.dtype.kind not in "fiu":
        raise DataError(f"{path}: features must be numeric, got dtype {x.dtype}")
    if not np.all(np.isfinite(x)):
        raise DataError(f"{path}: features contain NaN or Inf")
    return x


def _read_numpy(p: Path, path: str) -> np.ndarray:
    try:
        loaded = np.load(p, allow_pickle=False)
        if isinstance(loaded, np.ndarray):
            return loaded
        with loaded as z:
            for key in ("x", "x_test", "X"):
                if key in z.files:
                    return z[key]
            if len(z.files) == 1:
                return z[z.files[0]]
            raise DataError(f"{path}: an .npz needs an array 'x' (or 'x_test'); found {', '.join(z.files)}")
    except DataError:
        raise
    except Exception as exc:  # pickles, damaged zips, bad headers: one line naming the file
        raise DataError(f"{path}: cannot read ({type(exc).__name__}: {exc})") from None


def _read_csv(text: str, path: str, drop: str | None) -> np.ndarray:
    rows = [[c.strip() for c in r] for r in csv.reader(io.StringIO(text)) if r and any(c.strip() for c in r)]
    if not rows:
        raise DataError(f"{path}: no rows")
    header = None
    try:
        [float(v) for v in rows[0]]
    except ValueError:
        header, rows = rows[0], rows[1:]
    if header is not None and drop is not None and drop in header:
        j = header.index(drop)
        rows = [r[:j] + r[j + 1 :] for r in rows]
    if not rows:
        raise DataError(f"{path}: no data rows (only a header)")
    try:
        return np.array([[float(v) for v in r] for r in rows], dtype=np.float64)
    except ValueError as exc:
        raise DataError(f"{path}: non-numeric value or ragged rows ({exc})") from None


def run_predict(cfg: PredictConfig) -> Prediction:
    if cfg.out is not None and cfg.input != "-" and Path(cfg.out).resolve() == Path(cfg.input).resolve():
        raise ConfigError(f"--out {cfg.out} would overwrite the input file")
    net, minfo = load_model(cfg.model)
    trained = minfo.extra.get("train_config") if isinstance(minfo.extra.get("train_config"), dict) else {}
    target = cfg.target or trained.get("target") or "target"
    x = read_features(cfg.input, drop=target)
    _check_fits(x, net.dtype, cfg.input)
    if net.input_dim is not None and x.shape[1] != net.input_dim:
        raise ShapeError(
            f"{cfg.input}: rows have {x.shape[1]} features but the model expects {net.input_dim}"
            + (" (name the label column with --target to drop it)" if x.shape[1] == net.input_dim + 1 else "")
        )
    pred, proba = predict_rows(net, minfo, x)
    if minfo.task == "regress":
        result = Prediction(labels=[float(v) for v in np.ravel(pred)], task="regress")
    else:
        names = minfo.names_for(proba.shape[1])
        want = cfg.proba or cfg.out is not None
        labels = [names[i] for i in pred] if minfo.class_names else [int(i) for i in pred]
        result = Prediction(labels, proba if want else None, names, "classify")
    if cfg.out is not None:
        write_predictions(result, cfg.out)
    return result


def _check_fits(x: np.ndarray, dtype: Any, path: str) -> None:
    """Refuse a value the model's dtype cannot hold (1e39 would become inf in float32)."""
    if dtype is None or np.dtype(dtype).kind != "f" or x.dtype.itemsize <= np.dtype(dtype).itemsize:
        return
    big = np.abs(x) > np.finfo(dtype).max
    if big.any():
        i, j = (int(v) for v in np.argwhere(big)[0])
        raise DataError(f"{path}: row {i + 1}, column {j + 1}: value {x[i, j]:.6g} overflows {np.dtype(dtype).name}")


def write_predictions(pred: Prediction, path: str) -> None:
    """CSV with a header: ``prediction``, then ``p_<class>`` per class (a classifier), atomically."""
    with atomic_open(path, "w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh)
        if pred.probabilities is None or pred.class_names is None:
            w.writerow(["prediction"])
            w.writerows([[repr(float(v)) if isinstance(v, float) else v] for v in pred.labels])
            return
        w.writerow(["prediction", *(f"p_{n}" for n in pred.class_names)])
        for label, row in zip(pred.labels, pred.probabilities, strict=True):
            w.writerow([label, *(f"{v:.8g}" for v in row)])
