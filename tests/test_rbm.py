"""RBMs (issue 10): free energy and its gradient against brute force, central differences and torch
autograd; exact log Z against summing every (v, h); AIS against exact enumeration for 784 x 10-15
RBMs; the fast CD-k/PCD trainer against a textbook step with the same random numbers; the
pseudo-log-likelihood against scikit-learn's score_samples; the rbm command's JSON and bad input."""

from __future__ import annotations

import itertools
import json
import math

import numpy as np
import pytest

from chainrule.cli import main
from chainrule.errors import ConfigError, DataError
from chainrule.io import load_data
from chainrule.nn.functional import sigmoid
from chainrule.unsupervised import RBM, ais_log_partition, exact_log_partition
from chainrule.unsupervised.ais import check_log_partition_finite
from chainrule.unsupervised.rbm import CDSettings, CDTrainer, check_binary

UNITS = [("bernoulli", "bernoulli"), ("gaussian", "bernoulli"), ("bernoulli", "gaussian")]


def small_rbm(visible: str = "bernoulli", hidden: str = "bernoulli", d: int = 5, h: int = 3, seed: int = 0) -> RBM:
    rng = np.random.default_rng(seed)
    return RBM(d, h, visible=visible, hidden=hidden, W=rng.normal(0, 0.7, (d, h)), b=rng.normal(0, 0.5, d),
               c=rng.normal(0, 0.5, h), dtype=np.float64)


def energy(r: RBM, v: np.ndarray, h: np.ndarray) -> float:
    """E(v, h), written from its definition (one sample)."""
    vis = 0.5 * np.sum((v - r.b) ** 2) if r.visible == "gaussian" else -(v @ r.b)
    hid = 0.5 * np.sum((h - r.c) ** 2) if r.hidden == "gaussian" else -(h @ r.c)
    return float(vis + hid - v @ r.W @ h)


def binary_rows(n: int) -> np.ndarray:
    return np.array(list(itertools.product([0.0, 1.0], repeat=n)))


@pytest.mark.parametrize("visible", ["bernoulli", "gaussian"])
def test_free_energy_is_minus_log_sum_over_hidden_states(visible: str) -> None:
    r = small_rbm(visible)
    v = np.random.default_rng(1).normal(size=(4, 5)) if visible == "gaussian" else binary_rows(5)[::7]
    want = [-math.log(sum(math.exp(-energy(r, vi, h)) for h in binary_rows(3))) for vi in v]
    np.testing.assert_allclose(r.free_energy(v), want, rtol=1e-12)


def test_gaussian_hidden_free_energy_integrates_the_hidden_units() -> None:
    """F(v) = −log ∫ e^{−E(v,h)} dh, by a 1-D quadrature per hidden unit (the integral factorises)."""
    r = small_rbm("bernoulli", "gaussian", h=2)
    v = binary_rows(5)[[3, 17, 30]]
    grid = np.linspace(-30, 30, 60001)
    for vi in v:
        log_int = -(vi @ r.b)  # the visible term, then one integral per hidden unit j
        for j in range(2):
            f = np.exp(-0.5 * (grid - r.c[j]) ** 2 + (vi @ r.W[:, j]) * grid)
            log_int_j = math.log(np.trapezoid(f, grid))
            log_int += -log_int_j
        assert r.free_energy(vi[None])[0] == pytest.approx(log_int, rel=1e-9)


@pytest.mark.parametrize(("visible", "hidden"), UNITS)
def test_free_energy_gradient_central_differences(visible: str, hidden: str) -> None:
    r = small_rbm(visible, hidden)
    rng = np.random.default_rng(2)
    v = rng.normal(size=(6, 5)) if visible == "gaussian" else (rng.random((6, 5)) < 0.5).astype(float)
    grads = r.free_energy_grad(v)
    eps = 1e-6
    for name in ("W", "b", "c"):
        p = getattr(r, name)
        num = np.zeros_like(p)
        for idx in np.ndindex(p.shape):
            old = p[idx]
            p[idx] = old + eps
            fp = r.free_energy(v).mean()
            p[idx] = old - eps
            fm = r.free_energy(v).mean()
            p[idx] = old
            num[idx] = (fp - fm) / (2 * eps)
        np.testing.assert_allclose(grads[name], num, rtol=1e-6, atol=1e-8, err_msg=name)


@pytest.mark.parametrize(("visible", "hidden"), UNITS)
def test_free_energy_and_gradient_match_torch(visible: str, hidden: str) -> None:
    torch = pytest.importorskip("torch")
    r = small_rbm(visible, hidden)
    rng = np.random.default_rng(3)
    v = rng.normal(size=(6, 5)) if visible == "gaussian" else (rng.random((6, 5)) < 0.5).astype(float)
    W, b, c = (torch.tensor(a, requires_grad=True) for a in (r.W, r.b, r.c))
    vt = torch.tensor(v)
    z = vt @ W + c
    vis = 0.5 * ((vt - b) ** 2).sum(1) if visible == "gaussian" else -(vt @ b)
    if hidden == "bernoulli":
        F = vis - torch.nn.functional.softplus(z).sum(1)
    else:
        F = vis - 0.5 * (z * z).sum(1) + 0.5 * (c * c).sum() - 0.5 * 3 * math.log(2 * math.pi)
    F.mean().backward()
    mine = r.free_energy_grad(v)
    np.testing.assert_allclose(r.free_energy(v), F.detach().numpy(), rtol=1e-12)
    for name, t in (("W", W), ("b", b), ("c", c)):
        np.testing.assert_allclose(mine[name], t.grad.numpy(), rtol=1e-10, atol=1e-12, err_msg=name)


def test_exact_log_partition_sums_every_configuration() -> None:
    r = small_rbm(d=6, h=4)
    brute = math.log(sum(math.exp(-energy(r, v, h)) for v in binary_rows(6) for h in binary_rows(4)))
    lz = exact_log_partition(r, chunk=3)  # several chunks
    assert lz == pytest.approx(brute, rel=1e-12)
    p = np.exp(-r.free_energy(binary_rows(6)) - lz)
    assert p.sum() == pytest.approx(1.0, rel=1e-12)


def test_exact_log_partition_gaussian_visible() -> None:
    """Z = Σ_h ∫ e^{−E} dv, against D-dimensional Gaussian integrals done by hand per h."""
    r = small_rbm("gaussian", d=3, h=2)
    total = 0.0
    for h in binary_rows(2):
        m = r.b + r.W @ h  # e^{−E} = e^{cᵀh} e^{−½‖v − m‖²} e^{½‖m‖² − ½‖b‖²}
        total += math.exp(r.c @ h + 0.5 * m @ m - 0.5 * r.b @ r.b) * (2 * math.pi) ** 1.5
    assert exact_log_partition(r) == pytest.approx(math.log(total), rel=1e-12)


def test_exact_refuses_too_many_hidden_units() -> None:
    with pytest.raises(ConfigError, match="use AIS"):
        exact_log_partition(RBM(4, 21))


@pytest.fixture(scope="module")
def binary_digits() -> np.ndarray:
    d = load_data("default")
    return (d.x_train[:600] > 0.5).astype(np.float32)


@pytest.mark.parametrize("hidden", [10, 15])
def test_ais_agrees_with_exact_enumeration(binary_digits: np.ndarray, hidden: int) -> None:
    """784 x 10 and 784 x 15 RBMs trained briefly (CD-1, 5 epochs of 600 digits): |AIS − exact| < 0.5."""
    r = RBM(784, hidden, seed=hidden)
    tr = CDTrainer(r, CDSettings(k=1, lr=0.1, batch_size=50), seed=0)
    for _ in range(5):
        tr.run_epoch(binary_digits)
    exact = exact_log_partition(r)
    est = ais_log_partition(r, runs=100, betas=5000, data=binary_digits, seed=1)
    assert abs(est.log_z - exact) < 0.5, (est, exact)
    assert est.log_z_low <= est.log_z <= est.log_z_high and est.std_err > 0
    assert exact > est.log_z_base  # the trained model is not the base-rate model


def test_ais_gaussian_visible_agrees_with_exact() -> None:
    r = small_rbm("gaussian", d=20, h=8, seed=4)
    r.W *= 0.3
    est = ais_log_partition(r, runs=64, betas=1000, seed=2)
    assert abs(est.log_z - exact_log_partition(r)) < 0.1


def test_log_z_overflow_is_refused() -> None:
    r = RBM(784, 12, W=np.full((784, 12), 1e13))
    with pytest.raises(ConfigError, match="would overflow"):
        check_log_partition_finite(r)
    with pytest.raises(ConfigError, match="would overflow"):
        ais_log_partition(RBM(3, 2, W=np.full((3, 2), np.inf)))


def reference_cd(r: RBM, v0: np.ndarray, k: int, lr: float, rng: np.random.Generator, chain=None):
    """The textbook CD-k/PCD-k step (module docstring of rbm.py), drawing the same uniforms in the
    same order as the trainer: h from P⁺ (CD only), then per Gibbs step v, then h."""
    n = v0.shape[0]
    p_pos = sigmoid(v0 @ r.W + r.c)
    h = chain.copy() if chain is not None else (rng.random(p_pos.shape, dtype=np.float32) < p_pos).astype(np.float32)
    for step in range(k):
        pv = sigmoid(h @ r.W.T + r.b)
        v = (rng.random(pv.shape, dtype=np.float32) < pv).astype(np.float32)
        p_neg = sigmoid(v @ r.W + r.c)
        if step < k - 1 or chain is not None:
            h = (rng.random(p_neg.shape, dtype=np.float32) < p_neg).astype(np.float32)
    W = r.W + lr / n * (v0.T @ p_pos - v.T @ p_neg)
    b = r.b + lr / n * (v0 - v).sum(0)
    c = r.c + lr / n * (p_pos - p_neg).sum(0)
    return W, b, c, h


@pytest.mark.parametrize(("k", "persistent", "batch"), [(1, False, 8), (3, False, 8), (1, True, 8), (2, True, 5)])
def test_fast_trainer_is_the_textbook_step(k: int, persistent: bool, batch: int) -> None:
    rng = np.random.default_rng(5)
    x = (rng.random((13, 7)) < 0.4).astype(np.float32)  # 13 rows: a short last batch too
    r = RBM(7, 4, seed=1)
    ref = RBM(7, 4, seed=1)
    tr = CDTrainer(r, CDSettings(k=k, persistent=persistent, lr=0.3, batch_size=batch), seed=9)
    ref_rng = np.random.default_rng(9)
    chain = np.zeros((batch, 4), np.float32) if persistent else None
    for start in range(0, 13, batch):
        v0 = x[start : start + batch]
        tr.step(v0)
        n = v0.shape[0]
        W, b, c, h = reference_cd(ref, v0, k, 0.3, ref_rng, None if chain is None else chain[:n])
        ref.W, ref.b, ref.c = W, b, c
        if chain is not None:
            chain[:n] = h
        np.testing.assert_allclose(r.W, ref.W, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(r.b, ref.b, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(r.c, ref.c, rtol=1e-5, atol=1e-6)


def test_cd_learns_digits(binary_digits: np.ndarray) -> None:
    r = RBM(784, 64, seed=0)
    before = r.reconstruction_error(binary_digits)
    pll0 = r.astype(np.float64).pseudo_log_likelihood(binary_digits, rng=0).mean()
    tr = CDTrainer(r, CDSettings(k=1, persistent=True, lr=0.05, batch_size=20), seed=0)
    for _ in range(3):
        tr.run_epoch(binary_digits)
    assert r.reconstruction_error(binary_digits) < 0.5 * before
    assert r.astype(np.float64).pseudo_log_likelihood(binary_digits, rng=0).mean() > pll0 + 100


def test_pseudo_log_likelihood_is_sklearns_score_samples(binary_digits: np.ndarray) -> None:
    sk = pytest.importorskip("sklearn.neural_network")
    x = binary_digits[:200].astype(np.float64)
    m = sk.BernoulliRBM(n_components=16, n_iter=2, learning_rate=0.05, batch_size=20, random_state=3).fit(x)
    r = RBM(784, 16, W=m.components_.T, b=m.intercept_visible_, c=m.intercept_hidden_, dtype=np.float64)
    flip = np.random.RandomState(3).randint(0, 784, x.shape[0])  # what score_samples draws
    np.testing.assert_allclose(r.pseudo_log_likelihood(x, flip), m.score_samples(x), rtol=1e-10)
    np.testing.assert_allclose(r.free_energy(x), m._free_energy(x), rtol=1e-10)


def test_check_binary() -> None:
    check_binary(np.array([[0.0, 1.0]]))
    with pytest.raises(DataError, match="binarise"):
        check_binary(np.array([[0.0, 0.5]]))


# -- the command -----------------------------------------------------------------------------


def test_rbm_command_json(capsys, tmp_path) -> None:
    code = main(["rbm", "--data", "default", "--binarize", "0.5", "--hidden", "12", "--epochs", "2",
                 "--persistent", "--train-images", "300", "--score-images", "100", "--ais", "--ais-betas",
                 "300", "--ais-runs", "20", "--out", str(tmp_path), "--save", str(tmp_path / "r.npz"),
                 "--json", "--quiet"])
    assert code == 0
    res = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert len(res["epoch_seconds"]) == 2 and len(res["pseudo_log_likelihood"]) == 2
    assert res["method"] == "PCD-1"
    ais, exact = res["ais_log_likelihood"], res["exact_log_likelihood"]
    # the same mean free energy under both: the log-likelihoods differ exactly by the log Z's
    assert exact - ais["mean"] == pytest.approx(res["ais"]["log_z"] - res["exact_log_z"], abs=1e-3)
    assert ais["std_err"] == res["ais"]["std_err"] > 0 and ais["low"] <= ais["mean"] <= ais["high"]
    for name in ("rbm_filters.png", "rbm_samples.png", "report.html", "rbm.json", "r.npz"):
        assert (tmp_path / name).stat().st_size > 0
    # the saved model loads and scores the same
    code = main(["rbm", "--data", "default", "--binarize", "0.5", "--load", str(tmp_path / "r.npz"),
                 "--epochs", "0", "--score-images", "100", "--json", "--quiet"])
    again = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert again["final"] == pytest.approx(res["final"])


@pytest.mark.parametrize(
    ("argv", "code", "message"),
    [
        (["--hidden", "4"], 1, "needs binary (0/1) data"),
        (["--binarize", "0.5", "--cd", "0"], 2, "--cd: expected a positive integer"),
    ],
)
def test_rbm_bad_input(capsys, argv: list[str], code: int, message: str) -> None:
    assert main(["rbm", "--data", "default", "--epochs", "1", "--train-images", "50", *argv]) == code
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("chainrule: error:") and message in err[-1]


def test_rbm_ais_overflow_is_one_line(capsys, tmp_path) -> None:
    from chainrule.jobs.rbm import save_rbm

    save_rbm(RBM(784, 8, W=np.full((784, 8), 3e12), dtype=np.float64), tmp_path / "big.npz")
    assert main(["rbm", "--data", "default", "--binarize", "0.5", "--load", str(tmp_path / "big.npz"),
                 "--epochs", "0", "--ais"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "log Z of this model would overflow" in err[0]
