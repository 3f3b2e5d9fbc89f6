"""The vanishing-gradient study (seed 004, Nielsen ch. 5): σ' ≤ 1/4, the per-layer bound, a reduced
study (sigmoid vanishes, ReLU+He stays within 10×, large linear weights explode) and the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from chainrule import mlp
from chainrule.cli import main
from chainrule.io import load_default
from chainrule.nn.layers import Sigmoid
from chainrule.studies.vanishing import StudyConfig, run_study, sigmoid_bound, sigmoid_prime_max

PNG = b"\x89PNG\r\n\x1a\n"


def test_sigmoid_prime_is_at_most_a_quarter_on_a_grid() -> None:
    """σ'(z) = σ(z)(1 − σ(z)) through the layer's own backward (dy = 1), on a fine grid."""
    z = np.linspace(-30.0, 30.0, 600_001)
    layer = Sigmoid()
    _, ctx = layer.forward(z[None, :])
    slope = layer.backward(np.ones((1, z.size)), ctx)[0]
    assert slope.max() <= 0.25
    assert z[np.argmax(slope)] == 0.0 and slope.max() == 0.25  # attained at z = 0 exactly
    assert np.all(slope[z > 5] < 0.0067) and np.all(slope[z < -5] < 0.0067)  # σ'(5) ≈ 0.00665
    info = sigmoid_prime_max()
    assert info["max"] == 0.25 and info["argmax"] == 0.0


def test_per_hop_bound_holds_for_sigmoid_nets() -> None:
    """‖δˡ‖/‖δˡ⁺¹‖ ≤ ‖Wˡ⁺¹‖₂·max σ'(zˡ) ≤ ‖Wˡ⁺¹‖₂/4 for every hop, with N(0,1) and Xavier weights."""
    d = load_default()
    x, y = d.x_train[:300].astype(np.float64), d.y_train[:300]
    for init in ("normal", "xavier"):
        net = mlp([784] + [30] * 6 + [10], "sigmoid", init=init, seed=2, dtype=np.float64)
        hops = sigmoid_bound(net, x, y)
        assert len(hops) == 6  # output → hidden 6, …, hidden 2 → hidden 1
        for h in hops:
            assert 0 < h["ratio"] <= h["bound"] * (1 + 1e-12)
            assert h["bound"] <= h["loose_bound"] * (1 + 1e-12)
            assert h["max_sigmoid_prime"] <= 0.25
        if init == "xavier":  # small weights: every hop shrinks δ, by at least 2× here
            assert all(h["ratio"] < 0.5 for h in hops)


@pytest.fixture(scope="module")
def reduced_study():
    """Five hidden layers of 30, 60 SGD steps on the embedded subset: a second or two."""
    configs = [
        StudyConfig("sigmoid", "normal", 5),
        StudyConfig("sigmoid", "xavier", 5),
        StudyConfig("relu", "he", 5),
        StudyConfig("identity", "normal", 5),
    ]
    return run_study(configs=configs, steps=60, probe_size=300, interval=20, seed=0)


def test_sigmoid_gradient_vanishes_towards_the_input(reduced_study) -> None:
    for name in ("sigmoid/normal 5", "sigmoid/xavier 5"):
        run = reduced_study.run(name)
        assert run.ratio_init < 0.1, (name, run.ratio_init)
        h = run.hidden_norms(0)
        assert h[0] < h[-1]
    assert reduced_study.run("sigmoid/xavier 5").ratio_trained < 0.1


def test_relu_with_he_init_stays_within_ten_times(reduced_study) -> None:
    run = reduced_study.run("relu/he 5")
    assert 0.1 <= run.ratio_init <= 10
    assert 0.1 <= run.ratio_trained <= 10
    assert run.diverged_at is None and run.test_accuracy > 0.2  # it learns something in 60 steps


def test_large_linear_weights_explode(reduced_study) -> None:
    run = reduced_study.run("linear/normal 5")
    assert run.ratio_init > 100  # N(0,1) weights of width 30: about √30 ≈ 5.5× per layer back
    assert "exploding" in {w["kind"] for w in run.flow.warnings}


def test_study_result_table_and_json(reduced_study) -> None:
    table = reduced_study.table
    for run in reduced_study.runs:
        assert run.config.name in table
    assert "sigmoid/normal 5×30" in reduced_study.bound_table()
    d = json.loads(json.dumps(reduced_study.to_dict(series=True), allow_nan=False))
    assert len(d["runs"]) == 4
    assert d["settings"]["steps"] == 60 and d["settings"]["batch_size"] == 10
    first = d["runs"][0]
    assert first["ratio_init"] == pytest.approx(
        first["hidden_bias_grad_norm_init"][0] / first["hidden_bias_grad_norm_init"][-1]
    )
    assert d["sigmoid_prime"]["max"] == 0.25


def _read_png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == PNG and data[12:16] == b"IHDR"
    return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")


def test_cli_quick(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`chainrule vanishing --quick`: the acceptance figures, the plots, the JSON summary."""
    assert main(["vanishing", "--quick", "--out", str(tmp_path), "--json", "--quiet"]) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    runs = {r["config"]["name"]: r for r in summary["runs"]}
    sig = [r for n, r in runs.items() if n.startswith("sigmoid/") and r["config"]["depth"] >= 5]
    assert sig and all(r["ratio_init"] < 0.1 for r in sig)
    assert 0.1 <= runs["relu/he 5×30"]["ratio_init"] <= 10
    assert 0.1 <= runs["relu/he 5×30"]["ratio_trained"] <= 10
    assert runs["linear/normal 5×30"]["ratio_init"] > 10
    for name in ("vanishing_layers", "vanishing_training", "vanishing_ratios", "sigmoid_bound"):
        w, h = _read_png_size(tmp_path / f"{name}.png")
        assert w >= 400 and h >= 250
    full = json.loads((tmp_path / "vanishing.json").read_text())
    assert "gradient_flow" in full["runs"][0]


def test_cli_prints_the_tables(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["vanishing", "--quick", "--steps", "20", "--depths", "3", "--width", "16", "--no-plots"])
    out = capsys.readouterr()
    assert code == 0
    assert "‖∂E/∂b¹‖/‖∂E/∂bᴴ‖" in out.out and "sigmoid/normal 3×16" in out.out
    assert "0.250000 at z = 0" in out.out
    assert not list(tmp_path.iterdir())  # --no-plots writes nothing


@pytest.mark.parametrize(
    ("argv", "code", "message"),
    [
        (["vanishing", "--quick", "--out", __file__], 1, "not a directory"),
        (["vanishing", "--depths", "1"], 2, "at least 2"),
        (["vanishing", "--data", "nonsense"], 2, "invalid choice"),
        (["vanishing", "--steps", "0"], 2, "positive integer"),
    ],
)
def test_cli_errors(argv: list[str], code: int, message: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(argv) == code
    err = capsys.readouterr().err
    assert err.startswith("chainrule: error:") and message in err
    assert len(err.strip().splitlines()) == 1


def test_out_directory_is_created(tmp_path) -> None:
    out = tmp_path / "new" / "plots"
    assert main(["vanishing", "--quick", "--out", str(out), "--depths", "3", "--steps", "5", "--quiet"]) == 0
    assert out.is_dir() and any(p.suffix == ".png" for p in out.iterdir())


def test_sigmoid_bound_matches_torch_autograd_and_leaves_no_hook() -> None:
    """Each hop's ‖δˡ‖/‖δˡ⁺¹‖, ‖Wˡ⁺¹‖₂ and σ'(zˡ) against torch autograd on the same net; the
    tracer it runs under is detached afterwards. With a squared-error loss the output layer has a
    sigmoid too, but no layer after it: still one hop per hidden layer."""
    torch = pytest.importorskip("torch")
    d = load_default()
    x, y = d.x_train[:64].astype(np.float64), d.y_train[:64]
    net = mlp([784, 20, 20, 20, 10], "sigmoid", loss="squared", init="xavier", seed=4, dtype=np.float64)
    hops = sigmoid_bound(net, x, y)
    assert net.hooks == [] and len(hops) == 3
    h = torch.tensor(x)
    zs, acts, ws = [], [], []
    for layer in net.layers:
        if layer.kind == "dense":
            ws.append(torch.tensor(layer.W.value, requires_grad=True))
            h = h @ ws[-1] + torch.tensor(layer.b.value)
            h.retain_grad()
            zs.append(h)
        else:
            h = torch.sigmoid(h)
            acts.append(h)
    E = 0.5 * ((h - torch.tensor(np.eye(10)[y])) ** 2).sum() / len(y)
    E.backward()
    for k, hop in enumerate(hops):
        ratio = float(zs[k].grad.norm() / zs[k + 1].grad.norm())
        s = acts[k].detach()
        w2 = float(torch.linalg.matrix_norm(ws[k + 1].detach(), ord=2))
        assert hop["ratio"] == pytest.approx(ratio, rel=1e-10)
        assert hop["w_spectral"] == pytest.approx(w2, rel=1e-10)
        assert hop["max_sigmoid_prime"] == pytest.approx(float((s * (1 - s)).max()), rel=1e-12)
        assert hop["mean_sigmoid_prime"] == pytest.approx(float((s * (1 - s)).mean()), rel=1e-12)
