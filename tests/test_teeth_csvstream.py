"""Tests that kill the mutation survivors of benchmarks/mutation_run.py group csvstream
(io/csvstream.py): exact messages, line numbers and values, on files written here."""

from __future__ import annotations

import io
import pickle
from pathlib import Path

import numpy as np
import pytest

from chainrule import limits
from chainrule.errors import DataError, DataNotFoundError
from chainrule.io import csvstream as cs


def _err(fn, *args, **kw) -> str:  # type: ignore[no-untyped-def]
    with pytest.raises(DataError) as e:
        fn(*args, **kw)
    return str(e.value)


def _file(tmp_path: Path, data: bytes | str, name: str = "t.csv") -> Path:
    p = tmp_path / name
    p.write_bytes(data.encode() if isinstance(data, str) else data)
    return p


def test_teeth_bounded_lines() -> None:
    assert list(cs.bounded_lines(io.StringIO("ab\ncd"), "w", 3)) == ["ab\n", "cd"]
    assert list(cs.bounded_lines(io.StringIO(""), "w", 3)) == []
    text = "a" * 1233 + "\n" + "b" * 1234 + "\n"  # line 1 is 1,234 characters with its newline
    assert len(list(cs.bounded_lines(io.StringIO(text[:1234]), "w", 1234))) == 1
    msg = _err(list, cs.bounded_lines(io.StringIO(text), "src", 1234))
    assert msg == "src: line 2 is longer than 1,234 characters (is it a CSV file with one row per line?)"
    with limits.override(max_line_bytes=4):
        assert list(cs.bounded_lines(io.StringIO("abc\n"), "w")) == ["abc\n"]
        msg = _err(list, cs.bounded_lines(io.StringIO("abc\nabcd\n"), "w"))
    assert msg == "w: line 2 is longer than 4 characters (is it a CSV file with one row per line?)"


def test_teeth_not_utf8(tmp_path: Path) -> None:
    p = _file(tmp_path, b"\xe9,1\n2,3\n")
    assert (
        _err(list, cs.csv_rows(p)) == f"{p}: not UTF-8 text near line 1 (byte 0xe9); save the file as UTF-8"
    )


def test_teeth_open_text_errors(tmp_path: Path) -> None:
    assert _err(list, cs.csv_rows(tmp_path)) == f"{tmp_path}: is a directory, not a CSV file"
    with pytest.raises(DataNotFoundError) as e:
        list(cs.csv_rows(tmp_path / "no.csv"))
    assert str(e.value) == f"CSV file not found: {tmp_path / 'no.csv'}"
    f = _file(tmp_path, "1\n")
    assert _err(list, cs.csv_rows(f / "x.csv")) == f"cannot read CSV file {f / 'x.csv'}: Not a directory"


def test_teeth_csv_rows(tmp_path: Path) -> None:
    p = _file(tmp_path, b'\xef\xbb\xbfa, b \r\n\r\n , \n1,"x\r\ny"\r\n 2 ,3\n')
    assert list(cs.csv_rows(p)) == [(1, ["a", "b"]), (5, ["1", "x\r\ny"]), (6, ["2", "3"])]
    p = _file(tmp_path, "a,b\n" + "c," + "d" * 40, "long.csv")
    assert _err(list, cs.csv_rows(p, max_line=20)) == (
        f"{p}: line 2 is longer than 20 characters (is it a CSV file with one row per line?)"
    )


def test_teeth_malformed_csv(tmp_path: Path) -> None:
    big = "x" * (140_000)
    p = _file(tmp_path, f'a,b\n1,"{big}"\n')
    assert (
        _err(list, cs.csv_rows(p))
        == f"{p}: malformed CSV near line 2 (field larger than field limit (131072))"
    )


def test_teeth_is_number() -> None:
    assert cs._is_number("1e5") and cs._is_number(" -2.5 ") and cs._is_number("nan")
    assert not cs._is_number("abc") and not cs._is_number("")


def test_teeth_parse_errors(tmp_path: Path) -> None:
    p = _file(tmp_path, "a,b\n1,2\n3,abc\n")
    assert (
        _err(cs.read_float_table, p)
        == f"{p}: row 3, column 2: non-numeric value 'abc' (features must be numbers)"
    )
    p = _file(tmp_path, "1,2\n3,\n")
    assert _err(cs.read_float_table, p) == f"{p}: row 2, column 2: empty value (features must be numbers)"
    p = _file(tmp_path, "1,2\n" + "y" * 50 + ",3\n")
    assert _err(cs.read_float_table, p) == (
        f"{p}: row 2, column 1: non-numeric value {'y' * 40!r} (features must be numbers)"
    )
    msg = _err(cs._parse_chunk, p, [["1", "2"], ["3"]], [1, 2], np.float32)
    assert msg == f"{p}: cannot parse the rows as numbers"


def test_teeth_non_finite_values(tmp_path: Path) -> None:
    p = _file(tmp_path, "1,2\n3,4\n5,nan\n")
    assert _err(cs.read_float_table, p) == f"{p}: row 3, column 2: value 'nan' is not finite"
    p = _file(tmp_path, "1,2\n1e39,4\n")
    assert _err(cs.read_float_table, p) == f"{p}: row 2, column 1: value '1e39' overflows float32"
    assert cs.read_float_table(p, np.float64)[1, 0] == 1e39
    p = _file(tmp_path, "1,2\n1e400,4\n")
    assert _err(cs.read_float_table, p, np.float64) == f"{p}: row 2, column 1: value '1e400' is not finite"


def test_teeth_chunks_header_and_drop(tmp_path: Path) -> None:
    p = _file(tmp_path, "a,y,b\n1,0,2\n3,1,4\n5,0,6\n7,1,8\n9,0,10\n")
    chunks = list(cs.iter_float_chunks(p, chunk_rows=2, drop="y"))
    assert [c.shape for c in chunks] == [(2, 2), (2, 2), (1, 2)]
    assert all(c.dtype == np.float32 for c in chunks)
    np.testing.assert_array_equal(np.concatenate(chunks), [[1, 2], [3, 4], [5, 6], [7, 8], [9, 10]])
    full = cs.read_float_table(p)  # no drop: the header is skipped, every column kept
    np.testing.assert_array_equal(full[:, 1], [0, 1, 0, 1, 0])
    assert cs.read_float_table(p, drop="zz").shape == (5, 3)
    p = _file(tmp_path, "1,2\n3,4\n")  # a numeric first row is data
    np.testing.assert_array_equal(cs.read_float_table(p, np.float64, drop="1"), [[1, 2], [3, 4]])


def test_teeth_drop_on_short_rows_and_widths(tmp_path: Path) -> None:
    p = _file(tmp_path, "a,b,y\n1,2,0\n3,4\n")
    # the dropped column is the last: a row too short to hold it keeps its cells (and then has 2 columns)
    np.testing.assert_array_equal(cs.read_float_table(p, drop="y"), [[1, 2], [3, 4]])
    p = _file(tmp_path, "1,2\n3,4\n5,6,7\n")
    assert _err(cs.read_float_table, p) == f"{p}: row 3 has 3 columns, expected 2"


def test_teeth_read_float_table_empty_and_large(tmp_path: Path) -> None:
    p = _file(tmp_path, "a,b\n\n")
    assert _err(cs.read_float_table, str(p)) == f"{p}: no data rows"
    n = cs.CHUNK_ROWS + 3
    p = _file(tmp_path, "x\n" + "".join(f"{i}\n" for i in range(n)), "big.csv")
    x = cs.read_float_table(p)
    assert x.shape == (n, 1) and x.dtype == np.float32
    np.testing.assert_array_equal(x[:, 0], np.arange(n))


def test_teeth_read_npy_refusals(tmp_path: Path) -> None:
    p = _file(tmp_path, pickle.dumps([1, 2]), "p.npy")
    assert _err(cs.read_npy, p) == f"{p}: refusing to load pickled data (a pickle can run arbitrary code)"
    p = _file(tmp_path, b"garbage that is long enough", "g.npy")
    assert _err(cs.read_npy, p) == f"{p}: not a NumPy .npy file (it does not start with the .npy magic bytes)"
    with pytest.raises(DataNotFoundError) as e:
        cs.read_npy(tmp_path / "no.npy")
    assert str(e.value) == f"NumPy file not found: {tmp_path / 'no.npy'}"
    d = tmp_path / "d.npy"
    d.mkdir()
    assert _err(cs.read_npy, d) == f"{d}: is a directory, not a .npy file"
    p = tmp_path / "o.npy"
    np.save(p, np.array([1, "a"], dtype=object), allow_pickle=True)
    assert _err(cs.read_npy, p) == f"{p}: refusing to load pickled data or object arrays; save plain numbers"
    p = tmp_path / "c.npy"
    np.save(p, np.array([1 + 2j]))
    assert _err(cs.read_npy, p) == f"{p}: features must be real numbers, got dtype complex128"
    p = tmp_path / "u.npy"
    np.save(p, np.array(["ab"]))
    assert _err(cs.read_npy, p) == f"{p}: features must be real numbers, got dtype <U2"


def test_teeth_read_npy_truncated(tmp_path: Path) -> None:
    good = tmp_path / "good.npy"
    np.save(good, np.arange(6.0))
    data = good.read_bytes()
    p = _file(tmp_path, data[:12], "h.npy")  # magic and version, header cut short
    msg = _err(cs.read_npy, p)
    assert msg.startswith(f"{p}: not a valid .npy file (") and msg.endswith(")")
    p = _file(tmp_path, data[:-8], "t.npy")  # header whole, payload short
    msg = _err(cs.read_npy, p)
    assert msg.startswith(f"{p}: not a valid .npy file (") and "\n" not in msg


def test_teeth_read_npy_kinds(tmp_path: Path) -> None:
    for i, a in enumerate(
        [np.arange(3, dtype=np.uint8), np.array([True, False]), np.arange(2, dtype=np.int16)]
    ):
        p = tmp_path / f"{i}.npy"
        np.save(p, a)
        np.testing.assert_array_equal(cs.read_npy(str(p)), a)


def test_teeth_read_features(tmp_path: Path) -> None:
    with pytest.raises(DataNotFoundError) as e:
        cs.read_features(str(tmp_path / "no.csv"))
    assert str(e.value) == f"input file not found: {tmp_path / 'no.csv'}"
    z = tmp_path / "a.NPZ"
    with open(z, "wb") as fh:
        np.savez(fh, x=np.ones(2))
    assert _err(cs.read_features, z) == f"{z}: predict reads a .csv or .npy table, not an .npz archive"
    p = tmp_path / "row.NPY"
    with open(p, "wb") as fh:
        np.save(fh, np.array([1.0, 2.0, 3.0]))
    x = cs.read_features(p)
    assert x.shape == (1, 3) and x.dtype == np.float32
    np.testing.assert_array_equal(cs.read_features(p, np.float64), [[1.0, 2.0, 3.0]])
    assert cs.read_features(p, np.float64).dtype == np.float64
    for shape in [(2, 2, 2), (0, 3), (3, 0), ()]:
        p = tmp_path / "s.npy"
        np.save(p, np.zeros(shape))
        assert _err(cs.read_features, p) == (
            f"{p}: expected a non-empty 2-D table of features, got shape {np.zeros(shape).shape if shape else ()}"
        )
    p = tmp_path / "nan.npy"
    np.save(p, np.array([[1.0, np.nan]]))
    assert _err(cs.read_features, p) == f"{p}: features contain NaN or Inf (or values too large for float32)"
    p = tmp_path / "big.npy"
    np.save(p, np.array([[1e39, 0.0]]))
    assert _err(cs.read_features, p) == f"{p}: features contain NaN or Inf (or values too large for float32)"
    assert cs.read_features(p, np.float64)[0, 0] == 1e39
    c = _file(tmp_path, "a,b\n1,2\n")
    np.testing.assert_array_equal(cs.read_features(c), [[1, 2]])
    assert cs.read_features(c).dtype == np.float32 and cs.read_features(c, np.float64).dtype == np.float64


def test_teeth_long_non_finite_value_is_cut_at_40_characters(tmp_path: Path) -> None:
    value = "0" * 44 + "1e39"  # 48 characters, overflows float32
    p = _file(tmp_path, f"1,2\n{value},3\n")
    assert _err(cs.read_float_table, p) == f"{p}: row 2, column 1: value {value[:40]!r} overflows float32"


def test_teeth_error_in_a_full_chunk_names_file_and_line(tmp_path: Path) -> None:
    p = _file(tmp_path, "a,b\n1,2\n3,x\n5,6\n")
    with pytest.raises(DataError) as e:
        list(cs.iter_float_chunks(p, chunk_rows=2))
    assert str(e.value) == f"{p}: row 3, column 2: non-numeric value 'x' (features must be numbers)"
    p = _file(tmp_path, "1,2\n3,inf\n5,6\n")
    with pytest.raises(DataError) as e:
        list(cs.iter_float_chunks(p, chunk_rows=2))
    assert str(e.value) == f"{p}: row 2, column 2: value 'inf' is not finite"


def _numpy_message(data: bytes) -> str:
    """What NumPy itself says about these bytes, whitespace folded, cut at 200 characters."""
    try:
        np.load(io.BytesIO(data), allow_pickle=False)
    except ValueError as e:
        return " ".join(str(e).split())[:200]
    raise AssertionError("NumPy loaded it")


def test_teeth_read_npy_passes_numpy_s_reason_on(tmp_path: Path) -> None:
    header = "{'descr': '<f8', 'fortran_order': False, 'shape': (3,),\n\n   " + "x" * 300 + "}"
    header += " " * (-(10 + len(header) + 1) % 64) + "\n"
    data = b"\x93NUMPY\x01\x00" + len(header).to_bytes(2, "little") + header.encode("latin1") + bytes(24)
    p = _file(tmp_path, data, "long.npy")
    reason = _numpy_message(data)
    assert len(reason) == 200 and "  " not in reason
    assert _err(cs.read_npy, p) == f"{p}: not a valid .npy file ({reason})"
    good = io.BytesIO()
    np.save(good, np.arange(6.0))
    cut = good.getvalue()[:20]
    p = _file(tmp_path, cut, "cut.npy")
    assert _err(cs.read_npy, p) == f"{p}: not a valid .npy file ({_numpy_message(cut)})"


def test_teeth_read_npy_os_error_names_its_kind(tmp_path: Path) -> None:
    f = _file(tmp_path, "x", "f.npy")
    assert _err(cs.read_npy, f / "x.npy") == f"{f / 'x.npy'}: not a valid .npy file (NotADirectoryError)"


def test_teeth_read_error_mid_file_is_one_message() -> None:
    # /proc/self/mem opens, then fails on the first read (EIO): a read error while parsing
    assert (
        _err(list, cs.csv_rows("/proc/self/mem")) == "cannot read CSV file /proc/self/mem: Input/output error"
    )
