"""Autoencoders (issue 10): the deep/tied/sparse/denoising builder, every loss incl. the KL sparsity
penalty gradient-checked in float64 and matched to PyTorch autograd, encode/decode, unrolling a
pre-trained stack, and the autoencoder command (JSON fields, bad input)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from chainrule.cli import main
from chainrule.errors import ConfigError
from chainrule.nn.autoencoder import KLSparsity, MaskingNoise, deep_autoencoder, penalty
from chainrule.nn.layers import Dense, TiedDense
from chainrule.unsupervised import RBM, pretrain_rbms, unroll_autoencoder, unroll_classifier
from chainrule.unsupervised.pretrain import PretrainedLayer, PretrainedStack

CASES = [
    # (loss, tied, code activation, sparsity)
    ("bce", False, "identity", None),
    ("squared", False, "sigmoid", None),
    ("bce", True, "identity", None),
    ("squared", True, "sigmoid", (0.1, 3.0)),
    ("bce", False, "sigmoid", (0.2, 0.5)),
]


def objective(net, x) -> float:
    """What backward differentiates: the mean reconstruction loss plus the layers' penalties."""
    return float(net.loss.forward(net.forward(x), x)[0]) + penalty(net)


def small(loss: str, tied: bool, code: str, sparsity) -> tuple:
    net = deep_autoencoder([6, 5, 3], loss=loss, tied=tied, code_activation=code, sparsity=sparsity,
                           seed=1, dtype=np.float64)
    x = np.random.default_rng(2).uniform(0.05, 0.95, (7, 6))
    return net, x


@pytest.mark.parametrize(("loss", "tied", "code", "sparsity"), CASES)
def test_gradcheck(loss: str, tied: bool, code: str, sparsity) -> None:
    net, x = small(loss, tied, code, sparsity)
    net.zero_grad()
    _, ctx = net.loss.forward(net.forward(x), x)
    dx = net.backward(net.loss.backward(ctx), need_dx=True)
    eps = 1e-6
    for name, p in net.named_params():
        num = np.zeros_like(p.value)
        for idx in np.ndindex(p.shape):
            old = p.value[idx]
            p.value[idx] = old + eps
            fp = objective(net, x)
            p.value[idx] = old - eps
            fm = objective(net, x)
            p.value[idx] = old
            num[idx] = (fp - fm) / (2 * eps)
        np.testing.assert_allclose(p.grad, num, rtol=1e-5, atol=1e-8, err_msg=name)
    # the input gradient (the target x held fixed)
    num_x = np.zeros_like(x)
    for idx in np.ndindex(x.shape):
        xp, xm = x.copy(), x.copy()
        xp[idx] += eps
        xm[idx] -= eps
        num_x[idx] = (float(net.loss.forward(net.forward(xp), x)[0]) + penalty(net)
                      - float(net.loss.forward(net.forward(xm), x)[0]) - penalty(net)) / (2 * eps)
    np.testing.assert_allclose(dx, num_x, rtol=1e-5, atol=1e-8)


@pytest.mark.parametrize(("loss", "tied", "code", "sparsity"), CASES)
def test_matches_torch_autograd(loss: str, tied: bool, code: str, sparsity) -> None:
    torch = pytest.importorskip("torch")
    net, x = small(loss, tied, code, sparsity)
    params = {id(p): torch.tensor(p.value, requires_grad=True) for p in net.params}
    h = xt = torch.tensor(x)
    for layer in net.layers:
        if isinstance(layer, TiedDense):
            h = h @ params[id(layer.W)].T + params[id(layer.c)]
        elif isinstance(layer, Dense):
            h = h @ params[id(layer.W)] + params[id(layer.b)]
        elif layer.kind == "sigmoid":
            h = torch.sigmoid(h)
        elif isinstance(layer, KLSparsity):
            rho, beta, rh = layer.rho, layer.beta, h.mean(0)
            pen = beta * (rho * torch.log(rho / rh) + (1 - rho) * torch.log((1 - rho) / (1 - rh))).sum()
    if loss == "bce":
        E = torch.nn.functional.binary_cross_entropy_with_logits(h, xt, reduction="sum") / x.shape[0]
    else:
        E = 0.5 * ((h - xt) ** 2).sum() / x.shape[0]
    total = E + (pen if sparsity else 0.0)
    total.backward()
    net.zero_grad()
    cost, ctx = net.loss.forward(net.forward(x), x)
    net.backward(net.loss.backward(ctx))
    assert float(cost) + penalty(net) == pytest.approx(float(total.detach()), rel=1e-12)
    for p in net.params:
        np.testing.assert_allclose(p.grad, params[id(p)].grad.numpy(), rtol=1e-9, atol=1e-12, err_msg=p.name)


def test_tied_autoencoder_shares_one_weight() -> None:
    net = deep_autoencoder([8, 4, 2], tied=True, seed=0)
    tied = [layer for layer in net.layers if isinstance(layer, TiedDense)]
    dense = [layer for layer in net.layers if type(layer) is Dense]
    assert len(tied) == 2 and len(dense) == 2
    assert tied[0].W is dense[1].W and tied[1].W is dense[0].W
    assert len(net.params) == 2 * 2 + 2  # two W, two encoder biases, two decoder biases
    # the decoder weight is the encoder's, transposed, in the forward pass
    x = np.random.default_rng(0).random((3, 8)).astype(np.float32)
    code = net.encode(x)
    np.testing.assert_allclose(
        net.decode(code), 1 / (1 + np.exp(-((1 / (1 + np.exp(-(code @ dense[1].W.value.T + tied[0].c.value))))
                                            @ dense[0].W.value.T + tied[1].c.value))), rtol=1e-5)


def test_sparsity_penalty_value_and_gradient_formula() -> None:
    a = np.random.default_rng(3).uniform(0.01, 0.99, (5, 4))
    layer = KLSparsity(rho=0.05, beta=3.0)
    rh = a.mean(0)
    want = 3.0 * np.sum(0.05 * np.log(0.05 / rh) + 0.95 * np.log(0.95 / (1 - rh)))
    y, ctx = layer.forward(a)
    assert y is a and float(layer.penalty(ctx)) == pytest.approx(want, rel=1e-12)
    dy = np.zeros_like(a)
    np.testing.assert_allclose(layer.backward(dy, ctx), np.broadcast_to(3.0 / 5 * (-0.05 / rh + 0.95 / (1 - rh)), a.shape))


def test_masking_noise() -> None:
    x = np.ones((200, 50))
    layer = MaskingNoise(0.3, seed=0)
    y, mask = layer.forward(x)
    assert abs(1 - y.mean() - 0.3) < 0.02 and set(np.unique(y)) == {0.0, 1.0}
    dy = np.random.default_rng(0).normal(size=x.shape)
    np.testing.assert_array_equal(layer.backward(dy, mask), dy * (y == 1))
    layer.eval()
    y2, ctx = layer.forward(x)
    assert y2 is x and layer.backward(dy, ctx) is dy
    net = deep_autoencoder([50, 10, 4], noise=0.3, seed=0)
    assert isinstance(net.layers[0], MaskingNoise)
    np.testing.assert_array_equal(net.encode(x.astype(np.float32)), net.encode(x.astype(np.float32)))  # no noise


def test_encoder_sizes_must_shrink() -> None:
    deep_autoencoder([784, 1000, 500, 250, 30])  # widens first: fine
    for bad in ([784, 1000], [784, 30, 30], [10, 20, 30], [5]):
        with pytest.raises(ConfigError):
            deep_autoencoder(bad)
    with pytest.raises(ConfigError, match="sigmoid code"):
        deep_autoencoder([6, 3], sparsity=(0.05, 3.0))


def test_unrolled_rbm_is_the_rbm() -> None:
    """One RBM unrolled: encode = E[h|v] and reconstruct = E[v | E[h|v]]."""
    rng = np.random.default_rng(0)
    r = RBM(12, 5, W=rng.normal(0, 0.5, (12, 5)), b=rng.normal(size=12), c=rng.normal(size=5))
    stack = PretrainedStack("rbm", [PretrainedLayer(r.W, r.c, r.b)])
    x = rng.random((4, 12)).astype(np.float32)
    for tied in (False, True):
        net = unroll_autoencoder(stack, tied=tied)
        np.testing.assert_allclose(net.encode(x), r.hidden_mean(x), rtol=1e-5)
        np.testing.assert_allclose(net.reconstruct(x), r.visible_mean(r.hidden_mean(x)), rtol=1e-5)


def test_pretrain_stack_and_unroll(rng) -> None:
    x = (rng.random((200, 20)) < 0.3).astype(np.float32)
    stack = pretrain_rbms(x, [20, 12, 6, 3], epochs=2, batch_size=20)
    assert stack.sizes == [20, 12, 6, 3] and stack.layers[-1].linear
    ae = unroll_autoencoder(stack)
    assert ae.encode(x).shape == (200, 3) and ae.reconstruct(x).shape == (200, 20)
    plain = pretrain_rbms(x, [20, 12, 6], epochs=1, batch_size=20, linear_top=False)
    clf = unroll_classifier(plain, 4)
    np.testing.assert_array_equal(clf.layers[0].W.value, plain.layers[0].W)
    assert clf.output_dim() == 4 and clf.loss.name == "softmax-ce"
    with pytest.raises(ConfigError):
        unroll_classifier(stack, 4)


# -- the command ----------------------------------------------------------------------------


@pytest.mark.parametrize("pretrain", ["rbm", "autoencoder", "none"])
def test_autoencoder_command_json(capsys, tmp_path, pretrain: str) -> None:
    out = tmp_path / "out"
    code = main(["autoencoder", "--data", "default", "--layers", "784,32,2", "--pretrain", pretrain,
                 "--pretrain-epochs", "1", "--epochs", "1", "--train-images", "300", "--out", str(out),
                 "--json", "--quiet"])
    assert code == 0
    res = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert res["pca_squared_error_per_image"] > 0 and res["test_squared_error_per_image"] > 0
    assert res["pretrain"] == pretrain and res["layers"] == [784, 32, 2]
    # one record per fine-tuning epoch, without fit's arg-max "accuracy" (meaningless for reconstructions)
    assert [e["epoch"] for e in res["history"]] == [1]
    assert "accuracy" not in res["history"][0] and res["history"][0]["test_squared_error"] > 0
    for name in ("reconstructions.png", "codes.png", "report.html", "autoencoder.json"):
        assert (out / name).stat().st_size > 0
    assert (out / "report.html").read_text().count("data:image/png;base64") == 2


def test_autoencoder_pca_is_sklearns(capsys) -> None:
    decomposition = pytest.importorskip("sklearn.decomposition")
    from chainrule.io import load_data
    from chainrule.unsupervised.pca import PCA, squared_error_per_image

    d = load_data("default")
    mine = PCA.fit(d.x_train, 30)
    sk = decomposition.PCA(30, svd_solver="full").fit(d.x_train.astype(np.float64))
    err = squared_error_per_image(d.x_test, mine.reconstruct(d.x_test))
    want = squared_error_per_image(d.x_test, sk.inverse_transform(sk.transform(d.x_test.astype(np.float64))))
    assert err == pytest.approx(want, rel=1e-6)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--layers", "784,1000,2000"], "do not shrink to a code"),
        (["--layers", "784,30,30"], "do not shrink to a code"),
        (["--pretrain", "rbm", "--sparsity", "0.05,3"], "not to RBM pre-training"),
    ],
)
def test_autoencoder_bad_input(capsys, argv: list[str], message: str) -> None:
    assert main(["autoencoder", "--data", "default", "--epochs", "1", *argv]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("chainrule: error:") and message in err[0]
