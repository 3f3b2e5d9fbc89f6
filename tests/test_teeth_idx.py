"""Tests that kill the mutation survivors of benchmarks/mutation_run.py group idx (io/idx.py):
exact error messages and byte-exact payloads, the files written here byte by byte."""

from __future__ import annotations

import gzip
import io
import re
import struct
import tracemalloc
from pathlib import Path

import numpy as np
import pytest

from chainrule.errors import DataError, DataNotFoundError
from chainrule.io import idx
from chainrule.io.idx import read_idx

CHUNK = 1 << 18  # the reader's chunk; payloads larger than one chunk take several reads


def _idx(dims: tuple[int, ...], payload: bytes, code: int = 8) -> bytes:
    return bytes([0, 0, code, len(dims)]) + struct.pack(f">{len(dims)}I", *dims) + payload


def _write(tmp_path: Path, data: bytes, gz: bool = False) -> Path:
    p = tmp_path / ("f.idx.gz" if gz else "f.idx")
    p.write_bytes(gzip.compress(data) if gz else data)
    return p


def _error(p: Path) -> str:
    with pytest.raises(DataError) as e:
        read_idx(p)
    return str(e.value)


@pytest.mark.parametrize("gz", [False, True])
@pytest.mark.parametrize("dims", [(7,), (3, 2), (2, 3, 4), (2, 1, 3, 2), (600, 700)])
def test_teeth_idx_round_trip(tmp_path: Path, dims: tuple[int, ...], gz: bool) -> None:
    n = int(np.prod(dims))
    payload = (
        bytes((i * 7 + i // 251) % 256 for i in range(n))
        if n < 1000
        else np.random.default_rng(0).integers(0, 256, n, dtype=np.uint8).tobytes()
    )
    a = read_idx(_write(tmp_path, _idx(dims, payload), gz))
    assert a.dtype == np.uint8 and a.shape == dims and a.flags.writeable
    assert a.tobytes() == payload


def test_teeth_idx_short_header(tmp_path: Path) -> None:
    p = _write(tmp_path, b"\x00\x00\x08")
    assert _error(p) == f"{p}: not an IDX file: only 3 byte(s), an IDX header has at least 4"
    p = _write(tmp_path, b"")
    assert _error(p) == f"{p}: not an IDX file: only 0 byte(s), an IDX header has at least 4"


@pytest.mark.parametrize("magic", [b"\x01\x00", b"\x00\x01", b"\xff\xff"])
def test_teeth_idx_bad_magic(tmp_path: Path, magic: bytes) -> None:
    p = _write(tmp_path, magic + b"\x08\x01" + bytes(5))
    assert _error(p) == (
        f"{p}: not an IDX file: bad magic number 0x{magic.hex()}0801 "
        "(expected 0x000008NN: two zero bytes, type code, number of dimensions)"
    )


@pytest.mark.parametrize("code,kind", [(0x0D, "float"), (0x09, "signed byte"), (0x42, "unknown type")])
def test_teeth_idx_type_codes(tmp_path: Path, code: int, kind: str) -> None:
    p = _write(tmp_path, _idx((2,), b"\x00\x01", code=code))
    assert _error(p) == (
        f"{p}: unsupported IDX data type 0x{code:02x} ({kind}); only 0x08 (unsigned byte) is supported"
    )


@pytest.mark.parametrize("ndim", [0, 5, 255])
def test_teeth_idx_rank(tmp_path: Path, ndim: int) -> None:
    p = _write(tmp_path, bytes([0, 0, 8, ndim]) + bytes(4 * 6))
    assert _error(p) == f"{p}: unsupported IDX rank {ndim}; expected 1 to 4 dimensions"


def test_teeth_idx_truncated_dimensions(tmp_path: Path) -> None:
    p = _write(tmp_path, bytes([0, 0, 8, 3]) + bytes(9))
    assert _error(p) == f"{p}: truncated header: expected 12 bytes of dimension sizes, found 9"


@pytest.mark.parametrize("gz", [False, True])
def test_teeth_idx_truncated_and_oversized_payload(tmp_path: Path, gz: bool) -> None:
    p = _write(tmp_path, _idx((3, 2, 2), bytes(10)), gz)
    assert _error(p) == f"{p}: truncated: expected 12 bytes of pixel data for shape (3, 2, 2), found 10"
    p = _write(tmp_path, _idx((5,), bytes(2)), gz)
    assert _error(p) == f"{p}: truncated: expected 5 bytes of label data for shape (5,), found 2"
    p = _write(tmp_path, _idx((3, 2), bytes(9)), gz)
    assert _error(p) == f"{p}: oversized: expected 6 bytes of pixel data for shape (3, 2), found 9"


def test_teeth_idx_truncated_across_chunks(tmp_path: Path) -> None:
    # payload longer than one read chunk, header declaring one byte more than is there
    p = _write(tmp_path, _idx((CHUNK + 1001,), bytes(CHUNK + 1000)))
    assert _error(p) == (
        f"{p}: truncated: expected {CHUNK + 1001} bytes of label data for shape ({CHUNK + 1001},), "
        f"found {CHUNK + 1000}"
    )


def test_teeth_idx_header_declaring_more_than_the_file_holds(tmp_path: Path) -> None:
    # a raw file cannot hold more payload than its size: refused before allocating, with the count found
    p = _write(tmp_path, _idx((60000, 28, 28), bytes(100)))
    assert (
        _error(p)
        == f"{p}: truncated: expected 47040000 bytes of pixel data for shape (60000, 28, 28), found 100"
    )
    p = _write(tmp_path, _idx((120,), bytes(100)))  # 120 > the 108-byte file
    assert _error(p) == f"{p}: truncated: expected 120 bytes of label data for shape (120,), found 100"


def test_teeth_idx_declared_exactly_the_file_size_is_read(tmp_path: Path) -> None:
    # expected == file size (header included) is not over the limit: read, then found short
    p = _write(tmp_path, _idx((108,), bytes(100)))
    assert _error(p) == f"{p}: truncated: expected 108 bytes of label data for shape (108,), found 100"


def test_teeth_idx_far_oversized_counts_at_most_the_limit(tmp_path: Path) -> None:
    limit = 1 << 22
    p = _write(tmp_path, _idx((4,), bytes(4 + limit + 3 * CHUNK)))
    assert _error(p) == (
        f"{p}: oversized: expected 4 bytes of label data for shape (4,), found at least {4 + limit}"
    )
    p = _write(tmp_path, _idx((4,), bytes(4 + limit - 1)))
    assert (
        _error(p) == f"{p}: oversized: expected 4 bytes of label data for shape (4,), found {4 + limit - 1}"
    )


def test_teeth_idx_corrupt_gzip_and_unreadable_files(tmp_path: Path) -> None:
    good = gzip.compress(_idx((3, 2), bytes(6)))
    p = _write(tmp_path, good[:-12])
    assert re.fullmatch(re.escape(f"{p}: corrupt or truncated gzip data (") + r".+\)", _error(p))
    p = _write(tmp_path, good[:10] + b"\xff" * 20 + good[30:])
    assert _error(p).startswith(f"{p}: corrupt or truncated gzip data (")
    with pytest.raises(DataNotFoundError, match=r"^IDX file not found: .*missing\.idx$"):
        read_idx(tmp_path / "missing.idx")
    assert _error(tmp_path) == f"cannot read IDX file {tmp_path}: Is a directory"


def test_teeth_idx_gzip_is_detected_by_content_not_name(tmp_path: Path) -> None:
    raw = tmp_path / "looks.gz"
    raw.write_bytes(_idx((2, 2), b"\x01\x02\x03\x04"))
    assert read_idx(raw).tolist() == [[1, 2], [3, 4]]
    gz = tmp_path / "plain.idx"
    gz.write_bytes(gzip.compress(_idx((2, 2), b"\x01\x02\x03\x04")))
    assert read_idx(str(gz)).tolist() == [[1, 2], [3, 4]]


def test_teeth_idx_oversized_declaration_counts_every_chunk(tmp_path: Path) -> None:
    p = _write(tmp_path, _idx((1_000_000,), bytes(CHUNK + 5000)))
    assert (
        _error(p)
        == f"{p}: truncated: expected 1000000 bytes of label data for shape (1000000,), found {CHUNK + 5000}"
    )


def test_teeth_idx_gzip_declaring_more_than_it_can_expand_to_is_refused_unallocated(tmp_path: Path) -> None:
    # 65535**3 bytes (~281 TB) from a few dozen compressed bytes: refused by counting, never allocated
    p = _write(tmp_path, _idx((65535, 65535, 65535), bytes(10)), gz=True)
    assert _error(p) == (
        f"{p}: truncated: expected {65535**3} bytes of pixel data for shape (65535, 65535, 65535), found 10"
    )


def test_teeth_idx_refusal_holds_one_chunk_at_a_time(tmp_path: Path) -> None:
    # 16 MiB of zeros compress to ~16 KiB; the header asks for far more than that can expand to
    p = _write(tmp_path, _idx((1 << 30,), bytes(1 << 24)), gz=True)
    tracemalloc.start()
    try:
        msg = _error(p)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert msg.endswith(f"found {1 << 24}")
    assert peak < (1 << 22), peak  # a few chunks at most, never the 16 MiB stream


class _Trickle(io.RawIOBase):
    """A stream that returns at most 3 bytes a read (a pipe, a socket)."""

    def __init__(self, data: bytes) -> None:
        self.data = data

    def readable(self) -> bool:
        return True

    def read(self, n: int = -1) -> bytes:
        n = len(self.data) if n is None or n < 0 else n
        out, self.data = self.data[: min(n, 3)], self.data[min(n, 3) :]
        return out


def test_teeth_read_upto_short_reads() -> None:
    assert idx._read_upto(_Trickle(b"abcdefghij"), 7) == b"abcdefg"
    assert idx._read_upto(_Trickle(b"abcde"), 7) == b"abcde"
    assert idx._read_upto(_Trickle(b"abc"), 0) == b""


class _Failing(io.BytesIO):
    def read(self, n: int | None = -1) -> bytes:
        raise OSError(5, "Input/output error")


def test_teeth_idx_read_error_before_the_magic_is_known(tmp_path: Path) -> None:
    p = tmp_path / "f.idx"
    with pytest.raises(DataError) as e:
        idx._read_idx_stream(_Failing(b""), p)
    assert str(e.value) == f"cannot read IDX file {p}: [Errno 5] Input/output error"
