"""The seed walkthrough and errata: every check passes, every slip is there with a live value.

Where a slip's numbers are asserted, the reference is computed here independently (PyTorch autograd,
or the post's own formula re-typed in NumPy), never copied from the module's output.
"""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import torch

from chainrule.cli import main
from chainrule.nn.builders import mlp
from chainrule.studies.seeds import SEEDS, collect, errata, post003_hidden_rule, render, resolve, walkthrough


@pytest.fixture(scope="module")
def results():
    return collect()


@pytest.fixture(scope="module")
def checks(results):
    return [c for cs, _ in results.values() for c in cs]


@pytest.fixture(scope="module")
def slips(results):
    return [s for _, ss in results.values() for s in ss]


def _find(slips, seed, *needles):
    hits = [s for s in slips if s.seed == seed and all(n in (s.where + s.post + s.correct) for n in needles)]
    assert hits, (seed, needles)
    return hits[0]


def test_every_post_is_walked_through_and_every_check_passes(checks):
    assert {c.seed for c in checks} == set(SEEDS)
    failing = [(c.seed, c.topic, c.value) for c in checks if not c.passed]
    assert not failing
    assert all(c.tolerance <= 1e-7 for c in checks)


def test_every_implementation_path_resolves(checks):
    for c in checks:
        obj = resolve(c.implementation)
        assert callable(obj), c.implementation


def test_every_slip_is_confirmed_and_numeric_ones_carry_values(slips):
    assert all(s.confirmed for s in slips)
    assert {s.seed for s in slips} == set(SEEDS)
    for s in slips:
        assert s.kind in ("numeric", "textual")
        if s.kind == "numeric":
            assert s.post_value is not None and s.correct_value is not None, s.where
            assert s.post_value != s.correct_value, s.where


def test_public_api_matches_collect(checks, slips):
    assert len(walkthrough(["002"])) == sum(c.seed == "002" for c in checks)
    assert len(errata(["004"])) == sum(s.seed == "004" for s in slips)


# -- seed 002 -------------------------------------------------------------------------------------
def _torch_seed002_db1() -> float:
    w = [torch.tensor(0.1 * i, dtype=torch.float64) for i in range(1, 10)] + [
        torch.tensor(0.1, dtype=torch.float64)
    ]
    b1 = torch.tensor(0.5, dtype=torch.float64, requires_grad=True)
    b2 = torch.tensor(0.5, dtype=torch.float64)
    h1 = torch.sigmoid(w[0] * 1 + w[2] * 4 + w[4] * 5 + b1)
    h2 = torch.sigmoid(w[1] * 1 + w[3] * 4 + w[5] * 5 + b1)
    o1 = torch.sigmoid(w[6] * h1 + w[8] * h2 + b2)
    o2 = torch.sigmoid(w[7] * h1 + w[9] * h2 + b2)
    (0.5 * ((o1 - 0.1) ** 2 + (o2 - 0.05) ** 2)).backward()
    return float(b1.grad)


def test_seed002_required_slips(slips):
    db1 = _find(slips, "002", "0.0008", "two paths")
    assert db1.kind == "numeric" and db1.post_value == 0.0008
    assert db1.correct_value == pytest.approx(_torch_seed002_db1(), rel=1e-12)
    assert _find(slips, "002", "b_1 := b_1").correct_value == pytest.approx(0.5 - 0.01 * _torch_seed002_db1())
    assert _find(slips, "002", "b_1 := b_2").kind == "numeric"
    tanh = _find(slips, "002", "激活函数为sigmoid")
    assert tanh.post_value == pytest.approx(1 / (1 + np.exp(-1.0))) and tanh.correct_value == pytest.approx(
        np.tanh(1)
    )
    assert _find(slips, "002", "w_32").kind == "numeric"
    assert _find(slips, "002", "z_21", "∂J/∂o_12").kind == "numeric"
    assert _find(slips, "002", "Z_Lᵀ", "z_31")
    assert _find(slips, "002", "w_33")
    assert _find(slips, "002", "[[b1, b1], [b2, b2]]").post_value > 0.1
    assert _find(slips, "002", "z_o1 = w7 h1 + w9 h2")
    assert _find(slips, "002", "w_{10}")


def test_seed002_index_slips_against_an_independent_jacobian(slips):
    """∂J/∂w_32 and ∂J/∂z_21 by torch autograd for the post's out = Z W + b̃ vs the post's terms."""
    w32 = _find(slips, "002", "w_32")
    z21 = _find(slips, "002", "z_21", "∂J/∂o_12")
    from chainrule.studies.seeds import _dense_case

    _, Z, _, _, G = _dense_case(0)  # the random case the slips are evaluated on (inputs only)
    layer = _dense_case(0)[0]
    W, b = layer.W.value.copy(), layer.b.value.copy()
    Zt = torch.tensor(Z, requires_grad=True)
    Wt = torch.tensor(W, requires_grad=True)
    ((Zt @ Wt + torch.tensor(b)) * torch.tensor(G)).sum().backward()  # J with ∂J/∂out = G
    assert w32.correct_value == pytest.approx(float(Wt.grad[2, 1]), rel=1e-12)
    assert z21.correct_value == pytest.approx(float(Zt.grad[1, 0]), rel=1e-12)
    assert w32.post_value == pytest.approx(G[0, 0] * Z[0, 2] + G[1, 1] * Z[1, 2])  # the post's terms
    assert z21.post_value == pytest.approx(G[1, 0] * W[0, 0] + G[0, 1] * W[0, 1])


# -- seed 003 -------------------------------------------------------------------------------------
def test_seed003_hidden_rule_is_wrong_by_gradient_check():
    net = mlp([3, 4, 3, 1], "sigmoid", loss="bce", seed=11, dtype=np.float64)
    r = np.random.default_rng(7)
    x = r.standard_normal((5, 3))
    y = r.integers(0, 2, (5, 1)).astype(np.float64)
    post = post003_hidden_rule(net, x, y)
    # the true gradient by torch autograd
    xt, yt = torch.tensor(x), torch.tensor(y)
    Ws = [torch.tensor(net.layers[i].W.value, requires_grad=True) for i in (0, 2, 4)]
    bs = [torch.tensor(net.layers[i].b.value) for i in (0, 2, 4)]
    h = torch.sigmoid(xt @ Ws[0] + bs[0])
    h = torch.sigmoid(h @ Ws[1] + bs[1])
    z = h @ Ws[2] + bs[2]
    torch.nn.functional.binary_cross_entropy_with_logits(z, yt, reduction="sum").div(5).backward()

    def rel(a, b):
        return np.linalg.norm(a - b) / (np.linalg.norm(a) + np.linalg.norm(b))

    true = [W.grad.numpy() for W in Ws]
    assert rel(post[2], true[2]) < 1e-12  # the output layer: the post's rule is right
    assert rel(post[0], true[0]) > 0.3 and rel(post[1], true[1]) > 0.3  # hidden layers: wrong


def test_seed003_required_slips(slips):
    hidden = _find(slips, "003", "(A − Y)", "no δ flows back")
    assert hidden.kind == "numeric"
    assert hidden.post_value["W1"] > 0.3 and hidden.post_value["W2"] > 0.3
    assert hidden.post_value["W3 (output)"] < 1e-12
    dw = _find(slips, "003", "(A − Y)*X")
    assert dw.post_value != dw.correct_value and len(dw.correct_value) == 2
    assert _find(slips, "003", "∂L/∂b = (1/n)(A − Y)")
    wx = _find(slips, "003", "W*X")
    assert wx.correct_value == [1 * 1 + 2 * 3 + 2, 3 * 1 + 4 * 3 + 2]  # the post's X W + b, by hand
    assert _find(slips, "003", "每一列")


# -- seed 004 and 001 -----------------------------------------------------------------------------
def test_seed004_required_slips(slips):
    bias = _find(slips, "004", "Σ_k (w^l_jk a^{l−1}_k + b^l_j)")
    post, right = np.array(bias.post_value), np.array(bias.correct_value)
    diff = post - right
    # bias inside the sum adds it K = 4 times: the excess is 3·b for every unit, with b ≠ 0
    assert np.all(np.abs(diff) > 1e-6)
    assert "K = 4" in bias.detail
    assert _find(slips, "004", "l − 1").kind == "textual"
    assert _find(slips, "004", "∇ ∂C/∂w")
    shape = _find(slips, "004", "2×3")
    assert "undefined" in shape.post_value and len(shape.correct_value) == 4
    assert _find(slips, "004", "Σ_k(δ^{l+1}_k")


def test_seed004_bias_excess_is_K_minus_1_times_b():
    """Independently: the post's z with the bias inside the sum, vs z, on our own numbers."""
    from chainrule.nn.layers import Dense

    r = np.random.default_rng(99)
    K, w, a, b = 5, r.standard_normal((2, 5)), r.standard_normal(5), r.standard_normal(2)
    z = Dense(K, 2, W=w.T, b=b, dtype=np.float64).forward(a[None, :])[0]
    z_post = np.array([sum(w[j, k] * a[k] + b[j] for k in range(K)) for j in range(2)])
    np.testing.assert_allclose(z_post - z, (K - 1) * b, rtol=1e-12)


def test_seed001_index_slip(slips):
    s = _find(slips, "001", "Σ_{i=1}^m")
    assert s.kind == "textual" and s.check_value < 1e-10


# -- rendering and the command ---------------------------------------------------------------------
def test_render_formats(results):
    text = render(fmt="text", results=results)
    assert "== seed 002" in text and "✓" in text and "formula checks pass" in text
    md = render(fmt="markdown", results=results)
    assert "## Seed 003" in md and "| formula (post) |" in md
    d = json.loads(render(fmt="json", results=results))
    assert d["ok"] is True and len(d["checks"]) == len(walkthrough()) and len(d["errata"]) >= 30


def test_cli_seeds_json_subprocess():
    proc = subprocess.run(
        [sys.executable, "-m", "chainrule", "seeds", "--json", "--only", "4"],
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    d = json.loads(proc.stdout)
    assert {c["seed"] for c in d["checks"]} == {"004"}


def test_cli_seeds_errata_markdown(capsys):
    assert main(["seeds", "--errata", "--format", "markdown", "--only", "2,3"]) == 0
    out = capsys.readouterr().out
    assert "### Slips" in out and "| formula (post) |" not in out and "Seed 004" not in out


@pytest.mark.parametrize(
    "argv", [["seeds", "--only", "9"], ["seeds", "--format", "bogus"], ["seeds", "--only", ","]]
)
def test_cli_seeds_bad_flags(argv, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("chainrule: error:") and err.count("\n") == 1
