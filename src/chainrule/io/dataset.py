"""The :class:`Dataset` container and the checks every loader runs its arrays through.

Features may have any number of dimensions as long as the first one counts samples: ``(N, D)``
tables, ``(N, T, D)`` sequences, ``(N, H, W)`` or ``(N, C, H, W)`` images. Labels are ``(N,)``
integer class indices. Bad data raises :class:`~chainrule.errors.DataError`, a bad option
:class:`~chainrule.errors.ConfigError`, each with a message meant for a user.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from typing import TypeAlias

import numpy as np

from chainrule.errors import ConfigError, DataError

__all__ = [
    "TASKS",
    "XY",
    "Dataset",
    "PathArg",
    "as_index",
    "check_xy",
    "empty_class_warning",
    "holdout_split",
    "infer_task",
    "one_hot",
]

#: ``--task`` choices; ``auto`` is decided from the target column by :func:`infer_task`
TASKS = ("auto", "classify", "regress")

#: integer targets with more distinct values than this are not taken for class labels unless they
#: are exactly the indices 0..K-1 (see :func:`infer_task`)
MANY_CLASSES = 20

PathArg: TypeAlias = "str | os.PathLike[str]"

#: ``(x, y)``: the features and labels of one part of a dataset.
XY: TypeAlias = "tuple[np.ndarray, np.ndarray]"


@dataclass
class Dataset:
    """A classification dataset split into train and test parts.

    ``x_train``/``x_test`` are float32 arrays of shape ``(N, *sample_shape)`` (at least 2-D,
    samples first; both parts share ``sample_shape``), ``y_train``/``y_test`` are ``(N,)`` int64
    labels in ``0 .. n_classes - 1``. ``feature_names`` (length ``n_features``) and
    ``class_names`` (length ``n_classes``) are optional. The test part may be empty (0 samples).
    Construction checks the ranks, that each ``x`` has one sample per label, that the two parts
    have the same sample shape, and the lengths of the name lists.
    """

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    name: str
    n_classes: int
    feature_names: list[str] | None = None
    class_names: list[str] | None = None
    #: ``"classify"`` (``y`` int64 class indices) or ``"regress"`` (``y`` float32 values, ``n_classes = 1``)
    task: str = "classify"
    #: what a user should be told about how the data was read (task inference, empty classes)
    warnings: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        for part in ("train", "test"):
            x = getattr(self, f"x_{part}")
            y = getattr(self, f"y_{part}")
            if getattr(x, "ndim", 0) < 2 or getattr(y, "ndim", None) != 1:
                raise DataError(
                    f"{self.name}: x_{part} must have at least 2 dimensions (samples first) and "
                    f"y_{part} 1, got shapes {np.shape(x)} and {np.shape(y)}"
                )
            if x.shape[0] != y.shape[0]:
                raise DataError(
                    f"{self.name}: x_{part} has {x.shape[0]} rows but y_{part} has {y.shape[0]} labels"
                )
        if self.x_train.shape[1:] != self.x_test.shape[1:]:
            raise DataError(
                f"{self.name}: train samples have shape {self.x_train.shape[1:]} but test samples "
                f"have shape {self.x_test.shape[1:]}"
            )
        if self.feature_names is not None and len(self.feature_names) != self.n_features:
            raise DataError(
                f"{self.name}: {len(self.feature_names)} feature names for {self.n_features} features"
            )
        if self.class_names is not None and len(self.class_names) != self.n_classes:
            raise DataError(f"{self.name}: {len(self.class_names)} class names for {self.n_classes} classes")

    @classmethod
    def from_parts(
        cls,
        train: XY,
        test: XY,
        name: str,
        n_classes: int,
        *,
        feature_names: list[str] | None = None,
        class_names: list[str] | None = None,
        task: str = "classify",
        warnings: list[str] | None = None,
    ) -> Dataset:
        """Build a dataset from ``(x_train, y_train)`` and ``(x_test, y_test)`` pairs."""
        return cls(
            task=task,
            warnings=list(warnings or []),
            x_train=train[0],
            y_train=train[1],
            x_test=test[0],
            y_test=test[1],
            name=name,
            n_classes=n_classes,
            feature_names=feature_names,
            class_names=class_names,
        )

    @property
    def sample_shape(self) -> tuple[int, ...]:
        """Shape of one sample: ``(D,)`` for a table, ``(C, H, W)`` for images, ``(T, D)`` for sequences."""
        return tuple(int(d) for d in self.x_train.shape[1:])

    @property
    def n_features(self) -> int:
        """Number of input values per sample (``D`` for a table, ``C * H * W`` for images)."""
        return math.prod(self.sample_shape)

    @property
    def n_train(self) -> int:
        """Number of training samples."""
        return int(self.x_train.shape[0])

    @property
    def n_test(self) -> int:
        """Number of test samples."""
        return int(self.x_test.shape[0])

    def summary(self) -> str:
        """One line describing the dataset, e.g. for a CLI."""
        shape = "" if len(self.sample_shape) == 1 else f" (samples of shape {self.sample_shape})"
        target = "a regression target" if self.task == "regress" else f"{self.n_classes} classes"
        return (
            f"{self.name}: {self.n_train} train / {self.n_test} test samples, "
            f"{self.n_features} features{shape}, {target}"
        )

    def split_validation(self, fraction: float = 0.1, seed: int = 0) -> tuple[XY, XY]:
        """Split the training part into ``((x_tr, y_tr), (x_val, y_val))``.

        The samples are shuffled with ``np.random.default_rng(seed)``, so the split is
        deterministic; ``floor(fraction * n_train)`` samples go to validation. ``fraction`` must
        be in ``[0, 1)``; ``0`` returns the training arrays unchanged and an empty validation
        set. The returned arrays are copies (except for ``fraction == 0``).
        """
        fraction = float(fraction)
        if not 0.0 <= fraction < 1.0:
            raise ConfigError(f"validation fraction must be in [0, 1), got {fraction}")
        n = self.n_train
        n_val = math.floor(fraction * n)
        if n_val == 0:
            empty_x = self.x_train[:0].copy()
            empty_y = self.y_train[:0].copy()
            return (self.x_train, self.y_train), (empty_x, empty_y)
        perm = np.random.default_rng(seed).permutation(n)
        val, tr = perm[:n_val], perm[n_val:]
        return (self.x_train[tr], self.y_train[tr]), (self.x_train[val], self.y_train[val])


# --------------------------------------------------------------------------------------------
# check_xy
# --------------------------------------------------------------------------------------------


def _as_arrays(x: object, y: object, where: str) -> tuple[np.ndarray, np.ndarray]:
    """Convert ``x`` and ``y`` to arrays and check their dtypes (real numbers) and ranks."""
    try:
        xa = np.asarray(x)
        ya = np.asarray(y)
    except (ValueError, TypeError) as e:
        raise DataError(f"{where}: cannot convert to an array ({e})") from None
    if xa.dtype.kind not in "iuf":
        raise DataError(
            f"{where}: wrong dtype for features: {xa.dtype} (expected real numbers: int, uint or float)"
        )
    if xa.ndim < 2:
        raise DataError(
            f"{where}: features must be an array of at least 2 dimensions (samples first: "
            f"(samples, features), (samples, channels, height, width), ...), got shape {xa.shape}"
        )
    if ya.dtype.kind not in "iuf":
        raise DataError(f"{where}: wrong dtype for labels: {ya.dtype} (expected integers)")
    if ya.ndim != 1:
        raise DataError(f"{where}: labels must be a 1-D array, got shape {ya.shape}")
    return xa, ya


def _check_sizes(
    xa: np.ndarray,
    ya: np.ndarray,
    where: str,
    n_features: int | None,
    sample_shape: tuple[int, ...] | None,
) -> None:
    """Check the sample counts agree, that nothing is empty, and the per-sample size and shape."""
    if xa.shape[0] != ya.shape[0]:
        raise DataError(
            f"{where}: mismatched lengths: {xa.shape[0]} samples in x but {ya.shape[0]} labels in y"
        )
    if xa.shape[0] == 0:
        raise DataError(f"{where}: empty: no samples")
    per_sample = math.prod(xa.shape[1:])
    if per_sample == 0:
        raise DataError(f"{where}: empty: samples have no features (sample shape {xa.shape[1:]})")
    if n_features is not None and per_sample != n_features:
        raise DataError(f"{where}: expected {n_features} features, got {per_sample}")
    if sample_shape is not None and xa.shape[1:] != tuple(sample_shape):
        raise DataError(
            f"{where}: expected samples of shape {tuple(sample_shape)}, got {xa.shape[1:]} "
            f"(features of shape {xa.shape})"
        )


def _feature_dtype(have: np.dtype, want: np.dtype | type | None, where: str) -> np.dtype:
    """The float dtype features are converted to: ``want`` (must be float), else kept or widened."""
    if want is not None:
        out = np.dtype(want)
        if out.kind != "f":
            raise ConfigError(f"{where}: dtype must be a float type, got {out}")
        return out
    if have.kind == "f":
        return np.result_type(have, np.float32)
    return np.dtype(np.float64)


def _finite_features(xa: np.ndarray, dtype: np.dtype, where: str) -> np.ndarray:
    """Convert to ``dtype`` and check every value is finite (a cast that overflows counts too)."""
    with np.errstate(over="ignore", invalid="ignore"):  # overflow becomes Inf, reported below
        xo = xa.astype(dtype, copy=False)
    finite = np.isfinite(xo)
    if not finite.all():
        flat = int(np.argmin(finite.reshape(-1)))
        first = tuple(int(i) for i in np.unravel_index(flat, xo.shape))
        count = int(finite.size - np.count_nonzero(finite))
        at = f" at position {first[1:]}" if xo.ndim > 2 else ""
        raise DataError(
            f"{where}: {count} non-finite value(s) (NaN or Inf) in the features; first in row {first[0]}{at}"
        )
    return xo


def _int_labels(ya: np.ndarray, n_classes: int | None, where: str) -> np.ndarray:
    """Return the labels as int64 after checking they are whole numbers in ``0 .. n_classes - 1``."""
    if ya.dtype.kind == "f":
        ok = np.isfinite(ya)
        if not ok.all():
            i = int(np.argmin(ok))
            raise DataError(f"{where}: label at index {i} is {ya[i]} (labels must be integers)")
        frac = ya != np.floor(ya)
        if frac.any():
            i = int(np.argmax(frac))
            raise DataError(
                f"{where}: label {ya[i]} at index {i} is not a whole number "
                f"(labels must be integer class indices)"
            )
    yo = ya.astype(np.int64, copy=False)
    bad = yo < 0 if n_classes is None else (yo < 0) | (yo >= n_classes)
    if bad.any():
        i = int(np.argmax(bad))
        allowed = "labels must be >= 0" if n_classes is None else f"allowed range 0..{n_classes - 1}"
        raise DataError(
            f"{where}: label {int(yo[i])} at index {i} is out of range "
            f"({allowed}; {int(np.count_nonzero(bad))} bad label(s))"
        )
    return yo


def check_xy(
    x: object,
    y: object,
    *,
    n_classes: int | None = None,
    n_features: int | None = None,
    sample_shape: tuple[int, ...] | None = None,
    where: str = "data",
    dtype: np.dtype | type | None = None,
    task: str = "classify",
) -> tuple[np.ndarray, np.ndarray]:
    """Validate features and their labels; return ``(x, y)`` as float and int64 arrays.

    ``x`` may have any rank from 2 up, the first axis counting samples (``(N, D)``,
    ``(N, T, D)``, ``(N, C, H, W)`` ...). Checks that ``x`` holds real numbers (not bool,
    object, string or complex), has at least one sample and at least one value per sample, and
    contains no NaN or Inf; that ``y`` is 1-D and integer-valued (float labels must be whole
    numbers); that both have the same length; that labels are non-negative and below
    ``n_classes`` when it is given; that each sample has ``n_features`` values in all when that
    is given, and exactly the shape ``sample_shape`` when that is given.

    ``x`` is converted to ``dtype`` when given (e.g. ``np.float32``); otherwise a floating
    ``x`` keeps its precision (float16 becomes float32) and integer ``x`` becomes float64.
    ``y`` is returned as int64. The inputs are never modified; a returned array may be the input
    itself when no conversion was needed, so do not modify it in place if you need the input.
    ``where`` prefixes every error message (e.g. ``"train"`` or a file name). With
    ``task="regress"`` the targets are any finite real numbers, returned as float32.
    """
    if n_classes is not None and (isinstance(n_classes, bool) or int(n_classes) < 1):
        raise ConfigError(f"{where}: n_classes must be a positive integer, got {n_classes!r}")
    xa, ya = _as_arrays(x, y, where)
    _check_sizes(xa, ya, where, n_features, sample_shape)
    xo = _finite_features(xa, _feature_dtype(xa.dtype, dtype, where), where)
    if task == "regress":
        return xo, _finite_targets(ya, where)
    yo = _int_labels(ya, None if n_classes is None else int(n_classes), where)
    return xo, yo


def _finite_targets(ya: np.ndarray, where: str) -> np.ndarray:
    """Regression targets as float32; every one finite."""
    yo = ya.astype(np.float64)
    bad = ~np.isfinite(yo)
    if bad.any():
        i = int(np.argmax(bad))
        raise DataError(f"{where}: target at index {i} is {ya[i]} (targets must be finite numbers)")
    with np.errstate(over="ignore"):
        y32 = yo.astype(np.float32)
    if not np.all(np.isfinite(y32)):
        raise DataError(f"{where}: a target is too large for float32")
    return y32


def infer_task(values: np.ndarray, task: str = "auto", what: str = "the target") -> tuple[str, list[str]]:
    """``(task, warnings)`` for a numeric target column ``values`` (float64, finite).

    ``task`` other than ``auto`` is returned as given. Otherwise, conservatively:

    * values that are not all whole numbers, or negative whole numbers, are a quantity: ``regress``;
    * non-negative whole numbers with at most :data:`MANY_CLASSES` distinct values are class indices:
      ``classify``;
    * more distinct whole numbers are class indices only when they are exactly ``0..K-1`` (every index
      present); then a warning says so. Otherwise (e.g. 25..346 with gaps) they are a quantity and a
      warning says how to ask for classes instead.
    """
    if task != "auto":
        if task not in TASKS:
            raise ConfigError(f"unknown task {task!r}; choose {', '.join(TASKS)}")
        return task, []
    whole = bool(np.all(values == np.floor(values)))
    if not whole:
        return "regress", []
    distinct = np.unique(values)
    lo, hi, k = float(distinct[0]), float(distinct[-1]), len(distinct)
    if lo < 0:
        return "regress", [
            f"{what} has negative whole numbers ({lo:g}..{hi:g}), so it is treated as a quantity "
            f"(regression); pass --task classify to treat it as class labels"
        ]
    if k <= MANY_CLASSES:
        return "classify", []
    if lo == 0 and hi == k - 1:
        return "classify", [
            f"{what} has {k} distinct whole numbers 0..{k - 1}, taken as class indices; "
            f"pass --task regress if it is a quantity"
        ]
    return "regress", [
        f"{what} has {k} distinct whole numbers ({lo:g}..{hi:g}), too many (and too sparse) for class "
        f"indices, so it is treated as a quantity (regression); pass --task classify to treat them as classes"
    ]


def empty_class_warning(y: np.ndarray, n_classes: int, what: str = "the labels") -> list[str]:
    """A warning when some of the classes ``0..n_classes-1`` have no rows (e.g. 1-based labels 1..K)."""
    counts = np.bincount(np.asarray(y, dtype=np.int64), minlength=n_classes)
    empty = [int(k) for k in np.flatnonzero(counts == 0)]
    if not empty:
        return []
    listed = ", ".join(map(str, empty[:10])) + (" ..." if len(empty) > 10 else "")
    hint = " (1-based labels? they are used as class indices 0..K-1)" if empty == [0] else ""
    return [f"{what}: class(es) {listed} of 0..{n_classes - 1} have no rows{hint}"]


# --------------------------------------------------------------------------------------------
# Small helpers shared by the loaders
# --------------------------------------------------------------------------------------------


def one_hot(y: object, n_classes: int, dtype: np.dtype | type = np.float32) -> np.ndarray:
    """Return the ``(N, n_classes)`` one-hot encoding of integer labels ``y``.

    Checks that ``n_classes`` is a positive integer and that ``y`` is 1-D, integer-valued and
    within ``0 .. n_classes - 1``.
    """
    if isinstance(n_classes, bool) or int(n_classes) < 1:
        raise ConfigError(f"n_classes must be a positive integer, got {n_classes!r}")
    n_classes = int(n_classes)
    ya = np.asarray(y)
    if ya.ndim != 1:
        raise DataError(f"one_hot: labels must be a 1-D array, got shape {ya.shape}")
    is_int = ya.dtype.kind in "iu" or (
        ya.dtype.kind == "f" and bool(np.all(np.isfinite(ya))) and bool(np.all(ya == np.floor(ya)))
    )
    if not is_int:
        raise DataError(f"one_hot: labels must be integers, got dtype {ya.dtype}")
    yi = ya.astype(np.int64)
    bad = (yi < 0) | (yi >= n_classes)
    if bad.any():
        i = int(np.argmax(bad))
        raise DataError(f"one_hot: label {int(yi[i])} at index {i} is out of range 0..{n_classes - 1}")
    out = np.zeros((yi.shape[0], n_classes), dtype=dtype)
    out[np.arange(yi.shape[0]), yi] = 1
    return out


def holdout_split(x: np.ndarray, y: np.ndarray, test_fraction: float, seed: int) -> tuple[XY, XY]:
    """Shuffle with ``default_rng(seed)`` and hold out ``round(test_fraction * n)`` samples.

    Returns ``((x_train, y_train), (x_test, y_test))``. Checks ``test_fraction`` is in
    ``[0, 1)``; a positive fraction holds out at least one sample, and at least one is kept for
    training. Works for features of any rank (samples along the first axis).
    """
    test_fraction = float(test_fraction)
    if not 0.0 <= test_fraction < 1.0:
        raise ConfigError(f"test_fraction must be in [0, 1), got {test_fraction}")
    n = x.shape[0]
    n_test = round(test_fraction * n)
    if test_fraction > 0:
        n_test = max(n_test, 1)
    n_test = min(n_test, n - 1)
    perm = np.random.default_rng(seed).permutation(n)
    te, tr = perm[:n_test], perm[n_test:]
    return (x[tr], y[tr]), (x[te], y[te])


def as_index(value: object) -> int | None:
    """``value`` as an integer index (an int, or a string such as ``"-1"`` from a CLI), else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, str):
        try:
            return int(value.strip())
        except ValueError:
            return None
    return None
