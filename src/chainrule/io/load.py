"""One entry point, :func:`load_data`: a dataset by name (``default``, ``mnist``) or by path."""

from __future__ import annotations

from pathlib import Path

from chainrule.errors import ConfigError, DataNotFoundError
from chainrule.io.arrays import load_arrays
from chainrule.io.dataset import Dataset, PathArg
from chainrule.io.default import load_default
from chainrule.io.mnist import Progress, load_mnist
from chainrule.io.tabular import load_csv

__all__ = ["load_data"]


def load_data(
    spec: str,
    data_dir: PathArg | None = None,
    *,
    target: str | int | None = None,
    download: bool = False,
    seed: int = 0,
    test_fraction: float = 0.2,
    progress: Progress | None = None,
    flatten: bool = True,
    task: str = "auto",
) -> Dataset:
    """Load a dataset by name or path.

    ``spec`` is ``"default"`` (the embedded MNIST subset), ``"mnist"`` (full MNIST, looked for
    in ``data_dir`` / ``$CHAINRULE_DATA`` / the cache, fetched with ``download=True``), a
    directory holding the MNIST IDX files, or a ``.csv``, ``.npy`` or ``.npz`` file. ``target``,
    ``seed``, ``test_fraction`` and ``task`` (``auto``/``classify``/``regress``) apply to the file formats that need a label column or a
    train/test split; ``progress`` is passed to :func:`load_mnist` for downloads. ``flatten``
    (default true) gives images as ``(N, features)`` rows; ``flatten=False`` keeps MNIST as
    ``(N, 1, 28, 28)`` and ``.npz`` features as stored (CSV and ``.npy`` tables are 2-D anyway).

    Checks that ``target`` and ``data_dir`` are only given where they apply, that a path
    exists, and that its format is known (:class:`ConfigError` / :class:`DataNotFoundError`).
    """
    key = spec.strip().lower()
    if key in ("default", "mnist") and target is not None:
        raise ConfigError(f"target only applies to .csv and .npy data, not to {spec!r}")
    if key == "default":
        return load_default(flatten=flatten)
    if key == "mnist":
        return load_mnist(data_dir, download=download, progress=progress, flatten=flatten)
    if data_dir is not None:
        raise ConfigError(f"data_dir applies to 'mnist' only; to load {spec!r} give its path as the dataset")
    p = Path(spec).expanduser()
    if p.is_dir():
        if target is not None:
            raise ConfigError(f"target does not apply to an MNIST directory ({p})")
        return load_mnist(p, download=download, progress=progress, flatten=flatten)
    if not p.exists():
        raise DataNotFoundError(
            f"dataset {spec!r} not found: it is not 'default', 'mnist', or an existing file or directory"
        )
    suffix = p.suffix.lower()
    if suffix == ".csv":
        return load_csv(p, target, test_fraction=test_fraction, seed=seed, task=task)
    if suffix in (".npy", ".npz"):
        return load_arrays(p, target, test_fraction=test_fraction, seed=seed, flatten=flatten, task=task)
    raise ConfigError(
        f"unknown dataset format {suffix or '(no extension)'!r} for {p}; expected 'default', "
        f"'mnist', an MNIST directory, or a .csv, .npy or .npz file"
    )
