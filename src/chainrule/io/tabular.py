"""CSV files: numeric feature columns and one label column (always 2-D: samples by features).

The file is read in one streaming pass (:func:`chainrule.io.csvstream.csv_rows`: bounded lines,
UTF-8, blank rows skipped). Rows are gathered a block at a time and parsed straight into float32
feature blocks and per-block label arrays, so no more than one block of rows (:data:`BLOCK_CELLS`
cells, whatever the width) is ever held as strings. The peak memory is about twice the float32
table (the blocks and their concatenation, then the table and its train/test copies) plus a fixed
amount for one block.

When a file has several errors, the first one met in that single pass is reported.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from chainrule.errors import ConfigError, DataError
from chainrule.io.csvstream import csv_rows
from chainrule.io.dataset import (
    Dataset,
    PathArg,
    as_index,
    check_xy,
    empty_class_warning,
    holdout_split,
    infer_task,
)
from chainrule.limits import LIMITS, check_classes

__all__ = ["load_csv"]

Row = tuple[int, list[str]]

#: cells per block of rows (as strings, ~60 bytes each: ~16 MB); a block has at least one row
BLOCK_CELLS = 1 << 18


def _is_number(cell: str) -> bool:
    """Whether ``float`` parses the cell (this includes ``nan`` and ``inf``)."""
    try:
        float(cell)
    except ValueError:
        return False
    return True


def _header_kind(first: list[str], label_index: int | None) -> bool | None:
    """Whether the first row is a header, or None when that depends on the labels below it.

    It is when it has a non-numeric, non-empty cell in a feature column. When its only text is
    in the label column (``label_index``; None when the label is named, which needs a header) it
    is a header if there are rows below it and their labels are all numbers: None, decided by
    :class:`_Reader` as it reads them.
    """
    text_cols = [j for j, c in enumerate(first) if c and not _is_number(c)]
    if not text_cols:
        return False
    if label_index is None:
        return True
    lj = label_index % len(first)  # an out-of-range index is reported by _label_column
    if any(j != lj for j in text_cols):
        return True
    return None


def _label_column(
    target: str | int | None, label_index: int | None, header: list[str] | None, p: Path, n_cols: int
) -> int:
    """The 0-based label column; check a named target exists in the header, an index is in range."""
    if label_index is None:
        if header is None:
            raise ConfigError(
                f"target={target!r} names a column, but {p} has no header row; "
                f"give the label column's index instead"
            )
        if target not in header:
            raise ConfigError(f"target column {target!r} not in {p}; columns: {', '.join(header)}")
        return header.index(str(target))
    if not -n_cols <= label_index < n_cols:
        raise ConfigError(f"target index {label_index} out of range for {n_cols} columns")
    return label_index % n_cols


@dataclass
class Labels:
    """The parsed target column: ``y`` (int64 classes or float32 values), the task, names, warnings."""

    y: np.ndarray
    n_classes: int
    class_names: list[str] | None
    task: str
    warnings: list[str]


def _put(blocks: list[np.ndarray], block: np.ndarray, front: bool) -> None:
    """Append ``block``, or put it first (the first row, once it turns out to be data)."""
    if front:
        blocks.insert(0, block)
    else:
        blocks.append(block)


class _LabelColumn:
    """The target column, one block of cells at a time, as :class:`Labels` at the end.

    Checks no label is empty. Text labels are class names, mapped to ``0 .. K-1`` in sorted order
    (refused for ``task="regress"``; more than :attr:`~chainrule.limits.Limits.max_classes` of
    them are refused by the end of the block holding the first one too many, which is named).
    Numeric labels go through :func:`infer_task`: class labels must be non-negative whole numbers
    (class indices, ``n_classes = max + 1``, no names); a regression target may be any finite
    numbers.

    While the column is all numbers its values are kept as float64, and its distinct cells are also
    numbered (up to the class limit): a text label further down makes every label a class name, and
    the numbering turns the earlier ones into classes without reading the file again. When there
    were more distinct numbers than the limit, that text label is refused by the limit, naming the
    row of the first label past it (as when the column is text from the start).
    """

    def __init__(self, reader: _Reader, task: str) -> None:
        self.reader = reader
        self.task = task
        self.text = False
        self.values: list[np.ndarray] = []  # float64 blocks while the column is numeric
        self.codes: list[np.ndarray] | None = []  # int32 blocks: indices into self.names
        self.names: dict[str, int] = {}
        self.over_limit = 0  # the line of the first label past the class limit, once not numbered
        self.nonfinite: Row | None = None  # the first non-finite number: (line, cell)
        self.not_class: Row | None = None  # the first number that is not a class index

    def where(self, line: int) -> str:
        return f"{self.reader.at(line)}, {self.reader.col(self.reader.label_col)}"

    def add(self, cells: list[str], lines: list[int], front: bool = False) -> None:
        """Read one block of label cells (``front``: they come before every block read so far)."""
        for cell, line in zip(cells, lines, strict=True):
            if not cell:
                raise DataError(f"{self.where(line)}: empty label")
        if not self.text:
            try:
                values = np.array([float(c) for c in cells], dtype=np.float64)
            except ValueError:
                i = next(i for i, c in enumerate(cells) if not _is_number(c))
                if self.task == "regress":
                    raise DataError(
                        f"{self.where(lines[i])}: regression target {cells[i]!r} is not a number"
                    ) from None
                self._to_text()
            else:
                self._numbers(values, cells, lines, front)
                return
        self._number_cells(cells, lines, front)

    def _numbers(self, values: np.ndarray, cells: list[str], lines: list[int], front: bool) -> None:
        """Keep a numeric block; note its first non-finite value and first non-class value."""
        finite = np.isfinite(values)
        if self.nonfinite is None and not finite.all():
            i = int(np.argmin(finite))
            self.nonfinite = (lines[i], cells[i])
        with np.errstate(invalid="ignore"):
            not_class = (values != np.floor(values)) | (values < 0)
        if self.not_class is None and not_class.any():
            i = int(np.argmax(not_class))
            self.not_class = (lines[i], cells[i])
        _put(self.values, values, front)
        if self.codes is not None and self.task != "regress":
            self._number_cells(cells, lines, front)

    def _number_cells(self, cells: list[str], lines: list[int], front: bool) -> None:
        """Number the distinct cells in order of appearance; over the class limit, stop (numbers)
        or refuse the file (class names, naming the row whose label is one class too many)."""
        assert self.codes is not None
        names, limit = self.names, LIMITS.max_classes
        codes = [names.setdefault(c, len(names)) for c in cells]
        if len(names) > limit:
            i = next(i for i, k in enumerate(codes) if k >= limit)  # one class too many
            if not self.text:  # too many for class names: keep the values only
                self.codes, self.names, self.over_limit = None, {}, lines[i]
                return
            check_classes(limit + 1, self.where(lines[i]))
        _put(self.codes, np.array(codes, dtype=np.int32), front)

    def _to_text(self) -> None:
        """A cell is text: every label is a class name from now on."""
        if self.codes is None:
            check_classes(LIMITS.max_classes + 1, self.where(self.over_limit))
        self.text = True
        self.values, self.nonfinite, self.not_class = [], None, None

    def finish(self) -> Labels:
        """The whole column as :class:`Labels`: class names sorted, or the numeric checks."""
        what = f"{self.reader.path}: {self.reader.col(self.reader.label_col)}"
        if self.text:
            assert self.codes is not None
            class_names = sorted(self.names)
            rank = np.empty(len(class_names), dtype=np.int64)
            rank[[self.names[name] for name in class_names]] = np.arange(len(class_names))
            y = rank[np.concatenate(self.codes)]
            return Labels(y, len(class_names), class_names, "classify", [])
        values = np.concatenate(self.values)
        self.values = []
        if self.nonfinite is not None:
            line, cell = self.nonfinite
            raise DataError(f"{self.where(line)}: non-finite label {cell!r}")
        task, warnings = infer_task(values, self.task, what)
        if task == "regress":
            return Labels(values, 1, None, "regress", warnings)
        if self.not_class is not None:
            line, cell = self.not_class
            raise DataError(
                f"{self.where(line)}: label {cell!r} is not a "
                f"non-negative integer (labels must be class indices 0..K-1 or names; "
                f"pass --task regress for a quantity)"
            )
        n_classes = int(values.max()) + 1
        check_classes(n_classes, what)  # before anything sized by the class count
        y = values.astype(np.int64)
        return Labels(y, n_classes, None, "classify", warnings + empty_class_warning(y, n_classes, what))


class _Reader:
    """One pass over the rows of a CSV table (after its first row, given as ``first``): the
    feature blocks (float32) and the :class:`_LabelColumn`. The rules are :func:`load_csv`'s."""

    def __init__(self, p: Path, rows: Iterator[Row], first: Row, target: str | int | None, task: str) -> None:
        self.path, self.rows = p, rows
        self.first_line, self.first = first
        self.n_cols = n_cols = len(self.first)
        label_index = as_index(target) if target is not None else n_cols - 1
        if label_index is None and not isinstance(target, str):
            raise ConfigError(f"target must be a column name or index, got {target!r}")
        kind = _header_kind(self.first, label_index)
        self.pending = kind is None  # a header only if every label below is a number
        self.below = 0  # rows below the first one, while pending (their labels were numbers)
        self.header = self.first if kind else None
        self.label_col = _label_column(target, label_index, self.header, p, n_cols)
        if n_cols < 2:
            raise DataError(
                f"{p}: needs at least 2 columns (features and a label), found {n_cols} "
                f"(the file must be comma-separated)"
            )
        self.feat_cols = [j for j in range(n_cols) if j != self.label_col]
        self.blocks: list[np.ndarray] = []
        self.labels = _LabelColumn(self, task)

    def at(self, line: int) -> str:
        """``"<path>: row <line>"``."""
        return f"{self.path}: row {line}"

    def col(self, j: int) -> str:
        """How messages name column ``j`` (0-based): by number, and by header name if there is one.

        While the header is undecided, this reads ahead through the labels to decide it (an error
        message is being written: the pass ends there). The row in error is below the first one
        and its label was a number, so the first row is a header unless a label further down is not.
        """
        if self.pending:
            lc = self.label_col
            self._decide(not any(len(cells) > lc and not _is_number(cells[lc]) for _, cells in self.rows))
        return f"column {j + 1} ({self.header[j]!r})" if self.header is not None else f"column {j + 1}"

    def _decide(self, header: bool) -> None:
        self.pending = False
        self.header = self.first if header else None

    def _split(self, cells: list[str]) -> tuple[list[str], str]:
        """A row's feature cells and its label cell."""
        lc = self.label_col
        return cells[:lc] + cells[lc + 1 :], cells[lc]

    def _parse_features(self, rows: list[list[str]], lines: list[int]) -> np.ndarray:
        """A block of feature cells as float32; name the first empty, non-numeric or non-finite cell,
        or one too large for float32 (finiteness is checked before the cast and after it)."""
        try:
            x = np.array(rows, dtype=np.float64)
        except ValueError:
            for cells, line in zip(rows, lines, strict=True):
                for k, cell in enumerate(cells):
                    if not cell:
                        raise DataError(
                            f"{self.at(line)}, {self.col(self.feat_cols[k])}: empty value"
                        ) from None
                    if not _is_number(cell):
                        raise DataError(
                            f"{self.at(line)}, {self.col(self.feat_cols[k])}: non-numeric value {cell!r} "
                            f"(features must be numbers)"
                        ) from None
            raise DataError(f"{self.path}: cannot parse the features as numbers") from None
        with np.errstate(over="ignore"):
            x32 = x.astype(np.float32)
        for arr, why in ((x, "non-finite value {!r}"), (x32, "value {!r} overflows float32")):
            finite = np.isfinite(arr)
            if not finite.all():
                i, k = (int(v) for v in np.argwhere(~finite)[0])
                raise DataError(
                    f"{self.at(lines[i])}, {self.col(self.feat_cols[k])}: {why.format(rows[i][k])}"
                )
        return x32

    def _add_block(
        self, rows: list[list[str]], labels: list[str], lines: list[int], front: bool = False
    ) -> None:
        x = self._parse_features(rows, lines)
        self.labels.add(labels, lines, front)
        _put(self.blocks, x, front)

    def _add_first(self) -> None:
        """The first row is data after all: it goes before every block."""
        feats, label = self._split(self.first)
        self._add_block([feats], [label], [self.first_line], front=True)

    def run(self) -> tuple[np.ndarray, Labels]:
        """Read every row; return the ``(N, D)`` float32 features and the labels."""
        rows: list[list[str]] = []
        labels: list[str] = []
        lines: list[int] = []
        block_rows = max(1, BLOCK_CELLS // self.n_cols)
        if self.header is None and not self.pending:
            feats, label = self._split(self.first)
            rows, labels, lines = [feats], [label], [self.first_line]
        for line, cells in self.rows:
            if len(cells) != self.n_cols:
                raise DataError(f"{self.path}: row {line} has {len(cells)} columns, expected {self.n_cols}")
            feats, label = self._split(cells)
            if self.pending:
                if _is_number(label):
                    self.below += 1
                else:
                    self._decide(False)
                    self._add_first()
            rows.append(feats)
            labels.append(label)
            lines.append(line)
            if len(lines) >= block_rows:
                self._add_block(rows, labels, lines)
                rows, labels, lines = [], [], []
        if lines:
            self._add_block(rows, labels, lines)
        del rows, labels, lines  # the last block's strings, before the blocks are joined
        if self.pending:
            self._decide(self.below > 0)
            if self.header is None:
                self._add_first()
        if not self.blocks:
            raise DataError(f"{self.path}: no data rows (only a header)")
        x = self.blocks[0] if len(self.blocks) == 1 else np.concatenate(self.blocks)
        self.blocks = []
        return x, self.labels.finish()


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

    The file is read once, in blocks of rows (see the module's docstring); the first row's
    header question, when it hangs on the labels below it, is settled by the end of that pass.
    """
    p = Path(path)
    with contextlib.closing(csv_rows(p)) as rows:
        first = next(rows, None)
        if first is None:
            raise DataError(f"{p}: empty CSV file (no rows)")
        reader = _Reader(p, rows, first, target, task)
        x, lab = reader.run()
    x32, y = check_xy(
        x,
        lab.y,
        n_classes=lab.n_classes if lab.task == "classify" else None,
        where=str(p),
        dtype=np.float32,
        task=lab.task,
    )
    train, test = holdout_split(x32, y, test_fraction, seed)
    header = reader.header
    feature_names = [header[j] for j in reader.feat_cols] if header is not None else None
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
