"""Tests for chainrule.io: IDX parsing, MNIST, the default subset, CSV/NumPy loaders, checks.

No network: downloads are tested against a local HTTP server on 127.0.0.1.
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import os
import pickle
import socket
import struct
import threading
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest

from chainrule.errors import ChainruleError, ConfigError, DataError, DataNotFoundError
from chainrule.io import (
    MNIST_FILES,
    Dataset,
    check_xy,
    load_arrays,
    load_csv,
    load_data,
    load_default,
    load_mnist,
    one_hot,
    read_idx,
    resolve_mnist_dir,
)

REAL_MNIST = Path(
    os.environ.get("CHAINRULE_TEST_MNIST")
    or Path(__file__).resolve().parents[2] / "shared" / "data" / "mnist"
)

# Published reference values from the MNIST README (../shared/data/mnist/README.md).
MNIST_TRAIN_COUNTS = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
MNIST_TEST_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
MNIST_MD5 = {
    "train-images-idx3-ubyte": "6bbc9ace898e44ae57da46a324031adb",
    "train-labels-idx1-ubyte": "a25bea736e30d166cdddb491f175f624",
    "t10k-images-idx3-ubyte": "2646ac647ad5339dbf082846283269ea",
    "t10k-labels-idx1-ubyte": "27ae3e4e09519cfbb04c329615203637",
}


# --------------------------------------------------------------------------------------------
# helpers and fixtures
# --------------------------------------------------------------------------------------------


def idx_bytes(arr: np.ndarray, type_code: int = 0x08) -> bytes:
    """An IDX file's bytes, written independently of the code under test."""
    arr = np.asarray(arr, dtype=np.uint8)
    header = bytes([0, 0, type_code, arr.ndim]) + struct.pack(f">{arr.ndim}I", *arr.shape)
    return header + arr.tobytes()


def write_idx(path: Path, arr: np.ndarray, *, gz: bool = False, type_code: int = 0x08) -> Path:
    data = idx_bytes(arr, type_code)
    path.write_bytes(gzip.compress(data) if gz else data)
    return path


def make_mnist(
    directory: Path,
    *,
    n_train: int = 20,
    n_test: int = 10,
    gz: bool = True,
    seed: int = 0,
    only: tuple[str, ...] | None = None,
) -> dict[str, np.ndarray]:
    """Write four small synthetic MNIST-format files; return their arrays."""
    rng = np.random.default_rng(seed)
    directory.mkdir(parents=True, exist_ok=True)
    arrays = {
        "train_images": rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
        "train_labels": (np.arange(n_train) % 10).astype(np.uint8),
        "test_images": rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
        "test_labels": (np.arange(n_test)[::-1] % 10).astype(np.uint8),
    }
    for key, arr in arrays.items():
        if only is None or key in only:
            write_idx(directory / (MNIST_FILES[key] + (".gz" if gz else "")), arr, gz=gz)
    return arrays


@pytest.fixture(autouse=True)
def _isolated_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Never look at the real CHAINRULE_DATA or ~/.cache during the tests."""
    monkeypatch.delenv("CHAINRULE_DATA", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg-cache"))


@pytest.fixture
def http_server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Path, str, list[str]]]:
    """Serve tmp_path/www on 127.0.0.1; yield (root, base_url, list of requested paths)."""
    for var in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("no_proxy", "*")
    monkeypatch.setenv("NO_PROXY", "*")
    root = tmp_path / "www"
    root.mkdir()
    requested: list[str] = []

    class Handler(SimpleHTTPRequestHandler):
        def do_GET(self) -> None:
            requested.append(self.path)
            super().do_GET()

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Handler, directory=root))
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield root, f"http://127.0.0.1:{server.server_address[1]}/mnist/", requested
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


# --------------------------------------------------------------------------------------------
# IDX
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("gz", [False, True])
@pytest.mark.parametrize("shape", [(7,), (5, 28, 28), (2, 3, 4, 5), (0,)])
def test_idx_round_trip(tmp_path: Path, gz: bool, shape: tuple[int, ...]) -> None:
    arr = np.random.default_rng(1).integers(0, 256, shape, dtype=np.uint8)
    out = read_idx(write_idx(tmp_path / "a.idx", arr, gz=gz))
    assert out.dtype == np.uint8
    assert out.shape == shape
    np.testing.assert_array_equal(out, arr)
    if out.size:
        out[(0,) * out.ndim] = 1  # result is writable
        assert out.flat[0] == 1


def test_idx_gzip_detected_by_magic_not_name(tmp_path: Path) -> None:
    arr = np.arange(12, dtype=np.uint8).reshape(3, 4)
    gz_named_raw = tmp_path / "looks-raw"
    gz_named_raw.write_bytes(gzip.compress(idx_bytes(arr)))
    raw_named_gz = tmp_path / "looks.gz"
    raw_named_gz.write_bytes(idx_bytes(arr))
    np.testing.assert_array_equal(read_idx(gz_named_raw), arr)
    np.testing.assert_array_equal(read_idx(raw_named_gz), arr)


def test_idx_bad_magic(tmp_path: Path) -> None:
    p = tmp_path / "bad.idx"
    p.write_bytes(b"\x01\x02\x08\x01" + struct.pack(">I", 3) + b"abc")
    with pytest.raises(DataError, match="bad magic number") as e:
        read_idx(p)
    assert str(p) in str(e.value)


def test_idx_text_file_is_not_idx(tmp_path: Path) -> None:
    p = tmp_path / "notes.txt"
    p.write_text("hello, world\n")
    with pytest.raises(DataError, match="not an IDX file"):
        read_idx(p)


@pytest.mark.parametrize("content", [b"", b"\x00\x00"])
def test_idx_too_short(tmp_path: Path, content: bytes) -> None:
    p = tmp_path / "short.idx"
    p.write_bytes(content)
    with pytest.raises(DataError, match="not an IDX file"):
        read_idx(p)


def test_idx_wrong_type_code(tmp_path: Path) -> None:
    p = write_idx(tmp_path / "floats.idx", np.zeros((2, 2), np.uint8), type_code=0x0D)
    with pytest.raises(DataError, match=r"unsupported IDX data type 0x0d \(float\)"):
        read_idx(p)


@pytest.mark.parametrize("ndim", [0, 5])
def test_idx_bad_rank(tmp_path: Path, ndim: int) -> None:
    p = tmp_path / "rank.idx"
    p.write_bytes(bytes([0, 0, 8, ndim]) + b"\x00\x00\x00\x01" * ndim + b"\x00")
    with pytest.raises(DataError, match=f"unsupported IDX rank {ndim}"):
        read_idx(p)


def test_idx_truncated_header(tmp_path: Path) -> None:
    p = tmp_path / "hdr.idx"
    p.write_bytes(bytes([0, 0, 8, 3]) + struct.pack(">I", 60000))
    with pytest.raises(DataError, match="truncated header: expected 12 bytes"):
        read_idx(p)


@pytest.mark.parametrize("gz", [False, True])
def test_idx_truncated_payload(tmp_path: Path, gz: bool) -> None:
    data = bytes([0, 0, 8, 3]) + struct.pack(">3I", 60000, 28, 28) + bytes(1000)
    p = tmp_path / "train-images-idx3-ubyte"
    p.write_bytes(gzip.compress(data) if gz else data)
    with pytest.raises(DataError) as e:
        read_idx(p)
    msg = str(e.value)
    assert "truncated: expected 47040000 bytes of pixel data" in msg
    assert "found 1000" in msg
    assert str(p) in msg


def test_idx_oversized_payload(tmp_path: Path) -> None:
    p = tmp_path / "labels.idx"
    p.write_bytes(idx_bytes(np.arange(5, dtype=np.uint8)) + b"\x00\x00\x00")
    with pytest.raises(DataError, match=r"oversized: expected 5 bytes of label data.*found 8"):
        read_idx(p)


def test_idx_corrupt_gzip(tmp_path: Path) -> None:
    p = tmp_path / "corrupt.gz"
    p.write_bytes(b"\x1f\x8b" + b"this is not deflate data at all" * 4)
    with pytest.raises(DataError, match="corrupt or truncated gzip") as e:
        read_idx(p)
    assert str(p) in str(e.value)


def test_idx_cut_off_gzip(tmp_path: Path) -> None:
    arr = np.random.default_rng(0).integers(0, 256, (50, 28, 28), dtype=np.uint8)
    whole = gzip.compress(idx_bytes(arr))
    p = tmp_path / "cut.gz"
    p.write_bytes(whole[: len(whole) // 2])
    with pytest.raises(DataError, match="gzip") as e:
        read_idx(p)
    assert str(p) in str(e.value)


def test_idx_missing_file(tmp_path: Path) -> None:
    with pytest.raises(DataNotFoundError, match="not found"):
        read_idx(tmp_path / "nope.idx")


# --------------------------------------------------------------------------------------------
# MNIST loader (synthetic files)
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("gz", [False, True])
def test_load_mnist_synthetic(tmp_path: Path, gz: bool) -> None:
    arrays = make_mnist(tmp_path / "m", gz=gz)
    ds = load_mnist(tmp_path / "m")
    assert isinstance(ds, Dataset)
    assert ds.x_train.shape == (20, 784) and ds.x_test.shape == (10, 784)
    assert ds.x_train.dtype == np.float32 and ds.y_train.dtype == np.int64
    assert ds.n_classes == 10 and ds.n_features == 784
    assert ds.class_names == [str(i) for i in range(10)]
    assert 0.0 <= ds.x_train.min() and ds.x_train.max() <= 1.0
    np.testing.assert_allclose(ds.x_train, arrays["train_images"].reshape(20, 784) / 255.0, rtol=0, atol=1e-7)
    np.testing.assert_array_equal(ds.y_train, arrays["train_labels"])
    np.testing.assert_array_equal(ds.y_test, arrays["test_labels"])


def test_load_mnist_mixed_raw_and_gz(tmp_path: Path) -> None:
    d = tmp_path / "m"
    make_mnist(d, gz=True, only=("train_images", "test_labels"))
    arrays = make_mnist(d, gz=False, only=("train_labels", "test_images"))
    ds = load_mnist(d)
    assert ds.n_train == 20 and ds.n_test == 10
    np.testing.assert_array_equal(ds.y_train, arrays["train_labels"])


def test_load_mnist_mismatched_counts(tmp_path: Path) -> None:
    d = tmp_path / "m"
    make_mnist(d)
    write_idx(d / "train-labels-idx1-ubyte.gz", np.zeros(19, np.uint8), gz=True)
    with pytest.raises(DataError) as e:
        load_mnist(d)
    msg = str(e.value)
    assert "train-images-idx3-ubyte.gz" in msg and "train-labels-idx1-ubyte.gz" in msg
    assert "20 images" in msg and "19 labels" in msg


def test_load_mnist_labels_out_of_range(tmp_path: Path) -> None:
    d = tmp_path / "m"
    make_mnist(d)
    labels = np.zeros(10, np.uint8)
    labels[4] = 10
    write_idx(d / "t10k-labels-idx1-ubyte.gz", labels, gz=True)
    with pytest.raises(DataError, match=r"label 10 at index 4 is out of range 0\.\.9") as e:
        load_mnist(d)
    assert "t10k-labels-idx1-ubyte.gz" in str(e.value)


def test_load_mnist_wrong_image_shape(tmp_path: Path) -> None:
    d = tmp_path / "m"
    make_mnist(d)
    write_idx(d / "t10k-images-idx3-ubyte.gz", np.zeros((10, 27, 28), np.uint8), gz=True)
    with pytest.raises(DataError, match=r"expected images of shape \(N, 28, 28\)"):
        load_mnist(d)


def test_load_mnist_missing_files_message(tmp_path: Path) -> None:
    d = tmp_path / "m"
    make_mnist(d, only=("train_images", "train_labels", "test_images"))
    with pytest.raises(DataNotFoundError) as e:
        load_mnist(d)
    msg = str(e.value)
    assert isinstance(e.value, FileNotFoundError) and isinstance(e.value, ChainruleError)
    assert "t10k-labels-idx1-ubyte" in msg
    assert "train-images" not in msg  # only the missing file is named
    assert str(d) in msg
    for hint in ("--data-dir", "CHAINRULE_DATA", "--download"):
        assert hint in msg


def test_load_mnist_nonexistent_dir(tmp_path: Path) -> None:
    with pytest.raises(DataNotFoundError, match="missing") as e:
        load_mnist(tmp_path / "does-not-exist")
    assert "train-images-idx3-ubyte" in str(e.value)


def test_chainrule_data_env_var(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    arrays = make_mnist(tmp_path / "from-env", n_train=30)
    monkeypatch.setenv("CHAINRULE_DATA", str(tmp_path / "from-env"))
    assert resolve_mnist_dir() == tmp_path / "from-env"
    ds = load_mnist()
    assert ds.n_train == 30
    np.testing.assert_array_equal(ds.y_train, arrays["train_labels"])
    # an explicit data_dir wins over the environment variable
    make_mnist(tmp_path / "explicit", n_train=40)
    assert load_mnist(tmp_path / "explicit").n_train == 40
    # and the message says where it looked
    monkeypatch.setenv("CHAINRULE_DATA", str(tmp_path / "empty"))
    with pytest.raises(DataNotFoundError, match="CHAINRULE_DATA environment variable"):
        load_mnist()


def test_default_cache_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert resolve_mnist_dir() == tmp_path / "xdg" / "chainrule" / "mnist"
    make_mnist(tmp_path / "xdg" / "chainrule" / "mnist", n_train=12)
    assert load_mnist().n_train == 12
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert resolve_mnist_dir() == Path.home() / ".cache" / "chainrule" / "mnist"


# --------------------------------------------------------------------------------------------
# download (local HTTP server)
# --------------------------------------------------------------------------------------------


def test_download_all(tmp_path: Path, http_server: tuple[Path, str, list[str]]) -> None:
    root, url, requested = http_server
    arrays = make_mnist(root / "mnist", gz=True)
    target = tmp_path / "cache" / "mnist"  # does not exist yet
    seen: list[tuple[str, int, int | None]] = []
    ds = load_mnist(target, download=True, base_url=url, progress=lambda *a: seen.append(a))
    assert ds.n_train == 20 and ds.n_test == 10
    np.testing.assert_array_equal(ds.y_test, arrays["test_labels"])
    assert sorted(p.name for p in target.iterdir()) == sorted(n + ".gz" for n in MNIST_FILES.values())
    assert sorted(requested) == sorted(f"/mnist/{n}.gz" for n in MNIST_FILES.values())
    assert {s[0] for s in seen} == {n + ".gz" for n in MNIST_FILES.values()}
    done = {name: (d, total) for name, d, total in seen}  # last report per file
    assert all(d == total and d > 0 for d, total in done.values())
    # the files are now local: no second download
    requested.clear()
    assert load_mnist(target, download=True, base_url=url).n_train == 20
    assert requested == []


def test_download_only_missing(tmp_path: Path, http_server: tuple[Path, str, list[str]]) -> None:
    root, url, requested = http_server
    make_mnist(root / "mnist", gz=True)
    target = tmp_path / "partial"
    make_mnist(target, gz=False, only=("train_images", "train_labels"))
    ds = load_mnist(target, download=True, base_url=url.rstrip("/"))
    assert ds.n_train == 20
    assert sorted(requested) == [
        "/mnist/t10k-images-idx3-ubyte.gz",
        "/mnist/t10k-labels-idx1-ubyte.gz",
    ]


def test_download_404(tmp_path: Path, http_server: tuple[Path, str, list[str]]) -> None:
    root, url, _ = http_server
    make_mnist(root / "mnist", gz=True, only=("train_images", "train_labels", "test_images"))
    target = tmp_path / "t"
    with pytest.raises(DataError) as e:
        load_mnist(target, download=True, base_url=url)
    msg = str(e.value)
    assert url + "t10k-labels-idx1-ubyte.gz" in msg
    assert "404" in msg or "Not Found" in msg
    assert not (target / "t10k-labels-idx1-ubyte.gz").exists()
    assert not [p for p in target.iterdir() if p.name.endswith(".part")]  # no temp files left


def test_download_invalid_content(tmp_path: Path, http_server: tuple[Path, str, list[str]]) -> None:
    root, url, _ = http_server
    make_mnist(root / "mnist", gz=True)
    (root / "mnist" / "train-images-idx3-ubyte.gz").write_bytes(b"<html>mirror moved</html>")
    target = tmp_path / "t"
    with pytest.raises(DataError, match="not a valid IDX file") as e:
        load_mnist(target, download=True, base_url=url)
    assert url + "train-images-idx3-ubyte.gz" in str(e.value)
    assert not (target / "train-images-idx3-ubyte.gz").exists()
    assert [p.name for p in target.iterdir()] == []


def test_download_connection_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("no_proxy", "*")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}/"
    with pytest.raises(DataError, match="could not download") as e:
        load_mnist(tmp_path / "t", download=True, base_url=url)
    assert url in str(e.value)


# --------------------------------------------------------------------------------------------
# CSV
# --------------------------------------------------------------------------------------------


def test_csv_header_and_target(tmp_path: Path) -> None:
    p = tmp_path / "iris.csv"
    p.write_text(
        "sepal,petal,species,width\n"
        "1.0,2.0,setosa,0.5\n"
        "1.5,2.5,virginica,0.6\n"
        "2.0,3.0,setosa,0.7\n"
        "2.5,3.5,versicolor,0.8\n"
        "3.0,4.0,virginica,0.9\n"
    )
    ds = load_csv(p, "species", test_fraction=0.4, seed=3)
    assert ds.feature_names == ["sepal", "petal", "width"]
    assert ds.class_names == ["setosa", "versicolor", "virginica"]
    assert ds.n_classes == 3 and ds.n_features == 3
    assert ds.n_train == 3 and ds.n_test == 2
    x = np.concatenate([ds.x_train, ds.x_test])
    y = np.concatenate([ds.y_train, ds.y_test])
    order = np.argsort(x[:, 0])
    np.testing.assert_allclose(x[order, 2], [0.5, 0.6, 0.7, 0.8, 0.9], rtol=1e-6)
    np.testing.assert_array_equal(y[order], [0, 2, 0, 1, 2])
    assert x.dtype == np.float32 and y.dtype == np.int64


def test_csv_unknown_target(tmp_path: Path) -> None:
    p = tmp_path / "d.csv"
    p.write_text("a,b,label\n1,2,0\n3,4,1\n")
    with pytest.raises(ConfigError, match="'nope' not in") as e:
        load_csv(p, "nope")
    assert "a, b, label" in str(e.value)


def test_csv_without_header(tmp_path: Path) -> None:
    p = tmp_path / "plain.csv"
    rows = [[i, i * 2.5, i % 3] for i in range(10)]
    p.write_text("\n".join(",".join(map(str, r)) for r in rows) + "\n")
    ds = load_csv(p, test_fraction=0.2)
    assert ds.feature_names is None and ds.class_names is None
    assert ds.n_train == 8 and ds.n_test == 2 and ds.n_classes == 3
    x = np.concatenate([ds.x_train, ds.x_test])
    y = np.concatenate([ds.y_train, ds.y_test])
    order = np.argsort(x[:, 0])
    np.testing.assert_allclose(x[order], [[i, i * 2.5] for i in range(10)])
    np.testing.assert_array_equal(y[order], [i % 3 for i in range(10)])


def test_csv_headerless_string_labels(tmp_path: Path) -> None:
    p = tmp_path / "s.csv"
    p.write_text("1,2,cat\n3,4,dog\n5,6,cat\n7,8,bird\n")
    ds = load_csv(p, test_fraction=0)
    assert ds.n_train == 4 and ds.n_test == 0  # first row is data, not a header
    assert ds.class_names == ["bird", "cat", "dog"]
    order = np.argsort(ds.x_train[:, 0])
    np.testing.assert_array_equal(ds.y_train[order], [1, 2, 1, 0])


def test_csv_target_index_and_numeric_header(tmp_path: Path) -> None:
    p = tmp_path / "t.csv"
    p.write_text("label,x1,x2\n1,0.5,0.25\n0,1.5,1.25\n")
    ds = load_csv(p, 0, test_fraction=0)
    assert ds.feature_names == ["x1", "x2"]
    np.testing.assert_array_equal(ds.y_train[np.argsort(ds.x_train[:, 0])], [1, 0])
    assert load_csv(p, "0", test_fraction=0).n_train == 2  # index given as a string (CLI)


def test_csv_non_numeric_cell(tmp_path: Path) -> None:
    p = tmp_path / "bad.csv"
    p.write_text("a,b,label\n1,2,0\n3,oops,1\n")
    with pytest.raises(DataError) as e:
        load_csv(p)
    msg = str(e.value)
    assert str(p) in msg and "row 3" in msg and "column 2 ('b')" in msg and "'oops'" in msg


def test_csv_nan_cell(tmp_path: Path) -> None:
    p = tmp_path / "nan.csv"
    p.write_text("1,2,0\n3,nan,1\n")
    with pytest.raises(DataError, match="row 2, column 2: non-finite value 'nan'"):
        load_csv(p)


@pytest.mark.parametrize(
    ("content", "match"),
    [("", "empty CSV"), ("\n\n  \n", "empty CSV"), ("a,b,label\n", "no data rows")],
)
def test_csv_empty(tmp_path: Path, content: str, match: str) -> None:
    p = tmp_path / "empty.csv"
    p.write_text(content)
    with pytest.raises(DataError, match=match):
        load_csv(p)


def test_csv_ragged_row(tmp_path: Path) -> None:
    p = tmp_path / "ragged.csv"
    p.write_text("1,2,0\n3,4\n")
    with pytest.raises(DataError, match="row 2 has 2 columns, expected 3"):
        load_csv(p)


def test_csv_fractional_label(tmp_path: Path) -> None:
    p = tmp_path / "reg.csv"
    p.write_text("1,2,0\n3,4,0.5\n")
    with pytest.raises(DataError, match=r"label '0\.5' is not a non-negative integer"):
        load_csv(p, task="classify")
    # without --task, a fractional target is a quantity: a regression (issue 11)
    d = load_csv(p, test_fraction=0)
    assert d.task == "regress" and d.y_train.dtype == np.float32 and sorted(d.y_train) == [0.0, 0.5]


def test_csv_target_name_without_header(tmp_path: Path) -> None:
    p = tmp_path / "nh.csv"
    p.write_text("1,2,0\n3,4,1\n")
    with pytest.raises(ConfigError, match="no header row"):
        load_csv(p, "label")


def test_csv_split_is_deterministic(tmp_path: Path) -> None:
    p = tmp_path / "big.csv"
    p.write_text("".join(f"{i},{i % 2}\n" for i in range(50)))
    a, b, c = load_csv(p, seed=7), load_csv(p, seed=7), load_csv(p, seed=8)
    assert a.n_train == 40 and a.n_test == 10
    np.testing.assert_array_equal(a.x_test, b.x_test)
    assert not np.array_equal(a.x_test, c.x_test)
    everything = np.sort(np.concatenate([a.x_train, a.x_test])[:, 0])
    np.testing.assert_array_equal(everything, np.arange(50))  # a partition of the rows


# --------------------------------------------------------------------------------------------
# NumPy files
# --------------------------------------------------------------------------------------------


def test_npy_last_column_is_label(tmp_path: Path) -> None:
    a = np.column_stack([np.arange(10.0), np.arange(10.0) * 2, np.arange(10) % 4])
    np.save(tmp_path / "d.npy", a)
    ds = load_arrays(tmp_path / "d.npy", test_fraction=0.3)
    assert ds.n_train == 7 and ds.n_test == 3 and ds.n_features == 2 and ds.n_classes == 4
    x = np.concatenate([ds.x_train, ds.x_test])
    y = np.concatenate([ds.y_train, ds.y_test])
    np.testing.assert_array_equal(y, x[:, 0].astype(int) % 4)
    ds0 = load_arrays(tmp_path / "d.npy", target=0, test_fraction=0)
    np.testing.assert_array_equal(ds0.y_train, ds0.x_train[:, 0] // 2)


def test_npz_train_test_keys(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    arrs = {
        "x_train": rng.random((8, 3)),
        "y_train": np.array([0, 1, 2, 0, 1, 2, 0, 1]),
        "x_test": rng.random((4, 3)),
        "y_test": np.array([2, 1, 0, 4]),
    }
    np.savez(tmp_path / "d.npz", **arrs, class_names=np.array(list("abcde")))
    ds = load_arrays(tmp_path / "d.npz")
    np.testing.assert_allclose(ds.x_train, arrs["x_train"], rtol=1e-6)
    np.testing.assert_array_equal(ds.y_test, arrs["y_test"])
    assert ds.n_classes == 5 and ds.class_names == list("abcde")
    assert ds.x_train.dtype == np.float32 and ds.y_train.dtype == np.int64


def test_npz_x_y_split_and_flatten(tmp_path: Path) -> None:
    x = np.arange(20 * 2 * 3, dtype=np.uint8).reshape(20, 2, 3)
    y = np.arange(20) % 2
    np.savez_compressed(tmp_path / "img.npz", x=x, y=y)
    ds = load_arrays(tmp_path / "img.npz", test_fraction=0.25, seed=1)
    assert ds.x_train.shape == (15, 6) and ds.x_test.shape == (5, 6)
    assert ds.n_classes == 2
    rows = np.concatenate([ds.x_train, ds.x_test])
    np.testing.assert_array_equal(np.sort(rows[:, 0]), np.sort(x.reshape(20, 6)[:, 0]))


def test_npz_pickled_object_refused(tmp_path: Path) -> None:
    p = tmp_path / "evil.npz"
    np.savez(p, x=np.array([{"a": 1}, {"b": 2}], dtype=object), y=np.array([0, 1]))
    with pytest.raises(DataError, match="refusing to load pickled data"):
        load_arrays(p)


def test_npy_object_and_raw_pickle_refused(tmp_path: Path) -> None:
    p = tmp_path / "evil.npy"
    np.save(p, np.array([[1, "x"]], dtype=object), allow_pickle=True)
    with pytest.raises(DataError, match="refusing to load pickled data"):
        load_arrays(p)
    q = tmp_path / "pickle.npy"
    q.write_bytes(pickle.dumps({"x": [1, 2, 3]}))
    with pytest.raises(DataError, match="refusing to load pickled data"):
        load_arrays(q)


def test_npz_wrong_keys(tmp_path: Path) -> None:
    np.savez(tmp_path / "k.npz", features=np.zeros((3, 2)), labels=np.zeros(3))
    with pytest.raises(DataError, match="found features, labels"):
        load_arrays(tmp_path / "k.npz")


# --------------------------------------------------------------------------------------------
# load_data dispatcher
# --------------------------------------------------------------------------------------------


def test_load_data_dispatch(tmp_path: Path) -> None:
    make_mnist(tmp_path / "m", n_train=20)
    assert load_data("mnist", tmp_path / "m").name == "mnist"
    assert load_data(str(tmp_path / "m")).n_train == 20
    (tmp_path / "d.csv").write_text("a,b,y\n1,2,0\n3,4,1\n5,6,1\n7,8,0\n9,10,1\n")
    ds = load_data(str(tmp_path / "d.csv"), target="y", seed=1)
    assert ds.feature_names == ["a", "b"] and ds.n_train + ds.n_test == 5
    np.save(tmp_path / "d.npy", np.array([[1.0, 0], [2.0, 1], [3.0, 1]]))
    assert load_data(str(tmp_path / "d.npy")).n_features == 1
    np.savez(tmp_path / "d.npz", x=np.ones((4, 2)), y=np.array([0, 1, 0, 1]))
    assert load_data(str(tmp_path / "d.npz")).n_features == 2
    assert load_data("default").n_train == 6000


def test_load_data_errors(tmp_path: Path) -> None:
    with pytest.raises(DataNotFoundError, match=r"'nowhere\.csv' not found"):
        load_data("nowhere.csv")
    (tmp_path / "d.txt").write_text("1,2\n")
    with pytest.raises(ConfigError, match=r"unknown dataset format '\.txt'"):
        load_data(str(tmp_path / "d.txt"))
    with pytest.raises(ConfigError, match="target only applies"):
        load_data("default", target="label")


# --------------------------------------------------------------------------------------------
# check_xy and one_hot
# --------------------------------------------------------------------------------------------


def test_check_xy_ok_and_not_mutated() -> None:
    x = np.arange(12, dtype=np.int32).reshape(4, 3)
    y = np.array([0.0, 1.0, 2.0, 1.0])
    x0, y0 = x.copy(), y.copy()
    xo, yo = check_xy(x, y, n_classes=3, n_features=3, dtype=np.float32)
    assert xo.dtype == np.float32 and yo.dtype == np.int64
    np.testing.assert_array_equal(xo, x0)
    np.testing.assert_array_equal(yo, [0, 1, 2, 1])
    xo[0, 0] = 99
    yo[0] = 2
    np.testing.assert_array_equal(x, x0)  # converted outputs do not alias the inputs
    np.testing.assert_array_equal(y, y0)


def test_check_xy_bad_input_not_mutated() -> None:
    x = np.ones((3, 2))
    x[1, 1] = np.nan
    y = np.array([0, 5, 1])
    x0, y0 = x.copy(), y.copy()
    with pytest.raises(DataError):
        check_xy(x, y, n_classes=2)
    np.testing.assert_array_equal(x, x0)
    np.testing.assert_array_equal(y, y0)


def test_check_xy_nan_and_inf() -> None:
    x = np.zeros((6, 2))
    x[3, 1] = np.nan
    x[5, 0] = np.nan
    with pytest.raises(DataError, match=r"2 non-finite value.*first in row 3"):
        check_xy(x, np.zeros(6, int), where="train")
    x = np.zeros((4, 2), np.float32)
    x[2, 0] = -np.inf
    with pytest.raises(DataError, match=r"^train: 1 non-finite value.*row 2"):
        check_xy(x, np.zeros(4, int), where="train")


def test_check_xy_overflow_to_inf_when_cast() -> None:
    with pytest.raises(DataError, match="non-finite"):
        check_xy(np.array([[1e300]]), np.array([0]), dtype=np.float32)


@pytest.mark.parametrize(
    "x",
    [
        np.ones((2, 2), dtype=bool),
        np.array([[object(), 1]], dtype=object),
        np.array([["1", "2"]]),
        np.ones((2, 2), dtype=complex),
    ],
)
def test_check_xy_wrong_dtype(x: np.ndarray) -> None:
    with pytest.raises(DataError, match="wrong dtype"):
        check_xy(x, np.zeros(len(x), int))


def test_check_xy_empty() -> None:
    with pytest.raises(DataError, match="empty: no samples"):
        check_xy(np.zeros((0, 3)), np.zeros(0, int))
    with pytest.raises(DataError, match="no features"):
        check_xy(np.zeros((3, 0)), np.zeros(3, int))


def test_check_xy_mismatched_lengths() -> None:
    with pytest.raises(DataError, match="mismatched lengths: 5 samples in x but 4 labels"):
        check_xy(np.zeros((5, 2)), np.zeros(4, int))


def test_check_xy_shapes() -> None:
    with pytest.raises(DataError, match=r"at least 2 dimensions.*got shape \(3,\)"):
        check_xy(np.zeros(3), np.zeros(3, int))
    with pytest.raises(DataError, match=r"at least 2 dimensions.*got shape \(\)"):
        check_xy(np.float64(1.0), np.zeros(1, int))
    with pytest.raises(DataError, match=r"labels must be a 1-D array.*\(2, 1\)"):
        check_xy(np.zeros((2, 3)), np.zeros((2, 1), int))
    with pytest.raises(DataError, match="expected 4 features, got 3"):
        check_xy(np.zeros((2, 3)), np.zeros(2, int), n_features=4)


def test_check_xy_labels_out_of_range() -> None:
    with pytest.raises(DataError, match=r"label 3 at index 2 is out of range \(allowed range 0\.\.2"):
        check_xy(np.zeros((4, 1)), np.array([0, 1, 3, 2]), n_classes=3)
    with pytest.raises(DataError, match=r"label -1 at index 0.*>= 0"):
        check_xy(np.zeros((2, 1)), np.array([-1, 0]))


def test_check_xy_label_types() -> None:
    with pytest.raises(DataError, match=r"label 1\.5 at index 1 is not a whole number"):
        check_xy(np.zeros((2, 1)), np.array([0.0, 1.5]))
    with pytest.raises(DataError, match="wrong dtype for labels"):
        check_xy(np.zeros((2, 1)), np.array(["a", "b"]))
    xo, yo = check_xy([[1, 2], [3, 4]], [1, 0])  # plain lists are accepted
    assert xo.dtype == np.float64 and yo.tolist() == [1, 0]


def test_one_hot() -> None:
    out = one_hot(np.array([2, 0, 1]), 3)
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out, [[0, 0, 1], [1, 0, 0], [0, 1, 0]])
    with pytest.raises(DataError, match=r"out of range 0\.\.2"):
        one_hot([0, 3], 3)


# --------------------------------------------------------------------------------------------
# Dataset
# --------------------------------------------------------------------------------------------


def test_split_validation() -> None:
    x = np.arange(20, dtype=np.float32).reshape(10, 2)
    ds = Dataset(x, np.arange(10) % 2, x[:2], np.array([0, 1]), "toy", 2)
    (xt, yt), (xv, yv) = ds.split_validation(0.3, seed=5)
    assert len(xt) == 7 and len(xv) == 3 and len(yt) == 7 and len(yv) == 3
    np.testing.assert_array_equal(np.sort(np.concatenate([xt, xv])[:, 0]), x[:, 0])
    np.testing.assert_array_equal(yv, (xv[:, 0] // 2) % 2)  # rows stay paired with labels
    (_, _), (xv2, _) = ds.split_validation(0.3, seed=5)
    np.testing.assert_array_equal(xv, xv2)
    (xt0, _), (xv0, yv0) = ds.split_validation(0.0)
    assert xt0.shape == (10, 2) and xv0.shape == (0, 2) and yv0.shape == (0,)
    with pytest.raises(ConfigError):
        ds.split_validation(1.0)


def test_dataset_rejects_inconsistent_parts() -> None:
    with pytest.raises(DataError, match="3 rows but y_train has 2"):
        Dataset(np.zeros((3, 2)), np.zeros(2), np.zeros((1, 2)), np.zeros(1), "bad", 2)


# --------------------------------------------------------------------------------------------
# embedded default dataset
# --------------------------------------------------------------------------------------------


def test_load_default() -> None:
    ds = load_default()
    assert ds.x_train.shape == (6000, 784) and ds.x_test.shape == (1000, 784)
    assert ds.x_train.dtype == np.float32 and ds.y_train.dtype == np.int64
    assert ds.n_classes == 10 and "6000 train / 1000 test" in ds.name
    assert ds.x_train.min() == 0.0 and ds.x_train.max() == 1.0
    assert np.bincount(ds.y_train).tolist() == [600] * 10
    assert np.bincount(ds.y_test).tolist() == [100] * 10
    # pixels are k/255 and look like digits (mostly background, some ink)
    np.testing.assert_allclose(ds.x_test * 255, np.round(ds.x_test * 255), atol=1e-3)
    assert 0.1 < float(ds.x_train.mean()) < 0.2
    assert not np.array_equal(ds.x_train[0], ds.x_train[1])


# --------------------------------------------------------------------------------------------
# N-D features: images (N, C, H, W) and sequences (N, T, D), samples along the first axis
# --------------------------------------------------------------------------------------------


def test_check_xy_accepts_images_and_sequences() -> None:
    images = np.arange(5 * 1 * 4 * 4, dtype=np.uint8).reshape(5, 1, 4, 4)
    xo, yo = check_xy(images, [0, 1, 2, 1, 0], n_classes=3, n_features=16, dtype=np.float32)
    assert xo.shape == (5, 1, 4, 4) and xo.dtype == np.float32
    np.testing.assert_array_equal(xo, images)
    assert yo.tolist() == [0, 1, 2, 1, 0]
    seq = np.random.default_rng(0).normal(size=(6, 7, 3))
    xs, _ = check_xy(seq, np.zeros(6, int), sample_shape=(7, 3))
    assert xs.shape == (6, 7, 3) and xs.dtype == np.float64
    np.testing.assert_array_equal(xs, seq)
    gray = np.ones((2, 28, 28), np.float32)  # (N, H, W) without a channel axis
    assert check_xy(gray, [0, 1])[0].shape == (2, 28, 28)


def test_check_xy_validates_nd_input() -> None:
    x = np.zeros((4, 3, 2, 2))
    x[2, 1, 0, 1] = np.inf
    x[3, 0, 0, 0] = np.nan
    with pytest.raises(DataError, match=r"^imgs: 2 non-finite .*first in row 2 at position \(1, 0, 1\)"):
        check_xy(x, np.zeros(4, int), where="imgs")
    with pytest.raises(DataError, match="empty: samples have no features"):
        check_xy(np.zeros((3, 2, 0)), np.zeros(3, int))
    with pytest.raises(DataError, match="empty: no samples"):
        check_xy(np.zeros((0, 1, 4, 4)), np.zeros(0, int))
    with pytest.raises(DataError, match="mismatched lengths: 5 samples in x but 4 labels"):
        check_xy(np.zeros((5, 7, 3)), np.zeros(4, int))
    with pytest.raises(DataError, match=r"label 3 at index 1 is out of range \(allowed range 0\.\.2"):
        check_xy(np.zeros((2, 1, 4, 4)), np.array([0, 3]), n_classes=3)
    with pytest.raises(DataError, match=r"label 0\.5 at index 0 is not a whole number"):
        check_xy(np.zeros((2, 7, 3)), np.array([0.5, 1.0]))
    with pytest.raises(DataError, match="wrong dtype for features: bool"):
        check_xy(np.ones((2, 1, 4, 4), bool), np.zeros(2, int))
    with pytest.raises(DataError, match="expected 16 features, got 9"):
        check_xy(np.zeros((2, 1, 3, 3)), np.zeros(2, int), n_features=16)
    with pytest.raises(DataError, match=r"expected samples of shape \(1, 4, 4\), got \(1, 2, 8\)"):
        check_xy(np.zeros((2, 1, 2, 8)), np.zeros(2, int), sample_shape=(1, 4, 4))


def test_dataset_with_image_samples() -> None:
    rng = np.random.default_rng(3)
    x = rng.random((10, 1, 4, 4)).astype(np.float32)
    y = np.arange(10) % 2
    x[:, 0, 0, 0] = np.arange(10)  # tag each sample with its index
    ds = Dataset(x, y, x[:3], y[:3], "imgs", 2)
    assert ds.sample_shape == (1, 4, 4) and ds.n_features == 16
    assert "16 features (samples of shape (1, 4, 4))" in ds.summary()
    (xt, yt), (xv, yv) = ds.split_validation(0.3, seed=1)
    assert xt.shape == (7, 1, 4, 4) and xv.shape == (3, 1, 4, 4)
    np.testing.assert_array_equal(yv, xv[:, 0, 0, 0].astype(int) % 2)  # samples stay with labels
    np.testing.assert_array_equal(yt, xt[:, 0, 0, 0].astype(int) % 2)
    (_, _), (xv0, _) = ds.split_validation(0.0)
    assert xv0.shape == (0, 1, 4, 4)
    with pytest.raises(
        DataError, match=r"train samples have shape \(1, 4, 4\) but test samples have shape \(16,\)"
    ):
        Dataset(x, y, x[:3].reshape(3, 16), y[:3], "bad", 2)
    with pytest.raises(DataError, match="at least 2 dimensions"):
        Dataset(np.zeros(4), np.zeros(4), np.zeros((1, 2)), np.zeros(1), "bad", 2)


def test_npz_image_round_trip(tmp_path: Path) -> None:
    rng = np.random.default_rng(5)
    arrs = {
        "x_train": rng.integers(0, 256, (12, 1, 4, 4)).astype(np.uint8),
        "y_train": np.arange(12) % 3,
        "x_test": rng.integers(0, 256, (5, 1, 4, 4)).astype(np.uint8),
        "y_test": np.array([2, 0, 1, 1, 0]),
    }
    np.savez_compressed(tmp_path / "imgs.npz", **arrs)
    ds = load_arrays(tmp_path / "imgs.npz", flatten=False)
    assert ds.x_train.shape == (12, 1, 4, 4) and ds.x_test.shape == (5, 1, 4, 4)
    assert ds.x_train.dtype == np.float32 and ds.y_train.dtype == np.int64
    assert ds.sample_shape == (1, 4, 4) and ds.n_features == 16 and ds.n_classes == 3
    np.testing.assert_array_equal(ds.x_train, arrs["x_train"])  # values as stored, no scaling
    np.testing.assert_array_equal(ds.x_test, arrs["x_test"])
    np.testing.assert_array_equal(ds.y_test, arrs["y_test"])
    flat = load_arrays(tmp_path / "imgs.npz")  # the default flattens each sample to a row
    assert flat.x_train.shape == (12, 16)
    np.testing.assert_array_equal(flat.x_train, arrs["x_train"].reshape(12, 16))
    same = load_data(str(tmp_path / "imgs.npz"), flatten=False)
    np.testing.assert_array_equal(same.x_test, ds.x_test)


def test_npz_sequences_split_keeps_shape(tmp_path: Path) -> None:
    n, t, d = 20, 6, 3
    x = np.random.default_rng(2).normal(size=(n, t, d))
    x[:, 0, 0] = np.arange(n)  # tag each sequence with its index
    y = np.arange(n) % 4
    np.savez(tmp_path / "seq.npz", x=x, y=y)
    ds = load_arrays(tmp_path / "seq.npz", test_fraction=0.25, seed=4, flatten=False)
    assert ds.x_train.shape == (15, t, d) and ds.x_test.shape == (5, t, d)
    assert ds.sample_shape == (t, d) and ds.n_features == t * d
    xs = np.concatenate([ds.x_train, ds.x_test])
    ys = np.concatenate([ds.y_train, ds.y_test])
    idx = xs[:, 0, 0].astype(int)
    assert sorted(idx.tolist()) == list(range(n))  # a partition of the samples
    np.testing.assert_allclose(xs, x[idx].astype(np.float32))
    np.testing.assert_array_equal(ys, y[idx])


def test_npz_nd_validation_errors(tmp_path: Path) -> None:
    good = np.zeros((4, 1, 4, 4))
    labels = np.array([0, 1, 0, 1])
    np.savez(
        tmp_path / "shape.npz", x_train=good, y_train=labels, x_test=np.zeros((2, 1, 2, 8)), y_test=labels[:2]
    )
    with pytest.raises(DataError, match=r"\(test\): expected samples of shape \(1, 4, 4\), got \(1, 2, 8\)"):
        load_arrays(tmp_path / "shape.npz", flatten=False)
    np.savez(
        tmp_path / "size.npz", x_train=good, y_train=labels, x_test=np.zeros((2, 1, 3, 3)), y_test=labels[:2]
    )
    with pytest.raises(DataError, match="expected 16 features, got 9"):
        load_arrays(tmp_path / "size.npz", flatten=False)
    bad = good.copy()
    bad[1, 0, 3, 2] = np.nan
    np.savez(tmp_path / "nan.npz", x=bad, y=labels)
    with pytest.raises(DataError, match=r"nan\.npz: 1 non-finite .*row 1 at position \(0, 3, 2\)"):
        load_arrays(tmp_path / "nan.npz", flatten=False)
    np.savez(tmp_path / "frac.npz", x=good, y=np.array([0, 1.5, 0, 1]))
    with pytest.raises(DataError, match=r"frac\.npz: label 1\.5 at index 1 is not a whole number"):
        load_arrays(tmp_path / "frac.npz", flatten=False, task="classify")
    np.savez(tmp_path / "len.npz", x=good, y=labels[:3])
    with pytest.raises(DataError, match="mismatched lengths: 4 samples in x but 3 labels"):
        load_arrays(tmp_path / "len.npz", flatten=False)


def test_load_mnist_as_images(tmp_path: Path) -> None:
    arrays = make_mnist(tmp_path / "m")
    ds = load_mnist(tmp_path / "m", flatten=False)
    assert ds.x_train.shape == (20, 1, 28, 28) and ds.x_test.shape == (10, 1, 28, 28)
    assert ds.x_train.dtype == np.float32 and ds.sample_shape == (1, 28, 28) and ds.n_features == 784
    np.testing.assert_allclose(ds.x_test[:, 0], arrays["test_images"] / 255.0, rtol=0, atol=1e-7)
    np.testing.assert_array_equal(ds.y_train, arrays["train_labels"])
    flat = load_mnist(tmp_path / "m")
    np.testing.assert_array_equal(flat.x_train, ds.x_train.reshape(20, 784))
    assert load_data("mnist", tmp_path / "m", flatten=False).x_train.shape == (20, 1, 28, 28)


def test_load_default_as_images() -> None:
    ds = load_default(flatten=False)
    assert ds.x_train.shape == (6000, 1, 28, 28) and ds.x_test.shape == (1000, 1, 28, 28)
    flat = load_default()
    np.testing.assert_array_equal(ds.x_test.reshape(1000, 784), flat.x_test)
    np.testing.assert_array_equal(ds.y_train, flat.y_train)


# --------------------------------------------------------------------------------------------
# real MNIST (skipped when absent)
# --------------------------------------------------------------------------------------------

needs_mnist = pytest.mark.skipif(  # under CI the tests run, and fail when MNIST is missing
    not (REAL_MNIST / "train-images-idx3-ubyte.gz").exists()
    and not (REAL_MNIST / "train-images-idx3-ubyte").exists()
    and not os.environ.get("CI"),
    reason=f"real MNIST not found at {REAL_MNIST} (set CHAINRULE_TEST_MNIST to its directory)",
)


@needs_mnist
def test_real_mnist() -> None:
    ds = load_mnist(REAL_MNIST)
    assert ds.x_train.shape == (60000, 784) and ds.x_test.shape == (10000, 784)
    assert np.bincount(ds.y_train, minlength=10).tolist() == MNIST_TRAIN_COUNTS
    assert np.bincount(ds.y_test, minlength=10).tolist() == MNIST_TEST_COUNTS
    assert ds.x_train.min() == 0.0 and ds.x_train.max() == 1.0


@needs_mnist
@pytest.mark.parametrize("name", ["train-labels-idx1-ubyte", "t10k-images-idx3-ubyte"])
def test_real_mnist_idx_bytes_match_published_md5(name: str) -> None:
    path = REAL_MNIST / (name + ".gz")
    if not path.exists():
        path = REAL_MNIST / name
    arr = read_idx(path)
    assert hashlib.md5(idx_bytes(arr)).hexdigest() == MNIST_MD5[name]
