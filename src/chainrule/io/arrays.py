"""NumPy ``.npy``/``.npz`` files, opened with ``allow_pickle=False`` so nothing is ever unpickled.

``.npz`` features may have any rank, samples first: ``(N, D)``, ``(N, T, D)``, ``(N, C, H, W)``.
"""

from __future__ import annotations

import math
import zipfile
from pathlib import Path

import numpy as np

from chainrule.errors import ChainruleError, ConfigError, DataError, DataNotFoundError
from chainrule.io.csvstream import read_npy
from chainrule.io.dataset import XY, Dataset, PathArg, as_index, check_xy, holdout_split, infer_task

__all__ = ["load_arrays"]

_NAME_KEYS = ("feature_names", "class_names")
_DEFLATE_MAX_RATIO = 1032  # deflate expands one byte into at most ~1032
_SPLIT_KEYS = {"x_train", "y_train", "x_test", "y_test"}


def _names(z: np.lib.npyio.NpzFile, key: str, p: Path) -> list[str] | None:
    """The 1-D string array ``key`` of an archive as a list (None when absent); check its type."""
    if key not in z.files:
        return None
    arr = z[key]
    if arr.dtype.kind not in "US" or arr.ndim != 1:
        raise DataError(f"{p}: {key!r} must be a 1-D array of strings, got {arr.dtype}")
    return [str(s) for s in arr.tolist()]


def _check_npz(p: Path) -> None:
    """Before anything is decompressed: every member is a ``.npy`` array whose header declares
    exactly the bytes the member holds, and the members' declared sizes are ones the archive's
    compressed size can expand to (no zip bomb)."""
    with zipfile.ZipFile(p) as zf:
        infos = zf.infolist()
        if sum(i.file_size for i in infos) > p.stat().st_size * _DEFLATE_MAX_RATIO + (1 << 20):
            raise DataError(f"{p}: the archive's members declare more data than its size can hold")
        for info in infos:
            if not info.filename.endswith(".npy"):
                raise DataError(f"{p}: member {info.filename[:80]!r} is not a .npy array")
            with zf.open(info) as fh:
                version = np.lib.format.read_magic(fh)
                if version == (1, 0):
                    shape, _, dtype = np.lib.format.read_array_header_1_0(fh)
                else:
                    shape, _, dtype = np.lib.format.read_array_header_2_0(fh)
                need = math.prod(shape) * dtype.itemsize + fh.tell()
            if dtype.hasobject:
                raise DataError(
                    f"{p}: refusing to load pickled data (member {info.filename[:80]!r} is an object array)"
                )
            if need != info.file_size:
                raise DataError(
                    f"{p}: member {info.filename[:80]!r} declares shape {shape} of {dtype} "
                    f"but holds {info.file_size} bytes"
                )


def _read_file(p: Path) -> tuple[np.ndarray | dict[str, np.ndarray], dict[str, list[str] | None]]:
    """Load a ``.npy`` array or the arrays of an ``.npz``, plus its optional name lists.

    Checks the magic bytes first (a garbage file is "not a NumPy file", not "pickled"), refuses
    pickled data and object arrays, and turns every failure of a damaged file into a
    :class:`DataError` naming the file.
    """
    try:
        with open(p, "rb") as fh:
            magic = fh.read(6)
        if p.suffix.lower() == ".npy":
            return read_npy(p), {}
        if magic[:4] not in (b"PK\x03\x04", b"PK\x05\x06"):
            raise DataError(f"{p}: not a NumPy .npz file (not a zip archive)")
        _check_npz(p)
        with np.load(p, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files if k not in _NAME_KEYS}
            return arrays, {key: _names(z, key, p) for key in _NAME_KEYS}
    except ChainruleError:
        raise
    except ValueError as e:
        if "pickle" in str(e).lower() or "object arrays" in str(e).lower():
            raise DataError(
                f"{p}: refusing to load pickled data (object arrays and pickles can run "
                f"arbitrary code); save plain numeric arrays instead"
            ) from None
        raise DataError(f"{p}: not a valid NumPy file ({_short(e)})") from None
    except Exception as e:  # OSError, EOFError, zipfile.BadZipFile and friends from a damaged file
        raise DataError(f"{p}: not a valid NumPy file ({type(e).__name__}: {_short(e)})") from None


def _short(e: BaseException) -> str:
    return " ".join(str(e).split())[:200]


def _from_npy(p: Path, a: np.ndarray, target: int | str | None) -> tuple[np.ndarray, np.ndarray]:
    """Split a ``(samples, features + label)`` table into ``(x, y)``; check its shape and ``target``."""
    if a.ndim != 2 or a.shape[1] < 2:
        raise DataError(f"{p}: expected a 2-D array (samples, features + label), got shape {a.shape}")
    col = -1 if target is None else as_index(target)
    if col is None:
        raise ConfigError(f"target for a .npy file must be a column index, got {target!r}")
    if not -a.shape[1] <= col < a.shape[1]:
        raise ConfigError(f"target index {col} out of range for {a.shape[1]} columns")
    col %= a.shape[1]
    return np.delete(a, col, axis=1), a[:, col]


def _features(a: np.ndarray, flatten: bool) -> np.ndarray:
    """Features as stored, or with each sample flattened to one row when ``flatten``."""
    return a.reshape(a.shape[0], -1) if flatten and a.ndim > 2 else a


def _task(p: Path, task: str, *ys: np.ndarray) -> tuple[str, list[str]]:
    """The task of these target arrays (``auto``: :func:`infer_task` on their finite numeric values)."""
    if task != "auto" or not ys or any(np.asarray(y).dtype.kind not in "iuf" for y in ys):
        return infer_task(np.zeros(0), task) if task != "auto" else ("classify", [])
    values = np.concatenate([np.asarray(y, dtype=np.float64).reshape(-1) for y in ys])
    if values.size == 0 or not np.all(np.isfinite(values)):
        return "classify", []  # check_xy names the bad label
    return infer_task(values, "auto", f"{p}: the target")


def _from_npz(
    p: Path, arrays: dict[str, np.ndarray], flatten: bool, task: str = "classify"
) -> tuple[XY, XY | None]:
    """``(train, test)`` from an archive's keys; ``test`` is None when it has only ``x, y``.

    Checks each part with :func:`check_xy` (any rank, samples first) and that the test samples
    have the same shape as the training samples.
    """
    keys = set(arrays)
    if _SPLIT_KEYS <= keys:
        train = check_xy(
            _features(arrays["x_train"], flatten),
            arrays["y_train"],
            where=f"{p} (train)",
            dtype=np.float32,
            task=task,
        )
        test = check_xy(
            _features(arrays["x_test"], flatten),
            arrays["y_test"],
            n_features=train[0][0].size,
            sample_shape=train[0].shape[1:],
            where=f"{p} (test)",
            dtype=np.float32,
            task=task,
        )
        return train, test
    if {"x", "y"} <= keys:
        xy = check_xy(_features(arrays["x"], flatten), arrays["y"], where=str(p), dtype=np.float32, task=task)
        return xy, None
    raise DataError(
        f"{p}: expected keys x_train, y_train, x_test, y_test (or x, y); found "
        f"{', '.join(sorted(keys)) or 'none'}"
    )


def load_arrays(
    path: PathArg,
    target: int | str | None = None,
    *,
    test_fraction: float = 0.2,
    seed: int = 0,
    flatten: bool = True,
    task: str = "auto",
) -> Dataset:
    """Load a dataset from a NumPy ``.npy`` or ``.npz`` file (never unpickling anything).

    ``.npy``: a 2-D array with one row per sample; column ``target`` (an index, default the
    last column) holds the labels and the others the features. ``.npz``: either the keys
    ``x_train, y_train, x_test, y_test``, or ``x, y`` which are split by ``test_fraction`` and
    ``seed``; optional 1-D string arrays ``feature_names`` and ``class_names`` are used.
    ``.npz`` features may have any rank with samples first (``(N, C, H, W)`` images,
    ``(N, T, D)`` sequences): they are flattened to ``(N, features)`` by default and kept as
    stored with ``flatten=False``. Values are taken as they are (no scaling). ``task``
    (``auto``/``classify``/``regress``) is decided as for CSV files (:func:`infer_task`).

    Checks (via :func:`check_xy`): real-number features without NaN/Inf, whole non-negative
    labels, one label per sample, nothing empty, train and test samples of the same shape, and
    at least as many class names as classes.
    """
    p = Path(path)
    if not p.exists():
        raise DataNotFoundError(f"NumPy file not found: {p}")
    suffix = p.suffix.lower()
    if suffix not in (".npy", ".npz"):
        raise ConfigError(f"{p}: expected a .npy or .npz file")
    loaded, names = _read_file(p)
    if isinstance(loaded, np.ndarray):
        if suffix == ".npz":
            raise DataError(f"{p}: expected an .npz archive, found a single .npy array")
        x, y = _from_npy(p, loaded, target)
        task, warnings = _task(p, task, y)
        train, test = check_xy(x, y, where=str(p), dtype=np.float32, task=task), None
    else:
        if target is not None:
            raise ConfigError(f"target applies to .csv and .npy files, not to {p}")
        ys = [loaded[k] for k in ("y", "y_train", "y_test") if k in loaded]
        task, warnings = _task(p, task, *ys)
        train, test = _from_npz(p, loaded, flatten, task)
    if task == "regress":
        n_classes = 1
    else:
        n_classes = int(max(train[1].max(), test[1].max() if test is not None else 0)) + 1
    if test is None:
        train, test = holdout_split(*train, test_fraction, seed)
    if task == "regress":
        return Dataset.from_parts(
            train, test, p.name, 1, feature_names=names.get("feature_names"), task=task, warnings=warnings
        )
    class_names = names.get("class_names")
    if class_names is not None:
        if len(class_names) < n_classes:
            raise DataError(f"{p}: {len(class_names)} class names but labels go up to {n_classes - 1}")
        n_classes = len(class_names)
    return Dataset.from_parts(
        train,
        test,
        p.name,
        n_classes,
        feature_names=names.get("feature_names"),
        class_names=class_names,
        warnings=warnings,
    )
