"""The seed walkthrough and errata: every check passes, every slip is there with a live value.

Where a slip's numbers are asserted, the reference is computed here independently (PyTorch autograd,
loops over every state, or the post's own formula re-typed in NumPy), or read from the post's own
text; never copied from the module's output. Where the posts are on disk (``../shared/seeds``), what
a slip quotes from a post is checked against the post itself.
"""

from __future__ import annotations

import itertools
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
from chainrule.nn.builders import mlp
from chainrule.studies.example import run_example
from chainrule.studies.seeds import SEEDS, collect, errata, post003_hidden_rule, render, resolve, walkthrough
from chainrule.studies.seeds.common import KINDS, Section, SlipRecord
from chainrule.studies.seeds.seed000 import rbm_gradients
from chainrule.studies.seeds.seed002 import dense_case
from chainrule.studies.seeds.walk import SECTIONS

POSTS = pathlib.Path(
    os.environ.get("CHAINRULE_SEED_POSTS", pathlib.Path(__file__).resolve().parents[2] / "shared" / "seeds")
)


def _post_text(seed: str) -> str:
    files = sorted(POSTS.glob(f"{seed}_*.txt")) if POSTS.is_dir() else []
    if not files:
        from conftest import missing

        missing(f"post {seed} is not on disk ({POSTS})")
    return files[0].read_text(encoding="utf-8")


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
    assert len(hits) == 1, (seed, needles, len(hits))
    return hits[0]


def _typos(slips, seed):
    hits = [s for s in slips if s.seed == seed and s.where.startswith("typos")]
    assert len(hits) == 1, seed
    return hits[0]


def test_every_post_is_walked_through_and_every_check_passes(checks):
    assert {c.seed for c in checks} == set(SEEDS)
    failing = [(c.seed, c.topic, c.value) for c in checks if not c.passed]
    assert not failing
    assert all(c.tolerance <= 1e-7 for c in checks)
    assert len(checks) == 36


def test_every_implementation_path_resolves(checks):
    for c in checks:
        obj = resolve(c.implementation)
        assert callable(obj), c.implementation


# -- the slips as data ----------------------------------------------------------------------------
def test_slips_are_data_naming_a_check_or_marked_text_only():
    assert set(SECTIONS) == set(SEEDS)
    for section in SECTIONS.values():
        assert isinstance(section, Section)
        for rec in section.slips:
            assert isinstance(rec, SlipRecord)
            assert (rec.kind == "text-only") == (rec.run is None) == (rec.tolerance is None)
    with pytest.raises(ValueError):
        SlipRecord("where", "post", "correct", "formula")  # a formula slip without a check
    with pytest.raises(ValueError):
        SlipRecord("where", "post", "correct", "text-only", "a check", lambda m: None, 1e-12)  # type: ignore[arg-type,return-value]


def test_slip_counts_per_post(slips):
    counts = {seed: sum(s.seed == seed for s in slips) for seed in SEEDS}
    assert counts == {"000": 3, "001": 2, "002": 16, "003": 9, "004": 8}
    assert sum(s.kind == "text-only" for s in slips) == 7


def test_checked_slips_are_confirmed_and_numeric_ones_carry_values(slips):
    assert {s.seed for s in slips} == set(SEEDS)
    for s in slips:
        assert s.kind in KINDS
        if s.kind == "text-only":
            continue
        assert s.checked and s.confirmed, s.where
        assert s.check_value is not None and s.check_value <= s.tolerance, s.where
        if s.kind == "numeric":  # a number the post printed, and the library's
            assert isinstance(s.post_value, float) and s.correct_value is not None, s.where
            assert s.post_value != pytest.approx(s.correct_value, abs=5e-5), s.where


def test_text_only_slips_are_labelled_and_carry_no_check(slips):
    text_only = [s for s in slips if s.kind == "text-only"]
    for s in text_only:
        assert not s.checked
        assert s.check_value is None and s.tolerance is None
        assert s.post_value is None and s.correct_value is None
        assert "text-only" in s.check
        d = s.to_dict()
        assert d["checked"] is False and d["confirmed"] is None and d["check_value"] is None
    # the wording slips that used to carry an unrelated check (softmax sums to 1 for a typo, ...)
    for seed, needle in [
        ("000", "sotfmax"),
        ("001", "n_{l-1}"),
        ("002", "f为作用在h上的激活函数"),
        ("002", "w_10"),
        ("003", "Forword"),
        ("004", "stops mid-sentence"),
    ]:
        assert _find(text_only, seed, needle).kind == "text-only"


def test_one_typo_record_per_post_quoting_the_post_verbatim(slips):
    """The typo policy: every pure typo of a post in one text-only slip; what it quotes is in the post."""
    for seed in SEEDS:
        typos = _typos(slips, seed)
        assert typos.kind == "text-only"
        quoted = re.findall(r"'([^']+)'", typos.post)
        assert len(quoted) >= 3, seed
        text = _post_text(seed)
        for q in quoted:
            assert q in text, (seed, q)


def test_each_typo_is_listed_once(slips):
    for seed in SEEDS:
        typos = _typos(slips, seed)
        others = [s for s in slips if s.seed == seed and s is not typos]
        for q in re.findall(r"'([^']+)'", typos.post):
            assert not [s for s in others if q in s.where + s.post + s.correct + s.detail], (seed, q)


def test_quotes_of_the_new_slips_are_in_the_posts(slips):
    for seed, needle in [
        ("000", "RBM"),
        ("000", "用权重参数减去"),
        ("002", "反向传播算法的目的"),
        ("002", "雅克比"),
    ]:
        s = _find(slips, seed, needle)
        quoted = re.findall(r"'([^']+)'", s.where)
        assert quoted
        for q in quoted:
            assert q in _post_text(seed), (seed, q)


def test_public_api_matches_collect(checks, slips):
    assert len(walkthrough(["002"])) == sum(c.seed == "002" for c in checks)
    assert len(errata(["004"])) == sum(s.seed == "004" for s in slips)


# -- seed 000 -------------------------------------------------------------------------------------
def _torch_rbm_loglik(W, b, c, data):
    n_v = W.shape[0]
    vs = torch.tensor(list(itertools.product([0.0, 1.0], repeat=n_v)), dtype=torch.float64)
    neg_free = vs @ b + torch.nn.functional.softplus(c + vs @ W).sum(dim=1)
    log_z = torch.logsumexp(neg_free, dim=0)
    d = torch.tensor(data)
    return (d @ b + torch.nn.functional.softplus(c + d @ W).sum(dim=1) - log_z).mean()


def _cd1_by_loops(W, b, c, data):
    """CD-1's expected update, one Gibbs step v → h → v' from each data row, by explicit sums."""

    def sig(x):
        return 1 / (1 + np.exp(-x))

    n_v, n_h = W.shape
    grad = np.zeros_like(W)
    for v0 in data:
        grad += np.outer(v0, sig(c + v0 @ W))
        ph = sig(c + v0 @ W)
        for h in itertools.product([0, 1], repeat=n_h):
            p_h = np.prod([ph[j] if h[j] else 1 - ph[j] for j in range(n_h)])
            pv = sig(b + W @ np.array(h, dtype=float))
            for v1 in itertools.product([0, 1], repeat=n_v):
                p_v = np.prod([pv[i] if v1[i] else 1 - pv[i] for i in range(n_v)])
                v1 = np.array(v1, dtype=float)
                grad -= p_h * p_v * np.outer(v1, sig(c + v1 @ W))
    return grad / len(data)


def test_seed000_rbm_gradient_is_positive_minus_model_phase_and_cd1_is_not_it():
    r = np.random.default_rng(5)
    W, b, c = r.standard_normal((3, 2)), r.standard_normal(3), r.standard_normal(2)
    data = r.integers(0, 2, (4, 3)).astype(np.float64)
    g = rbm_gradients(W, b, c, data)
    Wt = torch.tensor(W, requires_grad=True)
    ll = _torch_rbm_loglik(Wt, torch.tensor(b), torch.tensor(c), data)
    ll.backward()
    np.testing.assert_allclose(g["exact"], Wt.grad.numpy(), rtol=1e-10, atol=1e-12)
    assert g["loglik"] == pytest.approx(ll.item(), rel=1e-12)
    np.testing.assert_allclose(g["numeric"], Wt.grad.numpy(), rtol=1e-6, atol=1e-9)
    cd1 = _cd1_by_loops(W, b, c, data)
    np.testing.assert_allclose(g["cd1"], cd1, rtol=1e-10, atol=1e-12)
    assert np.linalg.norm(cd1 - Wt.grad.numpy()) > 1e-3 * np.linalg.norm(cd1)  # CD-1 ≠ the gradient


def test_seed000_slips(slips):
    rbm = _find(slips, "000", "RBM")
    assert rbm.kind == "conceptual" and "contrastive divergence" in rbm.correct
    assert rbm.check_value < 1e-7 and "CD-1" in rbm.detail
    lr = _find(slips, "000", "用权重参数减去其对应的梯度")
    assert lr.kind == "formula"
    # an SGD step moves every parameter by η g, so the largest move is η times the largest |g|
    assert lr.correct_value == pytest.approx(0.3 * lr.post_value, rel=1e-12)
    assert "sotfmax" in _typos(slips, "000").post


# -- seed 001 -------------------------------------------------------------------------------------
def test_seed001_index_slip_and_no_bias_slip(slips):
    s = _find(slips, "001", "Σ_{i=1}^m")
    assert s.kind == "formula" and s.check_value < 1e-10
    # ∂b/∂z_i = 0: leaving the bias out of z_j inside ∂/∂z_i is no slip
    assert not [x for x in slips if x.seed == "001" and "bias" in (x.where + x.post)]


# -- seed 002 -------------------------------------------------------------------------------------
def _torch_seed002(lr: float = 0.01) -> dict[str, float]:
    """The post's equations with ONE shared b1 and b2 (scalars), by torch autograd, and one SGD step."""
    w = [torch.tensor(0.1 * i, dtype=torch.float64) for i in range(1, 10)] + [
        torch.tensor(0.1, dtype=torch.float64)
    ]
    b1 = torch.tensor(0.5, dtype=torch.float64, requires_grad=True)
    b2 = torch.tensor(0.5, dtype=torch.float64, requires_grad=True)
    h1 = torch.sigmoid(w[0] * 1 + w[2] * 4 + w[4] * 5 + b1)
    h2 = torch.sigmoid(w[1] * 1 + w[3] * 4 + w[5] * 5 + b1)
    z_o1 = w[6] * h1 + w[8] * h2 + b2
    z_o2 = w[7] * h1 + w[9] * h2 + b2
    o1, o2 = torch.sigmoid(z_o1), torch.sigmoid(z_o2)
    (0.5 * ((o1 - 0.1) ** 2 + (o2 - 0.05) ** 2)).backward()
    return {
        "db1": float(b1.grad),
        "b1": 0.5 - lr * float(b1.grad),
        "b2": 0.5 - lr * float(b2.grad),
        "z_o1": z_o1.item(),
        "z_o2": z_o2.item(),
        "o1": o1.item(),
        "o2": o2.item(),
    }


#: lines of seed 002 exactly as the post prints them (the last number of each is its printed figure)
POST002 = {
    "db1": r"$= 0.7896 \times 0.9983 \times 0.7 \times 0.0132 \times 1+ \times 0.7504 \times 0.1598 \times 0.1 "
    r"\times 0.0049 \times 1= 0.0008$",
    "b1": r"$b_1:=b_1-\alpha \frac {dE} {db_1} = 0.1 - 0.01 \times 0.0008 = 0.0500$",
    "b2": r"$b_1:=b_2-\alpha \frac {dE} {db_2} = 0.1 - 0.01 \times 0.1975 = 0.4980$",
    "z_o2": r"$$z_{o_1}=w_7h_1+w_9h_2+b_2 = 0.8 \times 0.9866 + 0.1 \times 0.9950 + 0.5 = 1.3888$$",
    "o2": r"$$o1 = \sigma(z_{o_1}) = \sigma (1.3888) = 0.8004$$",
}


def _printed(key: str) -> float:
    return float(re.findall(r"[0-9]+\.[0-9]+", POST002[key])[-1])


def test_post002_lines_are_the_posts():
    text = _post_text("002")
    for line in POST002.values():
        assert line in text, line


def test_seed002_required_slips(slips):
    oracle = _torch_seed002()
    db1 = _find(slips, "002", "0.0008", "two paths")
    assert db1.kind == "numeric" and db1.post_value == _printed("db1")
    assert db1.correct_value == pytest.approx(oracle["db1"], rel=1e-12)
    factor = _find(slips, "002", "0.9983", "do1/dz_o1")
    assert factor.kind == "numeric" and factor.post_value == 0.9983 and "0.9983" in POST002["db1"]
    assert factor.correct_value == pytest.approx(oracle["o1"] * (1 - oracle["o1"]), rel=1e-12)
    b1 = _find(slips, "002", "b_1 := b_1")
    assert b1.kind == "numeric" and b1.post_value == _printed("b1")
    assert b1.correct_value == pytest.approx(oracle["b1"], rel=1e-12)
    tanh = _find(slips, "002", "激活函数为sigmoid")
    assert tanh.post_value == pytest.approx(1 / (1 + np.exp(-1.0))) and tanh.correct_value == pytest.approx(
        np.tanh(1)
    )
    assert _find(slips, "002", "∂J/∂w_32").kind == "formula"
    assert _find(slips, "002", "z_21", "∂J/∂o_12").kind == "formula"
    assert _find(slips, "002", "Z_Lᵀ", "z_31")
    assert _find(slips, "002", "w_33")
    assert _find(slips, "002", "[[b1, b1], [b2, b2]]").post_value > 0.1
    assert "w_10" in _typos(slips, "002").post


def test_seed002_post_values_are_what_the_post_printed(slips):
    """002-12 and 002-13 (the b2 update and the z_o2/o2 lines): the post's own printed figures."""
    oracle = _torch_seed002()
    b2 = _find(slips, "002", "b_1 := b_2")
    assert b2.kind == "formula"
    assert b2.post_value == _printed("b2")
    assert b2.correct_value == pytest.approx(oracle["b2"], rel=1e-12)
    assert f"{0.1 - 0.01 * 0.1975:.6f}" in b2.detail  # the expression as typed, named as such
    z = _find(slips, "002", "z_o1 = w7 h1 + w9 h2")
    assert z.kind == "formula"
    assert z.post_value == [_printed("z_o2"), _printed("o2")]
    assert z.correct_value == pytest.approx([oracle["z_o2"], oracle["o2"]], rel=1e-12)
    assert f"{oracle['z_o1']:.6f}" in z.detail  # what the formula as written would give


def test_seed002_example_errata_all_become_slips(slips):
    keys = {e.key for e in run_example(rates=None).errata}
    assert keys == {"dE/db1", "dE/db1 factor", "b1 update", "b2 update", "z_o2 label", "w_10"}
    mapped = [s for s in slips if s.seed == "002" and s.where.startswith("形象的例子")]
    assert len(mapped) == 5  # w_10 is a pure typesetting typo: in the post's typo record


def test_seed002_index_slips_against_an_independent_jacobian(slips):
    """∂J/∂w_32 and ∂J/∂z_21 by torch autograd for the post's out = Z W + b̃ vs the post's terms."""
    w32 = _find(slips, "002", "∂J/∂w_32")
    z21 = _find(slips, "002", "z_21", "∂J/∂o_12")
    c = dense_case(0)  # the random case the slips are evaluated on (inputs only)
    Z, W, b, G = c.Z, c.W, c.b, c.G
    Zt = torch.tensor(Z, requires_grad=True)
    Wt = torch.tensor(W, requires_grad=True)
    ((Zt @ Wt + torch.tensor(b)) * torch.tensor(G)).sum().backward()  # J with ∂J/∂out = G
    assert w32.correct_value == pytest.approx(float(Wt.grad[2, 1]), rel=1e-12)
    assert z21.correct_value == pytest.approx(float(Zt.grad[1, 0]), rel=1e-12)
    assert w32.post_value == pytest.approx(G[0, 0] * Z[0, 2] + G[1, 1] * Z[1, 2])  # the post's terms
    assert z21.post_value == pytest.approx(G[1, 0] * W[0, 0] + G[0, 1] * W[0, 1])


def test_seed002_jacobian_slip_against_torch(slips):
    s = _find(slips, "002", "雅克比")
    assert s.kind == "conceptual" and s.check_value < 1e-7
    c = dense_case(0)
    jac = torch.autograd.functional.jacobian(
        lambda W: torch.tensor(c.Z) @ W + torch.tensor(c.b), torch.tensor(c.W)
    ).numpy()  # (2, 2, 3, 2): ∂o_nk/∂w_jm
    assert s.post_value == list(c.Z.T.shape)
    assert s.correct_value == [jac.shape[0] * jac.shape[1], jac.shape[2] * jac.shape[3]]
    np.testing.assert_allclose(np.einsum("nk,nkjm->jm", c.G, jac), c.Z.T @ c.G, rtol=1e-12)


def test_seed002_output_gradient_is_not_the_goal(slips):
    s = _find(slips, "002", "反向传播算法的目的")
    assert s.kind == "conceptual" and s.check_value < 1e-12
    # the post's shapes: out (and ∂J/∂out) is N × 2 with N = 2; W_{L+1} is 3 × 2; b has 2 entries
    assert s.post_value == [2, 2]
    assert s.correct_value == {"∂J/∂W_{L+1}": [3, 2], "∂J/∂b_{L+1}": [2]}


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
    assert hidden.kind == "formula"
    assert hidden.post_value["W1"] > 0.3 and hidden.post_value["W2"] > 0.3
    assert hidden.post_value["W3 (output)"] < 1e-12
    dw = _find(slips, "003", "(A − Y)*X")
    assert dw.post_value != dw.correct_value and len(dw.correct_value) == 2
    assert _find(slips, "003", "∂L/∂b = (1/n)(A − Y)")
    wx = _find(slips, "003", "W*X")
    assert wx.correct_value == [1 * 1 + 2 * 3 + 2, 3 * 1 + 4 * 3 + 2]  # the post's X W + b, by hand
    assert _find(slips, "003", "每一列").kind == "conceptual"
    assert "Forword Propagate" in _typos(slips, "003").post


# -- seed 004 -------------------------------------------------------------------------------------
def test_seed004_required_slips(slips):
    bias = _find(slips, "004", "Σ_k (w^l_jk a^{l−1}_k + b^l_j)")
    assert bias.kind == "formula"
    post, right = np.array(bias.post_value), np.array(bias.correct_value)
    diff = post - right
    # bias inside the sum adds it K = 4 times: the excess is 3·b for every unit, with b ≠ 0
    assert np.all(np.abs(diff) > 1e-6)
    assert "K = 4" in bias.detail
    assert _find(slips, "004", "l − 1").kind == "conceptual"
    assert _find(slips, "004", "∇ ∂C/∂w")
    shape = _find(slips, "004", "2×3")
    assert "undefined" in shape.post_value and len(shape.correct_value) == 4
    assert _find(slips, "004", "Σ_k(δ^{l+1}_k")


def test_seed004_bias_excess_is_K_minus_1_times_b():
    """Independently: the post's z with the bias inside the sum, vs z, on our own numbers."""
    r = np.random.default_rng(99)
    K, w, a, b = 5, r.standard_normal((2, 5)), r.standard_normal(5), r.standard_normal(2)
    z = torch.tensor(w) @ torch.tensor(a) + torch.tensor(b)
    z_post = np.array([sum(w[j, k] * a[k] + b[j] for k in range(K)) for j in range(2)])
    np.testing.assert_allclose(z_post - z.numpy(), (K - 1) * b, rtol=1e-12)


# -- rendering and the command ---------------------------------------------------------------------
def test_render_formats(results):
    text = render(fmt="text", results=results)
    assert "== seed 002" in text and "✓" in text and "formula checks pass" in text
    assert "[text-only]" in text and "none: text-only" in text
    assert "7 text-only" in text.splitlines()[-1]
    md = render(fmt="markdown", results=results)
    assert "## Seed 003" in md and "| formula (post) |" in md and "(text-only)" in md
    d = json.loads(render(fmt="json", results=results))
    assert d["ok"] is True and len(d["checks"]) == len(walkthrough()) and len(d["errata"]) == 38
    assert {e["kind"] for e in d["errata"]} == set(KINDS)
    assert all((e["kind"] == "text-only") == (e["checked"] is False) for e in d["errata"])


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
