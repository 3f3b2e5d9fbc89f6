"""What several jobs share: loading a dataset with download bars, checks made before any work."""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from chainrule.errors import ConfigError, MissingDependencyError
from chainrule.io import load_data

#: a job's status lines (dataset summary, ...): ``log("message")``; None prints nothing
Log = Callable[[str], None] | None


def say(log: Log, message: str) -> None:
    if log is not None:
        log(message)


def load_dataset(
    data: str,
    data_dir: str | None = None,
    *,
    target: str | None = None,
    download: bool = False,
    seed: int = 0,
    progress: bool = True,
) -> Any:
    """:func:`chainrule.io.load_data`, with one download bar per file when ``progress``."""
    bars = DownloadBars(enabled=progress)
    try:
        return load_data(data, data_dir, target=target, download=download, seed=seed, progress=bars)
    finally:
        bars.close()


class DownloadBars:
    """``progress(filename, bytes_done, total)`` for :func:`chainrule.io.load_mnist`: one tqdm
    bar per file on stderr (nothing when disabled or without tqdm)."""

    def __init__(self, enabled: bool = True) -> None:
        self.enabled = enabled
        self._bars: dict[str, Any] = {}

    def __call__(self, name: str, done: int, total: int | None) -> None:
        if not self.enabled:
            return
        bar = self._bars.get(name)
        if bar is None:
            try:
                from tqdm.auto import tqdm  # optional: the cli extra; progress bars only
            except ImportError:
                self.enabled = False
                return
            bar = self._bars[name] = tqdm(
                total=total,
                desc=f"downloading {name}",
                unit="B",
                unit_scale=True,
                file=sys.stderr,
                leave=False,
            )
        bar.update(done - bar.n)

    def close(self) -> None:
        for bar in self._bars.values():
            bar.close()


def check_writable(path: str | Path | None) -> None:
    """Fail before any work, not after, when an output's directory does not exist."""
    if not path:
        return
    parent = Path(path).expanduser().resolve().parent
    if not parent.is_dir():
        raise ConfigError(f"cannot write {path}: directory {parent} does not exist")


def require_packages(needs: Iterable[tuple[str, str, str, Any]]) -> None:
    """For each ``(package, feature, extra, wanted)``: when ``wanted`` and ``package`` is not
    installed, raise :class:`~chainrule.errors.MissingDependencyError` (before any work)."""
    for package, feature, extra, wanted in needs:
        if wanted and importlib.util.find_spec(package) is None:
            raise MissingDependencyError(package, feature, extra)


def check_model_fits(net: Any, n_features: int, n_classes: int) -> None:
    """A model's input width and output count must suit the data it is evaluated on."""
    if net.input_dim is not None and net.input_dim != n_features:
        raise ConfigError(f"the model expects {net.input_dim} input features but the data has {n_features}")
    out = net.output_dim()
    if out is not None and out > 1 and out < n_classes:
        raise ConfigError(f"the model has {out} outputs but the data has {n_classes} classes")
