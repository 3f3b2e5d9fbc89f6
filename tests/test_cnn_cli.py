"""Issue 8 through the CLI and the jobs: a small CNN trained on the embedded subset, --augment shift,
explain --arch on the tiny conv net (text, Markdown, JSON), bench --arch, saved conv models, and
bad input (one clear line, non-zero exit)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

from chainrule.io.augment import shift_expand
from conftest import run_cli

TINY = "conv:2:3 relu maxpool:2 flatten dense:3"
SMALL_CNN = "conv:4:5 relu maxpool:2 flatten dense:10"



def test_small_cnn_trains_on_the_embedded_subset(capsys, tmp_path: Path) -> None:
    model = tmp_path / "cnn.safetensors"
    code, out, _ = run_cli(
        capsys,
        "train",
        "--arch",
        SMALL_CNN,
        "--optimizer",
        "momentum",
        "--lr",
        "0.02",
        "--epochs",
        "1",
        "--quiet",
        "--json",
        "--save",
        str(model),
    )
    assert code == 0
    result = json.loads(out.strip().splitlines()[-1])
    assert result["test_accuracy"] > 0.85  # 6000 digits, one epoch of a 4-filter CNN
    code, out, _ = run_cli(capsys, "evaluate", "--model", str(model), "--json")
    assert code == 0 and json.loads(out.strip().splitlines()[-1])["accuracy"] == pytest.approx(
        result["test_accuracy"]
    )


def test_batchnorm_and_dropout_models_round_trip(tmp_path: Path) -> None:
    from chainrule.io.serialize import load, save
    from chainrule.nn.spec import build

    net = build(
        "conv:3:3:1:1 batchnorm relu avgpool:2 flatten dropout:0.3 dense:4", (1, 6, 6), dtype=np.float32
    )
    x = np.random.default_rng(0).random((5, 1, 6, 6), dtype=np.float32)
    net.train()
    net.forward(x)  # moves the running statistics
    net.eval()
    save(net, tmp_path / "m.safetensors")
    back = load(tmp_path / "m.safetensors")
    np.testing.assert_array_equal(back.layers[1].running_var.value, net.layers[1].running_var.value)
    np.testing.assert_array_equal(back.eval().forward(x), net.forward(x))


def test_shift_expansion_is_nielsens() -> None:
    x = np.arange(9, dtype=np.float32).reshape(1, 9)  # one 3x3 image, flat
    big, y = shift_expand(x, np.array([7]), (1, 3, 3))
    imgs = big.reshape(5, 3, 3)
    assert big.shape == (5, 9) and list(y) == [7] * 5
    np.testing.assert_array_equal(imgs[0], x.reshape(3, 3))
    np.testing.assert_array_equal(imgs[1], [[3, 4, 5], [6, 7, 8], [0, 0, 0]])  # up
    np.testing.assert_array_equal(imgs[2], [[0, 0, 0], [0, 1, 2], [3, 4, 5]])  # down
    np.testing.assert_array_equal(imgs[3], [[1, 2, 0], [4, 5, 0], [7, 8, 0]])  # left
    np.testing.assert_array_equal(imgs[4], [[0, 0, 1], [0, 3, 4], [0, 6, 7]])  # right


def test_train_augment_shift_multiplies_the_training_set(capsys) -> None:
    code, _, err = run_cli(
        capsys, "train", "--arch", "flatten dense:10", "--augment", "shift", "--epochs", "1"
    )
    assert code == 0 and "--augment shift: 30000 training samples" in err


# -- explain on the tiny conv net --------------------------------------------------------------------
def _explain(capsys, fmt: str) -> str:
    code, out, _ = run_cli(
        capsys, "explain", "--arch", TINY, "--input-shape", "1,6,6", "--label", "1", "--format", fmt
    )
    assert code == 0
    return out


def test_explain_tiny_cnn_text_shows_maps_checks_and_routing(capsys) -> None:
    out = _explain(capsys, "text")
    assert "δ, sample 0 channel 1:" in out and "y, sample 0 channel 0:" in out  # feature maps per channel
    assert "window (1, 1) → input" in out and "δ routed to the input" in out  # max-pool routing
    assert "∂E/∂K = " in out and "numeric" in out and "∂E/∂b[1]" in out  # beside the central differences
    errors = [float(e) for e in re.findall(r"rel\. error ([0-9.e+-]+)", out)]
    assert len(errors) >= 9 and max(errors) < 1e-7
    assert out.rstrip().splitlines()[-1].startswith("PASS")


def test_explain_tiny_cnn_json_has_every_check(capsys) -> None:
    d = json.loads(_explain(capsys, "json"))
    assert [layer["kind"] for layer in d["layers"]] == ["conv", "relu", "maxpool", "flatten", "dense"]
    assert d["gradcheck"]["ok"] and d["gradcheck"]["max_rel_error"] < 1e-7
    conv, pool = d["layers"][0], d["layers"][2]
    assert np.array(conv["delta"]).shape == (1, 2, 4, 4)
    np.testing.assert_allclose(
        conv["gradients"]["W"]["analytic"], conv["gradients"]["W"]["numeric"], atol=1e-9
    )
    assert len(pool["extras"]["routes"]) == 8  # 2 channels x 2x2 windows
    routed = np.array(pool["extras"]["routed_delta"])
    np.testing.assert_allclose(routed, d["layers"][1]["delta"])  # what max-pool routed is the δ below it


# the LaTeX the Markdown uses: every command must be one KaTeX (and GitHub's MathJax) knows
KATEX_OK = {
    "begin",
    "end",
    "frac",
    "partial",
    "delta",
    "text",
    "quad",
    "times",
    "sum",
    "odot",
    "star",
    "ast",
    "mathrm",
    "operatorname",
    "sqrt",
    "langle",
    "rangle",
    "left",
    "right",
    "hat",
    "sigma",
    "mu",
    "epsilon",
    "gamma",
    "beta",
    "max",
    "in",
    "mathcal",
    "le",
    "ge",
    "lVert",
    "rVert",
}


def _math(md: str) -> list[str]:
    return re.findall(r"\$\$(.+?)\$\$", md, flags=re.S) + re.findall(r"(?<!\$)\$([^$\n]+)\$(?!\$)", md)


def test_explain_tiny_cnn_markdown_math_is_well_formed(capsys) -> None:
    md = _explain(capsys, "markdown")
    assert md.startswith("# One training step") and md.count("$$") % 2 == 0
    blocks = _math(md)
    assert len(blocks) > 20
    for m in blocks:
        assert m.count("{") == m.count("}"), m
        assert m.count("\\begin{bmatrix}") == m.count("\\end{bmatrix}"), m
        assert set(re.findall(r"\\([A-Za-z]+)", m)) <= KATEX_OK, m
        assert "\\\\\\\\" not in m and "nan" not in m.lower()


def test_explain_arch_needs_its_input_shape(capsys) -> None:
    code, _, err = run_cli(capsys, "explain", "--arch", TINY)
    assert code != 0 and err.count("\n") == 1 and "--input-shape" in err


# -- bench --arch ------------------------------------------------------------------------------------
def test_bench_arch_runs_the_torch_twin_from_the_same_weights(capsys) -> None:
    code, out, _ = run_cli(
        capsys,
        "bench",
        "--arch",
        "conv:2:5:2 relu maxpool:2 flatten dense:10",
        "--momentum",
        "0.9",
        "--lr",
        "0.05",
        "--epochs",
        "1",
        "--data",
        "default",
        "--no-memory",
        "--quiet",
        "--threads",
        "1",
    )
    assert code == 0
    r = json.loads(out.strip().splitlines()[-1])
    assert r["contestants"] == ["chainrule", "torch_eager"] and r["config"]["momentum"] == 0.9
    # same initial weights, same shuffle, same arithmetic: the losses agree to float32 rounding
    assert abs(r["train_loss"]["chainrule"][0] - r["train_loss"]["torch_eager"][0]) < 1e-4
    assert abs(r["test_accuracy_gap_points"]) <= 0.3


# -- bad input: one line, non-zero ------------------------------------------------------------------
@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (["train", "--arch", "conv:4:3:x flatten dense:10"], "STRIDE must be an integer"),
        (["train", "--arch", "conv:8:40 flatten dense:10"], "40×40 kernel is larger than its 28×28 input"),
        (
            [
                "train",
                "--arch",
                "conv:4:3 maxpool:2 maxpool:2 maxpool:2 maxpool:2 maxpool:2 flatten dense:10",
            ],
            "pooling below 1×1",
        ),
        (["train", "--arch", "conv:4:3 frob dense:10"], "unknown layer 'frob'"),
        (
            ["explain", "--arch", "conv:2:7 flatten dense:3", "--input-shape", "1,6,6"],
            "larger than its 6×6 input",
        ),
        (
            ["bench", "--arch", "conv:2:3 dropout:0.5 flatten dense:10", "--data", "default", "--no-memory"],
            "no PyTorch twin",
        ),
    ],
)
def test_bad_arch_is_one_clear_line(capsys, argv, needle) -> None:
    extra = ["--epochs", "1", "--quiet"] if argv[0] != "explain" else []
    code, _, err = run_cli(capsys, *argv, *extra)
    assert code != 0
    assert err.startswith("chainrule: error: ") and err.count("\n") == 1 and needle in err, err


def test_data_that_does_not_factor_into_images(capsys, tmp_path: Path) -> None:
    r = np.random.default_rng(0)
    path = tmp_path / "d.csv"
    with open(path, "w") as fh:
        fh.write("label," + ",".join(f"f{i}" for i in range(13)) + "\n")
        for _ in range(40):
            fh.write(f"{r.integers(0, 2)}," + ",".join(f"{v:.3f}" for v in r.random(13)) + "\n")
    code, _, err = run_cli(
        capsys,
        "train",
        "--data",
        str(path),
        "--target",
        "label",
        "--arch",
        "conv:2:2 flatten dense:2",
        "--quiet",
    )
    assert code != 0 and err.count("\n") == 1 and "13 values do not factor" in err, err


def test_model_file_whose_conv_shapes_disagree_with_its_tensors(capsys, tmp_path: Path) -> None:
    from safetensors.numpy import load_file, save_file

    from chainrule.io.serialize import save
    from chainrule.nn.spec import build

    good = tmp_path / "good.safetensors"
    save(build(SMALL_CNN, (1, 28, 28)), good)
    meta = json.loads(
        json.loads(good.read_bytes()[8 : 8 + int.from_bytes(good.read_bytes()[:8], "little")])[
            "__metadata__"
        ]["architecture"]
    )
    meta["layers"][0]["kernel_size"] = 3  # the file says 3x3, its tensor holds 5x5 kernels
    header = json.loads(good.read_bytes()[8 : 8 + int.from_bytes(good.read_bytes()[:8], "little")])[
        "__metadata__"
    ]
    bad = tmp_path / "bad.safetensors"
    save_file(load_file(good), bad, metadata={**header, "architecture": json.dumps(meta)})
    code, _, err = run_cli(capsys, "evaluate", "--model", str(bad))
    assert code != 0 and err.count("\n") == 1
    assert "tensor '0.W' has shape (4, 1, 5, 5), architecture says (4, 1, 3, 3)" in err, err
