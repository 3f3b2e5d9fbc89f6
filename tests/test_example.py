"""Seed 002's worked example: chainrule's values against PyTorch autograd and central differences.

Nothing here copies a number from the module under test or from the post as the *expected correct*
value: the correct values come from torch (float64) with the post's ONE shared b1/b2 as scalar
parameters, and from central differences of chainrule's own cost. The post's figures appear only
where a test asserts that the post agrees (or disagrees) with those independently computed values.
"""

from __future__ import annotations

import json
import os
import pathlib
import re
import subprocess
import sys

import numpy as np
import pytest
import torch

from chainrule.cli import main
from chainrule.studies.example import (
    LR,
    PARAM_INDEX,
    POST,
    T,
    X,
    build_network,
    converge,
    post_arithmetic,
    run_example,
    tie_bias_grads,
)

NAMES = [f"w{i}" for i in range(1, 11)] + ["b1", "b2"]
POSTS = pathlib.Path(
    os.environ.get("CHAINRULE_SEED_POSTS", pathlib.Path(__file__).resolve().parents[2] / "shared" / "seeds")
)


def _torch_params() -> dict[str, torch.Tensor]:
    vals = {f"w{i}": 0.1 * i for i in range(1, 10)} | {"w10": 0.1, "b1": 0.5, "b2": 0.5}
    return {k: torch.tensor(v, dtype=torch.float64, requires_grad=True) for k, v in vals.items()}


def _torch_forward(p: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The post's equations, unit by unit, with b1 and b2 each ONE scalar shared by two units."""
    x1, x2, x3 = 1.0, 4.0, 5.0
    t1, t2 = 0.1, 0.05
    z_h1 = p["w1"] * x1 + p["w3"] * x2 + p["w5"] * x3 + p["b1"]
    z_h2 = p["w2"] * x1 + p["w4"] * x2 + p["w6"] * x3 + p["b1"]
    h1, h2 = torch.sigmoid(z_h1), torch.sigmoid(z_h2)
    z_o1 = p["w7"] * h1 + p["w9"] * h2 + p["b2"]
    z_o2 = p["w8"] * h1 + p["w10"] * h2 + p["b2"]
    o1, o2 = torch.sigmoid(z_o1), torch.sigmoid(z_o2)
    E = 0.5 * ((o1 - t1) ** 2 + (o2 - t2) ** 2)
    return {
        "z_h1": z_h1,
        "h1": h1,
        "z_h2": z_h2,
        "h2": h2,
        "z_o1": z_o1,
        "o1": o1,
        "z_o2": z_o2,
        "o2": o2,
        "E": E,
    }


@pytest.fixture(scope="module")
def oracle() -> dict[str, float]:
    p = _torch_params()
    fwd = _torch_forward(p)
    for v in ("h1", "h2", "o1", "o2"):
        fwd[v].retain_grad()
    fwd["E"].backward()
    out = {k: float(v.detach()) for k, v in fwd.items()}
    out |= {f"∂E/∂{k}": float(v.grad) for k, v in p.items()}
    out |= {k: float(v.detach() - LR * v.grad) for k, v in p.items()}  # one plain SGD step
    out |= {"∂E/∂h1": float(fwd["h1"].grad), "∂E/∂h2": float(fwd["h2"].grad)}
    out |= {"∂E/∂o1 = o1 − t1": float(fwd["o1"].grad), "∂E/∂o2 = o2 − t2": float(fwd["o2"].grad)}
    return out


@pytest.fixture(scope="module")
def res():
    return run_example(rates=None)


def test_forward_values_match_torch(res, oracle):
    for name in ("z_h1", "h1", "z_h2", "h2", "z_o1", "o1", "z_o2", "o2", "E"):
        assert res.value(name) == pytest.approx(oracle[name], rel=1e-13, abs=1e-15), name


def test_every_gradient_matches_torch_autograd_with_shared_biases(res, oracle):
    for name in NAMES:
        assert res.value(f"∂E/∂{name}") == pytest.approx(oracle[f"∂E/∂{name}"], rel=1e-12, abs=1e-16), name


def test_chain_factors_match_torch(res, oracle):
    for name in ("∂E/∂h1", "∂E/∂h2", "∂E/∂o1 = o1 − t1", "∂E/∂o2 = o2 − t2"):
        assert res.value(name) == pytest.approx(oracle[name], rel=1e-12), name
    # the sigmoid slopes are the ratios of torch's own chain factors
    h1 = oracle["h1"]
    assert res.value("h1(1 − h1)") == pytest.approx(h1 * (1 - h1), rel=1e-12)


def test_updated_parameters_match_one_torch_sgd_step(res, oracle):
    for name in NAMES:
        assert res.value(name) == pytest.approx(oracle[name], rel=1e-13), name


def test_gradients_match_central_differences_including_the_tied_bias(res):
    """E as a function of each post parameter, perturbing BOTH entries of a shared bias."""
    net = build_network()
    h = 1e-5

    def E_with(name: str, delta: float) -> float:
        i, pname, entry = PARAM_INDEX[name]
        p = {q.name: q for q in net.layers[i].params}[pname]
        old = p.value.copy()
        if entry is None:
            p.value += delta  # the shared scalar moves every unit's bias
        else:
            p.value[entry] += delta
        e = net.cost(X, T)
        p.value[...] = old
        return e

    for name in NAMES:
        numeric = (E_with(name, h) - E_with(name, -h)) / (2 * h)
        assert res.value(f"∂E/∂{name}") == pytest.approx(numeric, rel=1e-7, abs=1e-12), name


def test_tied_bias_gradient_is_the_sum_of_the_per_unit_gradients(res, oracle):
    assert sum(res.untied_b1) == pytest.approx(oracle["∂E/∂b1"], rel=1e-12)
    assert sum(res.paths_b1.values()) == pytest.approx(oracle["∂E/∂b1"], rel=1e-12)
    # the post's two paths (o1→h1, o2→h2) miss two of the four
    assert res.paths_b1["o1→h1"] + res.paths_b1["o2→h2"] < 0.5 * oracle["∂E/∂b1"]


def test_tied_sgd_step_keeps_the_bias_one_number():
    net = build_network()
    net.loss_and_grad(X, T)
    tie_bias_grads(net)
    from chainrule.optim import SGD

    SGD(0.7).step(net.params)
    for i in (0, 2):
        b = net.layers[i].b.value
        assert b[0] == b[1]


def test_correct_post_figures_agree_and_the_slips_are_flagged(res, oracle):
    slips = {"∂E/∂b1", "b1"}
    checked = 0
    for f in (*res.forward, *res.gradients, *res.updated):
        if f.post is None:
            continue
        truth = oracle[f.name]
        post_ok = f"{truth:.4f}" == f"{f.post:.4f}"
        assert f.agrees == post_ok, f.name
        assert post_ok == (f.name not in slips), f.name
        checked += 1
    assert checked == 8 + 12 + 12


def test_rounding_artefacts_are_not_called_slips(res):
    # z_o1: the post's rounded factors give 2.0861, its printed 2.0862 is the true value rounded
    f = res.figure("z_o1")
    assert post_arithmetic(f.post_expr) == pytest.approx(0.7 * 0.9866 + 0.9 * 0.9950 + 0.5)
    assert f.agrees and f.rounding_only
    assert not res.figure("∂E/∂b1").rounding_only


def test_errata_carry_live_correct_values(res, oracle):
    keys = {e.key for e in res.errata}
    assert {"dE/db1", "dE/db1 factor", "b1 update", "b2 update", "z_o2 label", "w_10"} <= keys
    e = res.erratum("dE/db1")
    assert e.post_value == 0.0008
    assert e.correct_value == pytest.approx(oracle["∂E/∂b1"], rel=1e-12)
    assert e.correct_value > 2.5 * e.post_value
    e = res.erratum("b1 update")
    assert e.post_value == 0.05 and e.correct_value == pytest.approx(oracle["b1"], rel=1e-13)
    e = res.erratum("b2 update")
    assert e.post_value == pytest.approx(0.1 - 0.01 * 0.1975)  # the post's arithmetic as typed
    assert e.correct_value == pytest.approx(oracle["b2"], rel=1e-13)
    e = res.erratum("z_o2 label")
    assert e.correct_value == pytest.approx(oracle["z_o2"], rel=1e-13)
    assert e.post_value == pytest.approx(oracle["z_o1"], rel=1e-13)  # w7 h1 + w9 h2 + b2 is z_o1
    e = res.erratum("dE/db1 factor")
    assert e.post_value == 0.9983
    o1 = oracle["o1"]
    assert e.correct_value == pytest.approx(o1 * (1 - o1), rel=1e-12)


def test_post_data_is_the_posts_printed_figures():
    # guards against editing the post's figures to make them agree
    grads = {n: v for n, v, _, _ in POST["gradients"]}
    assert grads["∂E/∂b1"] == 0.0008 and grads["∂E/∂w8"] == 0.1183
    upd = {n: v for n, v, _, _ in POST["updated"]}
    assert upd["b1"] == 0.05 and upd["b2"] == 0.498


def _squeeze(text: str) -> str:
    """The post's LaTeX and our plain arithmetic, both without spaces and multiplication signs."""
    return re.sub(r"\s+|\\times|×", "", text).replace("−", "-")


def test_post_data_is_in_the_post_itself():
    """Every figure and every line of arithmetic in POST, against the post's own text (when on disk)."""
    files = sorted(POSTS.glob("002_*.txt")) if POSTS.is_dir() else []
    if not files:
        from conftest import missing

        missing(f"post 002 is not on disk ({POSTS})")
    text = files[0].read_text(encoding="utf-8")
    squeezed = _squeeze(text)
    rows = [row for section in POST.values() for row in section]
    assert len(rows) == 8 + 8 + 12 + 12
    for name, printed, expr, _ in rows:
        assert f"{printed:.4f}" in text or f"{printed:g}" in text, name
        if expr is not None:
            assert _squeeze(expr) in squeezed, (name, expr)


@pytest.mark.parametrize("lr", [0.5, 1.0, 3.0])
def test_convergence_counts_match_a_torch_loop(lr):
    run = converge(lr, (1e-4, 1e-6), max_iter=5000)
    p = _torch_params()
    opt = torch.optim.SGD(list(p.values()), lr=lr)
    hits: dict[float, int | None] = {1e-4: None, 1e-6: None}
    for step in range(5001):
        opt.zero_grad()
        E = _torch_forward(p)["E"]
        for tol in hits:
            if hits[tol] is None and float(E.detach()) < tol:
                hits[tol] = step
        if all(v is not None for v in hits.values()):
            break
        E.backward()
        opt.step()
    assert run.iterations == hits


@pytest.fixture(scope="module")
def cli_json() -> dict:
    """``python -m chainrule example --json`` once, as a real subprocess (the full default run)."""
    env = {**os.environ, "PYTHONIOENCODING": "utf-8"}
    proc = subprocess.run(
        [sys.executable, "-m", "chainrule", "example", "--json"],
        capture_output=True,
        text=True,
        encoding="utf-8",
        env=env,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def test_subprocess_json_has_the_required_keys(cli_json, oracle):
    assert {"forward", "gradients", "updated", "errata", "convergence"} <= set(cli_json)
    g = {d["name"]: d for d in cli_json["gradients"]}
    assert g["∂E/∂b1"]["ours"] == pytest.approx(oracle["∂E/∂b1"], rel=1e-12)
    assert g["∂E/∂b1"]["post"] == 0.0008 and g["∂E/∂b1"]["agrees"] is False
    assert all({"ours", "post", "agrees"} <= set(d) for d in cli_json["forward"])


def test_subprocess_convergence_report(cli_json):
    conv = cli_json["convergence"]
    runs = {r["lr"]: r for r in conv["runs"]}
    assert set(runs) == {0.01, 0.1, 0.5, 1.0, 3.0}
    steps = [runs[lr]["iterations"]["1e-06"] for lr in (0.01, 0.1, 0.5, 1.0, 3.0)]
    assert all(s is not None for s in steps)
    assert steps == sorted(steps, reverse=True)  # a larger step converges in fewer iterations here
    # the post's α: E after 1500 steps, checked against an independent torch loop
    p = _torch_params()
    opt = torch.optim.SGD(list(p.values()), lr=0.01)
    for _ in range(1500):
        opt.zero_grad()
        _torch_forward(p)["E"].backward()
        opt.step()
    E1500 = float(_torch_forward(p)["E"].detach())
    assert runs[0.01]["E_at"]["1500"] == pytest.approx(E1500, rel=1e-9)
    assert "1500" in conv["post_says"] and conv["comment"]


def test_cli_text_shows_tables_marks_and_errata(capsys):
    assert main(["example", "--no-convergence"]) == 0
    out = capsys.readouterr().out
    assert "Forward pass" in out and "Errata" in out
    assert "✗" in out and "✓" in out
    assert "0.0008" in out


def test_cli_json_in_process(capsys):
    assert main(["example", "--json", "--rates", "3", "--max-iter", "500"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert [r["lr"] for r in d["convergence"]["runs"]] == [3.0]
    assert len(d["errata"]) >= 6


@pytest.mark.parametrize(
    "argv", [["example", "--rates", "0,1"], ["example", "--lr", "-1"], ["example", "--bogus"]]
)
def test_cli_bad_flags_one_line(argv, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("chainrule: error:") and err.count("\n") == 1


def test_numpy_input_not_mutated():
    x = X.copy()
    net = build_network()
    net.loss_and_grad(x, T)
    np.testing.assert_array_equal(x, X)
