"""The character LM, sampling, explain and vanishing for recurrent nets (issue 9), through the CLI:
what works, and every bad input as one line on stderr with a non-zero exit code."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from chainrule.cli import main
from chainrule.io.serialize import load_with_info, save
from chainrule.io.text import Vocabulary, stream_windows
from chainrule.jobs.lm import build_lm
from conftest import run_cli

TINY = ["--hidden", "16", "--seq-len", "8", "--batch-size", "4", "--quiet"]



def one_error_line(err: str) -> str:
    lines = [line for line in err.strip().splitlines() if line]
    assert len(lines) == 1 and lines[0].startswith("chainrule: error: "), err
    assert "Traceback" not in err
    return lines[0]


@pytest.fixture(scope="module")
def lm_model(tmp_path_factory) -> Path:
    """A tiny LM trained for a few steps on the embedded text, saved with its vocabulary."""
    path = tmp_path_factory.mktemp("lm") / "lm.safetensors"
    assert main(["lm", "--steps", "3", *TINY, "--save", str(path), "--sample-length", "0"]) == 0
    return path


def test_lm_json_last_line_and_defaults(capsys) -> None:
    code, out, _ = run_cli(capsys, "lm", "--steps", "4", "--eval-every", "2", *TINY, "--json")
    assert code == 0
    res = json.loads(out.strip().splitlines()[-1])
    assert res["steps"] == 4 and len(res["step_seconds"]) == 4
    assert [h["step"] for h in res["history"]] == [2, 4]
    assert res["val_nats_per_char"] == res["history"][-1]["val_nats_per_char"]
    assert 0 < res["val_nats_per_char"] < np.log(res["vocab_size"]) + 0.5  # near uniform at worst
    assert len(res["sample"]) == 201 and res["text"].startswith("romeo_and_juliet")


def test_lm_on_a_file_for_every_cell(capsys, tmp_path: Path) -> None:
    text = tmp_path / "t.txt"
    text.write_text("to be or not to be, that is the question. " * 20)
    for cell in ("rnn", "gru", "lstm"):
        code, out, _ = run_cli(
            capsys, "lm", "--text", str(text), "--cell", cell, "--steps", "2", *TINY, "--json"
        )
        assert code == 0, cell
        assert json.loads(out.strip().splitlines()[-1])["vocab_size"] == len(set(text.read_text()))


def test_sample_is_deterministic_and_starts_with_the_prime(capsys, lm_model: Path) -> None:
    args = ("sample", "--model", str(lm_model), "--prime", "ROMEO:", "--length", "40", "--seed", "3")
    code, first, _ = run_cli(capsys, *args)
    assert code == 0
    code, second, _ = run_cli(capsys, *args)
    assert first == second and first.startswith("ROMEO:") and len(first.rstrip("\n")) == 46


def test_the_saved_vocabulary_is_the_sorted_characters(lm_model: Path) -> None:
    net, info = load_with_info(lm_model)
    assert info["vocab"] == "".join(sorted(set(info["vocab"])))
    assert len(info["vocab"]) == net.layers[0].vocab == net.layers[-1].out_features


def test_stream_windows_carry_contiguous_text() -> None:
    ids = np.arange(41)
    windows = list(stream_windows(ids, 4, 3))
    x0, y0 = windows[0]
    np.testing.assert_array_equal(x0[:, 0], [0, 10, 20, 30])  # four contiguous streams of 10
    np.testing.assert_array_equal(y0, x0 + 1)
    np.testing.assert_array_equal(windows[1][0][:, 0], x0[:, -1] + 1)  # the next window continues


@pytest.mark.parametrize(
    ("content", "match"),
    [(b"", "at least 2 characters"), (b"a", "at least 2 characters"), (b"ok \xff\xfe", "not UTF-8")],
)
def test_bad_text(capsys, tmp_path: Path, content: bytes, match: str) -> None:
    path = tmp_path / "bad.txt"
    path.write_bytes(content)
    code, _, err = run_cli(capsys, "lm", "--text", str(path), "--steps", "1", *TINY)
    assert code == 1 and match in one_error_line(err)


def test_seq_len_larger_than_the_text(capsys, tmp_path: Path) -> None:
    path = tmp_path / "short.txt"
    path.write_text("hello world, a short text")
    code, _, err = run_cli(capsys, "lm", "--text", str(path), "--steps", "1", "--seq-len", "500", "--quiet")
    assert code == 1 and "--seq-len 500 is larger than" in one_error_line(err)
    code, _, err = run_cli(capsys, "lm", "--text", str(path), "--steps", "1", "--seq-len", "10", "--quiet")
    assert code == 1 and "lower --seq-len or --batch-size" in one_error_line(err)


def test_prime_outside_the_vocabulary(capsys, lm_model: Path) -> None:
    code, _, err = run_cli(capsys, "sample", "--model", str(lm_model), "--prime", "ROMEO€", "--length", "5")
    assert code == 1 and "'€'" in one_error_line(err)


@pytest.mark.parametrize("temperature", ["0", "-1", "nan"])
def test_temperature_must_be_positive(capsys, lm_model: Path, temperature: str) -> None:
    code, _, err = run_cli(capsys, "sample", "--model", str(lm_model), "--temperature", temperature)
    assert code == 2 and "--temperature" in one_error_line(err)
    code, _, err = run_cli(capsys, "lm", "--temperature", temperature, "--steps", "1")
    assert code == 2 and "--temperature" in one_error_line(err)


@pytest.mark.parametrize(
    ("info", "match"),
    [
        ({}, "no vocabulary"),
        ({"vocab": ["a", "b"]}, "malformed vocabulary"),
        ({"vocab": "ba" + "c" * 3}, "malformed vocabulary"),
        ({"vocab": "abc"}, "has 3 characters but the model has 5 outputs"),
    ],
)
def test_model_file_with_a_bad_vocabulary(capsys, tmp_path: Path, info: dict, match: str) -> None:
    path = tmp_path / "m.safetensors"
    save(build_lm("lstm", 5, 4, 3), path, info=info)
    code, _, err = run_cli(capsys, "sample", "--model", str(path), "--prime", "a")
    assert code == 1 and match in one_error_line(err)


def test_sample_refuses_a_non_lm_model(capsys, tmp_path: Path) -> None:
    from chainrule.nn.builders import mlp

    path = tmp_path / "mlp.safetensors"
    save(mlp([3, 2]), path, info={"vocab": Vocabulary("ab").to_info()})
    code, _, err = run_cli(capsys, "sample", "--model", str(path))
    assert code == 1 and "not a character language model" in one_error_line(err)


def test_explain_unrolls_a_tiny_rnn_and_checks_every_delta(capsys) -> None:
    code, out, _ = run_cli(
        capsys, "explain", "--arch", "rnn:3 last dense:2", "--input-shape", "4,2", "--format", "json"
    )
    assert code == 0
    res = json.loads(out)
    assert res["ok"] and res["worst_error"] < 1e-7 and len(res["steps"]) == 4
    for step in res["steps"]:
        np.testing.assert_allclose(step["dh"], step["dh_numeric"], rtol=1e-6, atol=1e-9)
        assert step["err_dh"] < 1e-7 and step["err_dz"] < 1e-7
    # ∂E/∂U is the sum over time of h_{t−1}ᵀ δz_t
    np.testing.assert_allclose(np.sum(res["u_terms"], axis=0), res["grads"]["0.U"]["analytic"], rtol=1e-12)
    code, out, _ = run_cli(capsys, "explain", "--arch", "rnn:3 last dense:2", "--input-shape", "4,2")
    assert "δh_t = dy_t + δz_{t+1} Uᵀ" in out and "all checks pass" in out


def test_explain_recurrent_needs_an_input_shape(capsys) -> None:
    code, _, err = run_cli(capsys, "explain", "--arch", "rnn:3 last dense:2")
    assert code == 1 and "--input-shape" in one_error_line(err)


def test_vanishing_rnn_table_and_png(capsys, tmp_path: Path) -> None:
    code, out, _ = run_cli(capsys, "vanishing", "--rnn", "--steps", "3", "--out", str(tmp_path), "--json")
    assert code == 0
    res = json.loads(out.strip().splitlines()[-1])
    assert set(res["ratios"]) == {"rnn", "lstm"} and (tmp_path / "vanishing_rnn.png").stat().st_size > 1000
    assert res["ratios"]["rnn"]["init"]["0"] == 1.0


def test_rnn_study_state_gradient_and_forget_gate() -> None:
    """The through-time probe: the LSTM's state gradient is (∂E/∂h, ∂E/∂c), equal to ∂E/∂h at the
    last step (the loss reads h_T only) and never below it; the mean forget gate is the mean of the
    gates the layer itself computed."""
    from chainrule.nn.spec import build
    from chainrule.studies.vanishing_rnn import first_symbol_task, mean_forget_gate, state_gradient_norms

    x, y = first_symbol_task(8, 6, 3, np.random.default_rng(0))
    net = build("lstm:5 last dense:3", (6, 3), seed=0, dtype=np.float64)
    rec = net.layers[0]
    rec.b.value[5:10] = 1.0
    norms, h_norms = state_gradient_norms(net, x, y)
    assert norms[-1] == h_norms[-1] > 0
    assert np.all(norms >= h_norms) and np.any(norms[:-1] > h_norms[:-1] * (1 + 1e-6))
    _, ctx = rec.run(x)
    gates = ctx[2][1]  # (T, N, 4H), gate order i, f, g, o
    assert abs(mean_forget_gate(rec, x) - float(np.mean(gates[:, :, 5:10]))) < 1e-12
    rnn = build("rnn:5 last dense:3", (6, 3), seed=0, dtype=np.float64)
    n_rnn, h_rnn = state_gradient_norms(rnn, x, y)
    np.testing.assert_allclose(n_rnn, h_rnn, rtol=1e-13, atol=0)  # the RNN's state is h
