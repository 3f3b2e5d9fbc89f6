"""Tests that kill the mutation survivors of benchmarks/mutation_run.py group arrays (io/arrays.py):
exact messages, and datasets compared with the arrays written here."""

from __future__ import annotations

import io
import struct
import zipfile
from pathlib import Path

import numpy as np
import pytest

from chainrule.errors import ConfigError, DataError, DataNotFoundError
from chainrule.io.arrays import load_arrays

TABLE = np.array([[0.5, 1.0, 0], [1.5, 2.0, 1], [2.5, 3.0, 2], [3.5, 4.0, 1], [4.5, 5.0, 0]])


def _err(exc: type[Exception], *args, **kw) -> str:  # type: ignore[no-untyped-def]
    with pytest.raises(exc) as e:
        load_arrays(*args, **kw)
    assert type(e.value) is exc
    return str(e.value)


def _npy(tmp_path: Path, a: np.ndarray, name: str = "t.npy") -> Path:
    p = tmp_path / name
    with open(p, "wb") as fh:
        np.save(fh, a)
    return p


def _npz(tmp_path: Path, name: str = "t.npz", **arrays: np.ndarray) -> Path:
    p = tmp_path / name
    with open(p, "wb") as fh:
        np.savez(fh, **arrays)
    return p


def _rows(d) -> dict[float, float]:  # type: ignore[no-untyped-def]
    """feature 0 -> label, over train and test (the split shuffles rows)."""
    x = np.concatenate([d.x_train, d.x_test])
    y = np.concatenate([d.y_train, d.y_test])
    return {float(a): float(b) for a, b in zip(x[:, 0], y, strict=True)}


def test_teeth_path_checks(tmp_path: Path) -> None:
    assert _err(DataNotFoundError, tmp_path / "no.npy") == f"NumPy file not found: {tmp_path / 'no.npy'}"
    t = tmp_path / "t.txt"
    t.write_text("1,2\n")
    assert _err(ConfigError, t) == f"{t}: expected a .npy or .npz file"
    p = _npy(tmp_path, TABLE, "t.npz")  # a .npy array behind an .npz name
    assert _err(DataError, p) == f"{p}: not a NumPy .npz file (not a zip archive)"
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"PK\x03\x04" + b"\x00" * 40)
    assert _err(DataError, bad).startswith(f"{bad}: not a valid NumPy file (BadZipFile: ")


def test_teeth_npy_table_target_column(tmp_path: Path) -> None:
    p = _npy(tmp_path, TABLE, "t.NPY")
    d = load_arrays(p)
    assert d.n_classes == 3 and d.task == "classify" and d.name == "t.NPY"
    assert d.x_train.shape[1] == 2 and d.x_train.dtype == np.float32
    assert _rows(d) == {0.5: 0, 1.5: 1, 2.5: 2, 3.5: 1, 4.5: 0}
    for target in (0, "0", -3, " -3 "):
        d = load_arrays(p, target, task="regress")
        x = np.concatenate([d.x_train, d.x_test])
        np.testing.assert_array_equal(np.sort(x[:, 0]), [1, 2, 3, 4, 5])  # column 1 is now first
    assert _err(ConfigError, p, 3) == "target index 3 out of range for 3 columns"
    assert _err(ConfigError, p, -4) == "target index -4 out of range for 3 columns"
    assert load_arrays(p, 2).n_classes == 3 and load_arrays(p, -1).n_classes == 3
    assert _err(ConfigError, p, "label") == "target for a .npy file must be a column index, got 'label'"
    for shape in [(5,), (5, 1), (2, 2, 2)]:
        q = _npy(tmp_path, np.zeros(shape), "s.npy")
        assert (
            _err(DataError, q) == f"{q}: expected a 2-D array (samples, features + label), got shape {shape}"
        )


def test_teeth_split_fraction_and_seed(tmp_path: Path) -> None:
    a = np.column_stack([np.arange(20.0), np.arange(20) % 2])
    p = _npy(tmp_path, a)
    assert len(load_arrays(p).y_test) == 4
    assert len(load_arrays(p, test_fraction=0.5).y_test) == 10
    t0 = sorted(load_arrays(p, seed=0).x_test[:, 0])
    assert t0 == sorted(load_arrays(p, seed=0).x_test[:, 0]) != sorted(load_arrays(p, seed=3).x_test[:, 0])


def test_teeth_npy_regression_and_task(tmp_path: Path) -> None:
    a = np.column_stack([np.arange(6.0), np.arange(6) * 0.25])
    d = load_arrays(_npy(tmp_path, a))
    assert d.task == "regress" and d.n_classes == 1 and d.y_train.dtype == np.float32
    d = load_arrays(_npy(tmp_path, TABLE), task="regress")
    assert d.task == "regress" and d.n_classes == 1
    d = load_arrays(_npy(tmp_path, np.column_stack([np.arange(6.0), np.arange(6) * 2.0])), task="classify")
    assert d.task == "classify" and d.n_classes == 11


def test_teeth_npz_x_y_with_names(tmp_path: Path) -> None:
    x = np.arange(24.0).reshape(6, 1, 2, 2)
    y = np.array([0, 1, 2, 0, 1, 2])
    names = np.array(["cat", "dog", "eel", "fox"])
    p = _npz(tmp_path, x=x, y=y, class_names=names, feature_names=np.array(["a", "b", "c", "d"]))
    d = load_arrays(p, test_fraction=0.5, seed=1)
    assert d.n_classes == 4 and d.class_names == ["cat", "dog", "eel", "fox"]
    assert d.feature_names == ["a", "b", "c", "d"]
    assert d.x_train.shape == (3, 4) and len(d.y_test) == 3
    for xs, ys in ((d.x_train, d.y_train), (d.x_test, d.y_test)):
        np.testing.assert_array_equal(ys, (xs[:, 0] // 4) % 3)
    d = load_arrays(p, flatten=False)
    assert d.x_train.shape[1:] == (1, 2, 2)
    q = _npz(tmp_path, "few.npz", x=x, y=y, class_names=np.array(["cat", "dog"]))
    assert _err(DataError, q) == f"{q}: 2 class names but labels go up to 2"
    q = _npz(tmp_path, "ok.npz", x=x, y=y, class_names=np.array(["cat", "dog", "eel"]))
    assert load_arrays(q).class_names == ["cat", "dog", "eel"]
    assert _err(ConfigError, q, 0) == f"target applies to .csv and .npy files, not to {q}"


def test_teeth_npz_names_must_be_strings(tmp_path: Path) -> None:
    x, y = np.zeros((4, 2)), np.array([0, 1, 0, 1])
    q = _npz(tmp_path, x=x, y=y, class_names=np.array([1, 2]))
    assert _err(DataError, q) == f"{q}: 'class_names' must be a 1-D array of strings, got int64"
    q = _npz(tmp_path, "f.npz", x=x, y=y, feature_names=np.array([["a", "b"]]))
    assert _err(DataError, q) == f"{q}: 'feature_names' must be a 1-D array of strings, got <U1"


def test_teeth_npz_split_keys(tmp_path: Path) -> None:
    xtr, ytr = np.arange(12.0).reshape(3, 2, 2), np.array([0, 1, 2])
    xte, yte = np.arange(8.0).reshape(2, 2, 2) + 100, np.array([3, 1])
    p = _npz(tmp_path, x_train=xtr, y_train=ytr, x_test=xte, y_test=yte)
    d = load_arrays(p)
    assert d.n_classes == 4  # the largest label is in the test part
    np.testing.assert_array_equal(d.x_train, xtr.reshape(3, 4))
    np.testing.assert_array_equal(d.x_test, xte.reshape(2, 4))
    np.testing.assert_array_equal(d.y_test, yte)
    assert load_arrays(p, flatten=False).x_test.shape == (2, 2, 2)
    q = _npz(tmp_path, "t2.npz", x_train=xtr, y_train=np.array([0, 5, 1]), x_test=xte, y_test=yte)
    assert load_arrays(q).n_classes == 6  # ... or in the training part
    q = _npz(tmp_path, "bad.npz", x_train=xtr, y_train=ytr, x_test=np.zeros((2, 3)), y_test=yte)
    assert f"{q} (test)" in _err(DataError, q)
    q = _npz(tmp_path, "bad2.npz", x_train=xtr, y_train=ytr[:2], x_test=xte, y_test=yte)
    assert f"{q} (train)" in _err(DataError, q)
    q = _npz(tmp_path, "r.npz", x_train=xtr, y_train=np.array([0.5, 1.5, 2.25]), x_test=xte, y_test=yte)
    d = load_arrays(q)
    assert d.task == "regress" and d.n_classes == 1
    np.testing.assert_array_equal(d.y_train, [0.5, 1.5, 2.25])


def test_teeth_npz_keys(tmp_path: Path) -> None:
    q = _npz(tmp_path, a=np.zeros(2), b=np.zeros(2))
    assert _err(DataError, q) == f"{q}: expected keys x_train, y_train, x_test, y_test (or x, y); found a, b"
    q = _npz(tmp_path, "e.npz")
    assert _err(DataError, q) == f"{q}: expected keys x_train, y_train, x_test, y_test (or x, y); found none"
    q = _npz(tmp_path, "part.npz", x_train=np.zeros((2, 2)), y_train=np.zeros(2), x=np.zeros((2, 2)))
    assert _err(DataError, q).endswith("found x, x_train, y_train")


def _member(a: np.ndarray, version: tuple[int, int] = (1, 0)) -> bytes:
    buf = io.BytesIO()
    np.lib.format.write_array(buf, a, version=version, allow_pickle=True)
    return buf.getvalue()


def _zip(p: Path, members: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(p, "w", zipfile.ZIP_STORED) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return p


def test_teeth_npz_members_are_checked(tmp_path: Path) -> None:
    x, y = np.arange(6.0).reshape(3, 2), np.array([0, 1, 0])
    p = _zip(tmp_path / "v2.npz", {"x.npy": _member(x, (2, 0)), "y.npy": _member(y, (3, 0))})
    d = load_arrays(p, test_fraction=0.0)
    assert d.x_train.shape == (3, 2) and _rows(d) == {0.0: 0, 2.0: 1, 4.0: 0}
    p = _zip(tmp_path / "txt.npz", {"x.npy": _member(x), "readme.txt": b"hello"})
    assert _err(DataError, p) == f"{p}: member 'readme.txt' is not a .npy array"
    p = _zip(tmp_path / "obj.npz", {"x.npy": _member(np.array([1, "a"], dtype=object)), "y.npy": _member(y)})
    assert _err(DataError, p) == f"{p}: refusing to load pickled data (member 'x.npy' is an object array)"
    short = _member(x)[:-8]
    p = _zip(tmp_path / "short.npz", {"x.npy": short, "y.npy": _member(y)})
    assert _err(DataError, p) == (
        f"{p}: member 'x.npy' declares shape (3, 2) of float64 but holds {len(short)} bytes"
    )
    long = _member(y) + b"\x00" * 8
    p = _zip(tmp_path / "long.npz", {"x.npy": _member(x), "y.npy": long})
    assert (
        _err(DataError, p) == f"{p}: member 'y.npy' declares shape (3,) of int64 but holds {len(long)} bytes"
    )


def _declare(p: Path, total: int) -> None:
    """Rewrite the central directory so the archive's one member declares ``total`` bytes."""
    data = bytearray(p.read_bytes())
    cd = data.index(b"PK\x01\x02")
    data[cd + 24 : cd + 28] = struct.pack("<I", total)
    p.write_bytes(bytes(data))


def test_teeth_npz_declared_sizes_are_bounded_by_the_archive(tmp_path: Path) -> None:
    p = _zip(tmp_path / "bomb.npz", {"x.npy": _member(np.zeros(4))})
    size = p.stat().st_size
    _declare(p, size * 1032 + (1 << 20) + 1)
    assert _err(DataError, p) == f"{p}: the archive's members declare more data than its size can hold"
    _declare(p, size * 1032 + (1 << 20))  # at the bound: not a bomb, but the header disagrees
    assert _err(DataError, p) == (
        f"{p}: member 'x.npy' declares shape (4,) of float64 but holds {size * 1032 + (1 << 20)} bytes"
    )


def test_teeth_seed_default_is_zero(tmp_path: Path) -> None:
    p = _npy(tmp_path, np.column_stack([np.arange(20.0), np.arange(20) % 2]))
    held = np.random.default_rng(0).permutation(20)[:4]  # holdout_split's rule: seed 0, round(0.2 * 20)
    assert sorted(load_arrays(p).x_test[:, 0]) == sorted(float(i) for i in held)


def test_teeth_npz_regression_keeps_names_warnings_and_file_name(tmp_path: Path) -> None:
    x, y = np.arange(10.0).reshape(5, 2), np.array([-2.0, 0.0, 1.0, 3.0, 2.0])
    p = _npz(tmp_path, "neg.npz", x=x, y=y, feature_names=np.array(["a", "b"]))
    d = load_arrays(p)
    assert d.task == "regress" and d.n_classes == 1 and d.name == "neg.npz"
    assert d.feature_names == ["a", "b"]
    assert d.warnings == [
        f"{p}: the target has negative whole numbers (-2..3), so it is treated as a quantity "
        "(regression); pass --task classify to treat it as class labels"
    ]


def test_teeth_npz_classification_keeps_warnings(tmp_path: Path) -> None:
    k = 25  # more than MANY_CLASSES (20) distinct labels, exactly 0..k-1
    p = _npz(tmp_path, "many.npz", x=np.arange(2.0 * k).reshape(k, 2), y=np.arange(k))
    d = load_arrays(p)
    assert d.task == "classify" and d.n_classes == k
    assert d.warnings == [
        f"{p}: the target has {k} distinct whole numbers 0..{k - 1}, taken as class indices; "
        "pass --task regress if it is a quantity"
    ]


def test_teeth_npy_errors_name_the_file(tmp_path: Path) -> None:
    p = _npy(tmp_path, np.array([[np.nan, 0.0], [1.0, 1.0], [2.0, 0.0]]))
    assert _err(DataError, p) == (f"{p}: 1 non-finite value(s) (NaN or Inf) in the features; first in row 0")


def test_teeth_npz_features_become_float32_and_task_reaches_every_part(tmp_path: Path) -> None:
    x = np.arange(8.0).reshape(4, 2)  # float64 on disk
    p = _npz(tmp_path, "xy.npz", x=x, y=np.array([0.5, 1.5, 2.5, 3.5]))
    d = load_arrays(p, test_fraction=0.0)
    assert d.task == "regress" and d.x_train.dtype == np.float32
    np.testing.assert_array_equal(np.sort(d.y_train), [0.5, 1.5, 2.5, 3.5])
    # whole labels in y_train, a fraction only in y_test: the task is decided over both
    p = _npz(
        tmp_path,
        "split.npz",
        x_train=x,
        y_train=np.array([0, 1, 2, 1]),
        x_test=x[:2],
        y_test=np.array([0.5, 1]),
    )
    d = load_arrays(p)
    assert d.task == "regress" and d.x_train.dtype == np.float32 and d.x_test.dtype == np.float32
    np.testing.assert_array_equal(d.y_test, [0.5, 1.0])
    np.testing.assert_array_equal(d.y_train, [0, 1, 2, 1])
    # a fraction only in y_train: the train part must also be read as regression
    p = _npz(
        tmp_path,
        "split2.npz",
        x_train=x,
        y_train=np.array([0, 1, 2.5, 1]),
        x_test=x[:2],
        y_test=np.array([0, 1]),
    )
    np.testing.assert_array_equal(load_arrays(p).y_train, [0, 1, 2.5, 1])


def test_teeth_npz_one_training_sample(tmp_path: Path) -> None:
    x = np.arange(6.0).reshape(3, 2)
    p = _npz(
        tmp_path, "one.npz", x_train=x[:1], y_train=np.array([0.5]), x_test=x[1:], y_test=np.array([1.5, 2.5])
    )
    d = load_arrays(p)
    assert d.x_train.shape == (1, 2) and d.x_test.shape == (2, 2)


def test_teeth_npz_bad_targets_reach_check_xy(tmp_path: Path) -> None:
    x = np.arange(8.0).reshape(4, 2)
    p = _npz(tmp_path, "nan.npz", x=x, y=np.array([0, 1, np.nan, 1]))
    assert _err(DataError, p) == f"{p}: label at index 2 is nan (labels must be integers)"
    p = _npz(tmp_path, "empty.npz", x=np.zeros((0, 2)), y=np.zeros(0))
    assert _err(DataError, p) == f"{p}: empty: no samples"
    p = _npz(
        tmp_path,
        "y2d.npz",
        x_train=x,
        y_train=np.array([0, 1, 0, 1]),
        x_test=x[:2],
        y_test=np.array([[0], [1]]),
    )
    assert _err(DataError, p) == f"{p} (test): labels must be a 1-D array, got shape (2, 1)"


def test_teeth_one_class_without_a_test_part(tmp_path: Path) -> None:
    p = _npz(tmp_path, "zeros.npz", x=np.arange(8.0).reshape(4, 2), y=np.zeros(4, dtype=np.int64))
    assert load_arrays(p).n_classes == 1


def _numpy_message(fn, *args) -> str:  # type: ignore[no-untyped-def]
    """What NumPy itself says about these bytes, whitespace folded and cut at 200 characters."""
    with pytest.raises(Exception) as e:
        fn(*args)
    return " ".join(str(e.value).split())[:200]


def test_teeth_damaged_members_give_numpy_own_words(tmp_path: Path) -> None:
    garbage = b"NOT NUMPY AT ALL" * 4
    p = _zip(tmp_path / "magic.npz", {"x.npy": garbage, "y.npy": _member(np.array([0, 1]))})
    said = _numpy_message(np.lib.format.read_magic, io.BytesIO(garbage))
    assert _err(DataError, p) == f"{p}: not a valid NumPy file ({said})"
    header = b"{" + b"not python " * 30 + b"}"  # a header NumPy cannot parse, quoted at length
    raw = b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header) + 1) + header + b"\n"
    said = _numpy_message(np.lib.format.read_array_header_1_0, io.BytesIO(raw[8:]))
    p = _zip(tmp_path / "header.npz", {"x.npy": raw})
    assert len(said) == 200
    assert _err(DataError, p) == f"{p}: not a valid NumPy file ({said})"
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"PK\x03\x04" + b"\x00" * 40)
    said = _numpy_message(zipfile.ZipFile, bad)
    assert _err(DataError, bad) == f"{bad}: not a valid NumPy file (BadZipFile: {said})"


def test_teeth_long_member_names_are_cut_at_80(tmp_path: Path) -> None:
    name = "m" * 100 + ".txt"
    p = _zip(tmp_path / "txt.npz", {name: b"hello"})
    assert _err(DataError, p) == f"{p}: member {name[:80]!r} is not a .npy array"
    name = "o" * 100 + ".npy"
    p = _zip(tmp_path / "obj.npz", {name: _member(np.array([1, "a"], dtype=object))})
    assert (
        _err(DataError, p) == f"{p}: refusing to load pickled data (member {name[:80]!r} is an object array)"
    )
    short = _member(np.arange(4.0))[:-8]
    p = _zip(tmp_path / "short.npz", {name: short})
    assert _err(DataError, p) == (
        f"{p}: member {name[:80]!r} declares shape (4,) of float64 but holds {len(short)} bytes"
    )


def test_teeth_npy_warning_names_the_file(tmp_path: Path) -> None:
    p = _npy(tmp_path, np.column_stack([np.arange(4.0), [-1.0, 0.0, 2.0, 1.0]]), "neg.npy")
    d = load_arrays(p)
    assert d.task == "regress" and d.warnings == [
        f"{p}: the target has negative whole numbers (-1..2), so it is treated as a quantity "
        "(regression); pass --task classify to treat it as class labels"
    ]
