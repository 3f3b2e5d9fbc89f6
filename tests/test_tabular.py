"""Issue 11: real tabular data. ONNX export (acceptance 4), divergence (5), exact resume under SIGKILL
(3), regression end to end, scaling stored in the model, splits and labels, predict and output flags."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from chainrule.cli import main
from chainrule.io.serialize import load_with_info
from chainrule.jobs.tabular import load_model, predict_rows

ROOT = Path(__file__).resolve().parents[1]


def _table(path: Path, n: int = 240, regress: bool = False, seed: int = 0, labels=None) -> Path:
    """Unscaled features in wildly different units (as exported from a real table) and a target."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, 5)) * np.array([1.0, 1000.0, 0.01, 50.0, 5.0]) + np.array(
        [0, 5000, 0, -20, 3]
    )
    z = x[:, 0] + (x[:, 1] - 5000) / 1000 - (x[:, 3] + 20) / 50
    if regress:
        y = 150 + 60 * z + rng.standard_normal(n) * 5
        cells = [f"{v:.3f}" for v in y]
    else:
        k = np.digitize(z, [-0.7, 0.7])
        names = labels or ["0", "1", "2"]
        cells = [names[i] for i in k]
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["a", "b", "c", "d", "e", "target"])
        for row, t in zip(x, cells, strict=True):
            w.writerow([*(f"{v:.6g}" for v in row), t])
    return path


def test_onnx_matches_chainrule_on_1000_inputs(tmp_path: Path) -> None:
    ort = pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    data = _table(tmp_path / "t.csv")
    model, out = tmp_path / "m.safetensors", tmp_path / "m.onnx"
    assert main(["train", "--data", str(data), "--epochs", "5", "--save", str(model), "--quiet"]) == 0
    assert main(["export", "--model", str(model), "--onnx", str(out)]) == 0
    net, minfo = load_model(str(model))
    x = np.random.default_rng(1).standard_normal((1000, 5)).astype(np.float32) * np.array(
        [1, 1000, 0.01, 50, 5], dtype=np.float32
    )
    sess = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    scores, proba = sess.run(["scores", "probabilities"], {"x": x})
    pred, ours = predict_rows(net, minfo, x)
    want_scores = np.asarray(net.predict_scores(minfo.features(x, net.dtype)))
    np.testing.assert_allclose(scores, want_scores, rtol=0, atol=1e-5)
    np.testing.assert_allclose(proba, ours, rtol=0, atol=1e-5)
    assert scores.shape == (1000, 3) and np.array_equal(np.argmax(proba, 1), pred)


def test_onnx_regressor_prediction_in_target_units(tmp_path: Path) -> None:
    ort = pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    data = _table(tmp_path / "r.csv", regress=True)
    model, out = tmp_path / "m.safetensors", tmp_path / "m.onnx"
    assert main(["train", "--data", str(data), "--epochs", "5", "--save", str(model), "--quiet"]) == 0
    assert main(["export", "--model", str(model), "--onnx", str(out)]) == 0
    net, minfo = load_model(str(model))
    x = np.loadtxt(data, delimiter=",", skiprows=1, dtype=np.float32)[:, :5]
    (got,) = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"]).run(["prediction"], {"x": x})
    want, _ = predict_rows(net, minfo, x)
    np.testing.assert_allclose(got[:, 0], want, rtol=1e-5, atol=1e-3)  # targets ~150: 1e-5 relative


def test_divergence_stops_in_two_epochs_and_keeps_the_model(tmp_path: Path, capsys) -> None:
    model = tmp_path / "m.safetensors"
    assert main(["train", "--layers", "784,16,10", "--epochs", "1", "--save", str(model), "--quiet"]) == 0
    before = model.read_bytes()
    capsys.readouterr()
    code = main(["train", "--lr", "1e6", "--save", str(model), "--quiet", "--json"])
    out, err = capsys.readouterr()
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 1 and len(lines) == 1 and lines[0].startswith("chainrule: error: training diverged")
    assert "epoch 1" in lines[0] or "epoch 2" in lines[0]
    assert "--lr" in lines[0] and out == ""
    assert model.read_bytes() == before


def test_raw_features_without_scaling_are_caught_and_scaling_fixes_them(tmp_path: Path, capsys) -> None:
    data = _table(tmp_path / "t.csv")
    code = main(["train", "--data", str(data), "--scale", "none", "--optimizer", "sgd", "--lr", "0.1",
                 "--epochs", "20", "--quiet"])  # fmt: skip
    err = capsys.readouterr().err
    assert code == 1 and "--scale standard" in err and err.count("\n") == 1
    assert main(["train", "--data", str(data), "--quiet", "--json"]) == 0
    assert json.loads(capsys.readouterr().out.splitlines()[-1])["test_accuracy"] > 0.85


def test_regression_end_to_end(tmp_path: Path, capsys) -> None:
    data = _table(tmp_path / "r.csv", regress=True)
    model = tmp_path / "m.safetensors"
    assert main(["train", "--data", str(data), "--save", str(model), "--json", "--quiet"]) == 0
    res = json.loads(capsys.readouterr().out.splitlines()[-1])
    assert res["task"] == "regress" and res["test_metrics"]["r2"] > 0.9
    _, info = load_with_info(model)
    assert info["task"] == "regress" and info["target_scaler"]["kind"] == "standard"
    assert main(["evaluate", "--model", str(model), "--data", str(data), "--json"]) == 0
    ev = json.loads(capsys.readouterr().out.splitlines()[-1])
    assert ev["r2"] == pytest.approx(res["test_metrics"]["r2"]) and {"mse", "mae"} <= set(ev)
    assert main(["predict", "--model", str(model), "--input", str(data)]) == 0
    values = [float(v) for v in capsys.readouterr().out.split()]
    truth = np.loadtxt(data, delimiter=",", skiprows=1)[:, -1]
    assert len(values) == 240 and np.corrcoef(values, truth)[0, 1] > 0.95


def test_integer_targets_with_many_values_warn_and_regress(tmp_path: Path, capsys) -> None:
    rng = np.random.default_rng(0)
    x = rng.standard_normal((200, 3))
    y = np.round(200 + 50 * x[:, 0]).astype(int)
    p = tmp_path / "i.csv"
    np.savetxt(p, np.column_stack([x, y]), delimiter=",", fmt="%.6g")
    assert main(["train", "--data", str(p), "--epochs", "3", "--quiet"]) == 0
    out, err = capsys.readouterr()
    assert "chainrule: warning:" in err and "--task classify" in err and "test R²" in out
    code = main(["train", "--data", str(p), "--epochs", "1", "--quiet", "--task", "classify"])
    assert code == 0 and "test accuracy" in capsys.readouterr().out


def test_scaler_is_fitted_on_training_rows_and_stored(tmp_path: Path) -> None:
    from chainrule.io import load_csv

    data = _table(tmp_path / "t.csv")
    model = tmp_path / "m.safetensors"
    assert (
        main(["train", "--data", str(data), "--epochs", "2", "--save", str(model), "--quiet", "--seed", "3"])
        == 0
    )
    _, info = load_with_info(model)
    d = load_csv(data, seed=3)
    np.testing.assert_allclose(info["scaler"]["shift"], d.x_train.astype(np.float64).mean(0), rtol=1e-12)
    np.testing.assert_allclose(info["scaler"]["factor"], 1 / d.x_train.astype(np.float64).std(0), rtol=1e-12)
    assert info["split"] == {"seed": 3, "test_fraction": 0.2, "data": "t.csv"}
    assert main(["train", "--data", str(data), "--epochs", "2", "--save", str(model), "--quiet",
                 "--scale", "minmax"]) == 0  # fmt: skip
    assert load_with_info(model)[1]["scaler"]["kind"] == "minmax"


def test_evaluate_reuses_the_split_and_refuses_other_labels(tmp_path: Path, capsys) -> None:
    data = _table(tmp_path / "t.csv", labels=["low", "mid", "high"])
    model = tmp_path / "m.safetensors"
    assert main(["train", "--data", str(data), "--seed", "7", "--test-fraction", "0.25", "--save", str(model),
                 "--json", "--quiet"]) == 0  # fmt: skip
    trained = json.loads(capsys.readouterr().out.splitlines()[-1])
    assert main(["evaluate", "--model", str(model), "--data", str(data), "--json"]) == 0
    ev = json.loads(capsys.readouterr().out.splitlines()[-1])
    assert (
        ev["split_seed"] == 7 and ev["n"] == 60 and ev["accuracy"] == pytest.approx(trained["test_accuracy"])
    )
    assert ev["classes"] == ["high", "low", "mid"]
    assert main(["evaluate", "--model", str(model), "--data", str(data)]) == 0
    assert "high" in capsys.readouterr().out  # names in the confusion matrix
    other = _table(tmp_path / "o.csv", labels=["a", "b", "c"])
    assert main(["evaluate", "--model", str(model), "--data", str(other)]) == 1
    assert "do not match" in capsys.readouterr().err


def test_one_based_labels_warn_about_the_empty_class(tmp_path: Path, capsys) -> None:
    data = _table(tmp_path / "t.csv", labels=["1", "2", "3"])
    assert main(["train", "--data", str(data), "--epochs", "2", "--quiet"]) == 0
    err = capsys.readouterr().err
    assert "chainrule: warning:" in err and "1-based" in err


def test_predict_out_csv_drops_target_and_reads_npz_and_stdin(tmp_path: Path, capsys) -> None:
    data = _table(tmp_path / "t.csv", labels=["low", "mid", "high"])
    model, out = tmp_path / "m.safetensors", tmp_path / "p.csv"
    assert main(["train", "--data", str(data), "--epochs", "5", "--save", str(model), "--quiet"]) == 0
    assert main(["predict", "--model", str(model), "--input", str(data), "--out", str(out)]) == 0
    rows = list(csv.reader(out.open()))
    assert rows[0] == ["prediction", "p_high", "p_low", "p_mid"] and len(rows) == 241
    assert all(r[0] in ("low", "mid", "high") and abs(sum(map(float, r[1:])) - 1) < 1e-5 for r in rows[1:])
    x = np.loadtxt(data, delimiter=",", skiprows=1, usecols=range(5))
    np.savez(tmp_path / "x.npz", x=x)
    capsys.readouterr()
    assert main(["predict", "--model", str(model), "--input", str(tmp_path / "x.npz")]) == 0
    from_npz = capsys.readouterr().out.split()
    assert from_npz == [r[0] for r in rows[1:]]
    proc = subprocess.run(
        [sys.executable, "-m", "chainrule", "predict", "--model", str(model), "--input", "-"],
        input=data.read_text(), capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(ROOT / "src")},
    )  # fmt: skip
    assert proc.returncode == 0 and proc.stdout.split() == from_npz
    assert main(["predict", "--model", str(model), "--input", str(data), "--out", str(data)]) == 1


def test_quiet_keeps_the_result_line_and_verbose_shows_validation(tmp_path: Path, capsys) -> None:
    assert main(["train", "--layers", "784,8,10", "--epochs", "1", "--quiet"]) == 0
    out, err = capsys.readouterr()
    assert out.startswith("test accuracy") and err == ""
    data = _table(tmp_path / "t.csv")
    assert main(["train", "--data", str(data), "--epochs", "2", "--validation-split", "0.2", "--quiet",
                 "--verbose"]) == 0  # fmt: skip
    err = capsys.readouterr().err
    assert "epoch 2/2" in err and "val_loss" in err and "val_acc" in err


@pytest.mark.parametrize("schedule", ["step", "cosine", "plateau"])
def test_schedules_change_the_rate(schedule: str, tmp_path: Path) -> None:
    from chainrule.jobs.train import TrainConfig, run_train

    data = _table(tmp_path / "t.csv")
    cfg = TrainConfig(data=str(data), epochs=6, schedule=schedule, progress=False, guard=False)
    record = run_train(cfg)
    assert len(record.history.epochs) == 6 and record.evaluation is not None


def test_init_from_fine_tunes(tmp_path: Path, capsys) -> None:
    data = _table(tmp_path / "t.csv")
    base, tuned = tmp_path / "a.safetensors", tmp_path / "b.safetensors"
    assert main(["train", "--data", str(data), "--epochs", "3", "--save", str(base), "--quiet"]) == 0
    assert main(["train", "--data", str(data), "--epochs", "1", "--init-from", str(base), "--save", str(tuned),
                 "--quiet", "--json"]) == 0  # fmt: skip
    a, ia = load_with_info(base)
    b, ib = load_with_info(tuned)
    assert ia["scaler"] == ib["scaler"] and [p.shape for p in a.params] == [p.shape for p in b.params]
    assert not np.array_equal(a.params[0].value, b.params[0].value)


def _train_argv(data: Path, model: Path, ckpt: Path, epochs: int) -> list[str]:
    return [sys.executable, "-m", "chainrule", "train", "--data", str(data), "--epochs", str(epochs),
            "--schedule", "cosine", "--validation-split", "0.2", "--early-stopping", "50", "--seed", "5",
            "--save", str(model), "--checkpoint", str(ckpt), "--checkpoint-every", "1", "--quiet"]  # fmt: skip


def _stamp(path: Path) -> int:
    return path.stat().st_mtime_ns if path.exists() else 0


def resume_under_kills(tmp_path: Path, kills: int, epochs: int = 40) -> int:
    """Train once uninterrupted; then SIGKILL the same run ``kills`` times, each at a random moment
    after it has written a new checkpoint (so every kill interrupts training that a resume must
    redo), resuming each time; the final weights must equal the uninterrupted run's bit for bit.
    Returns the number of kills that landed while training ran."""
    data = _table(tmp_path / "t.csv", n=600)
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    ref = tmp_path / "ref.safetensors"
    subprocess.run(_train_argv(data, ref, tmp_path / "ck_ref", epochs), check=True, env=env)
    model, ckpt = tmp_path / "m.safetensors", tmp_path / "ck"
    rng = np.random.default_rng(123)
    landed = 0
    for _ in range(kills + 100):
        if model.exists():
            break
        argv = _train_argv(data, model, ckpt, epochs) + (["--resume", str(ckpt)] if ckpt.exists() else [])
        before = _stamp(ckpt / "checkpoint.npz")
        proc = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        if landed < kills:
            while proc.poll() is None and _stamp(ckpt / "checkpoint.npz") == before:
                time.sleep(0.01)
            time.sleep(float(rng.uniform(0.0, 0.4)))
            if proc.poll() is None:
                proc.send_signal(signal.SIGKILL)
                landed += 1
        _, err = proc.communicate()
        assert proc.returncode in (0, -signal.SIGKILL), err.decode()
    a, _ = load_with_info(ref)
    b, _ = load_with_info(model)
    for (name, p), (_, q) in zip(a.named_params(), b.named_params(), strict=True):
        assert p.value.dtype == np.float32 and np.array_equal(p.value, q.value), name
    return landed


def test_resume_is_exact_under_sigkill(tmp_path: Path) -> None:
    assert resume_under_kills(tmp_path, kills=3) >= 1


@pytest.mark.slow
def test_resume_is_exact_under_20_sigkills(tmp_path: Path) -> None:
    assert resume_under_kills(tmp_path, kills=20, epochs=150) == 20


def test_a_stall_at_chance_level_stops_with_one_line(tmp_path: Path, capsys) -> None:
    """Features that carry nothing (constant columns): the loss settles at the class-frequency
    entropy and the guard stops the run, naming the causes."""
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, 300)
    p = tmp_path / "flat.csv"
    np.savetxt(p, np.column_stack([np.ones((300, 4)), y]), delimiter=",", fmt="%g")
    model = tmp_path / "m.safetensors"
    code = main(["train", "--data", str(p), "--epochs", "60", "--early-stopping", "0", "--save", str(model),
                 "--quiet"])  # fmt: skip
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 1 and len(err) == 1 and err[0].startswith("chainrule: error: training stalled")
    assert "--lr" in err[0] and not model.exists()
    assert (
        main(["train", "--data", str(p), "--epochs", "8", "--early-stopping", "0", "--no-guard", "--quiet"])
        == 0
    )


def test_auto_scale_leaves_commensurate_columns_alone() -> None:
    """``--scale auto``: columns already on one moderate scale (iris: four lengths in cm) are kept;
    unrelated units, tiny pre-scaled columns or large offsets are standardised."""
    from sklearn import datasets

    from chainrule.io.scaling import auto_scale

    assert auto_scale(datasets.load_iris().data) == "none"
    for name in ("wine", "breast_cancer", "digits", "diabetes"):
        assert auto_scale(getattr(datasets, f"load_{name}")().data) == "standard", name
    rng = np.random.default_rng(0)
    x = rng.standard_normal((50, 3))
    assert auto_scale(x) == "none"
    assert auto_scale(x * [1, 1, 20]) == "standard"  # one wide column
    assert auto_scale(x + np.array([0, 0, 50])) == "standard"  # a large offset
    assert auto_scale(x * 0.05) == "standard"  # everything tiny
    assert auto_scale(np.column_stack([x, np.ones(50)])) == "none"  # a constant column is ignored
