"""The tracer and the explain renderers, checked against PyTorch autograd (float64)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from chainrule.cli import main
from chainrule.errors import ChainruleError
from chainrule.inspect.explain import (
    LIMITS,
    TooLargeError,
    check_size,
    explain,
    render,
    render_markdown,
    render_summary,
    render_text,
    summarize,
    to_json,
)
from chainrule.inspect.explain.notation import GroupNotation, LayerNotation, LossNotation, fill
from chainrule.inspect.trace import trace
from chainrule.nn.builders import mlp
from chainrule.nn.functional import targets_like
from chainrule.nn.layer import LAYERS, Elementwise, Layer
from chainrule.nn.layers import Dense, ReLU, Sigmoid, Tanh, TiedDense
from chainrule.nn.losses import LOSSES, Loss, SquaredError
from chainrule.nn.model import Sequential
from chainrule.optim import SGD
from chainrule.studies.example import T, X, build_network

ACT = {"sigmoid": torch.sigmoid, "tanh": torch.tanh, "relu": torch.relu, "identity": lambda z: z}


def torch_pass(net, x, y, l2: float = 0.0) -> dict:
    """The same network in torch: z, a per seed-style layer (retain_grad), parameter grads."""
    xt = torch.tensor(x, dtype=torch.float64)
    params, zs, acts = [], [], []
    h = xt
    for layer in net.layers:
        if isinstance(layer, Dense):
            W = torch.tensor(layer.W.value, dtype=torch.float64, requires_grad=True)
            b = torch.tensor(layer.b.value, dtype=torch.float64, requires_grad=True)
            params.append((W, b))
            h = h @ W + b
            h.retain_grad()
            zs.append(h)
            acts.append(None)
        else:
            h = ACT[layer.kind](h)
            h.retain_grad()
            acts[-1] = h
    n = xt.shape[0]
    if net.loss.name == "squared":
        E = 0.5 * ((h - torch.tensor(y, dtype=torch.float64)) ** 2).sum() / n
    elif net.loss.name == "softmax-ce":
        E = F.cross_entropy(h, torch.tensor(y, dtype=torch.int64))
    else:
        E = F.binary_cross_entropy_with_logits(h, torch.tensor(y, dtype=torch.float64), reduction="sum") / n
    if l2:
        E = E + 0.5 * l2 * sum((W**2).sum() for W, _ in params)
    E.backward()
    return {
        "E": float(E.detach()),
        "z": [z.detach().numpy() for z in zs],
        "a": [None if a is None else a.detach().numpy() for a in acts],
        "delta": [z.grad.numpy() for z in zs],
        "dE_da": [None if a is None else a.grad.numpy() for a in acts],
        "dW": [W.grad.numpy() for W, _ in params],
        "db": [b.grad.numpy() for _, b in params],
        "W": [W.detach().numpy() for W, _ in params],
        "b": [b.detach().numpy() for _, b in params],
    }


CASES = [
    ([3, 4, 2], "sigmoid", "squared"),
    ([4, 5, 3, 3], "tanh", "softmax-ce"),
    ([3, 4, 2], "relu", "bce"),
]


def _data(sizes, loss, n=3, seed=0):
    r = np.random.default_rng(seed)
    x = r.standard_normal((n, sizes[0]))
    if loss == "softmax-ce":
        y = r.integers(0, sizes[-1], n)
    elif loss == "bce":
        y = r.integers(0, 2, (n, sizes[-1])).astype(np.float64)
    else:
        y = r.uniform(0.1, 0.9, (n, sizes[-1]))
    return x, y


@pytest.mark.parametrize(("sizes", "act", "loss"), CASES)
def test_trace_matches_torch_autograd(sizes, act, loss):
    net = mlp(sizes, act, loss=loss, seed=1, dtype=np.float64)
    x, y = _data(sizes, loss)
    ref = torch_pass(net, x, y)
    with trace(net) as tr:
        E = net.loss_and_grad(x, y)
    assert float(E) == pytest.approx(ref["E"], rel=1e-13)
    layers = tr.layers()
    assert [lt.l for lt in layers] == list(range(1, len(sizes)))
    for i, lt in enumerate(layers):
        np.testing.assert_allclose(lt.z, ref["z"][i], rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(lt.delta, ref["delta"][i], rtol=1e-10, atol=1e-14)
        np.testing.assert_allclose(lt.dW, ref["dW"][i], rtol=1e-10, atol=1e-14)
        np.testing.assert_allclose(lt.db, ref["db"][i], rtol=1e-10, atol=1e-14)
        if ref["a"][i] is not None:
            np.testing.assert_allclose(lt.a, ref["a"][i], rtol=1e-12, atol=1e-14)
            np.testing.assert_allclose(lt.dE_da, ref["dE_da"][i], rtol=1e-10, atol=1e-14)
            # f'(z) recorded from the layer's own backward: δ = ∂E/∂a ⊙ f'(z) with torch's ∂E/∂a
            np.testing.assert_allclose(lt.dE_da * lt.fprime, ref["delta"][i], rtol=1e-10, atol=1e-14)
        else:
            assert lt.dE_da is None  # the fused loss hands δ^L straight to the Dense
        assert lt.shapes["dW"] == lt.shapes["W"] and lt.norms["delta"] == pytest.approx(
            float(np.linalg.norm(ref["delta"][i]))
        )
    # ∂E/∂a^{l-1} of layer l is ∂E/∂a of layer l-1, and the first layer's input gradient is skipped
    assert layers[0].dE_da_prev is None
    np.testing.assert_allclose(layers[1].dE_da_prev, ref["dE_da"][0], rtol=1e-10, atol=1e-14)


def test_tracer_is_removed_and_reads_grads_after_l2():
    net = mlp([3, 4, 2], "sigmoid", loss="squared", seed=2, dtype=np.float64)
    x, y = _data([3, 4, 2], "squared")
    ref = torch_pass(net, x, y, l2=0.3)
    with trace(net) as tr:
        assert tr in net.hooks
        net.loss_and_grad(x, y, l2=0.3)
    assert tr not in net.hooks
    for i, lt in enumerate(tr.layers()):
        np.testing.assert_allclose(lt.dW, ref["dW"][i], rtol=1e-10)  # includes λW


def test_step_records_before_and_after():
    net = mlp([3, 4, 2], "tanh", loss="squared", seed=3, dtype=np.float64)
    x, y = _data([3, 4, 2], "squared")
    ref = torch_pass(net, x, y)
    with trace(net) as tr:
        net.loss_and_grad(x, y)
        ups = tr.step(SGD(0.25))
    assert [u.name for u in ups] == ["0.W", "0.b", "2.W", "2.b"]
    assert [u.l for u in ups] == [1, 1, 2, 2]
    for u, g in zip(ups, [ref["dW"][0], ref["db"][0], ref["dW"][1], ref["db"][1]], strict=True):
        np.testing.assert_allclose(u.delta, -0.25 * g, rtol=1e-10, atol=1e-15)
        assert u.relative_change > 0


def test_explain_seed002_every_check_passes_and_the_step_matches_torch():
    net = build_network()
    ref = torch_pass(net, X, T)
    ex = explain(net, X, T, lr=0.01)
    assert ex.ok and ex.gradcheck.ok
    assert ex.E == pytest.approx(ref["E"], rel=1e-13)
    for per in ex.checks.values():
        assert {"delta", "dW", "db", "dE_da"} <= set(per)
        assert all(c.rel_error < 1e-7 for c in per.values())
    after = {u.name: u.after for u in ex.updates}
    np.testing.assert_allclose(after["0.W"], ref["W"][0] - 0.01 * ref["dW"][0], rtol=1e-13)
    np.testing.assert_allclose(after["2.b"], ref["b"][1] - 0.01 * ref["db"][1], rtol=1e-13)


def test_a_wrong_gradient_is_caught_by_the_explanation():
    """The check is live: corrupt one layer's backward and the explanation fails."""
    net = mlp([3, 3, 2], "sigmoid", loss="squared", seed=4, dtype=np.float64)
    x, y = _data([3, 3, 2], "squared", n=2)
    sig = net.layers[1]
    orig = sig.backward
    sig.backward = lambda dy, ctx, need_dx=True: orig(dy, ctx, need_dx=need_dx) * 1.5  # type: ignore[method-assign]
    ex = explain(net, x, y, lr=0.1)
    assert not ex.ok
    assert not ex.checks[1]["delta"].ok and ex.checks[2]["delta"].ok
    assert "FAIL" in render_text(ex)


def test_text_shows_formulas_numbers_and_checks():
    ex = explain(build_network(), X, T, lr=0.01)
    text = render_text(ex)
    for s in (
        "FORWARD PASS",
        "BACKWARD PASS",
        "UPDATE",
        "δ^1 = (δ^2 (W^2)ᵀ) ⊙ f'(z^1)",
        "((W^2)ᵀ δ^2) ⊙ f'(z^1)",
        "∂E/∂W^1 = (a^0)ᵀ δ^1",
        "Σ_rows δ^1",
        "gradcheck:",
        "PASS",
    ):
        assert s in text, s
    assert "✗" not in text


def test_markdown_has_display_math():
    ex = explain(build_network(), X, T, lr=0.01)
    md = render_markdown(ex)
    assert md.count("$$") >= 20 and md.count("$$") % 2 == 0
    assert "\\begin{bmatrix}" in md and "\\odot" in md and "\\mathsf T" in md
    assert "| $\\delta^{1}$ |" in md


def test_json_is_complete():
    ex = explain(
        mlp([4, 3, 3], "tanh", loss="softmax-ce", seed=0, dtype=np.float64), *_data([4, 3, 3], "softmax-ce")
    )
    d = json.loads(json.dumps(to_json(ex)))
    assert {"network", "forward", "backward", "updates", "gradcheck", "loss", "formulas"} <= set(d)
    assert d["gradcheck"]["ok"] is True
    assert len(d["backward"]) == 2 and d["backward"][0]["gradcheck"]["delta"]["rel_error"] < 1e-7
    p = np.array(d["loss"]["probabilities"])
    np.testing.assert_allclose(p.sum(axis=1), 1.0)


def test_size_limits_refuse_with_a_pointer_to_summary():
    with pytest.raises(TooLargeError, match="--summary"):
        check_size(mlp([LIMITS["units"] + 1, 2], "sigmoid", loss="squared"), 1)
    with pytest.raises(TooLargeError, match="parameters"):
        check_size(mlp([40, 40, 40], "sigmoid", loss="squared"), 1)
    with pytest.raises(TooLargeError, match="batch"):
        check_size(mlp([3, 2], "sigmoid", loss="squared"), LIMITS["batch"] + 1)
    check_size(mlp([3, 2], "sigmoid", loss="squared"), LIMITS["batch"])  # at the limit: fine
    assert issubclass(TooLargeError, ChainruleError)


def test_summary_of_a_large_net():
    net = mlp([100, 70, 10], "relu", loss="softmax-ce", seed=0, dtype=np.float64)
    x, y = _data([100, 70, 10], "softmax-ce", n=16)
    s = summarize(net, x, y, lr=0.1)
    ref = torch_pass(mlp([100, 70, 10], "relu", loss="softmax-ce", seed=0, dtype=np.float64), x, y)
    assert s.gradcheck.ok
    assert [r["norm_dW"] for r in s.rows] == pytest.approx(
        [float(np.linalg.norm(g)) for g in ref["dW"]], rel=1e-10
    )
    for fmt in ("text", "markdown"):
        assert "‖∂E/∂W‖" in render_summary(s, fmt)
    assert json.loads(render_summary(s, "json"))["gradcheck"]["ok"] is True


# -- the command ------------------------------------------------------------------------------------
def test_cli_seed002_text(capsys):
    assert main(["explain", "--seed002"]) == 0
    out = capsys.readouterr().out
    assert "a^0 = x = [1.0000  4.0000  5.0000]" in out and "shares ONE bias" in out
    assert "rel. error" in out and "PASS" in out


def test_cli_markdown_to_file_atomically(tmp_path, capsys):
    out = tmp_path / "step.md"
    out.write_text("old")
    assert main(["explain", "--seed002", "--format", "markdown", "--out", str(out)]) == 0
    md = out.read_text(encoding="utf-8")
    assert md.startswith("# One training step") and "$$" in md
    assert [p.name for p in tmp_path.iterdir()] == ["step.md"]  # no temp file left behind
    assert capsys.readouterr().out == ""


def test_cli_json_classification_label(capsys):
    argv = ["explain", "--layers", "3,4,3", "--activation", "tanh", "--loss", "softmax-ce"]
    assert main([*argv, "--input", "0.5,-1,2;1,0,-1", "--label", "2,0", "--format", "json"]) == 0
    d = json.loads(capsys.readouterr().out)
    net = mlp([3, 4, 3], "tanh", loss="softmax-ce", seed=0, dtype=np.float64)
    ref = torch_pass(net, np.array([[0.5, -1, 2], [1, 0, -1]]), np.array([2, 0]))
    np.testing.assert_allclose(d["backward"][-1]["delta"], ref["delta"][-1], rtol=1e-10)
    assert d["target"] == [[0, 0, 1], [1, 0, 0]]


def test_cli_too_large_is_one_line_exit_1(capsys):
    assert main(["explain", "--layers", "784,128,10", "--loss", "softmax-ce"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--summary" in err and err.startswith("chainrule: error:")


def test_cli_summary_any_size(capsys):
    assert (
        main(["explain", "--layers", "784,128,10", "--loss", "softmax-ce", "--summary", "--batch", "4"]) == 0
    )
    assert "784×128" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("argv", "code"),
    [
        (["explain", "--format", "bogus"], 2),
        (["explain", "--seed002", "--layers", "3,2"], 2),
        (["explain", "--input", "1,x"], 2),
        (["explain", "--layers", "3,2,2", "--input", "1,2"], 1),
        (["explain", "--layers", "3,2,2", "--loss", "softmax-ce", "--input", "1,2,3", "--label", "5"], 1),
        (["explain", "--layers", "3,2,2", "--input", "1,2,3", "--target", "0.1,0.2;0.3,0.4"], 1),
        (["explain", "--model", "/nonexistent/model.safetensors"], 1),
    ],
)
def test_cli_bad_input_one_line(argv, code, capsys):
    assert main(argv) == code
    err = capsys.readouterr().err
    assert err.startswith("chainrule: error:") and err.count("\n") == 1


def test_cli_saved_model(tmp_path, capsys):
    serialize = pytest.importorskip("chainrule.io.serialize")
    net = mlp([3, 4, 2], "sigmoid", loss="squared", seed=5)
    path = tmp_path / "m.safetensors"
    serialize.save(net, path)
    assert (
        main(["explain", "--model", str(path), "--input", "1,2,3", "--target", "0.2,0.7", "--format", "json"])
        == 0
    )
    d = json.loads(capsys.readouterr().out)
    assert d["gradcheck"]["ok"] and d["network"]["sizes"] == [3, 4, 2]


def test_render_rejects_unknown_format():
    ex = explain(build_network(), X, T)
    with pytest.raises(ChainruleError):
        render(ex, "html")


def test_maxout_layer_is_explained_with_its_own_formula():
    net = mlp([3, 3, 2], "maxout", loss="squared", seed=0, dtype=np.float64)
    x, y = _data([3, 3, 2], "squared", n=2)
    ex = explain(net, x, y)
    assert ex.ok
    text = render_text(ex)
    assert "∂E/∂W^1 = (a^0)ᵀ (m ⊙ δ^1)" in text and "∂E/∂W^1 = (a^0)ᵀ δ^1" not in text
    assert ex.layers[0].dW.shape == (3, 6)


# -- one source per formula --------------------------------------------------------------------------
def test_text_and_markdown_are_written_from_the_classes(monkeypatch):
    """Change a class's template and the explanation changes with it: explain keeps no copy."""
    monkeypatch.setattr(Sigmoid, "derivative", "SIG'(z^%(l)s) from the class")
    monkeypatch.setattr(Sigmoid, "derivative_latex", r"\mathrm{fromclass}_{%(l)s}")
    monkeypatch.setattr(Sigmoid, "symbol", "sig")
    monkeypatch.setattr(SquaredError, "formula", "E = half squares of %(o)s")
    monkeypatch.setattr(SquaredError, "delta_latex", r"\mathrm{grad}(%(o)s)")
    ex = explain(build_network(), X, T, lr=0.01)
    text, md = render_text(ex), render_markdown(ex)
    assert "f'(z^1) = SIG'(z^1) from the class" in text and "a^2 = sig(z^2)" in text
    assert "E = half squares of a^2 = " in text
    assert r"\mathrm{fromclass}_{2}" in md and r"\nabla_{a} E = \mathrm{grad}(a^{2})" in md
    d = to_json(ex)
    assert d["backward"][0]["fprime_formula"] == "SIG'(z^1) from the class"
    assert d["loss"]["formula"] == "E = half squares of a^2"


def test_seed002_formulas_are_filled_in_every_format():
    ex = explain(build_network(), X, T, lr=0.01)
    text, md, d = render_text(ex), render_markdown(ex), to_json(ex)
    assert "E = (1/N) Σ_n ½‖a^2_n − y_n‖² = " in text and "∂E/∂a^2 = (a^2 − y)/N" in text
    assert "f'(z^1) = a^1 ⊙ (1 − a^1)" in text and "z^1 = a^0 W^1 + b^1" in text
    assert "z^{1} & = a^{0} W^{1} + b^{1}" in md and "a^{2} = \\sigma(z^{2})" in md
    assert "%(" not in text + md + json.dumps(d, ensure_ascii=False)  # every placeholder filled
    assert [b["fprime_formula"] for b in d["backward"]] == ["a^1 ⊙ (1 − a^1)", "a^2 ⊙ (1 − a^2)"]
    assert d["backward"][1]["fprime_formula_latex"] == "a^{2} \\odot (1 - a^{2})"
    assert d["loss"]["delta"] == "(a^2 − y)/N" and d["loss"]["delta_latex"] == "\\frac{1}{N}(a^{2} - y)"


def test_fused_losses_name_their_activation_from_the_layer_class():
    for loss, name in (("softmax-ce", "softmax"), ("bce", "σ")):
        net = mlp([3, 3, 2], "relu", loss=loss, seed=0, dtype=np.float64)
        text = render_text(explain(net, *_data([3, 3, 2], loss, n=2)))
        assert f"output linear ({name} inside the loss)" in text and f"  {name}(z^2) = " in text
        assert f"δ^2 = ∂E/∂z^2 = ({name}(z^2) − y)/N" in text


class Cube(Elementwise):
    """``a = z³``: a class with a kind and nothing else to say about itself."""

    kind = "cube"

    def f(self, z):
        return z**3

    def fprime(self, z, a):
        return 3.0 * z * z


class HalfAbs(Loss):
    """``E = (1/N) Σ ½|a − y|``: a loss with a name and no formula strings."""

    name = "halfabs"

    def forward(self, out, y):
        d = out - targets_like(out, y)
        return 0.5 * np.abs(d).sum() / out.shape[0], d

    def backward(self, ctx):
        return 0.5 * np.sign(ctx) / ctx.shape[0]


def test_unregistered_classes_without_formulas_fall_back_to_their_kind():
    """Neither class is registered and neither carries a formula: no KeyError, sensible defaults."""
    assert Cube.kind not in LAYERS and HalfAbs.name not in LOSSES
    net = Sequential([Dense(3, 2, rng=0, dtype=np.float64), Cube(), Dense(2, 2, rng=1, dtype=np.float64)])
    net.loss = HalfAbs()
    x, y = _data([3, 2, 2], "squared", n=2)
    ex = explain(net, x, y)
    text, md = render(ex, "text"), render(ex, "markdown")
    d = json.loads(render(ex, "json"))
    assert "a^1 = cube(z^1)" in text and "f'(z^1) = cube'(z^1)" in text
    assert "E = halfabs(z^2, y) = " in text and "∂E/∂z^2 = ∂E/∂z^2" in text
    assert "\\operatorname{cube}(z^{1})" in md and "\\operatorname{halfabs}(z^{2}, y)" in md
    assert (
        d["backward"][0]["fprime_formula"] == "cube'(z^1)" and d["loss"]["formula"] == "E = halfabs(z^2, y)"
    )
    assert ex.ok  # the numbers are the library's, whatever the notation


def test_notation_defaults_and_fill():
    n = LayerNotation.of_kind("no-such-kind")
    assert (n.symbol, n.symbol_latex, n.derivative) == (
        "no-such-kind",
        "\\operatorname{no-such-kind}",
        "no-such-kind'(z^%(l)s)",
    )
    assert LayerNotation.of_kind("leaky_relu").symbol == "LeakyReLU"
    assert LayerNotation.of(Cube).symbol_latex == "\\operatorname{cube}"
    assert Layer.symbol == "" and Layer.symbol_latex == ""  # empty means "the kind"
    g = GroupNotation.of_kinds("dense", "relu+softmax")
    assert g.single is None and g.apply("z^1") == "softmax(ReLU(z^1))"
    assert g.apply("z^{1}", latex=True) == "\\operatorname{softmax}(\\operatorname{ReLU}(z^{1}))"
    ln = LossNotation.of_name("no-such-loss")
    assert ln.formula == "E = no-such-loss(%(o)s, y)" and ln.fused is None
    assert LossNotation.of_name("bce").fused.symbol == "σ"
    assert (
        fill("a^%(l)s", l=3) == "a^3" and fill("100% sure", l=3) == "100% sure" and fill("% s", l=3) == "% s"
    )
    assert fill("%(q)s unknown", l=1) == "%(q)s unknown" and fill("50%% of a^%(l)s", l=2) == "50% of a^2"


def _ours(registry: dict) -> dict:
    """The entries chainrule itself registers (tests may add their own classes)."""
    return {k: c for k, c in registry.items() if c.__module__.startswith("chainrule.")}


def test_every_registered_class_has_explain_ready_templates():
    """Every layer and loss template chainrule registers formats with the placeholders explain supplies
    (``template % {...}`` works as well as :func:`fill`)."""
    for kind, cls in _ours(LAYERS).items():
        for attr in ("symbol", "symbol_latex", "formula", "formula_latex", "derivative", "derivative_latex"):
            template = getattr(cls, attr)
            assert isinstance(template, str), (kind, attr)
            assert "%(" not in template % {"l": 2, "p": 1}, (kind, attr)
    for name, cls in _ours(LOSSES).items():
        for attr in ("formula", "formula_latex", "delta", "delta_latex"):
            assert getattr(cls, attr) and "%(" not in getattr(cls, attr) % {"o": "a^2"}, (name, attr)


def test_a_tied_layer_is_explained_with_its_own_formula_and_derivative():
    d0 = Dense(4, 3, rng=0, dtype=np.float64)
    net = Sequential([d0, Sigmoid(), TiedDense(d0, tied_to=0)], loss="squared")
    x, y = _data([4, 3, 4], "squared", n=2)
    ex = explain(net, x, y)
    assert ex.ok
    text, md = render_text(ex), render_markdown(ex)
    assert "z^2 = a^1 (W^t)ᵀ + c^2" in text and "backward of dense_tied: ∂E/∂W += δᵀ x" in text
    assert "m ⊙ δ" not in text and "δ^1 = ∂E/∂a^1 ⊙ f'(z^1)" in text
    assert "\\operatorname{dense\\_tied}" in md and "\\mathrel{+}= (\\delta^{2})^{\\top} a^{1}" in md


def test_two_activations_in_one_layer_compose():
    net = Sequential(
        [Dense(3, 4, rng=0, dtype=np.float64), Tanh(), ReLU(), Dense(4, 2, rng=1, dtype=np.float64)],
        loss="softmax-ce",
    )
    ex = explain(net, *_data([3, 4, 2], "softmax-ce", n=2))
    assert ex.ok and ex.layers[0].activation == "tanh+relu"
    assert "a^1 = ReLU(tanh(z^1))" in render_text(ex)
    assert "Jacobian of tanh+relu applied to ∂E/∂a^1" in render_text(ex)
