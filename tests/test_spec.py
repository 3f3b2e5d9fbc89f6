"""The layer-spec language (nn/spec.py): grammar, errors that name the word, shapes, limits."""

from __future__ import annotations

import numpy as np
import pytest

from chainrule.errors import ConfigError, ShapeError
from chainrule.jobs.train import sample_shape_for
from chainrule.nn.builders import mlp
from chainrule.nn.layer import LAYERS
from chainrule.nn.spec import build, input_rank, parse, signature, spec_help, word_classes


def test_signature_reads_required_and_optional_arguments() -> None:
    class Fake:
        spec = "conv:OUT:K[:STRIDE[:PAD]]"

    assert signature(Fake) == ("conv", ["out", "k", "stride", "pad"], 2)  # type: ignore[arg-type]
    assert signature(LAYERS["leaky_relu"]) == ("leaky_relu", ["alpha"], 0)
    assert signature(LAYERS["dense"]) == ("dense", ["out"], 1)


def test_every_word_comes_from_the_registry() -> None:
    words = word_classes()
    assert {"dense", "relu", "flatten", "maxout", "softmax"} <= set(words)
    assert all(words[w].spec.startswith(w) for w in words)
    assert "dense_tied" not in words  # a tie needs an index into built layers: not a word
    for w in words:
        assert words[w].spec in spec_help()


def test_parse_positional_and_named_arguments() -> None:
    a, b, c = parse("maxout:16:k=3, relu leaky_relu:0.2")
    assert (a.name, a.args, a.position) == ("maxout", {"out": "16", "k": "3"}, 1)
    assert b.args == {} and c.args == {"alpha": "0.2"}


@pytest.mark.parametrize(
    ("spec", "needle"),
    [
        ("", "at least one layer"),
        ("dense", "missing OUT"),
        ("dense:0", "OUT must be at least 1"),
        ("dense:1.5", "OUT must be an integer"),
        ("dense:3:4", "too many arguments"),
        ("dense:x=3", "no argument 'x'"),
        ("maxout:k=2:8", "positional argument after a named one"),
        ("dense:out=3:out=4", "empty or repeated"),
        ("relu frob:2", "word 2 'frob:2': unknown layer 'frob'"),
        ("Dense:3", "a word is name[:arg...]"),
        ("relu:1", "too many arguments; expected relu"),
        ("leaky_relu:nan", "ALPHA must be finite"),
    ],
)
def test_malformed_specs_name_the_word(spec: str, needle: str) -> None:
    with pytest.raises(ConfigError, match=None) as info:
        build(spec, (4,))
    assert needle in str(info.value)


def test_shapes_are_checked_word_by_word() -> None:
    with pytest.raises(ShapeError, match=r"word 1 'dense:3'.*put 'flatten'"):
        build("dense:3", (1, 4, 4))
    net = build("flatten dense:3", (1, 4, 4))
    assert net.input_shape == (1, 4, 4) and net.output_shape() == (3,)


def test_parameter_limit_is_checked_before_allocating() -> None:
    with pytest.raises(ConfigError, match=r"word 1 'dense:100000'.*over the limit"):
        build("dense:100000 dense:100000", (100000,))
    with pytest.raises(ConfigError, match="over the limit"):
        build("dense:10", (784,), max_params=7849)
    assert len(build("dense:10", (784,), max_params=7850).params) == 2


def test_spec_network_draws_the_same_weights_as_mlp() -> None:
    """Same seed, same generator order, He init before ReLU: the hidden layers equal mlp()'s."""
    a = build("dense:32 relu dense:16 relu dense:10", (20,), seed=3)
    b = mlp([20, 32, 16, 10], "relu", seed=3)
    for la, lb in zip(a.layers[:4], b.layers[:4], strict=True):
        for pa, pb in zip(la.params, lb.params, strict=True):
            np.testing.assert_array_equal(pa.value, pb.value)
    x = np.random.default_rng(0).standard_normal((5, 20)).astype(np.float32)
    assert a.forward(x).shape == (5, 10)


def test_input_rank_and_sample_shape_for() -> None:
    assert input_rank("relu dense:3") == 1
    assert input_rank("relu softmax") is None
    assert sample_shape_for(3, (784,)) == (1, 28, 28)
    assert sample_shape_for(2, (784,)) == (28, 28)
    assert sample_shape_for(1, (1, 28, 28)) == (784,)
    assert sample_shape_for(None, (5,)) == (5,)
    assert sample_shape_for(3, (12,), (3, 2, 2)) == (3, 2, 2)
    with pytest.raises(ShapeError, match="13 values do not factor"):
        sample_shape_for(3, (13,))


def test_flat_rows_feed_an_image_network_without_copy() -> None:
    net = build("flatten dense:2", (1, 3, 3), dtype=np.float64)
    x = np.arange(18, dtype=np.float64).reshape(2, 9)
    assert np.shares_memory(net.as_batch(x), x)
    np.testing.assert_allclose(net.forward(x), net.forward(x.reshape(2, 1, 3, 3)))
    with pytest.raises(ShapeError, match="8 features does not factor"):
        net.forward(np.zeros((2, 8)))
