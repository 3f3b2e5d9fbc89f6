"""Data in and models out: IDX, tabular and array loaders, the embedded default set, safetensors.

Every data loader returns a :class:`Dataset` whose ``x`` arrays are float32 with samples along
the first axis (``(N, D)`` rows by default; ``flatten=False`` keeps images as ``(N, C, H, W)``)
and whose ``y`` arrays are ``(N,)`` int64 class labels in ``0 .. n_classes - 1``; every loader
passes its arrays through :func:`check_xy`, so a model never sees NaN, Inf, ragged rows or bad
labels. Bad input raises :class:`~chainrule.errors.DataError` (malformed data, a
``ValueError``), :class:`~chainrule.errors.DataNotFoundError` (a missing file, a
``FileNotFoundError``) or :class:`~chainrule.errors.ConfigError` (a bad option), each with a
message meant for a user. Only NumPy and the standard library are used, and nothing is ever
unpickled.

Modules: :mod:`~chainrule.io.dataset` (``Dataset``, ``check_xy``, ``one_hot``),
:mod:`~chainrule.io.idx` (``read_idx``), :mod:`~chainrule.io.mnist` (``load_mnist`` and where
MNIST lives), :mod:`~chainrule.io.default` (``load_default``), :mod:`~chainrule.io.tabular`
(``load_csv``), :mod:`~chainrule.io.arrays` (``load_arrays``), :mod:`~chainrule.io.load`
(``load_data``) and :mod:`~chainrule.io.serialize` (models to and from safetensors).
"""

from chainrule.io.arrays import load_arrays
from chainrule.io.dataset import Dataset, check_xy, one_hot
from chainrule.io.default import load_default
from chainrule.io.idx import read_idx
from chainrule.io.load import load_data
from chainrule.io.mnist import (
    DEFAULT_MNIST_URL,
    MNIST_FILES,
    default_cache_dir,
    load_mnist,
    resolve_mnist_dir,
)
from chainrule.io.tabular import load_csv

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
