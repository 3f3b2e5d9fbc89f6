"""The IDX file format (MNIST and its drop-in replacements), raw or gzip-compressed.

Files are parsed byte by byte with bounded reads: the header is checked before the payload is
read, the payload is read in chunks up to the size the header promises (never preallocated from
an untrusted size), and any bytes beyond it are counted, not kept.
"""

from __future__ import annotations

import gzip
import math
import os
import struct
import zlib
from pathlib import Path
from typing import IO

import numpy as np

from chainrule.errors import DataError, DataNotFoundError
from chainrule.io.dataset import PathArg

__all__ = ["read_idx"]

_GZIP_MAGIC = b"\x1f\x8b"
_CHUNK = 1 << 18  # 256 KiB: the most held beyond the declared payload
_EXTRA_LIMIT = 1 << 22  # trailing bytes decompressed before a file is called oversized
_GZIP_MAX_RATIO = 1032  # deflate cannot expand one byte into more than ~1032
_IDX_TYPES = {
    0x08: "unsigned byte",
    0x09: "signed byte",
    0x0B: "short",
    0x0C: "int",
    0x0D: "float",
    0x0E: "double",
}


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
    """Count (and drop) the bytes left in ``f``, stopping at :data:`_EXTRA_LIMIT`."""
    total = 0
    while total < _EXTRA_LIMIT and (chunk := f.read(_CHUNK)):
        total += len(chunk)
    return total


def _read_header(f: IO[bytes], p: Path) -> tuple[int, ...]:
    """Read the IDX header; check the magic number, type code (unsigned byte only) and rank (1..4)."""
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
    return struct.unpack(f">{ndim}I", bytes(dims_raw))


def _parse_idx(f: IO[bytes], p: Path, limit: int | None) -> np.ndarray:
    """Parse a whole IDX stream; check the payload is exactly as long as the header says.

    ``limit`` is the most payload the stream can hold (the raw file's size, or what its
    compressed size can expand to): a header declaring more is refused before anything is
    allocated. The payload is then read into one array of the declared size, in small chunks,
    and at most :data:`_EXTRA_LIMIT` bytes past it are decompressed to report an oversized file."""
    dims = _read_header(f, p)
    expected = math.prod(dims)
    kind = "pixel data" if len(dims) >= 2 else "label data"
    if limit is not None and expected > limit:  # count what is there, keeping one chunk at a time
        found = 0
        while found <= limit and (chunk := f.read(_CHUNK)):
            found += len(chunk)
        raise DataError(
            f"{p}: truncated: expected {expected} bytes of {kind} for shape {dims}, found {found}"
        )
    data = np.empty(expected, dtype=np.uint8)
    view = memoryview(data)
    got = 0
    while got < expected:
        n = f.readinto(view[got : got + _CHUNK])  # type: ignore[attr-defined]
        if not n:
            raise DataError(
                f"{p}: truncated: expected {expected} bytes of {kind} for shape {dims}, found {got}"
            )
        got += n
    extra = _count_rest(f)
    if extra:
        more = "at least " if extra >= _EXTRA_LIMIT else ""
        raise DataError(
            f"{p}: oversized: expected {expected} bytes of {kind} for shape {dims}, found {more}{expected + extra}"
        )
    return data.reshape(dims)


def _read_idx_stream(fh: IO[bytes], p: Path) -> np.ndarray:
    """Parse an open file, decompressing it first when it starts with the gzip magic bytes."""
    is_gzip = False
    try:
        is_gzip = fh.read(2) == _GZIP_MAGIC
        fh.seek(0)
        size = os.fstat(fh.fileno()).st_size
        if is_gzip:
            with gzip.GzipFile(fileobj=fh, mode="rb") as gz:
                return _parse_idx(gz, p, size * _GZIP_MAX_RATIO + _CHUNK)
        return _parse_idx(fh, p, size)
    except (OSError, EOFError, zlib.error) as e:
        if is_gzip:
            raise DataError(f"{p}: corrupt or truncated gzip data ({e})") from None
        raise DataError(f"cannot read IDX file {p}: {e}") from None


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
