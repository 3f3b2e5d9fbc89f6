"""What several jobs share: loading a dataset with download bars, checks made before any work."""

from __future__ import annotations

import importlib.util
import os
import sys
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from chainrule.errors import ConfigError, DataError, MissingDependencyError
from chainrule.io import load_data
from chainrule.limits import check_classes

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
    min_classes: int = 1,
) -> Any:
    """:func:`chainrule.io.load_data`, with one download bar per file when ``progress``; then the
    class count is checked against :mod:`chainrule.limits` and ``min_classes``."""
    bars = DownloadBars(enabled=progress)
    try:
        loaded = load_data(data, data_dir, target=target, download=download, seed=seed, progress=bars)
    finally:
        bars.close()
    k = getattr(loaded, "n_classes", None)
    if isinstance(k, int):
        check_classes(k, data)
        if k < min_classes:
            raise DataError(
                f"{data}: the labels hold {k} class(es); training a classifier needs at least {min_classes}"
            )
    return loaded


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


def check_writable(path: str | Path | None, flag: str | None = None) -> None:
    """Fail before any work, not after, when an output cannot be written: its directory is
    missing or not writable (probed with a real temp file, so read-only mounts and root count),
    or the path is a directory or a device rather than a regular file. Messages name the path
    the user gave (and ``flag``)."""
    if not path:
        return
    what = f"{flag} {path}" if flag else str(path)
    p = Path(path).expanduser()
    if p.is_dir():
        raise ConfigError(f"cannot write {what}: it is a directory")
    if p.exists() and not p.is_file():
        raise ConfigError(f"cannot write {what}: it exists and is not a regular file")
    parent = p.resolve().parent
    if not parent.is_dir():
        raise ConfigError(f"cannot write {what}: directory {parent} does not exist")
    try:
        fd, probe = tempfile.mkstemp(prefix=".chainrule-probe.", dir=parent)
    except OSError as exc:
        raise ConfigError(
            f"cannot write {what}: directory {parent} is not writable ({exc.strerror})"
        ) from None
    os.close(fd)
    os.unlink(probe)


def _same_file(a: str | Path, b: str | Path) -> bool:
    """Whether two paths name one file: the same resolved path (symlinks followed), or, when both
    exist, the same inode (hard links)."""
    pa, pb = Path(a).expanduser(), Path(b).expanduser()
    if pa.resolve() == pb.resolve():
        return True
    try:
        return os.path.samefile(pa, pb)
    except OSError:
        return False


def check_outputs(outputs: dict[str, Any], inputs: dict[str, Any] | None = None) -> None:
    """Before any work: every output (``{"--save": path, ...}``; None/empty skipped) is writable
    (:func:`check_writable`), is not one of the ``inputs`` that exist on disk, and no two outputs are the same file. Nothing is written or touched."""
    given = [(flag, str(path)) for flag, path in outputs.items() if path]
    sources = [
        (flag, str(path))
        for flag, path in (inputs or {}).items()
        if path and Path(str(path)).expanduser().exists()
    ]
    for i, (flag, path) in enumerate(given):
        for iflag, ipath in sources:
            if _same_file(path, ipath):
                raise ConfigError(
                    f"{flag} {path} would overwrite the input {iflag} {ipath}; choose another output path"
                )
        for oflag, opath in given[:i]:
            if _same_file(path, opath):
                raise ConfigError(
                    f"{flag} {path} and {oflag} {opath} are the same file; give each output its own path"
                )
    for flag, path in given:
        check_writable(path, flag)


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
