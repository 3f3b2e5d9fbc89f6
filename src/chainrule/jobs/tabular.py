"""What ``train``, ``evaluate``, ``predict``, ``export`` and the estimators share for real tabular data:
the defaults resolved from the data, the model's stored preprocessing (:class:`ModelInfo`), and
predictions in the user's units.

**The keys this adds to a model file's ``info``** (all plain JSON; older models lack them and
read as a classifier with no scaling):

==================  ==========================================================================
``task``            ``"classify"`` or ``"regress"``
``class_names``     list of strings, one per output class (integer labels: ``"0"``, ``"1"``, ...)
``n_classes``       int (1 for regression)
``scaler``          ``{"kind": "standard"|"minmax"|"center"|"none", "shift": [float], "factor": [float]}``:
                    ``x' = (x − shift) · factor``, fitted on the training rows only
``target_scaler``   the same for a regression target (the network predicts ``y'``)
``split``           ``{"seed": int, "test_fraction": float, "data": str}``: how the rows were split,
                    so ``evaluate`` scores the same held-out rows
==================  ==========================================================================

**Defaults for tables.** A ``.csv``, ``.npy`` or ``.npz`` file is a table unless its samples are
images; for a table the ``auto`` settings are: standard scaling (columns come in unrelated units;
without it one large column swamps the others and SGD diverges), Adam at ``lr = 1e-3`` with batches
of 32 (Keras' default), L2 weight decay ``λ = 1e-3`` (chosen on the benchmark's datasets, see
docs/tabular.md), one BLAS thread for tables up to 10⁶ values, up to 200 epochs with early stopping
(patience 10, improvements under 1e-4 ignored, the best weights kept) on a 10% validation split when there are at least 1,000 training
rows (100 for regression), and on the training loss below that (the accuracy of a validation set of
a few dozen rows is too noisy to stop on; scikit-learn's MLP stops on the training loss by default).
The embedded MNIST subset, MNIST and image arrays keep the seeds' settings: no scaling (pixels share
one range already, and dividing by a near-constant border pixel's tiny deviation would blow it up),
SGD at 0.1, 5 epochs.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from chainrule.errors import ConfigError, DataError, ModelFileError
from chainrule.io import load_data
from chainrule.io.dataset import Dataset
from chainrule.io.scaling import Scaler, auto_scale
from chainrule.io.serialize import load_with_info
from chainrule.jobs.common import DownloadBars
from chainrule.limits import check_classes
from chainrule.nn.model import Sequential

__all__ = [
    "ModelInfo",
    "Resolved",
    "is_table",
    "load_for_job",
    "load_model",
    "named_classes",
    "predict_rows",
    "resolve_defaults",
    "warn_user",
]

#: where a job's warnings go: ``warn("message")``; None raises a Python ``UserWarning``
Warn = Callable[[str], None] | None

TABLE_SUFFIXES = (".csv", ".npy", ".npz")


def warn_user(warn: Warn, message: str) -> None:
    if warn is None:
        warnings.warn(message, UserWarning, stacklevel=3)
    else:
        warn(message)


def is_table(spec: str, data: Dataset | None = None) -> bool:
    """Whether a dataset argument names a table (a ``.csv/.npy/.npz`` file of 1-D samples)."""
    if Path(spec).suffix.lower() not in TABLE_SUFFIXES:
        return False
    return data is None or len(data.sample_shape) == 1


def load_for_job(
    spec: str,
    data_dir: str | None,
    *,
    target: str | None,
    download: bool,
    seed: int,
    test_fraction: float,
    task: str,
    progress: bool,
    min_classes: int = 1,
) -> Dataset:
    """:func:`chainrule.io.load_data` with download bars, the split and the task; then a classifier's
    class count is checked against :mod:`chainrule.limits` and ``min_classes``."""
    bars = DownloadBars(enabled=progress)
    try:
        data = load_data(
            spec,
            data_dir,
            target=target,
            download=download,
            seed=seed,
            test_fraction=test_fraction,
            task=task,
            progress=bars,
        )
    finally:
        bars.close()
    if data.task != "regress":
        check_classes(data.n_classes, spec)
        if data.n_classes < min_classes:
            raise DataError(
                f"{spec}: the labels hold {data.n_classes} class(es); training a classifier needs at "
                f"least {min_classes}"
            )
    return data


@dataclass
class ModelInfo:
    """The preprocessing and meaning of a model's outputs, as stored in its ``info``."""

    task: str = "classify"
    class_names: list[str] | None = None
    scaler: Scaler | None = None
    target_scaler: Scaler | None = None
    split: dict[str, Any] | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_info(cls, info: dict[str, Any], net: Sequential, where: str = "model") -> ModelInfo:
        task = info.get("task", "classify")
        if task not in ("classify", "regress"):
            raise ModelFileError(f"{where}: unknown task {task!r} in the model's info")
        names = info.get("class_names")
        if names is not None and not (isinstance(names, list) and all(isinstance(n, str) for n in names)):
            names = [str(n) for n in names] if isinstance(names, list) else None
        split = info.get("split") if isinstance(info.get("split"), dict) else None
        scaler = Scaler.from_info(info.get("scaler"), net.input_dim, where)
        target = info.get("target_scaler")
        return cls(
            task=task,
            class_names=names,
            scaler=scaler,
            target_scaler=None if target is None else Scaler.from_info(target, 1, where),
            split=split,
            extra=info,
        )

    def to_info(self) -> dict[str, Any]:
        out: dict[str, Any] = {"task": self.task, "class_names": self.class_names}
        if self.scaler is not None:
            out["scaler"] = self.scaler.to_info()
        if self.target_scaler is not None:
            out["target_scaler"] = self.target_scaler.to_info()
        if self.split is not None:
            out["split"] = self.split
        return out

    def names_for(self, n_outputs: int) -> list[str]:
        """One name per class: the stored names, else ``"0"``, ``"1"``, ..."""
        if self.class_names and len(self.class_names) >= n_outputs:
            return list(self.class_names[:n_outputs])
        return [str(k) for k in range(n_outputs)]

    def features(self, x: np.ndarray, dtype: Any) -> np.ndarray:
        """Raw features to what the network reads: scaled, in ``dtype``."""
        xs = x if self.scaler is None else self.scaler.transform(np.asarray(x, dtype=np.float64))
        return np.asarray(xs, dtype=dtype)


def load_model(path: str) -> tuple[Sequential, ModelInfo]:
    net, info = load_with_info(path)
    return net, ModelInfo.from_info(info, net, path)


def predict_rows(net: Sequential, minfo: ModelInfo, x: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
    """``(predictions, probabilities)`` for raw rows ``x``: class indices and ``(N, K)`` probabilities
    for a classifier (two columns for a single-logit binary model), values in the target's units
    (and None) for a regressor."""
    xs = minfo.features(x, net.dtype)
    if minfo.task == "regress":
        out = np.asarray(net.predict_scores(xs), dtype=np.float64)
        if minfo.target_scaler is not None:
            out = minfo.target_scaler.inverse(out)
        return (out[:, 0] if out.shape[1] == 1 else out), None
    proba = np.asarray(net.predict_proba(xs), dtype=np.float64)
    if proba.shape[1] == 1:
        proba = np.concatenate([1 - proba, proba], axis=1)
    return net.predict(xs), proba


@dataclass
class Resolved:
    """Every ``auto``/unset training option, decided."""

    task: str
    scale: str
    optimizer: str
    lr: float
    epochs: int
    batch_size: int
    validation_split: float
    early_stopping: int | None
    loss: str
    output_activation: str
    min_delta: float = 0.0
    threads: int | None = None
    l2: float = 0.0


def resolve_defaults(cfg: Any, data: Dataset, base: ModelInfo | None = None) -> Resolved:
    """The options of a ``TrainConfig`` with its ``None``/``auto`` fields decided from the data
    (see the module docstring for the table defaults and why)."""
    table = is_table(cfg.data, data)
    task = data.task
    if base is not None and base.task != task:
        raise ConfigError(f"--init-from model is a {base.task} model but the data is a {task} task")
    scale = cfg.scale if cfg.scale != "auto" else (auto_scale(data.x_train) if table else "none")
    optimizer = cfg.optimizer or ("adam" if table else "sgd")
    lr = cfg.lr if cfg.lr is not None else (0.001 if optimizer == "adam" else 0.1)
    epochs = cfg.epochs or (200 if table else 5)
    n = max(data.n_train, 1)
    batch = cfg.batch_size if cfg.batch_size is not None else (min(32, n) if table else 128)
    enough = n >= (100 if task == "regress" else 1000)
    val = cfg.validation_split if cfg.validation_split is not None else (0.1 if table and enough else 0.0)
    patience = cfg.early_stopping
    if patience is None and table and cfg.epochs is None:
        patience = 10
    if patience == 0:
        patience = None
    loss = cfg.loss or ("squared" if task == "regress" else "softmax-ce")
    if task == "regress" and loss != "squared":
        raise ConfigError(f"--task regress trains with --loss squared, not {loss}")
    out_act = cfg.output_activation
    if out_act == "auto" and task == "regress":
        out_act = "identity"
    if not math.isfinite(lr) or lr <= 0:
        raise ConfigError(f"bad learning rate {lr}")
    min_delta = 1e-4 if table else 0.0
    # small tables: one BLAS thread (a 32-row matmul split across threads costs more than it saves,
    # and on a busy machine waiting for the other thread costs 50x)
    threads = (
        cfg.threads
        if cfg.threads is not None
        else (1 if table and data.n_train * data.n_features <= 10**6 else None)
    )
    return Resolved(
        task,
        scale,
        optimizer,
        lr,
        int(epochs),
        int(batch),
        float(val),
        patience,
        loss,
        out_act,
        min_delta,
        threads,
        cfg.l2 if cfg.l2 is not None else (1e-3 if table else 0.0),
    )


def named_classes(names: list[str] | None) -> list[str] | None:
    """Class names that say more than the index (``["0", "1", ...]`` counts as none)."""
    if not names or all(n == str(i) for i, n in enumerate(names)):
        return None
    return list(names)


def check_labels_match(minfo: ModelInfo, net: Sequential, data: Dataset, where: str) -> list[str]:
    """Refuse data whose task or label set does not match the model's; return warnings."""
    if minfo.task != data.task:
        raise DataError(
            f"{where}: the model is a {minfo.task} model but the data looks like a {data.task} task "
            f"(pass --task {minfo.task} if that is a mistake)"
        )
    if minfo.task == "regress":
        return []
    out = net.output_dim() or 0
    k_model = len(minfo.class_names) if minfo.class_names else max(out, 2 if out == 1 else 0)
    model_names, data_names = named_classes(minfo.class_names), named_classes(data.class_names)
    if model_names != data_names:
        raise DataError(
            f"{where}: the data's classes {data_names or 'by index'} do not match the model's "
            f"{model_names or 'by index'}"
        )
    if data.n_classes > k_model:
        raise DataError(
            f"{where}: the data has labels up to {data.n_classes - 1} but the model knows {k_model} classes"
        )
    y = np.concatenate([data.y_train, data.y_test])
    counts = np.bincount(y.astype(np.int64), minlength=k_model)
    empty = [minfo.names_for(k_model)[k] for k in np.flatnonzero(counts == 0)]
    if empty:
        return [f"{where}: no rows of class(es) {', '.join(empty[:10])} of the model's {k_model} classes"]
    return []
