"""MNIST from its four IDX files: where they are looked for, how they are fetched, how they load.

Where MNIST is looked for, first match wins:

1. the ``data_dir`` argument (the CLI's ``--data-dir``);
2. the ``CHAINRULE_DATA`` environment variable;
3. the per-user cache, ``$XDG_CACHE_HOME/chainrule/mnist`` or ``~/.cache/chainrule/mnist``.

The directory must hold the four standard IDX files, each either raw or gzip-compressed
(``train-images-idx3-ubyte`` or ``train-images-idx3-ubyte.gz`` ...). ``download=True`` fetches
the missing ones from :data:`DEFAULT_MNIST_URL` (or ``base_url``).
"""

from __future__ import annotations

import http.client
import os
import tempfile
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import TypeAlias

import numpy as np

from chainrule.errors import DataError, DataNotFoundError
from chainrule.io.dataset import XY, Dataset, PathArg, check_xy
from chainrule.io.idx import read_idx

__all__ = [
    "DEFAULT_MNIST_URL",
    "MNIST_FILES",
    "Progress",
    "default_cache_dir",
    "load_mnist",
    "mnist_dataset",
    "mnist_pixels",
    "resolve_mnist_dir",
]

#: ``progress(filename, bytes_done, bytes_total_or_None)``, called as a download goes.
Progress: TypeAlias = "Callable[[str, int, int | None], None]"

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
MNIST_PIXELS = 28 * 28
MNIST_CLASSES = 10
DOWNLOAD_TIMEOUT_S = 30.0


# --------------------------------------------------------------------------------------------
# Shared with the embedded default subset
# --------------------------------------------------------------------------------------------


def mnist_pixels(images: np.ndarray, flatten: bool = True, where: str = "MNIST") -> np.ndarray:
    """uint8 MNIST images (``(N, 28, 28)`` or ``(N, 784)``) as float32 in ``[0, 1]``.

    The result is ``(N, 784)`` when ``flatten`` is true, else ``(N, 1, 28, 28)`` (one channel).
    Checks that each image holds exactly 28 x 28 pixels.
    """
    n = images.shape[0]
    if images.size != n * MNIST_PIXELS:
        raise DataError(f"{where}: expected MNIST images of 28 x 28 pixels, got shape {images.shape}")
    shape = (n, MNIST_PIXELS) if flatten else (n, 1, *MNIST_SHAPE)
    x = images.reshape(shape).astype(np.float32)
    x /= np.float32(255.0)
    return x


def mnist_dataset(train: XY, test: XY, name: str) -> Dataset:
    """A :class:`Dataset` of MNIST digits: 10 classes named ``"0"`` .. ``"9"``."""
    return Dataset.from_parts(
        train, test, name, MNIST_CLASSES, class_names=[str(d) for d in range(MNIST_CLASSES)]
    )


# --------------------------------------------------------------------------------------------
# Where the files are, and fetching them
# --------------------------------------------------------------------------------------------


def default_cache_dir() -> Path:
    """The per-user chainrule cache: ``$XDG_CACHE_HOME/chainrule`` or ``~/.cache/chainrule``."""
    xdg = os.environ.get("XDG_CACHE_HOME", "")
    base = Path(xdg) if xdg and Path(xdg).is_absolute() else Path.home() / ".cache"
    return base / "chainrule"


def _resolve_mnist_dir(data_dir: PathArg | None) -> tuple[Path, str]:
    """The MNIST directory and, for messages, which setting chose it."""
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
    """``directory/name`` or ``directory/name.gz``, whichever is a file first; else None."""
    for candidate in (name, name + ".gz"):
        p = directory / candidate
        if p.is_file():
            return p
    return None


def _download(url: str, dest: Path, progress: Progress | None) -> None:
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


def _locate_files(
    data_dir: PathArg | None, download: bool, base_url: str, progress: Progress | None
) -> dict[str, Path]:
    """Find the four files (downloading the missing ones when ``download``); raise if any is missing."""
    directory, source = _resolve_mnist_dir(data_dir)
    found = {key: _find_idx(directory, name) for key, name in MNIST_FILES.items()}
    missing = [MNIST_FILES[k] for k, p in found.items() if p is None]
    if missing and not download:
        listing = ", ".join(f"{m}[.gz]" for m in missing)
        raise DataNotFoundError(
            f"MNIST file(s) missing: {listing} not found in {directory} (from {source}). "
            f"Fix: pass --data-dir DIR (data_dir=...) naming a directory with the four MNIST "
            f"IDX files, set CHAINRULE_DATA=DIR, or use --download (download=True) to fetch "
            f"them into {directory}"
        )
    if missing:
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
    return {k: p for k, p in found.items() if p is not None}


# --------------------------------------------------------------------------------------------
# Loading
# --------------------------------------------------------------------------------------------


def _load_part(part: str, img_path: Path, lbl_path: Path, flatten: bool) -> XY:
    """Read one images/labels pair; check shapes (N, 28, 28) and (N,), equal counts, labels 0..9."""
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
    x = mnist_pixels(images, flatten, str(img_path))
    return check_xy(
        x, labels, n_classes=MNIST_CLASSES, n_features=MNIST_PIXELS, where=str(img_path), dtype=np.float32
    )


def load_mnist(
    data_dir: PathArg | None = None,
    *,
    download: bool = False,
    base_url: str = DEFAULT_MNIST_URL,
    progress: Progress | None = None,
    flatten: bool = True,
) -> Dataset:
    """Load MNIST from its four IDX files: 60,000 train and 10,000 test images.

    The directory is ``data_dir``, else ``$CHAINRULE_DATA``, else the per-user cache (see
    :func:`resolve_mnist_dir`); each file may be raw or ``.gz``. Pixels are scaled to float32
    in ``[0, 1]``; images are flattened to ``(N, 784)`` by default, or kept as one-channel
    images ``(N, 1, 28, 28)`` with ``flatten=False``.

    With ``download=True`` the missing files are fetched as ``base_url + name + ".gz"`` into
    the directory (created if needed), written atomically and checked by parsing. Nothing is
    printed; pass ``progress(filename, bytes_done, bytes_total_or_None)`` to report progress.
    Raises :class:`DataNotFoundError` when files are missing and ``download`` is false, and
    :class:`DataError` for malformed files (bad IDX, wrong image shape, image and label counts
    that disagree, labels above 9) or a failed download.
    """
    paths = _locate_files(data_dir, download, base_url, progress)
    train, test = (
        _load_part(part, paths[f"{part}_images"], paths[f"{part}_labels"], flatten)
        for part in ("train", "test")
    )
    return mnist_dataset(train, test, "mnist")
