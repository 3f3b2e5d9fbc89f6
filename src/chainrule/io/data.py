"""Datasets for chainrule: MNIST (IDX files), the embedded default subset, CSV and NumPy files.

Every loader returns a :class:`Dataset` whose ``x`` arrays are ``(N, D)`` float32 and whose ``y``
arrays are ``(N,)`` int64 class labels in ``0 .. n_classes - 1``, and every loader passes its
arrays through :func:`check_xy`, so a model never sees NaN, Inf, ragged rows or bad labels.

Bad input raises :class:`~chainrule.errors.DataError` (malformed data, a ``ValueError``),
:class:`~chainrule.errors.DataNotFoundError` (a missing file, a ``FileNotFoundError``) or
:class:`~chainrule.errors.ConfigError` (a bad option), each with a message meant for a user.

Only NumPy and the standard library are used. Nothing is ever unpickled: ``.npy``/``.npz`` files
are opened with ``allow_pickle=False`` and IDX files are parsed byte by byte.

Where MNIST is looked for, first match wins:

1. the ``data_dir`` argument (the CLI's ``--data-dir``);
2. the ``CHAINRULE_DATA`` environment variable;
3. the per-user cache, ``$XDG_CACHE_HOME/chainrule/mnist`` or ``~/.cache/chainrule/mnist``.

The directory must hold the four standard IDX files, each either raw or gzip-compressed
(``train-images-idx3-ubyte`` or ``train-images-idx3-ubyte.gz`` ...). ``download=True`` fetches
the missing ones from :data:`DEFAULT_MNIST_URL` (or ``base_url``).
"""

from __future__ import annotations

import csv
import gzip
import http.client
import math
import os
import struct
import tempfile
import urllib.error
import urllib.request
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import IO, TypeAlias

import numpy as np

from chainrule.errors import ConfigError, DataError, DataNotFoundError

__all__ = [
    "DEFAULT_MNIST_URL",
    "MNIST_FILES",
    "Dataset",
    "check_xy",
    "default_cache_dir",
    "load_arrays",
    "load_csv",
    "load_data",
    "load_default",
    "load_mnist",
    "one_hot",
    "read_idx",
    "resolve_mnist_dir",
]

PathArg: TypeAlias = "str | os.PathLike[str]"

#: Public mirror the MNIST ``.gz`` files are downloaded from when ``download=True``.
DEFAULT_MNIST_URL = "https://storage.googleapis.com/cvdf-datasets/mnist/"

#: The four standard MNIST IDX file names (each may also be present with a ``.gz`` suffix).
MNIST_FILES: dict[str, str] = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}

MNIST_SHAPE = (28, 28)
MNIST_CLASSES = 10
DOWNLOAD_TIMEOUT_S = 30.0

_GZIP_MAGIC = b"\x1f\x8b"
_CHUNK = 1 << 22  # 4 MiB
_IDX_TYPES = {
    0x08: "unsigned byte",
    0x09: "signed byte",
    0x0B: "short",
    0x0C: "int",
    0x0D: "float",
    0x0E: "double",
}
_DEFAULT_RESOURCE = ("chainrule._data", "mnist_small.npz")


# --------------------------------------------------------------------------------------------
# Dataset
# --------------------------------------------------------------------------------------------


@dataclass
class Dataset:
    """A classification dataset split into train and test parts.

    ``x_train``/``x_test`` are ``(N, D)`` float32 feature matrices, ``y_train``/``y_test`` are
    ``(N,)`` int64 labels in ``0 .. n_classes - 1``. ``feature_names`` (length ``D``) and
    ``class_names`` (length ``n_classes``) are optional. The test part may be empty (0 rows).
    """

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    name: str
    n_classes: int
    feature_names: list[str] | None = None
    class_names: list[str] | None = None

    def __post_init__(self) -> None:
        for part in ("train", "test"):
            x = getattr(self, f"x_{part}")
            y = getattr(self, f"y_{part}")
            if getattr(x, "ndim", None) != 2 or getattr(y, "ndim", None) != 1:
                raise DataError(
                    f"{self.name}: x_{part} must be 2-D and y_{part} 1-D, got shapes "
                    f"{np.shape(x)} and {np.shape(y)}"
                )
            if x.shape[0] != y.shape[0]:
                raise DataError(
                    f"{self.name}: x_{part} has {x.shape[0]} rows but y_{part} has {y.shape[0]} labels"
                )
        if self.x_train.shape[1] != self.x_test.shape[1]:
            raise DataError(
                f"{self.name}: train has {self.x_train.shape[1]} features but test has {self.x_test.shape[1]}"
            )
        if self.feature_names is not None and len(self.feature_names) != self.n_features:
            raise DataError(
                f"{self.name}: {len(self.feature_names)} feature names for {self.n_features} features"
            )
        if self.class_names is not None and len(self.class_names) != self.n_classes:
            raise DataError(f"{self.name}: {len(self.class_names)} class names for {self.n_classes} classes")

    @property
    def n_features(self) -> int:
        """Number of input features ``D``."""
        return int(self.x_train.shape[1])

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
        return (
            f"{self.name}: {self.n_train} train / {self.n_test} test samples, "
            f"{self.n_features} features, {self.n_classes} classes"
        )

    def split_validation(
        self, fraction: float = 0.1, seed: int = 0
    ) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
        """Split the training part into ``((x_tr, y_tr), (x_val, y_val))``.

        The rows are shuffled with ``np.random.default_rng(seed)``, so the split is
        deterministic; ``floor(fraction * n_train)`` rows go to validation. ``fraction`` must be
        in ``[0, 1)``; ``0`` returns the training arrays unchanged and an empty validation set.
        The returned arrays are copies (except for ``fraction == 0``).
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
# Validation helpers
# --------------------------------------------------------------------------------------------


def check_xy(
    x: object,
    y: object,
    *,
    n_classes: int | None = None,
    n_features: int | None = None,
    where: str = "data",
    dtype: np.dtype | type | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Validate a feature matrix and its labels; return ``(x, y)`` as float and int64 arrays.

    Checks that ``x`` is a non-empty 2-D array of real numbers (not bool, object, string or
    complex) with no NaN or Inf, that ``y`` is 1-D and integer-valued (float labels must be whole
    numbers), that both have the same length, that labels are non-negative and below
    ``n_classes`` when it is given, and that ``x`` has ``n_features`` columns when that is given.

    ``x`` is converted to ``dtype`` when given (e.g. ``np.float32``); otherwise a floating
    ``x`` keeps its precision (float16 becomes float32) and integer ``x`` becomes float64.
    ``y`` is returned as int64. The inputs are never modified; a returned array may be the input
    itself when no conversion was needed, so do not modify it in place if you need the input.
    ``where`` prefixes every error message (e.g. ``"train"`` or a file name).
    """
    if n_classes is not None and (isinstance(n_classes, bool) or int(n_classes) < 1):
        raise ConfigError(f"{where}: n_classes must be a positive integer, got {n_classes!r}")
    try:
        xa = np.asarray(x)
        ya = np.asarray(y)
    except (ValueError, TypeError) as e:
        raise DataError(f"{where}: cannot convert to an array ({e})") from None

    if xa.dtype.kind not in "iuf":
        raise DataError(
            f"{where}: wrong dtype for features: {xa.dtype} (expected real numbers: int, uint or float)"
        )
    if xa.ndim != 2:
        raise DataError(f"{where}: features must be a 2-D array (samples, features), got shape {xa.shape}")
    if ya.dtype.kind not in "iuf":
        raise DataError(f"{where}: wrong dtype for labels: {ya.dtype} (expected integers)")
    if ya.ndim != 1:
        raise DataError(f"{where}: labels must be a 1-D array, got shape {ya.shape}")
    if xa.shape[0] != ya.shape[0]:
        raise DataError(
            f"{where}: mismatched lengths: {xa.shape[0]} samples in x but {ya.shape[0]} labels in y"
        )
    if xa.shape[0] == 0:
        raise DataError(f"{where}: empty: no samples")
    if xa.shape[1] == 0:
        raise DataError(f"{where}: empty: samples have no features")
    if n_features is not None and xa.shape[1] != n_features:
        raise DataError(f"{where}: expected {n_features} features, got {xa.shape[1]}")

    if dtype is not None:
        out_dtype = np.dtype(dtype)
        if out_dtype.kind != "f":
            raise ConfigError(f"{where}: dtype must be a float type, got {out_dtype}")
    elif xa.dtype.kind == "f":
        out_dtype = np.result_type(xa.dtype, np.float32)
    else:
        out_dtype = np.dtype(np.float64)
    with np.errstate(over="ignore", invalid="ignore"):  # overflow becomes Inf, reported below
        xo = xa.astype(out_dtype, copy=False)
    finite = np.isfinite(xo)
    if not finite.all():
        bad_rows = ~finite.all(axis=1)
        first = int(np.argmax(bad_rows))
        count = int(finite.size - np.count_nonzero(finite))
        raise DataError(
            f"{where}: {count} non-finite value(s) (NaN or Inf) in the features; first in row {first}"
        )

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
    hi = n_classes if n_classes is not None else None
    bad = yo < 0 if hi is None else (yo < 0) | (yo >= hi)
    if bad.any():
        i = int(np.argmax(bad))
        allowed = "labels must be >= 0" if hi is None else f"allowed range 0..{hi - 1}"
        raise DataError(
            f"{where}: label {int(yo[i])} at index {i} is out of range "
            f"({allowed}; {int(np.count_nonzero(bad))} bad label(s))"
        )
    return xo, yo


def one_hot(y: object, n_classes: int, dtype: np.dtype | type = np.float32) -> np.ndarray:
    """Return the ``(N, n_classes)`` one-hot encoding of integer labels ``y``."""
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


# --------------------------------------------------------------------------------------------
# IDX files
# --------------------------------------------------------------------------------------------


def _read_upto(f: IO[bytes], n: int) -> bytearray:
    """Read up to ``n`` bytes (fewer only at end of file), without preallocating ``n``."""
    buf = bytearray()
    while len(buf) < n:
        chunk = f.read(min(_CHUNK, n - len(buf)))
        if not chunk:
            break
        buf += chunk
    return buf


def _count_rest(f: IO[bytes]) -> int:
    total = 0
    while chunk := f.read(_CHUNK):
        total += len(chunk)
    return total


def _parse_idx(f: IO[bytes], p: Path) -> np.ndarray:
    header = _read_upto(f, 4)
    if len(header) < 4:
        raise DataError(f"{p}: not an IDX file: only {len(header)} byte(s), an IDX header has at least 4")
    if header[0] or header[1]:
        raise DataError(
            f"{p}: not an IDX file: bad magic number 0x{bytes(header).hex()} "
            f"(expected 0x000008NN: two zero bytes, type code, number of dimensions)"
        )
    code, ndim = header[2], header[3]
    if code != 0x08:
        kind = _IDX_TYPES.get(code, "unknown type")
        raise DataError(
            f"{p}: unsupported IDX data type 0x{code:02x} ({kind}); only 0x08 (unsigned byte) is supported"
        )
    if not 1 <= ndim <= 4:
        raise DataError(f"{p}: unsupported IDX rank {ndim}; expected 1 to 4 dimensions")
    dims_raw = _read_upto(f, 4 * ndim)
    if len(dims_raw) < 4 * ndim:
        raise DataError(
            f"{p}: truncated header: expected {4 * ndim} bytes of dimension sizes, found {len(dims_raw)}"
        )
    dims = struct.unpack(f">{ndim}I", bytes(dims_raw))
    expected = math.prod(dims)
    kind = "pixel data" if ndim >= 2 else "label data"
    data = _read_upto(f, expected)
    if len(data) < expected:
        raise DataError(
            f"{p}: truncated: expected {expected} bytes of {kind} for shape {dims}, found {len(data)}"
        )
    extra = _count_rest(f)
    if extra:
        raise DataError(
            f"{p}: oversized: expected {expected} bytes of {kind} for shape {dims}, found {expected + extra}"
        )
    return np.frombuffer(data, dtype=np.uint8).reshape(dims)


def read_idx(path: PathArg) -> np.ndarray:
    """Read one IDX file (raw, or gzip-compressed: detected by its magic bytes, not its name).

    Only the unsigned-byte type (0x08) with 1 to 4 dimensions is supported, which covers MNIST
    and its drop-in replacements. Returns a writable uint8 array of the stored shape.
    Raises :class:`DataError` for a bad magic number, an unsupported type code or rank, a
    truncated header, a payload shorter or longer than the dimensions say, or corrupt gzip data,
    and :class:`DataNotFoundError` when the file does not exist.
    """
    p = Path(path)
    try:
        with open(p, "rb") as fh:
            return _read_idx_stream(fh, p)
    except FileNotFoundError:
        raise DataNotFoundError(f"IDX file not found: {p}") from None
    except OSError as e:
        raise DataError(f"cannot read IDX file {p}: {e.strerror or e}") from None


def _read_idx_stream(fh: IO[bytes], p: Path) -> np.ndarray:
    is_gzip = False
    try:
        is_gzip = fh.read(2) == _GZIP_MAGIC
        fh.seek(0)
        if is_gzip:
            with gzip.GzipFile(fileobj=fh, mode="rb") as gz:
                return _parse_idx(gz, p)
        return _parse_idx(fh, p)
    except (OSError, EOFError, zlib.error) as e:
        if is_gzip:
            raise DataError(f"{p}: corrupt or truncated gzip data ({e})") from None
        raise DataError(f"cannot read IDX file {p}: {e}") from None


# --------------------------------------------------------------------------------------------
# MNIST
# --------------------------------------------------------------------------------------------


def default_cache_dir() -> Path:
    """The per-user chainrule cache: ``$XDG_CACHE_HOME/chainrule`` or ``~/.cache/chainrule``."""
    xdg = os.environ.get("XDG_CACHE_HOME", "")
    base = Path(xdg) if xdg and Path(xdg).is_absolute() else Path.home() / ".cache"
    return base / "chainrule"


def _resolve_mnist_dir(data_dir: PathArg | None) -> tuple[Path, str]:
    if data_dir is not None:
        return Path(data_dir).expanduser(), "the data_dir argument / --data-dir"
    env = os.environ.get("CHAINRULE_DATA", "")
    if env:
        return Path(env).expanduser(), "the CHAINRULE_DATA environment variable"
    return default_cache_dir() / "mnist", "the default cache directory"


def resolve_mnist_dir(data_dir: PathArg | None = None) -> Path:
    """The directory :func:`load_mnist` reads: ``data_dir``, else ``$CHAINRULE_DATA``, else the
    per-user cache (``$XDG_CACHE_HOME/chainrule/mnist`` or ``~/.cache/chainrule/mnist``)."""
    return _resolve_mnist_dir(data_dir)[0]


def _find_idx(directory: Path, name: str) -> Path | None:
    for candidate in (name, name + ".gz"):
        p = directory / candidate
        if p.is_file():
            return p
    return None


def _download(
    url: str,
    dest: Path,
    progress: Callable[[str, int, int | None], None] | None,
) -> None:
    """Fetch ``url`` into ``dest`` atomically, after checking that it parses as IDX."""
    fd, tmp_name = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".part")
    tmp = Path(tmp_name)
    try:
        try:
            with (
                os.fdopen(fd, "wb") as out,
                urllib.request.urlopen(url, timeout=DOWNLOAD_TIMEOUT_S) as resp,
            ):
                length = resp.headers.get("Content-Length")
                total = int(length) if length and length.isdigit() else None
                done = 0
                while chunk := resp.read(1 << 16):
                    out.write(chunk)
                    done += len(chunk)
                    if progress is not None:
                        progress(dest.name, done, total)
        except (urllib.error.URLError, http.client.HTTPException, OSError, ValueError) as e:
            reason = getattr(e, "reason", None) or e
            raise DataError(
                f"could not download {url}: {reason}. Check the network connection, or put "
                f"the file into {dest.parent} yourself"
            ) from None
        try:
            read_idx(tmp)
        except DataError as e:
            raise DataError(f"downloaded {url} is not a valid IDX file: {e}") from None
        os.replace(tmp, dest)
    finally:
        tmp.unlink(missing_ok=True)


def load_mnist(
    data_dir: PathArg | None = None,
    *,
    download: bool = False,
    base_url: str = DEFAULT_MNIST_URL,
    progress: Callable[[str, int, int | None], None] | None = None,
) -> Dataset:
    """Load MNIST from its four IDX files: 60,000 train and 10,000 test images.

    The directory is ``data_dir``, else ``$CHAINRULE_DATA``, else the per-user cache (see
    :func:`resolve_mnist_dir`); each file may be raw or ``.gz``. Pixels are scaled to float32
    in ``[0, 1]`` and images flattened to 784 features.

    With ``download=True`` the missing files are fetched as ``base_url + name + ".gz"`` into
    the directory (created if needed), written atomically and checked by parsing. Nothing is
    printed; pass ``progress(filename, bytes_done, bytes_total_or_None)`` to report progress.
    Raises :class:`DataNotFoundError` when files are missing and ``download`` is false, and
    :class:`DataError` for malformed files or a failed download.
    """
    directory, source = _resolve_mnist_dir(data_dir)
    found = {key: _find_idx(directory, name) for key, name in MNIST_FILES.items()}
    missing = [MNIST_FILES[k] for k, p in found.items() if p is None]
    if missing and download:
        try:
            directory.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise DataError(f"cannot create MNIST directory {directory}: {e}") from None
        base = base_url if base_url.endswith("/") else base_url + "/"
        for key, name in MNIST_FILES.items():
            if found[key] is None:
                dest = directory / (name + ".gz")
                _download(base + name + ".gz", dest, progress)
                found[key] = dest
    elif missing:
        listing = ", ".join(f"{m}[.gz]" for m in missing)
        raise DataNotFoundError(
            f"MNIST file(s) missing: {listing} not found in {directory} (from {source}). "
            f"Fix: pass --data-dir DIR (data_dir=...) naming a directory with the four MNIST "
            f"IDX files, set CHAINRULE_DATA=DIR, or use --download (download=True) to fetch "
            f"them into {directory}"
        )

    paths = {k: p for k, p in found.items() if p is not None}
    parts = {}
    for part in ("train", "test"):
        img_path, lbl_path = paths[f"{part}_images"], paths[f"{part}_labels"]
        images = read_idx(img_path)
        labels = read_idx(lbl_path)
        if images.ndim != 3 or images.shape[1:] != MNIST_SHAPE:
            raise DataError(f"{img_path}: expected images of shape (N, 28, 28), got {images.shape}")
        if labels.ndim != 1:
            raise DataError(f"{lbl_path}: expected a 1-D array of labels, got {labels.shape}")
        if images.shape[0] != labels.shape[0]:
            raise DataError(
                f"MNIST {part} files disagree: {img_path} has {images.shape[0]} images but "
                f"{lbl_path} has {labels.shape[0]} labels"
            )
        bad = labels >= MNIST_CLASSES
        if bad.any():
            i = int(np.argmax(bad))
            raise DataError(f"{lbl_path}: label {int(labels[i])} at index {i} is out of range 0..9")
        x = images.reshape(images.shape[0], -1).astype(np.float32)
        x /= np.float32(255.0)
        parts[part] = check_xy(
            x,
            labels,
            n_classes=MNIST_CLASSES,
            n_features=784,
            where=str(img_path),
            dtype=np.float32,
        )
    return Dataset(
        x_train=parts["train"][0],
        y_train=parts["train"][1],
        x_test=parts["test"][0],
        y_test=parts["test"][1],
        name="mnist",
        n_classes=MNIST_CLASSES,
        class_names=[str(d) for d in range(MNIST_CLASSES)],
    )


def load_default() -> Dataset:
    """Load the small MNIST subset embedded in the package (``chainrule/_data/mnist_small.npz``).

    Needs no network and no files outside the package; pixels are scaled to float32 in
    ``[0, 1]``. See ``chainrule/_data/README.md`` for how the subset is built.
    """
    package, filename = _DEFAULT_RESOURCE
    try:
        resource = resources.files(package).joinpath(filename)
        with resource.open("rb") as fh, np.load(fh, allow_pickle=False) as z:
            arrays = {k: z[k] for k in ("x_train", "y_train", "x_test", "y_test")}
    except (FileNotFoundError, ModuleNotFoundError):
        raise DataNotFoundError(
            f"the embedded default dataset {package}/{filename} is missing: reinstall "
            f"chainrule, or rebuild it with scripts/make_default_dataset.py"
        ) from None
    except (OSError, ValueError, KeyError) as e:
        raise DataError(f"the embedded default dataset {filename} is corrupt: {e}") from None
    parts = {}
    for part in ("train", "test"):
        x = arrays[f"x_{part}"].astype(np.float32)
        x /= np.float32(255.0)
        parts[part] = check_xy(
            x,
            arrays[f"y_{part}"],
            n_classes=MNIST_CLASSES,
            n_features=784,
            where=f"default dataset ({part})",
            dtype=np.float32,
        )
    n_tr, n_te = len(parts["train"][1]), len(parts["test"][1])
    return Dataset(
        x_train=parts["train"][0],
        y_train=parts["train"][1],
        x_test=parts["test"][0],
        y_test=parts["test"][1],
        name=f"default (MNIST subset: {n_tr} train / {n_te} test)",
        n_classes=MNIST_CLASSES,
        class_names=[str(d) for d in range(MNIST_CLASSES)],
    )


# --------------------------------------------------------------------------------------------
# CSV and NumPy files
# --------------------------------------------------------------------------------------------


def _split(
    x: np.ndarray, y: np.ndarray, test_fraction: float, seed: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Shuffle with ``default_rng(seed)`` and hold out ``round(test_fraction * n)`` rows."""
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
    return x[tr], y[tr], x[te], y[te]


def _is_number(cell: str) -> bool:
    try:
        float(cell)
    except ValueError:
        return False
    return True


def _int_like(value: object) -> int | None:
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


def load_csv(
    path: PathArg,
    target: str | int | None = None,
    *,
    test_fraction: float = 0.2,
    seed: int = 0,
) -> Dataset:
    """Load a CSV file of numeric features and one label column.

    A first row with a non-numeric, non-empty cell in a feature column is a header (a first
    row whose only text is in the label column counts as a header when the labels below it are
    numbers). ``target`` picks the label column by header name or by (0-based, may be negative)
    index; by default it is the last column. Labels may be integers (used as class indices,
    ``n_classes = max + 1``) or strings (mapped to ``0 .. K-1`` in sorted order and kept in
    ``class_names``). Rows are shuffled with ``seed`` and ``test_fraction`` of them are held
    out as the test part. Blank lines are skipped.
    """
    p = Path(path)
    try:
        with open(p, newline="", encoding="utf-8-sig") as fh:
            reader = csv.reader(fh)
            rows: list[list[str]] = []
            lines: list[int] = []
            for row in reader:
                cells = [c.strip() for c in row]
                if not any(cells):
                    continue
                rows.append(cells)
                lines.append(reader.line_num)
    except FileNotFoundError:
        raise DataNotFoundError(f"CSV file not found: {p}") from None
    except UnicodeDecodeError as e:
        raise DataError(f"{p}: not a UTF-8 text file ({e})") from None
    except csv.Error as e:
        raise DataError(f"{p}: malformed CSV ({e})") from None
    except OSError as e:
        raise DataError(f"cannot read CSV file {p}: {e.strerror or e}") from None
    if not rows:
        raise DataError(f"{p}: empty CSV file (no rows)")

    n_cols = len(rows[0])
    target_index = _int_like(target) if target is not None else n_cols - 1
    by_name = target is not None and target_index is None
    if by_name and not isinstance(target, str):
        raise ConfigError(f"target must be a column name or index, got {target!r}")

    first = rows[0]
    text_cols = [j for j, c in enumerate(first) if c and not _is_number(c)]
    if not text_cols:
        has_header = False
    elif by_name:
        has_header = True
    else:
        assert target_index is not None
        lj = target_index % n_cols  # an out-of-range index is reported below
        if any(j != lj for j in text_cols):
            has_header = True
        else:
            below = [r[lj] for r in rows[1:] if len(r) > lj]
            has_header = bool(below) and all(_is_number(c) for c in below)

    header = rows[0] if has_header else None
    data_rows, data_lines = (rows[1:], lines[1:]) if has_header else (rows, lines)

    if by_name:
        if header is None:
            raise ConfigError(
                f"target={target!r} names a column, but {p} has no header row; "
                f"give the label column's index instead"
            )
        if target not in header:
            raise ConfigError(f"target column {target!r} not in {p}; columns: {', '.join(header)}")
        label_col = header.index(str(target))
    else:
        assert target_index is not None
        if not -n_cols <= target_index < n_cols:
            raise ConfigError(f"target index {target_index} out of range for {n_cols} columns")
        label_col = target_index % n_cols
    if n_cols < 2:
        raise DataError(
            f"{p}: needs at least 2 columns (features and a label), found {n_cols} "
            f"(the file must be comma-separated)"
        )
    if not data_rows:
        raise DataError(f"{p}: no data rows (only a header)")

    def col_desc(j: int) -> str:
        return f"column {j + 1} ({header[j]!r})" if header is not None else f"column {j + 1}"

    for cells, line in zip(data_rows, data_lines, strict=True):
        if len(cells) != n_cols:
            raise DataError(f"{p}: row {line} has {len(cells)} columns, expected {n_cols}")

    feat_cols = [j for j in range(n_cols) if j != label_col]
    feats = [[r[j] for j in feat_cols] for r in data_rows]
    try:
        x = np.array(feats, dtype=np.float64)
    except ValueError:
        for cells, line in zip(data_rows, data_lines, strict=True):
            for j in feat_cols:
                if not cells[j]:
                    raise DataError(f"{p}: row {line}, {col_desc(j)}: empty value") from None
                if not _is_number(cells[j]):
                    raise DataError(
                        f"{p}: row {line}, {col_desc(j)}: non-numeric value {cells[j]!r} "
                        f"(features must be numbers)"
                    ) from None
        raise DataError(f"{p}: cannot parse the features as numbers") from None
    finite = np.isfinite(x)
    if not finite.all():
        i, k = (int(v) for v in np.argwhere(~finite)[0])
        j = feat_cols[k]
        raise DataError(f"{p}: row {data_lines[i]}, {col_desc(j)}: non-finite value {data_rows[i][j]!r}")

    raw_labels = [r[label_col] for r in data_rows]
    for cell, line in zip(raw_labels, data_lines, strict=True):
        if not cell:
            raise DataError(f"{p}: row {line}, {col_desc(label_col)}: empty label")
    class_names: list[str] | None = None
    if all(_is_number(c) for c in raw_labels):
        values = np.array([float(c) for c in raw_labels])
        for v, cell, line in zip(values, raw_labels, data_lines, strict=True):
            if not math.isfinite(v) or v != math.floor(v) or v < 0:
                raise DataError(
                    f"{p}: row {line}, {col_desc(label_col)}: label {cell!r} is not a "
                    f"non-negative integer (labels must be class indices 0..K-1 or names)"
                )
        y = values.astype(np.int64)
        n_classes = int(y.max()) + 1
    else:
        class_names = sorted(set(raw_labels))
        index = {name: i for i, name in enumerate(class_names)}
        y = np.array([index[c] for c in raw_labels], dtype=np.int64)
        n_classes = len(class_names)

    x32, y64 = check_xy(x, y, n_classes=n_classes, where=str(p), dtype=np.float32)
    x_tr, y_tr, x_te, y_te = _split(x32, y64, test_fraction, seed)
    return Dataset(
        x_train=x_tr,
        y_train=y_tr,
        x_test=x_te,
        y_test=y_te,
        name=p.name,
        n_classes=n_classes,
        feature_names=[header[j] for j in feat_cols] if header is not None else None,
        class_names=class_names,
    )


def _as_2d(a: np.ndarray) -> np.ndarray:
    return a.reshape(a.shape[0], -1) if a.ndim > 2 else a


def _names(z: object, key: str, p: Path) -> list[str] | None:
    files = getattr(z, "files", [])
    if key not in files:
        return None
    arr = z[key]  # type: ignore[index]
    if arr.dtype.kind not in "US" or arr.ndim != 1:
        raise DataError(f"{p}: {key!r} must be a 1-D array of strings, got {arr.dtype}")
    return [str(s) for s in arr.tolist()]


def load_arrays(
    path: PathArg,
    target: int | str | None = None,
    *,
    test_fraction: float = 0.2,
    seed: int = 0,
) -> Dataset:
    """Load a dataset from a NumPy ``.npy`` or ``.npz`` file (never unpickling anything).

    ``.npy``: a 2-D array with one row per sample; column ``target`` (an index, default the
    last column) holds the labels and the others the features. ``.npz``: either the keys
    ``x_train, y_train, x_test, y_test``, or ``x, y`` which are split by ``test_fraction`` and
    ``seed``; optional 1-D string arrays ``feature_names`` and ``class_names`` are used.
    Feature arrays with more than 2 dimensions (e.g. images) are flattened per sample. Values
    are taken as they are (no scaling). Labels must be whole non-negative numbers.
    """
    p = Path(path)
    if not p.exists():
        raise DataNotFoundError(f"NumPy file not found: {p}")
    suffix = p.suffix.lower()
    if suffix not in (".npy", ".npz"):
        raise ConfigError(f"{p}: expected a .npy or .npz file")
    try:
        loaded = np.load(p, allow_pickle=False)
        if isinstance(loaded, np.ndarray):
            arrays: dict[str, np.ndarray] = {"": loaded}
            feature_names = class_names = None
        else:
            with loaded as z:
                arrays = {k: z[k] for k in z.files if k not in ("feature_names", "class_names")}
                feature_names = _names(z, "feature_names", p)
                class_names = _names(z, "class_names", p)
    except ValueError as e:
        if "pickle" in str(e).lower() or "object arrays" in str(e).lower():
            raise DataError(
                f"{p}: refusing to load pickled data (object arrays and pickles can run "
                f"arbitrary code); save plain numeric arrays instead"
            ) from None
        raise DataError(f"{p}: not a valid NumPy file ({e})") from None
    except (OSError, EOFError, KeyError) as e:
        raise DataError(f"{p}: not a valid NumPy file ({e})") from None
    except Exception as e:  # zipfile.BadZipFile and friends from a damaged .npz
        raise DataError(f"{p}: not a valid NumPy file ({type(e).__name__}: {e})") from None

    if "" in arrays:
        if suffix == ".npz":
            raise DataError(f"{p}: expected an .npz archive, found a single .npy array")
        a = arrays[""]
        if a.ndim != 2 or a.shape[1] < 2:
            raise DataError(f"{p}: expected a 2-D array (samples, features + label), got shape {a.shape}")
        col = -1 if target is None else _int_like(target)
        if col is None:
            raise ConfigError(f"target for a .npy file must be a column index, got {target!r}")
        if not -a.shape[1] <= col < a.shape[1]:
            raise ConfigError(f"target index {col} out of range for {a.shape[1]} columns")
        col %= a.shape[1]
        x = np.delete(a, col, axis=1)
        x, y = check_xy(x, a[:, col], where=str(p), dtype=np.float32)
        n_classes = int(y.max()) + 1
        x_tr, y_tr, x_te, y_te = _split(x, y, test_fraction, seed)
    else:
        if target is not None:
            raise ConfigError(f"target applies to .csv and .npy files, not to {p}")
        keys = set(arrays)
        if {"x_train", "y_train", "x_test", "y_test"} <= keys:
            x_tr, y_tr = check_xy(
                _as_2d(arrays["x_train"]),
                arrays["y_train"],
                where=f"{p} (train)",
                dtype=np.float32,
            )
            x_te, y_te = check_xy(
                _as_2d(arrays["x_test"]),
                arrays["y_test"],
                where=f"{p} (test)",
                n_features=x_tr.shape[1],
                dtype=np.float32,
            )
            n_classes = int(max(y_tr.max(), y_te.max())) + 1
        elif {"x", "y"} <= keys:
            x, y = check_xy(_as_2d(arrays["x"]), arrays["y"], where=str(p), dtype=np.float32)
            n_classes = int(y.max()) + 1
            x_tr, y_tr, x_te, y_te = _split(x, y, test_fraction, seed)
        else:
            raise DataError(
                f"{p}: expected keys x_train, y_train, x_test, y_test (or x, y); found "
                f"{', '.join(sorted(keys)) or 'none'}"
            )
    if class_names is not None:
        if len(class_names) < n_classes:
            raise DataError(f"{p}: {len(class_names)} class names but labels go up to {n_classes - 1}")
        n_classes = len(class_names)
    return Dataset(
        x_train=x_tr,
        y_train=y_tr,
        x_test=x_te,
        y_test=y_te,
        name=p.name,
        n_classes=n_classes,
        feature_names=feature_names,
        class_names=class_names,
    )


# --------------------------------------------------------------------------------------------
# Dispatcher
# --------------------------------------------------------------------------------------------


def load_data(
    spec: str,
    data_dir: PathArg | None = None,
    *,
    target: str | int | None = None,
    download: bool = False,
    seed: int = 0,
    test_fraction: float = 0.2,
    progress: Callable[[str, int, int | None], None] | None = None,
) -> Dataset:
    """Load a dataset by name or path.

    ``spec`` is ``"default"`` (the embedded MNIST subset), ``"mnist"`` (full MNIST, looked for
    in ``data_dir`` / ``$CHAINRULE_DATA`` / the cache, fetched with ``download=True``), a
    directory holding the MNIST IDX files, or a ``.csv``, ``.npy`` or ``.npz`` file. ``target``,
    ``seed`` and ``test_fraction`` apply to the file formats that need a label column or a
    train/test split; ``progress`` is passed to :func:`load_mnist` for downloads.
    """
    key = spec.strip().lower()
    if key in ("default", "mnist") and target is not None:
        raise ConfigError(f"target only applies to .csv and .npy data, not to {spec!r}")
    if key == "default":
        return load_default()
    if key == "mnist":
        return load_mnist(data_dir, download=download, progress=progress)
    if data_dir is not None:
        raise ConfigError(f"data_dir applies to 'mnist' only; to load {spec!r} give its path as the dataset")
    p = Path(spec).expanduser()
    if p.is_dir():
        if target is not None:
            raise ConfigError(f"target does not apply to an MNIST directory ({p})")
        return load_mnist(p, download=download, progress=progress)
    if not p.exists():
        raise DataNotFoundError(
            f"dataset {spec!r} not found: it is not 'default', 'mnist', or an existing file or directory"
        )
    suffix = p.suffix.lower()
    if suffix == ".csv":
        return load_csv(p, target, test_fraction=test_fraction, seed=seed)
    if suffix in (".npy", ".npz"):
        return load_arrays(p, target, test_fraction=test_fraction, seed=seed)
    raise ConfigError(
        f"unknown dataset format {suffix or '(no extension)'!r} for {p}; expected 'default', "
        f"'mnist', an MNIST directory, or a .csv, .npy or .npz file"
    )
