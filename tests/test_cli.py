"""The `chainrule` command: through main([...]) and as a subprocess; exit codes and messages."""

from __future__ import annotations

import gzip
import json
import os
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from chainrule.cli import main
from chainrule.nn.builders import hidden_activations
from chainrule.nn.layer import LAYERS
from chainrule.nn.losses import LOSSES
from conftest import run_cli

SMALL = ["--layers", "784,32,10", "--epochs", "1", "--quiet"]



def test_train_json_last_line(capsys, tmp_path: Path) -> None:
    model = tmp_path / "m.safetensors"
    code, out, _ = run_cli(capsys, "train", *SMALL, "--json", "--save", str(model))
    assert code == 0
    result = json.loads(out.strip().splitlines()[-1])
    assert {"test_accuracy", "final_loss", "epoch_seconds"} <= set(result)
    assert 0.5 < result["test_accuracy"] <= 1.0
    assert len(result["epoch_seconds"]) == 1 and result["epoch_seconds"][0] > 0
    assert model.exists()

    code, out, _ = run_cli(capsys, "evaluate", "--model", str(model), "--json")
    assert code == 0
    ev = json.loads(out.strip().splitlines()[-1])
    assert ev["accuracy"] == pytest.approx(result["test_accuracy"])  # same data, same model
    assert np.array(ev["confusion"]).sum() == ev["n"] == 1000


def test_predict_from_csv(capsys, tmp_path: Path) -> None:
    model = tmp_path / "m.safetensors"
    assert main(["train", *SMALL, "--save", str(model)]) == 0
    from chainrule.io import load_default
    from chainrule.io.serialize import load

    d = load_default()
    rows = tmp_path / "rows.csv"
    np.savetxt(rows, d.x_test[:5], delimiter=",", fmt="%.6f")
    capsys.readouterr()
    code, out, _ = run_cli(capsys, "predict", "--model", str(model), "--input", str(rows), "--json")
    assert code == 0
    preds = json.loads(out)["predictions"]
    expected = load(model).predict(np.loadtxt(rows, delimiter=",").astype(np.float32)).tolist()
    assert d.class_names is None or d.class_names == [str(i) for i in range(10)]
    assert preds == [str(i) if d.class_names else i for i in expected]


def test_train_on_csv_with_target(capsys, tmp_path: Path) -> None:
    r = np.random.default_rng(0)
    y = r.integers(0, 2, 200)
    x = r.standard_normal((200, 3)) + y[:, None] * 2.0
    path = tmp_path / "d.csv"
    with open(path, "w") as fh:
        fh.write("label,a,b,c\n")
        for yi, xi in zip(y, x, strict=True):
            fh.write(f"{'yes' if yi else 'no'},{xi[0]},{xi[1]},{xi[2]}\n")
    code, out, _ = run_cli(
        capsys,
        "train",
        "--data",
        str(path),
        "--target",
        "label",
        "--layers",
        "3,8,2",
        "--epochs",
        "20",
        "--batch-size",
        "16",
        "--scale",
        "standard",  # 20 epochs of a 3-8-2 net: the test is about --target, not the scaling default
        "--json",
        "--quiet",
    )
    assert code == 0
    assert json.loads(out.strip().splitlines()[-1])["test_accuracy"] > 0.85


@pytest.mark.parametrize("mode", ["full", "1"])
def test_full_batch_and_online(capsys, mode: str) -> None:
    code, out, _ = run_cli(
        capsys, "train", "--layers", "784,8,10", "--epochs", "1", "--batch-size", mode, "--json", "--quiet"
    )
    assert code == 0 and json.loads(out.strip().splitlines()[-1])["epochs"] == 1


def test_gradcheck_command(capsys) -> None:
    code, out, _ = run_cli(capsys, "gradcheck", "--all", "--json")
    assert code == 0
    res = json.loads(out)
    # every registered layer kind on its own, and every hidden activation × every loss
    expected = {f"layer:{k}" for k in LAYERS} | {f"{a}/{lo}" for a in hidden_activations() for lo in LOSSES}
    assert res["ok"] and set(res["results"]) == expected
    assert {"layer:dense", "layer:dense_tied", "layer:softmax", "tanh/bce", "maxout/squared"} <= expected
    assert all(r["max_error"] < 1e-7 for r in res["results"].values())


def test_progress_bar_and_summary_by_default(capsys) -> None:
    code, out, err = run_cli(capsys, "train", "--layers", "784,8,10", "--epochs", "1")
    assert code == 0
    assert "test accuracy" in out
    assert "epoch 1/1" in err  # tqdm bar description and the epoch line go to stderr


# ---- bad input: one line on stderr naming the problem, non-zero exit, no traceback --------------


def _idx_images(path: Path, n: int, magic: int = 0x0803, truncate: int = 0) -> None:
    data = struct.pack(">IIII", magic, n, 28, 28) + bytes(n * 784)
    path.write_bytes(gzip.compress(data[: len(data) - truncate] if truncate else data))


def _idx_labels(path: Path, n: int) -> None:
    path.write_bytes(gzip.compress(struct.pack(">II", 0x0801, n) + bytes(n)))


def _mnist_dir(tmp: Path, *, magic: int = 0x0803, truncate: int = 0) -> Path:
    d = tmp / "mn"
    d.mkdir()
    for prefix, n in (("train", 20), ("t10k", 10)):
        _idx_images(d / f"{prefix}-images-idx3-ubyte.gz", n, magic=magic, truncate=truncate)
        _idx_labels(d / f"{prefix}-labels-idx1-ubyte.gz", n)
    return d


def _csv(tmp: Path, text: str) -> str:
    p = tmp / "d.csv"
    p.write_text(text)
    return str(p)


BAD_INPUTS = {
    "unknown flag": (lambda t: ["train", "--bogus"], 2, "unrecognized arguments"),
    "bad value": (lambda t: ["train", "--activation", "swish"], 2, "invalid choice"),
    "negative lr": (lambda t: ["train", "--lr", "-0.1"], 2, "positive number"),
    "bad layers": (lambda t: ["train", "--layers", "784,a,10"], 2, "comma-separated"),
    "wrong input width": (lambda t: ["train", "--layers", "100,10"], 1, "784 features"),
    "wrong class count": (lambda t: ["train", "--layers", "784,10,7"], 1, "10 classes"),
    "NaN in data": (lambda t: ["train", "--data", _csv(t, "1,2,0\nnan,3,1\n4,5,0\n6,7,1\n")], 1, "NaN"),
    "Inf in data": (lambda t: ["train", "--data", _csv(t, "1,2,0\ninf,3,1\n4,5,0\n6,7,1\n")], 1, "Inf"),
    "empty data": (lambda t: ["train", "--data", _csv(t, "")], 1, "empty"),
    "labels out of range": (
        lambda t: ["train", "--data", _csv(t, "1,2,0\n2,3,1\n4,5,0\n6,7,1\n"), "--layers", "2,4,5"],
        1,
        "outputs but the data has 2 classes",
    ),
    "non-numeric cell": (lambda t: ["train", "--data", _csv(t, "1,2,0\nx,3,1\n4,5,0\n")], 1, "non-numeric"),
    "missing data file": (lambda t: ["train", "--data", str(t / "nope.csv")], 1, "not found"),
    "truncated IDX": (lambda t: ["train", "--data", str(_mnist_dir(t, truncate=100))], 1, "truncated"),
    "bad IDX magic": (lambda t: ["train", "--data", str(_mnist_dir(t, magic=0x1F8B0803))], 1, "magic"),
    "bad IDX type": (lambda t: ["train", "--data", str(_mnist_dir(t, magic=0x0C03))], 1, "data type"),
    "corrupt model": (lambda t: ["evaluate", "--model", _csv(t, "garbage")], 1, "not a chainrule model"),
    "missing model": (lambda t: ["evaluate", "--model", str(t / "none.safetensors")], 1, "not found"),
    "wrong dtype npy": (
        lambda t: ["train", "--data", _npy(t, np.array([["a", "b"], ["c", "d"]]))],
        1,
        "dtype",
    ),
    "mismatched npz": (lambda t: ["train", "--data", _npz(t, x=np.zeros((5, 2)), y=np.zeros(4))], 1, "5"),
    "unwritable output": (
        lambda t: ["train", "--save", str(t / "no" / "dir" / "m.safetensors")],
        1,
        "does not exist",
    ),
}


def _npy(tmp: Path, arr: np.ndarray) -> str:
    p = tmp / "d.npy"
    np.save(p, arr)
    return str(p)


def _npz(tmp: Path, **arrays: np.ndarray) -> str:
    p = tmp / "d.npz"
    np.savez(p, **arrays)
    return str(p)


@pytest.mark.parametrize("case", sorted(BAD_INPUTS))
def test_bad_input_gives_one_clear_line(case: str, capsys, tmp_path: Path) -> None:
    make, code, fragment = BAD_INPUTS[case]
    argv = make(tmp_path)
    got = main([*argv, "--quiet"] if argv[0] == "train" and "--bogus" not in argv else argv)
    _, err = capsys.readouterr()
    lines = [ln for ln in err.strip().splitlines() if ln.strip()]
    assert got == code, err
    assert len(lines) == 1, err
    assert lines[0].startswith("chainrule: error:")
    assert fragment.lower() in lines[0].lower(), lines[0]
    assert "Traceback" not in err


def test_subprocess_error_has_no_traceback(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    env.pop("CHAINRULE_DEBUG", None)
    bad = tmp_path / "m.safetensors"
    bad.write_bytes(b"\x00" * 64)
    proc = subprocess.run(
        [sys.executable, "-m", "chainrule", "evaluate", "--model", str(bad)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert proc.returncode == 1
    assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr
    assert "chainrule: error:" in proc.stderr


def test_subprocess_train_json(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "chainrule", "train", *SMALL, "--json"],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout.strip().splitlines()[-1])["test_accuracy"] > 0.5


def test_missing_optional_package_fails_before_training(capsys, monkeypatch, tmp_path: Path) -> None:
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "matplotlib" else real(name, *a)
    )
    code = main(["train", "--plot", str(tmp_path / "c.png"), "--quiet"])
    _, err = capsys.readouterr()
    assert code == 1
    assert "matplotlib" in err and "chainrule[plot]" in err
    assert "epoch" not in err  # nothing was trained
    assert not (tmp_path / "c.png").exists()
