"""Save/load: round trips, atomic writes, and refusal of corrupt or hostile files."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import numpy as np
import pytest
import safetensors.numpy as stn

from chainrule import mlp
from chainrule.errors import ModelFileError
from chainrule.io.serialize import load, load_with_info, save


@pytest.fixture
def net():
    return mlp([6, 5, 3], "maxout", loss="softmax-ce", seed=2)


def test_round_trip_predicts_identically(tmp_path: Path, net) -> None:
    path = tmp_path / "m.safetensors"
    save(net, path, info={"class_names": ["a", "b", "c"]})
    net2, info = load_with_info(path)
    x = np.random.default_rng(0).standard_normal((20, 6)).astype(np.float32)
    np.testing.assert_array_equal(net.predict_scores(x), net2.predict_scores(x))
    assert info["class_names"] == ["a", "b", "c"]
    assert net2.config() == net.config()
    assert net2.loss.name == "softmax-ce"


def test_every_loss_and_activation_round_trips(tmp_path: Path) -> None:
    for act, loss in [("sigmoid", "squared"), ("leaky_relu", "bce"), ("softplus", "softmax-ce")]:
        n = mlp([3, 4, 2], act, loss=loss, seed=1, dtype=np.float64)
        save(n, tmp_path / "x.safetensors")
        m = load(tmp_path / "x.safetensors")
        assert m.config() == n.config() and m.dtype == np.float64


def test_save_is_atomic(tmp_path: Path, net) -> None:
    path = tmp_path / "m.safetensors"
    save(net, path)
    before = path.read_bytes()
    with pytest.raises(FileNotFoundError):
        save(net, tmp_path / "missing-dir" / "m.safetensors")
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.safetensors"]  # no temp files left


def _write_safetensors(path: Path, tensors: dict, metadata: dict) -> None:
    path.write_bytes(stn.save(tensors, metadata=metadata))


def _meta(net, **over) -> dict:
    m = {"chainrule_format": "1", "architecture": json.dumps(net.config()), "info": "{}"}
    m.update(over)
    return m


def _tensors(net) -> dict:
    return {k: p.value for k, p in net.named_params()}


@pytest.mark.parametrize(
    ("make", "match"),
    [
        (lambda p, n: p.write_bytes(b""), "too short"),
        (lambda p, n: p.write_bytes(b"\x00" * 3), "too short"),
        (lambda p, n: p.write_bytes(struct.pack("<Q", 10**12) + b"{}"), "header length"),
        (lambda p, n: p.write_bytes(struct.pack("<Q", 5) + b"nope!"), "not valid JSON"),
        (lambda p, n: p.write_bytes(b"PK\x03\x04 a zip or a pickle, not a model"), "header length"),
        (lambda p, n: _write_safetensors(p, _tensors(n), {}), "not a chainrule model"),
        (lambda p, n: _write_safetensors(p, _tensors(n), _meta(n, chainrule_format="99")), "format"),
        (lambda p, n: _write_safetensors(p, _tensors(n), _meta(n, architecture="{not json")), "JSON"),
        (
            lambda p, n: _write_safetensors(
                p, _tensors(n), _meta(n, architecture=json.dumps({"layers": [{"type": "os.system"}]}))
            ),
            "unknown layer type",
        ),
        (
            lambda p, n: _write_safetensors(
                p,
                _tensors(n),
                _meta(
                    n,
                    architecture=json.dumps(
                        {"layers": [{"type": "dense", "in_features": 10**6, "out_features": 10**6}]}
                    ),
                ),
            ),
            "over the limit",
        ),
        (
            lambda p, n: _write_safetensors(
                p, {k: v for k, v in _tensors(n).items() if k != "0.W"}, _meta(n)
            ),
            "missing",
        ),
        (
            lambda p, n: _write_safetensors(
                p, {**_tensors(n), "0.W": np.zeros((2, 2), np.float32)}, _meta(n)
            ),
            "shape",
        ),
        (
            lambda p, n: _write_safetensors(
                p, {**_tensors(n), "0.b": np.full(10, np.nan, np.float32)}, _meta(n)
            ),
            "NaN",
        ),
        (
            lambda p, n: _write_safetensors(p, {**_tensors(n), "0.b": np.zeros(10, np.int64)}, _meta(n)),
            "dtype",
        ),
    ],
)
def test_corrupt_or_hostile_files_are_refused(tmp_path: Path, net, make, match: str) -> None:
    path = tmp_path / "bad.safetensors"
    make(path, net)
    with pytest.raises(ModelFileError, match=match):
        load(path)


def test_truncated_file_is_refused(tmp_path: Path, net) -> None:
    path = tmp_path / "m.safetensors"
    save(net, path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) - 17])
    with pytest.raises(ModelFileError):
        load(path)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        load(tmp_path / "nope.safetensors")
