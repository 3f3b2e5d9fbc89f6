"""The small MNIST subset embedded in the package (``chainrule/_data/mnist_small.npz``)."""

from __future__ import annotations

from importlib import resources

import numpy as np

from chainrule.errors import DataError, DataNotFoundError
from chainrule.io.dataset import Dataset, check_xy
from chainrule.io.mnist import MNIST_CLASSES, MNIST_PIXELS, mnist_dataset, mnist_pixels

__all__ = ["load_default"]

_DEFAULT_RESOURCE = ("chainrule._data", "mnist_small.npz")
_KEYS = ("x_train", "y_train", "x_test", "y_test")


def _read_resource() -> dict[str, np.ndarray]:
    """The four arrays of the embedded ``.npz`` (opened without unpickling)."""
    package, filename = _DEFAULT_RESOURCE
    try:
        resource = resources.files(package).joinpath(filename)
        with resource.open("rb") as fh, np.load(fh, allow_pickle=False) as z:
            return {k: z[k] for k in _KEYS}
    except (FileNotFoundError, ModuleNotFoundError):
        raise DataNotFoundError(
            f"the embedded default dataset {package}/{filename} is missing: reinstall "
            f"chainrule, or rebuild it with scripts/make_default_dataset.py"
        ) from None
    except (OSError, ValueError, KeyError) as e:
        raise DataError(f"the embedded default dataset {filename} is corrupt: {e}") from None


def load_default(*, flatten: bool = True) -> Dataset:
    """Load the small MNIST subset embedded in the package (``chainrule/_data/mnist_small.npz``).

    Needs no network and no files outside the package; pixels are scaled to float32 in
    ``[0, 1]``, as ``(N, 784)`` rows by default or ``(N, 1, 28, 28)`` images with
    ``flatten=False``. The arrays are checked like any other data (28 x 28 pixels per image,
    labels 0..9, equal counts). See ``chainrule/_data/README.md`` for how the subset is built.
    """
    arrays = _read_resource()
    parts = []
    for part in ("train", "test"):
        where = f"default dataset ({part})"
        x = mnist_pixels(arrays[f"x_{part}"], flatten, where)
        y = arrays[f"y_{part}"]
        parts.append(check_xy(x, y, n_classes=MNIST_CLASSES, n_features=MNIST_PIXELS, where=where))
    train, test = parts
    return mnist_dataset(train, test, f"default (MNIST subset: {len(train[1])} train / {len(test[1])} test)")
