"""Bounded, streaming CSV reading: every line and field has a maximum length, and numeric tables
are parsed in chunks of rows straight into a float array.

Why: a CSV file is untrusted input. A file without newlines (``/dev/zero`` behind a ``.csv``
name) must fail at the first over-long line instead of growing until ``MemoryError``, and a
table of a million rows must not pass through a million lists of strings at once. Errors are
:class:`~chainrule.errors.DataError` naming the file and the line.

- :func:`bounded_lines` yields the lines of an open text file, refusing one longer than
  :attr:`chainrule.limits.Limits.max_line_bytes` characters.
- :func:`csv_rows` yields ``(line number, stripped cells)`` for every non-blank row (UTF-8, a
  leading byte-order mark dropped; the csv module's own field limit applies to quoted fields).
- :func:`iter_float_chunks` / :func:`read_float_table` parse an all-numeric table (optional header
  row) in chunks, checking the column count and that every value is finite after the cast.
- :func:`read_features` is what ``predict`` reads: a ``.csv`` or ``.npy`` feature table.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import numpy as np

from chainrule.errors import DataError, DataNotFoundError
from chainrule.limits import LIMITS

__all__ = ["bounded_lines", "csv_rows", "iter_float_chunks", "read_features", "read_float_table", "read_npy"]

CHUNK_ROWS = 16_384
NPY_MAGIC = b"\x93NUMPY"


def bounded_lines(fh: IO[str], where: str, max_line: int | None = None) -> Iterator[str]:
    """The lines of ``fh`` (newlines kept), each at most ``max_line`` characters; a longer one is a
    :class:`DataError` (it is never read whole). Undecodable text is a :class:`DataError` too."""
    limit = LIMITS.max_line_bytes if max_line is None else max_line
    number = 0
    while True:
        try:
            line = fh.readline(limit + 1)
        except UnicodeDecodeError as e:
            raise DataError(
                f"{where}: not UTF-8 text near line {number + 1} (byte 0x{e.object[e.start]:02x}); "
                "save the file as UTF-8"
            ) from None
        if not line:
            return
        number += 1
        if len(line) > limit:
            raise DataError(
                f"{where}: line {number} is longer than {limit:,} characters (is it a CSV file with one "
                "row per line?)"
            )
        yield line


def _open_text(p: Path) -> IO[str]:
    try:
        if p.is_dir():
            raise DataError(f"{p}: is a directory, not a CSV file")
        return open(p, newline="", encoding="utf-8-sig")
    except FileNotFoundError:
        raise DataNotFoundError(f"CSV file not found: {p}") from None
    except OSError as e:
        raise DataError(f"cannot read CSV file {p}: {e.strerror or e}") from None


def csv_rows(path: str | Path, max_line: int | None = None) -> Iterator[tuple[int, list[str]]]:
    """``(line number, cells)`` for each non-blank row of a UTF-8 CSV file, cells stripped."""
    p = Path(path)
    with _open_text(p) as fh:
        reader = csv.reader(bounded_lines(fh, str(p), max_line))
        while True:
            try:
                row = next(reader)
            except StopIteration:
                return
            except csv.Error as e:
                raise DataError(f"{p}: malformed CSV near line {reader.line_num} ({e})") from None
            except OSError as e:
                raise DataError(f"cannot read CSV file {p}: {e.strerror or e}") from None
            cells = [c.strip() for c in row]
            if any(cells):
                yield reader.line_num, cells


def _is_number(cell: str) -> bool:
    try:
        float(cell)
    except ValueError:
        return False
    return True


def _parse_chunk(p: Path, rows: list[list[str]], lines: list[int], dtype: Any) -> np.ndarray:
    """Rows of numeric strings to a ``dtype`` array; name the first bad or non-finite cell."""
    try:
        x = np.array(rows, dtype=np.float64)
    except ValueError:
        for cells, line in zip(rows, lines, strict=True):
            for j, cell in enumerate(cells):
                if not _is_number(cell):
                    what = "empty value" if not cell else f"non-numeric value {cell[:40]!r}"
                    raise DataError(
                        f"{p}: row {line}, column {j + 1}: {what} (features must be numbers)"
                    ) from None
        raise DataError(f"{p}: cannot parse the rows as numbers") from None
    with np.errstate(over="ignore"):
        out = x.astype(dtype)
    bad = ~np.isfinite(out)
    if bad.any():
        i, j = (int(v) for v in np.argwhere(bad)[0])
        why = "is not finite" if not np.isfinite(x[i, j]) else f"overflows {np.dtype(dtype).name}"
        raise DataError(f"{p}: row {lines[i]}, column {j + 1}: value {rows[i][j][:40]!r} {why}")
    return out


def iter_float_chunks(
    path: str | Path, dtype: Any = np.float32, chunk_rows: int = CHUNK_ROWS, drop: str | None = None
) -> Iterator[np.ndarray]:
    """The rows of an all-numeric CSV table as ``(n, D)`` arrays of ``dtype``, ``chunk_rows`` at a
    time. A first row with a non-numeric cell is a header and skipped (its column named ``drop``,
    if any, is left out of every row); every row must have as many cells as the first data row;
    values must be finite after the cast to ``dtype``."""
    p = Path(path)
    width: int | None = None
    rows: list[list[str]] = []
    lines: list[int] = []
    first = True
    skip: int | None = None
    for line, cells in csv_rows(p):
        if first:
            first = False
            if not all(_is_number(c) for c in cells):
                skip = cells.index(drop) if drop is not None and drop in cells else None
                continue  # a header
        if skip is not None and len(cells) > skip:
            cells = cells[:skip] + cells[skip + 1 :]
        if width is None:
            width = len(cells)
        elif len(cells) != width:
            raise DataError(f"{p}: row {line} has {len(cells)} columns, expected {width}")
        rows.append(cells)
        lines.append(line)
        if len(rows) >= chunk_rows:
            yield _parse_chunk(p, rows, lines, dtype)
            rows, lines = [], []
    if rows:
        yield _parse_chunk(p, rows, lines, dtype)


def read_float_table(path: str | Path, dtype: Any = np.float32, drop: str | None = None) -> np.ndarray:
    """All rows of :func:`iter_float_chunks` as one ``(N, D)`` array (refuses a table without rows)."""
    chunks = list(iter_float_chunks(path, dtype, drop=drop))
    if not chunks:
        raise DataError(f"{path}: no data rows")
    return chunks[0] if len(chunks) == 1 else np.concatenate(chunks)


def read_npy(path: str | Path) -> np.ndarray:
    """One ``.npy`` array: the magic bytes are checked first (so a garbage file is called what it
    is), pickles and object arrays are refused, and the dtype must be a real number type."""
    p = Path(path)
    try:
        with open(p, "rb") as fh:
            magic = fh.read(len(NPY_MAGIC))
            if magic[:1] == b"\x80":  # a pickle's protocol opcode
                raise DataError(f"{p}: refusing to load pickled data (a pickle can run arbitrary code)")
            if magic != NPY_MAGIC:
                raise DataError(f"{p}: not a NumPy .npy file (it does not start with the .npy magic bytes)")
            fh.seek(0)
            arr = np.load(fh, allow_pickle=False)
    except DataError:
        raise  # ours, from the checks above (a DataError is a ValueError: keep it out of the next clauses)
    except FileNotFoundError:
        raise DataNotFoundError(f"NumPy file not found: {p}") from None
    except IsADirectoryError:
        raise DataError(f"{p}: is a directory, not a .npy file") from None
    except ValueError as e:
        if "pickle" in str(e).lower() or "object" in str(e).lower():
            raise DataError(
                f"{p}: refusing to load pickled data or object arrays; save plain numbers"
            ) from None
        raise DataError(f"{p}: not a valid .npy file ({' '.join(str(e).split())[:200]})") from None
    except (OSError, EOFError) as e:
        raise DataError(f"{p}: not a valid .npy file ({type(e).__name__})") from None
    if arr.dtype.kind not in "fiub":
        raise DataError(f"{p}: features must be real numbers, got dtype {arr.dtype}")
    return arr


def read_features(path: str | Path, dtype: Any = np.float32) -> np.ndarray:
    """A non-empty, finite ``(N, D)`` feature table of ``dtype`` from a ``.npy`` or ``.csv`` file
    (a CSV may have a header row; a 1-D ``.npy`` array is one row)."""
    p = Path(path)
    if not p.exists():
        raise DataNotFoundError(f"input file not found: {path}")
    suffix = p.suffix.lower()
    if suffix == ".npz":
        raise DataError(f"{path}: predict reads a .csv or .npy table, not an .npz archive")
    if suffix == ".npy":
        x = read_npy(p)
        if x.ndim == 1:
            x = x[None, :]
        if x.ndim != 2 or x.shape[0] == 0 or x.shape[1] == 0:
            raise DataError(f"{path}: expected a non-empty 2-D table of features, got shape {x.shape}")
        with np.errstate(over="ignore"):
            out = x.astype(dtype)
        if not np.all(np.isfinite(out)):
            raise DataError(
                f"{path}: features contain NaN or Inf (or values too large for {np.dtype(dtype).name})"
            )
        return out
    return read_float_table(p, dtype)
