"""The CSV loader as it was before it streamed (chainrule.io.tabular at commit 7b241d1), kept as
the reference the streaming ``load_csv`` must match: same data, same order (so the same train/test
split under a seed), same header decision, same labels and warnings, same error messages.

It reads every row into lists of strings first, which is why it was replaced (issue 13).
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from chainrule.errors import ConfigError, DataError, DataNotFoundError
from chainrule.io.csvstream import bounded_lines
from chainrule.io.dataset import (
    Dataset,
    PathArg,
    as_index,
    check_xy,
    empty_class_warning,
    holdout_split,
    infer_task,
)
from chainrule.limits import check_classes

__all__ = ["load_csv"]


@dataclass
class _Table:
    """The non-blank rows of a CSV file, their 1-based line numbers, and the header if any."""

    path: Path
    rows: list[list[str]]
    lines: list[int]
    header: list[str] | None = None

    def col(self, j: int) -> str:
        """How messages name column ``j`` (0-based): by number, and by header name if there is one."""
        return f"column {j + 1} ({self.header[j]!r})" if self.header is not None else f"column {j + 1}"

    def where(self, i: int) -> str:
        """``"<path>: row <line>"`` for data row ``i``."""
        return f"{self.path}: row {self.lines[i]}"


def _is_number(cell: str) -> bool:
    """Whether ``float`` parses the cell (this includes ``nan`` and ``inf``)."""
    try:
        float(cell)
    except ValueError:
        return False
    return True


def _read_rows(p: Path) -> _Table:
    """Read every non-blank row with its cells stripped; check the file exists, is UTF-8 and CSV."""
    rows: list[list[str]] = []
    lines: list[int] = []
    try:
        with open(p, newline="", encoding="utf-8-sig") as fh:
            reader = csv.reader(bounded_lines(fh, str(p)))  # each line capped (chainrule.limits)
            for row in reader:
                cells = [c.strip() for c in row]
                if any(cells):
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
    return _Table(p, rows, lines)


def _has_header(rows: list[list[str]], label_index: int | None) -> bool:
    """Whether the first row is a header.

    It is when it has a non-numeric, non-empty cell in a feature column; when its only text is
    in the label column (``label_index``; None when the label is named, which needs a header)
    it is a header if the labels below it are all numbers.
    """
    text_cols = [j for j, c in enumerate(rows[0]) if c and not _is_number(c)]
    if not text_cols:
        return False
    if label_index is None:
        return True
    lj = label_index % len(rows[0])  # an out-of-range index is reported by _label_column
    if any(j != lj for j in text_cols):
        return True
    below = [r[lj] for r in rows[1:] if len(r) > lj]
    return bool(below) and all(_is_number(c) for c in below)


def _label_column(target: str | int | None, label_index: int | None, table: _Table, n_cols: int) -> int:
    """The 0-based label column; check a named target exists in the header, an index is in range."""
    if label_index is None:
        if table.header is None:
            raise ConfigError(
                f"target={target!r} names a column, but {table.path} has no header row; "
                f"give the label column's index instead"
            )
        if target not in table.header:
            raise ConfigError(
                f"target column {target!r} not in {table.path}; columns: {', '.join(table.header)}"
            )
        return table.header.index(str(target))
    if not -n_cols <= label_index < n_cols:
        raise ConfigError(f"target index {label_index} out of range for {n_cols} columns")
    return label_index % n_cols


def _parse_features(table: _Table, feat_cols: list[int]) -> np.ndarray:
    """The feature cells as float64; name the first empty, non-numeric or non-finite cell."""
    try:
        x = np.array([[r[j] for j in feat_cols] for r in table.rows], dtype=np.float64)
    except ValueError:
        for i, cells in enumerate(table.rows):
            for j in feat_cols:
                if not cells[j]:
                    raise DataError(f"{table.where(i)}, {table.col(j)}: empty value") from None
                if not _is_number(cells[j]):
                    raise DataError(
                        f"{table.where(i)}, {table.col(j)}: non-numeric value {cells[j]!r} "
                        f"(features must be numbers)"
                    ) from None
        raise DataError(f"{table.path}: cannot parse the features as numbers") from None
    finite = np.isfinite(x)
    if not finite.all():
        i, k = (int(v) for v in np.argwhere(~finite)[0])
        j = feat_cols[k]
        raise DataError(f"{table.where(i)}, {table.col(j)}: non-finite value {table.rows[i][j]!r}")
    return x


@dataclass
class Labels:
    """The parsed target column: ``y`` (int64 classes or float32 values), the task, names, warnings."""

    y: np.ndarray
    n_classes: int
    class_names: list[str] | None
    task: str
    warnings: list[str]


def _parse_labels(table: _Table, col: int, task: str = "auto") -> Labels:
    """The target column as :class:`Labels`.

    Checks no label is empty. Text labels are class names, mapped to ``0 .. K-1`` in sorted order
    (refused for ``task="regress"``). Numeric labels go through :func:`infer_task`: class labels
    must be non-negative whole numbers (class indices, ``n_classes = max + 1``, no names); a
    regression target may be any finite numbers.
    """
    raw = [r[col] for r in table.rows]
    for i, cell in enumerate(raw):
        if not cell:
            raise DataError(f"{table.where(i)}, {table.col(col)}: empty label")
    what = f"{table.path}: {table.col(col)}"
    if not all(_is_number(c) for c in raw):
        if task == "regress":
            i = next(i for i, c in enumerate(raw) if not _is_number(c))
            raise DataError(
                f"{table.where(i)}, {table.col(col)}: regression target {raw[i]!r} is not a number"
            )
        class_names = sorted(set(raw))
        index = {name: k for k, name in enumerate(class_names)}
        y = np.array([index[c] for c in raw], dtype=np.int64)
        return Labels(y, len(class_names), class_names, "classify", [])
    values = np.array([float(c) for c in raw])
    for i, (v, cell) in enumerate(zip(values, raw, strict=True)):
        if not math.isfinite(v):
            raise DataError(f"{table.where(i)}, {table.col(col)}: non-finite label {cell!r}")
    task, warnings = infer_task(values, task, what)
    if task == "regress":
        return Labels(values, 1, None, "regress", warnings)
    for i, (v, cell) in enumerate(zip(values, raw, strict=True)):
        if v != math.floor(v) or v < 0:
            raise DataError(
                f"{table.where(i)}, {table.col(col)}: label {cell!r} is not a "
                f"non-negative integer (labels must be class indices 0..K-1 or names; "
                f"pass --task regress for a quantity)"
            )
    n_classes = int(values.max()) + 1
    check_classes(n_classes, what)  # before anything sized by the class count
    y = values.astype(np.int64)
    return Labels(y, n_classes, None, "classify", warnings + empty_class_warning(y, n_classes, what))


def load_csv(
    path: PathArg,
    target: str | int | None = None,
    *,
    test_fraction: float = 0.2,
    seed: int = 0,
    task: str = "auto",
) -> Dataset:
    """Load a CSV file of numeric features and one label column.

    A first row with a non-numeric, non-empty cell in a feature column is a header (a first
    row whose only text is in the label column counts as a header when the labels below it are
    numbers). ``target`` picks the label column by header name or by (0-based, may be negative)
    index; by default it is the last column. Labels may be integers (used as class indices,
    ``n_classes = max + 1``) or strings (mapped to ``0 .. K-1`` in sorted order and kept in
    ``class_names``). Rows are shuffled with ``seed`` and ``test_fraction`` of them are held
    out as the test part. Blank lines are skipped. ``task`` is ``classify``, ``regress`` or
    ``auto`` (decided from the target column by :func:`~chainrule.io.dataset.infer_task`, which
    warns in ``Dataset.warnings`` when integer targets have many distinct values).

    Checks: the file exists and is UTF-8 CSV with at least 2 columns and one data row, every
    row has as many columns as the first, features are finite numbers, labels are non-empty,
    and the target names an existing column (:class:`ConfigError` otherwise); each error names
    the row and column.
    """
    p = Path(path)
    table = _read_rows(p)
    n_cols = len(table.rows[0])
    label_index = as_index(target) if target is not None else n_cols - 1
    if label_index is None and not isinstance(target, str):
        raise ConfigError(f"target must be a column name or index, got {target!r}")
    if _has_header(table.rows, label_index):
        table = _Table(p, table.rows[1:], table.lines[1:], table.rows[0])
    label_col = _label_column(target, label_index, table, n_cols)
    if n_cols < 2:
        raise DataError(
            f"{p}: needs at least 2 columns (features and a label), found {n_cols} "
            f"(the file must be comma-separated)"
        )
    if not table.rows:
        raise DataError(f"{p}: no data rows (only a header)")
    for cells, line in zip(table.rows, table.lines, strict=True):
        if len(cells) != n_cols:
            raise DataError(f"{p}: row {line} has {len(cells)} columns, expected {n_cols}")

    feat_cols = [j for j in range(n_cols) if j != label_col]
    x = _parse_features(table, feat_cols)
    lab = _parse_labels(table, label_col, task)
    x32, y = check_xy(
        x,
        lab.y,
        n_classes=lab.n_classes if lab.task == "classify" else None,
        where=str(p),
        dtype=np.float32,
        task=lab.task,
    )
    train, test = holdout_split(x32, y, test_fraction, seed)
    feature_names = [table.header[j] for j in feat_cols] if table.header is not None else None
    return Dataset.from_parts(
        train,
        test,
        p.name,
        lab.n_classes,
        feature_names=feature_names,
        class_names=lab.class_names,
        task=lab.task,
        warnings=lab.warnings,
    )
