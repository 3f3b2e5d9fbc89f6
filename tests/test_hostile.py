"""Regression tests for the defects of issue 13 (hostile input and faults), one per defect.

Each builds the input the campaign found, runs the CLI (or the library call) and checks the
one-line contract of ``tests/fuzz/hostile.py``: exit 1/2, one ``chainrule: error:`` line, no
traceback, nothing written; plus what the defect got wrong (wrong rows, lost files, temp files).
"""

from __future__ import annotations

import gzip
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent / "fuzz"))

import hostile as h

from chainrule import _io
from chainrule.errors import DataError, ModelFileError
from chainrule.io.idx import read_idx
from chainrule.io.serialize import load, save
from chainrule.nn.builders import mlp

REPO = Path(__file__).resolve().parents[1]


def _model(tmp: Path, data: bytes, name: str = "m.safetensors") -> Path:
    (tmp / name).write_bytes(data)
    (tmp / "x.csv").write_text(h.csv_text(h.csv_rows(5, label=False)))
    return tmp / name


# --- allocation before validation ------------------------------------------------------------


def test_tiny_file_declaring_a_huge_dense_layer_is_refused_from_its_header(tmp_path: Path) -> None:
    arch = {"layers": [{"type": "dense", "in_features": 22000, "out_features": 22000}]}
    raw = h.safetensors_bytes({}, h.model_metadata(arch))
    assert len(raw) < 400
    _model(tmp_path, raw)
    # CPU seconds of this process, not wall time: the defect spent 8-13 s allocating 3.8 GB, and a
    # wall-clock bound also counts the time a loaded machine makes the test wait for a core
    t = time.process_time()
    line = h.refused(["predict", "--model", "m.safetensors", "--input", "x.csv"], tmp_path)
    assert time.process_time() - t < 2
    assert "missing" in line and "0.W" in line


def test_csv_label_of_1e9_is_refused_before_any_one_hot(tmp_path: Path) -> None:
    rows = h.csv_rows(10)
    rows[3][4] = "1000000000"
    (tmp_path / "t.csv").write_text(h.csv_text(rows))
    line = h.refused(["train", "--data", "t.csv", "--epochs", "1"], tmp_path)
    assert "1,000,000,001 classes" in line and "--max-classes" in line


def test_max_classes_flag_raises_the_limit(tmp_path: Path) -> None:
    rows = h.csv_rows(10)
    rows[3][4] = "20000"
    (tmp_path / "t.csv").write_text(h.csv_text(rows))
    h.refused(["train", "--data", "t.csv", "--epochs", "1"], tmp_path)
    rc, _, err = h.run_cli(
        ["train", "--data", "t.csv", "--epochs", "1", "--layers", "4,20001", "--max-classes", "30000"],
        tmp_path,
    )
    assert rc == 0, err


@pytest.mark.parametrize(
    "argv",
    [
        ["train", "--layers", "784,100000000,10", "--epochs", "1"],
        ["gradcheck", "--layers", "4,100000000,3"],
        ["vanishing", "--quick", "--no-plots", "--width", "100000000"],
        ["explain", "--layers", "4,100000000,3"],
    ],
)
def test_huge_sizes_are_refused_before_building(tmp_path: Path, argv: list[str]) -> None:
    line = h.refused(argv, tmp_path)
    assert "over the limit" in line and "--max-params" in line


def test_max_params_flag_lowers_and_raises_the_limit(tmp_path: Path) -> None:
    (tmp_path / "t.csv").write_text(h.csv_text(h.csv_rows(10)))
    assert "over the limit of 10" in h.refused(
        ["train", "--data", "t.csv", "--layers", "4,8,3", "--max-params", "10"], tmp_path
    )
    rc, _, err = h.run_cli(["train", "--data", "t.csv", "--layers", "4,8,3", "--epochs", "1"], tmp_path)
    assert rc == 0, err


# --- unbounded reads -------------------------------------------------------------------------


def test_gzip_idx_decompresses_no_more_than_the_header_declares(tmp_path: Path) -> None:
    labels = np.arange(10, dtype=np.uint8)
    p = tmp_path / "labels.gz"
    p.write_bytes(gzip.compress(h.idx_bytes(labels) + bytes(64 << 20), mtime=0))  # 64 MiB of padding
    with pytest.raises(DataError, match="oversized"):
        read_idx(p)


def test_idx_header_declaring_more_than_the_file_can_hold_is_refused_without_allocating(
    tmp_path: Path,
) -> None:
    p = tmp_path / "images"
    p.write_bytes(bytes([0, 0, 8, 3]) + (2**31).to_bytes(4, "big") + (28).to_bytes(4, "big") * 2 + bytes(100))
    with pytest.raises(DataError, match="truncated"):
        read_idx(p)


@pytest.mark.parametrize("byte1", [1, 0x80, 0xFF])
def test_idx_magic_with_one_zero_byte_is_refused(tmp_path: Path, byte1: int) -> None:
    """Either of the two leading bytes non-zero is a bad magic number (not only both)."""
    for pos in (0, 1):
        data = bytearray(h.idx_bytes(np.arange(5, dtype=np.uint8)))
        data[pos] = byte1
        p = tmp_path / f"bad{pos}"
        p.write_bytes(bytes(data))
        with pytest.raises(DataError, match="bad magic"):
            read_idx(p)


def test_newline_free_stream_named_csv_stops_at_the_line_limit(tmp_path: Path) -> None:
    (tmp_path / "zero.csv").symlink_to("/dev/zero")
    (tmp_path / "m.safetensors").write_bytes(h.valid_model())
    line = h.refused(["predict", "--model", "m.safetensors", "--input", "zero.csv"], tmp_path)
    assert "longer than" in line
    line = h.refused(["train", "--data", "zero.csv", "--epochs", "1"], tmp_path)
    assert "longer than" in line


# --- tracebacks instead of one line ----------------------------------------------------------

HEADER_CASES = {
    "deep nesting": lambda: h.raw_model('{"a":' + "[" * 100_000 + "]" * 100_000 + "}"),
    "1e400": lambda: h.safetensors_bytes(
        h.model_tensors(),
        {**h.model_metadata(), "architecture": json.dumps(h.ARCH).replace('"alpha": 0.01', '"alpha": 1e400')},
    ),
    "negative size": lambda: h.safetensors_bytes(
        h.model_tensors(),
        h.model_metadata({"layers": [{"type": "dense", "in_features": -4, "out_features": 3}]}),
    ),
    "size as string": lambda: h.safetensors_bytes(
        h.model_tensors(),
        h.model_metadata({"layers": [{"type": "dense", "in_features": "4", "out_features": 3}]}),
    ),
    "layers not a list": lambda: h.safetensors_bytes(h.model_tensors(), h.model_metadata({"layers": 5})),
    "layer not an object": lambda: h.safetensors_bytes(h.model_tensors(), h.model_metadata({"layers": [5]})),
    "type not a string": lambda: h.safetensors_bytes(
        h.model_tensors(), h.model_metadata({"layers": [{"type": ["dense"]}]})
    ),
    "metadata value not a string": lambda: h.safetensors_bytes(
        h.model_tensors(), {**h.model_metadata(), "info": 7}
    ),
    "class_names of the wrong type": lambda: h.safetensors_bytes(
        h.model_tensors(), h.model_metadata(info={"class_names": "ab"})
    ),
    "class_names holding numbers": lambda: h.safetensors_bytes(
        h.model_tensors(), h.model_metadata(info={"class_names": [0, 1]})
    ),
    "input_dim true": lambda: h.safetensors_bytes(
        h.model_tensors(), h.model_metadata({**h.ARCH, "input_dim": True})
    ),
    "shape not a list": lambda: h.raw_model(
        {
            "0.W": {"dtype": "F32", "shape": "4x3", "data_offsets": [0, 48]},
            "__metadata__": h.model_metadata(),
        },
        bytes(48),
    ),
}


@pytest.mark.parametrize("kind", sorted(HEADER_CASES))
def test_crafted_model_headers_are_one_line(tmp_path: Path, kind: str) -> None:
    _model(tmp_path, HEADER_CASES[kind]())
    for argv in (
        ["predict", "--model", "m.safetensors", "--input", "x.csv"],
        ["gradcheck", "--model", "m.safetensors"],
        ["explain", "--model", "m.safetensors"],
    ):
        h.refused(argv, tmp_path)


@pytest.mark.parametrize(
    ("content", "match"),
    [
        ("é,1\n".encode("latin-1"), "not UTF-8"),
        (bytes(range(256)) * 8, "not UTF-8"),
        (b'1,"' + b"9" * 200_000 + b'"\n', "field larger than field limit"),
    ],
)
def test_predict_on_unreadable_csv_is_one_line(tmp_path: Path, content: bytes, match: str) -> None:
    (tmp_path / "m.safetensors").write_bytes(h.valid_model())
    (tmp_path / "x.csv").write_bytes(content)
    assert match in h.refused(["predict", "--model", "m.safetensors", "--input", "x.csv"], tmp_path)


def test_predict_on_urandom_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "m.safetensors").write_bytes(h.valid_model())
    (tmp_path / "r.csv").symlink_to("/dev/urandom")
    h.refused(["predict", "--model", "m.safetensors", "--input", "r.csv"], tmp_path)


def test_predict_on_an_npz_without_features_is_one_line(tmp_path: Path) -> None:
    """``predict`` reads an ``.npz``'s ``x`` (issue 11); one without ``x`` and with several arrays is
    one line, not a traceback."""
    (tmp_path / "m.safetensors").write_bytes(h.valid_model())
    x, y = h.valid_xy()
    (tmp_path / "f.npz").write_bytes(h.npz_arrays(a=x, b=y))
    assert "needs an array 'x'" in h.refused(
        ["predict", "--model", "m.safetensors", "--input", "f.npz"], tmp_path
    )


def test_idx_with_zero_images_is_one_line(tmp_path: Path) -> None:
    files = h.mnist_files()
    files["train_images"] = h.idx_bytes(np.zeros((0, 28, 28), np.uint8))
    files["train_labels"] = h.idx_bytes(np.zeros(0, np.uint8))
    h.write_mnist(tmp_path / "mn", files)
    assert "no samples" in h.refused(["train", "--data", "mn", "--epochs", "1"], tmp_path)


def test_npz_member_that_is_not_npy_is_one_line(tmp_path: Path) -> None:
    x, y = h.valid_xy()
    (tmp_path / "f.npz").write_bytes(
        h.npz_bytes({"x.npy": h.npy_bytes(x), "y.npy": h.npy_bytes(y), "z.txt": b"hi"})
    )
    assert "not a .npy array" in h.refused(["train", "--data", "f.npz", "--epochs", "1"], tmp_path)


def test_deeply_nested_run_record_is_one_line(tmp_path: Path) -> None:
    rec = json.dumps(h.valid_record()).replace(
        '"config": {', '"config": {"x": ' + "[" * 5000 + "]" * 5000 + ",", 1
    )
    (tmp_path / "r.json").write_text(rec)
    assert "nested" in h.refused(["report", "r.json", "--out", "o.html"], tmp_path)


def test_unexpected_exception_is_one_line_naming_command_and_kind(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import chainrule.jobs.gradcheck as job

    def boom(*a: object, **k: object) -> None:
        raise ZeroDivisionError("oops")

    monkeypatch.setattr(job, "mlp", boom)
    line = h.refused(["gradcheck"], tmp_path)
    assert (
        line.startswith("chainrule: error: gradcheck") and "ZeroDivisionError" in line and "--debug" in line
    )
    with pytest.raises(ZeroDivisionError):
        from chainrule.cli import main

        main(["gradcheck", "--debug"])


def _launch(args: list[str], cwd: Path) -> subprocess.Popen[bytes]:
    code = "import sys; from chainrule_launch import entry; sys.argv[0] = 'chainrule'; entry()"
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    return subprocess.Popen(
        [sys.executable, "-c", code, *args], cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )


def _wait_for_numpy(p: subprocess.Popen[bytes], timeout: float = 60) -> None:
    """Until the child maps NumPy's extension (its imports are under way): start-up, not the
    interpreter's own first milliseconds, which no Python code can guard."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            if "_multiarray_umath" in Path(f"/proc/{p.pid}/maps").read_text():
                return
        except OSError:
            pass
        time.sleep(0.002)
    raise AssertionError("the child never imported numpy")


@pytest.mark.parametrize("delay", [0.0, 0.05, 0.2, 0.5])
def test_sigint_during_start_up_is_one_line_and_130(tmp_path: Path, delay: float) -> None:
    p = _launch(["train", "--epochs", "50", "--quiet"], tmp_path)
    _wait_for_numpy(p)
    time.sleep(delay)
    p.send_signal(signal.SIGINT)
    _, err = p.communicate(timeout=120)
    assert p.returncode == 130, err
    assert err.decode().strip().splitlines() == ["chainrule: error: interrupted"]


def test_sigterm_during_a_save_leaves_no_temp_file(tmp_path: Path) -> None:
    (tmp_path / "t.csv").write_text(h.csv_text(h.csv_rows(3000)))
    p = _launch(
        ["train", "--data", "t.csv", "--epochs", "500", "--quiet", "--save", "m.safetensors"], tmp_path
    )
    time.sleep(1.5)
    p.send_signal(signal.SIGTERM)
    _, err = p.communicate(timeout=120)
    assert p.returncode == 143, err
    assert err.decode().strip().splitlines() == ["chainrule: error: terminated"]
    assert sorted(q.name for q in tmp_path.iterdir()) == ["t.csv"]


# --- wrong results with exit 0 ---------------------------------------------------------------


def test_predict_keeps_the_first_row_of_a_bom_csv(tmp_path: Path) -> None:
    (tmp_path / "m.safetensors").write_bytes(h.valid_model())
    rows = h.csv_rows(6, label=False, header=False)
    (tmp_path / "bom.csv").write_bytes("\ufeff".encode() + h.csv_text(rows).encode())
    (tmp_path / "plain.csv").write_text(h.csv_text(rows))
    rc1, out1, _ = h.run_cli(["predict", "--model", "m.safetensors", "--input", "bom.csv"], tmp_path)
    rc2, out2, _ = h.run_cli(["predict", "--model", "m.safetensors", "--input", "plain.csv"], tmp_path)
    assert rc1 == rc2 == 0
    assert out1 == out2 and len(out1.splitlines()) == 6


def test_value_overflowing_float32_is_refused(tmp_path: Path) -> None:
    (tmp_path / "m.safetensors").write_bytes(h.valid_model())
    rows = h.csv_rows(4, label=False)
    rows[2][1] = "1e39"
    (tmp_path / "x.csv").write_text(h.csv_text(rows))
    assert "overflows float32" in h.refused(
        ["predict", "--model", "m.safetensors", "--input", "x.csv"], tmp_path
    )


@pytest.mark.parametrize(
    ("layer", "field", "value"),
    [(1, "alpha", float("nan")), (0, "in_features", 3.7), (0, "in_features", 4.0), (0, "out_features", True)],
)
def test_loader_refuses_values_that_would_be_coerced(
    tmp_path: Path, layer: int, field: str, value: object
) -> None:
    arch = json.loads(json.dumps(h.ARCH))
    arch["layers"][layer][field] = value
    p = _model(tmp_path, h.safetensors_bytes(h.model_tensors(), h.model_metadata(arch)))
    with pytest.raises(ModelFileError):
        load(p)


def test_loader_refuses_mixed_float32_and_float64(tmp_path: Path) -> None:
    t = h.model_tensors()
    t["0.b"] = t["0.b"].astype(np.float64)
    p = _model(tmp_path, h.safetensors_bytes(t, h.model_metadata()))
    with pytest.raises(ModelFileError, match="mix float32 and float64"):
        load(p)


def test_one_class_csv_is_refused_for_training(tmp_path: Path) -> None:
    rows = h.csv_rows(10)
    for r in rows[1:]:
        r[4] = "0"
    (tmp_path / "t.csv").write_text(h.csv_text(rows))
    assert "at least 2" in h.refused(["train", "--data", "t.csv", "--epochs", "1"], tmp_path)


# --- data loss -------------------------------------------------------------------------------

TRAIN = ["train", "--data", "t.csv", "--epochs", "1", "--layers", "4,3,3"]


@pytest.mark.parametrize("flag", ["--save", "--plot", "--log", "--report"])
@pytest.mark.parametrize("target", ["t.csv", "./t.csv", "link.csv", "hard.csv"])
def test_output_pointed_at_the_input_is_refused(tmp_path: Path, flag: str, target: str) -> None:
    (tmp_path / "t.csv").write_text(h.csv_text(h.csv_rows()))
    (tmp_path / "link.csv").symlink_to("t.csv")
    os.link(tmp_path / "t.csv", tmp_path / "hard.csv")
    assert "would overwrite the input" in h.refused([*TRAIN, flag, target], tmp_path)


@pytest.mark.parametrize(
    ("a", "b"), [("--save", "--log"), ("--save", "--report"), ("--plot", "--log"), ("--log", "--report")]
)
def test_two_outputs_on_one_file_are_refused(tmp_path: Path, a: str, b: str) -> None:
    (tmp_path / "t.csv").write_text(h.csv_text(h.csv_rows()))
    (tmp_path / "m").write_bytes(b"old model")
    assert "are the same file" in h.refused([*TRAIN, a, "m", b, "m"], tmp_path)


def test_report_and_explain_cannot_overwrite_their_input(tmp_path: Path) -> None:
    (tmp_path / "r.json").write_text(json.dumps(h.valid_record()))
    h.refused(["report", "r.json", "--out", "r.json"], tmp_path)
    (tmp_path / "g").write_bytes(h.valid_model())
    h.refused(["explain", "--model", "g", "--out", "g"], tmp_path)


@pytest.mark.parametrize("flag", ["--log", "--plot", "--report"])
def test_a_bad_second_output_fails_before_the_model_is_replaced(tmp_path: Path, flag: str) -> None:
    (tmp_path / "t.csv").write_text(h.csv_text(h.csv_rows()))
    (tmp_path / "ok.safetensors").write_bytes(h.valid_model())
    (tmp_path / "DIR").mkdir()
    line = h.refused([*TRAIN, "--save", "ok.safetensors", flag, "DIR"], tmp_path)
    assert f"{flag} DIR" in line and "directory" in line


def test_unwritable_output_is_found_before_training_and_named(tmp_path: Path) -> None:
    (tmp_path / "t.csv").write_text(h.csv_text(h.csv_rows()))
    line = h.refused([*TRAIN, "--save", "no/such/dir/m.safetensors"], tmp_path)
    assert "no/such/dir/m.safetensors" in line and ".tmp" not in line
    line = h.refused([*TRAIN, "--save", "/dev/null"], tmp_path)
    assert "not a regular file" in line


def test_a_diverged_run_does_not_replace_the_model(tmp_path: Path) -> None:
    net = mlp([4, 3, 2], seed=0)
    good = tmp_path / "m.safetensors"
    save(net, good)
    before = good.read_bytes()
    net.params[0].value[0, 0] = np.nan
    with pytest.raises(ModelFileError, match="NaN or Inf"):
        save(net, good)
    assert good.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.safetensors"]


# --- late or unclear failures ----------------------------------------------------------------


def test_garbage_npy_is_not_called_a_pickle(tmp_path: Path) -> None:
    (tmp_path / "m.safetensors").write_bytes(h.valid_model())
    (tmp_path / "f.npy").write_bytes(b"this is not numpy at all" * 10)
    line = h.refused(["predict", "--model", "m.safetensors", "--input", "f.npy"], tmp_path)
    assert "not a NumPy .npy file" in line and "pickle" not in line


def test_ragged_rows_are_named(tmp_path: Path) -> None:
    (tmp_path / "m.safetensors").write_bytes(h.valid_model())
    rows = h.csv_rows(5, label=False)
    rows[3] = rows[3][:2]
    (tmp_path / "x.csv").write_text(h.csv_text(rows))
    line = h.refused(["predict", "--model", "m.safetensors", "--input", "x.csv"], tmp_path)
    assert "row 4 has 2 columns, expected 4" in line and "sequence" not in line


def test_temp_file_of_a_killed_writer_is_removed_by_the_next_write(tmp_path: Path) -> None:
    p = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    dead = p.pid
    p.kill()
    p.wait()
    stale = tmp_path / f".m.safetensors.{dead}.abc123.tmp"
    stale.write_bytes(bytes(1000))
    writer = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])  # a live writer
    alive = tmp_path / f".m.safetensors.{writer.pid}.abc123.tmp"
    alive.write_bytes(b"someone else's write in progress")
    try:
        save(mlp([4, 3, 2]), tmp_path / "m.safetensors")
        assert not stale.exists() and alive.exists()
        time.sleep(0.2)
        assert writer.poll() is None  # probed with signal 0: never sent a real signal
    finally:
        writer.kill()
        writer.wait()


def test_limits_are_inclusive_bounds() -> None:
    from chainrule import limits

    with limits.override(max_params=26, max_classes=3):
        limits.check_params(26, "net")
        limits.check_classes(3, "data")
        with pytest.raises(limits.ConfigError, match="27 parameters"):
            limits.check_params(27, "net")
        with pytest.raises(limits.DataError, match="4 classes"):
            limits.check_classes(4, "data")
    assert limits.LIMITS.max_params == limits.Limits().max_params  # restored


# --- atomic writes have teeth ----------------------------------------------------------------


def test_atomic_open_never_writes_in_place(tmp_path: Path) -> None:
    p = tmp_path / "f.txt"
    p.write_text("old")
    with _io.atomic_open(p, "w") as fh:
        fh.write("new")
        fh.flush()
        assert p.read_text() == "old"  # readers see the old file until the rename
    assert p.read_text() == "new"


def test_atomic_open_failure_keeps_the_old_file_and_removes_the_temp(tmp_path: Path) -> None:
    p = tmp_path / "f.txt"
    p.write_text("old")
    with pytest.raises(RuntimeError), _io.atomic_open(p, "w") as fh:
        fh.write("half")
        raise RuntimeError("disk full")
    assert p.read_text() == "old"
    assert [q.name for q in tmp_path.iterdir()] == ["f.txt"]
    with pytest.raises(KeyboardInterrupt), _io.atomic_open(p, "w") as fh:
        raise KeyboardInterrupt
    assert [q.name for q in tmp_path.iterdir()] == ["f.txt"]


def test_vanishing_no_plots_writes_nothing_anywhere(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "out"
    monkeypatch.chdir(tmp_path)
    rc, _, err = h.run_cli(
        [
            "vanishing",
            "--quick",
            "--steps",
            "5",
            "--depths",
            "3",
            "--width",
            "8",
            "--no-plots",
            "--out",
            str(out),
        ],
        tmp_path,
    )
    assert rc == 0, err
    assert not out.exists() and list(tmp_path.iterdir()) == []
    rc, _, err = h.run_cli(
        ["vanishing", "--quick", "--steps", "5", "--depths", "3", "--width", "8", "--out", str(out)], tmp_path
    )
    assert rc == 0, err
    assert (out / "vanishing.json").exists()  # the same command without --no-plots does write there


def test_info_with_non_finite_numbers_still_round_trips(tmp_path: Path) -> None:
    """The loader reads strict JSON, so ``save`` writes NaN/Inf in ``info`` as null."""
    from chainrule.io.serialize import load_with_info

    save(mlp([4, 3, 2]), tmp_path / "m.safetensors", info={"best": float("nan"), "x": [1.0, float("inf")]})
    _, info = load_with_info(tmp_path / "m.safetensors")
    assert info == {"best": None, "x": [1.0, None]}
