"""Tests that kill the mutation survivors of benchmarks/mutation_run.py group serialize
(io/serialize.py): model files are built here byte by byte (8-byte length, JSON header,
little-endian payload) and every refusal is checked by its exact message."""

from __future__ import annotations

import json
import math
import struct
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from chainrule.errors import ModelFileError
from chainrule.io import serialize as S
from chainrule.nn.builders import mlp

DENSE = {"type": "dense", "in_features": 3, "out_features": 2}
ARCH = {"input_dim": 3, "loss": "softmax-ce", "layers": [DENSE]}
W = np.arange(6, dtype=np.float32).reshape(3, 2) / 4
B = np.array([0.5, -1.5], dtype=np.float32)


def _bytes(header: Any, payload: bytes = b"") -> bytes:
    h = json.dumps(header).encode()
    return struct.pack("<Q", len(h)) + h + payload


def _model(
    tmp_path: Path,
    arch: Any = ARCH,
    info: Any = None,
    tensors: dict[str, np.ndarray] | None = None,
    meta: dict[str, Any] | None = None,
    entries: dict[str, Any] | None = None,
    name: str = "m.safetensors",
) -> Path:
    tensors = {"0.W": W, "0.b": B} if tensors is None else tensors
    header: dict[str, Any] = {
        "__metadata__": {
            "chainrule_format": "1",
            "architecture": arch if isinstance(arch, str) else json.dumps(arch),
            "info": json.dumps(info or {}),
            **(meta or {}),
        }
    }
    payload = b""
    for key, a in tensors.items():
        data = np.ascontiguousarray(a).astype(a.dtype.newbyteorder("<")).tobytes()
        dt = {"float32": "F32", "float64": "F64"}[a.dtype.name]
        header[key] = {
            "dtype": dt,
            "shape": list(a.shape),
            "data_offsets": [len(payload), len(payload) + len(data)],
        }
        payload += data
    for key, entry in (entries or {}).items():
        if entry is None:
            header.pop(key, None)
        else:
            header[key] = entry
    p = tmp_path / name
    p.write_bytes(_bytes(header, payload))
    return p


def _err(p: Path) -> str:
    with pytest.raises(ModelFileError) as e:
        S.load_with_info(p)
    return str(e.value)


def test_teeth_handmade_file_loads(tmp_path: Path) -> None:
    net, info = S.load_with_info(_model(tmp_path, info={"class_names": ["a", "b"], "n_classes": 2}))
    assert info == {"class_names": ["a", "b"], "n_classes": 2}
    w, b = net.layers[0].W, net.layers[0].b
    np.testing.assert_array_equal(w.value, W)
    np.testing.assert_array_equal(b.value, B)
    assert w.value.dtype == np.float32 and w.grad.shape == (3, 2) and not w.grad.any()
    assert w.grad.dtype == np.float32
    net64 = S.load(_model(tmp_path), np.float64)
    assert net64.layers[0].W.value.dtype == np.float64 and net64.layers[0].W.grad.dtype == np.float64
    f64 = _model(tmp_path, tensors={"0.W": W.astype(np.float64), "0.b": B.astype(np.float64)}, name="d.st")
    assert S.load(f64).layers[0].b.value.dtype == np.float64
    x = np.array([[1.0, 2.0, 3.0]], dtype=np.float32)
    np.testing.assert_allclose(net.forward(x), x @ W + B, rtol=1e-6)


def test_teeth_save_round_trip_and_metadata(tmp_path: Path) -> None:
    net = mlp([3, 4, 2])
    p = tmp_path / "m.safetensors"
    info = {
        "x": float("nan"),
        "y": [1.5, float("inf"), (2, float("-inf"))],
        "z": np.float32(0.25),
        "o": Path("a"),
    }
    S.save(net, p, info)
    raw = p.read_bytes()
    n = struct.unpack("<Q", raw[:8])[0]
    meta = json.loads(raw[8 : 8 + n])["__metadata__"]
    assert meta["chainrule_format"] == "1"
    assert json.loads(meta["architecture"]) == net.config()
    assert json.loads(meta["info"]) == {"x": None, "y": [1.5, None, [2, None]], "z": 0.25, "o": "a"}
    loaded, got = S.load_with_info(p)
    assert got == {"x": None, "y": [1.5, None, [2, None]], "z": 0.25, "o": "a"}
    for (k1, a), (k2, b) in zip(net.named_params(), loaded.named_params(), strict=True):
        assert k1 == k2
        np.testing.assert_array_equal(a.value, b.value)
    S.save(net, p)
    assert S.load_with_info(p)[1] == {}


def test_teeth_save_refuses_non_finite_weights(tmp_path: Path) -> None:
    net = mlp([3, 2])
    net.layers[0].b.value[1] = np.inf
    p = tmp_path / "m.safetensors"
    with pytest.raises(ModelFileError) as e:
        S.save(net, p)
    assert str(e.value) == (
        f"not saving {p}: tensor '0.b' holds NaN or Inf (the run diverged; try a smaller --lr)"
    )
    assert not p.exists()


def test_teeth_read_header(tmp_path: Path) -> None:
    assert _err(tmp_path) == f"{tmp_path}: is a directory, not a model file"
    p = tmp_path / "s.st"
    p.write_bytes(b"\x01\x00\x00\x00\x00\x00\x00")
    assert _err(p) == f"{p}: not a chainrule model (file too short: 7 bytes)"
    p.write_bytes(struct.pack("<Q", 5) + b"{}  ")
    assert _err(p) == (
        f"{p}: not a chainrule model (header length 5 does not fit a 12-byte file; truncated or not safetensors)"
    )
    p.write_bytes(struct.pack("<Q", 4) + b"{}  ")  # exactly fits: parsed, then found to lack metadata
    assert _err(p) == f"{p}: a safetensors file, but not a chainrule model (no chainrule metadata)"
    p.write_bytes(struct.pack("<Q", S.MAX_HEADER_BYTES + 1) + b"{}")
    assert "header length 104857601 does not fit a 10-byte file" in _err(p)
    p.write_bytes(_bytes([1, 2]))
    assert _err(p) == f"{p}: not a chainrule model (header is not an object)"
    p.write_bytes(struct.pack("<Q", 3) + b"{x}")
    assert _err(p) == f"{p}: not a chainrule model (its header is not valid JSON)"
    with pytest.raises(FileNotFoundError) as e:
        S.load(tmp_path / "no.st")
    assert e.value.filename == str(tmp_path / "no.st") and e.value.strerror == "model file not found"
    assert e.value.errno == 2 and not isinstance(e.value, ModelFileError)


def test_teeth_parse_json() -> None:
    ok = "[" * 32 + "]" * 32
    assert S._parse_json(ok, "X") == json.loads(ok)
    assert S._parse_json(b'{"a": [1, 2.5]}', "X") == {"a": [1, 2.5]}
    cases = {
        "[" * 33 + "]" * 33: "X is nested more than 32 levels deep)",
        '{"a":' * 33 + "1" + "}" * 33: "X is nested more than 32 levels deep)",
        "[" * 100_000 + "]" * 100_000: "X is nested too deeply)",
        "[NaN]": "X is not valid JSON: non-finite number NaN)",
        "[-Infinity]": "X is not valid JSON: non-finite number -Infinity)",
        "[1e400]": "X is not valid JSON: number 1e400 is out of range)",
        "[" + "9" * 50 + "e400]": f"X is not valid JSON: number {('9' * 50 + 'e400')[:40]} is out of range)",
        "{": "X is not valid JSON)",
        b"\xff\xfe{": "X is not valid JSON)",
    }
    for raw, msg in cases.items():
        with pytest.raises(ModelFileError) as e:
            S._parse_json(raw, "X")
        assert str(e.value) == msg, raw[:20]


def test_teeth_depth() -> None:
    assert S._depth(1) == 0 and S._depth([]) == 1 and S._depth({}) == 1
    assert S._depth([1, [2, [3]], {"a": {"b": []}}]) == 4
    assert S._depth([[[]]] * 3) == 3
    deep: Any = []
    for _ in range(50):
        deep = [deep]
    assert S._depth(deep) == S.MAX_DEPTH + 1  # counting stops just past the limit


def test_teeth_is_int_and_same() -> None:
    assert S._is_int(3) and S._is_int(np.int64(3)) is False and not S._is_int(True) and not S._is_int(3.0)
    assert S._same(3, 3) and not S._same(3.7, 3) and not S._same(3.0, 3) and S._same(2, 2.0)
    assert not S._same(True, 1) and not S._same(1, True) and S._same(True, True) and not S._same(True, False)
    assert (
        S._same([1, [2, "a"]], (1, (2, "a")))
        and not S._same([1, 2], [1, 2, 3])
        and not S._same([1, 2.5], [1, 2])
    )
    assert S._same({"a": 1}, {"a": 1, "b": 2}) and not S._same({"a": 1, "c": 0}, {"a": 1})
    assert not S._same({"a": 1.5}, {"a": 1}) and not S._same("x", "y") and S._same(None, None)
    assert not S._same([1], {"0": 1}) and not S._same({"a": 1}, [1])


def test_teeth_tensor_table(tmp_path: Path) -> None:
    def bad(entry: Any, key: str = "0.W") -> str:
        return _err(_model(tmp_path, entries={key: entry}))

    p = tmp_path / "m.safetensors"
    w = {"dtype": "F32", "shape": [3, 2], "data_offsets": [0, 24]}
    assert bad({**w, "dtype": "F16"}) == f"{p}: tensor '0.W' has an unsupported dtype (float32/float64 only)"
    assert bad([1]) == f"{p}: tensor '0.W' has an unsupported dtype (float32/float64 only)"
    for shape in ([-1, 2], [3, True], "3x2", [1] * 9, [3.0, 2]):
        assert bad({**w, "shape": shape}) == f"{p}: tensor '0.W' has a malformed shape {str(shape)[:80]}"
    for offsets in ([0], [0, 24, 30], [0.0, 24], [-1, 23], [24, 0], [0, 33], "0-24", [True, 24]):
        assert bad({**w, "data_offsets": offsets}) == f"{p}: tensor '0.W' has data offsets outside the file"
    assert (
        bad({**w, "data_offsets": [0, 20]})
        == f"{p}: tensor '0.W': its byte range does not match shape (3, 2)"
    )
    assert bad({**w, "shape": [2, 2], "data_offsets": [0, 24]}) == (
        f"{p}: tensor '0.W': its byte range does not match shape (2, 2)"
    )
    # the last byte of the payload may be used; shape [1]*8 is a legal rank
    m = _model(tmp_path, entries={"0.b": {"dtype": "F32", "shape": [1] * 7 + [2], "data_offsets": [24, 32]}})
    assert "tensor '0.b' has shape (1, 1, 1, 1, 1, 1, 1, 2), architecture says (2,)" in _err(m)
    mix = _model(tmp_path, tensors={"0.W": W, "0.b": B.astype(np.float64)})
    assert _err(mix) == f"{p}: tensors mix float32 and float64 (a model has one dtype)"


def test_teeth_metadata(tmp_path: Path) -> None:
    p = tmp_path / "m.safetensors"

    def err(**kw: Any) -> str:
        return _err(_model(tmp_path, **kw))

    assert (
        err(entries={"__metadata__": None})
        == f"{p}: a safetensors file, but not a chainrule model (no chainrule metadata)"
    )
    assert (
        err(entries={"__metadata__": ["x"]})
        == f"{p}: a safetensors file, but not a chainrule model (no chainrule metadata)"
    )
    assert err(entries={"__metadata__": {"architecture": "{}"}}) == (
        f"{p}: a safetensors file, but not a chainrule model (no chainrule metadata)"
    )
    assert err(meta={"extra": 1}) == f"{p}: metadata values must be strings"
    assert err(meta={"chainrule_format": "2" * 50}) == (
        f"{p}: model format {'2' * 40!r} is not supported (this chainrule reads '1')"
    )
    assert err(arch="{") == f"{p}: the architecture metadata (it is not valid JSON)"
    assert (
        err(meta={"info": "[NaN]"}) == f"{p}: the info metadata (it is not valid JSON: non-finite number NaN)"
    )
    assert err(entries={"__metadata__": {"chainrule_format": "1", "info": "{}"}}) == (
        f"{p}: the architecture metadata (it is not valid JSON)"
    )
    assert err(arch=[1]) == f"{p}: bad architecture: an object with a 'layers' list is needed"
    assert err(arch={"layers": {}}) == f"{p}: bad architecture: an object with a 'layers' list is needed"
    assert err(meta={"info": "[1]"}) == f"{p}: the info metadata must be a JSON object"
    for names in ("ab", ["a", 1]):
        assert err(info={"class_names": names}) == f"{p}: info 'class_names' must be a list of strings"
    for k in (-1, True, 2.0, "2"):
        assert err(info={"n_classes": k}) == f"{p}: info 'n_classes' must be a non-negative integer"
    assert S.load_with_info(_model(tmp_path, info={"n_classes": 0, "class_names": []}))[1]["n_classes"] == 0
    for v in (0, -3, 2.5, "3", True):
        assert err(arch={**ARCH, "input_dim": v}) == (
            f"{p}: bad architecture: input_dim must be a positive integer, got {v!r}"
        )
    no_info = _model(
        tmp_path, entries={"__metadata__": {"chainrule_format": "1", "architecture": json.dumps(ARCH)}}
    )
    assert S.load_with_info(no_info)[1] == {}


def test_teeth_declared_shapes(tmp_path: Path) -> None:
    p = tmp_path / "m.safetensors"

    def err(layers: list[Any]) -> str:
        return _err(_model(tmp_path, arch={**ARCH, "layers": layers}))

    assert err([DENSE, 3]) == f"{p}: bad architecture: layer 1 must be an object with a 'type'"
    assert err([DENSE, {"type": 7}]) == f"{p}: bad architecture: layer 1 must be an object with a 'type'"
    msg = err([DENSE, {"type": "x" * 60}])
    assert msg.startswith(f"{p}: bad architecture: unknown layer type {'x' * 40!r}; known: ")
    from chainrule.nn.layer import LAYERS

    assert msg.endswith(", ".join(sorted(LAYERS)))
    assert err([{"type": "dense", "in_features": 3}]) == (
        f"{p}: bad architecture: layer 0: layer needs integer in_features, out_features: {{'in_features': 3}}"
    )
    assert err([{**DENSE, "out_features": -2}]) == (
        f"{p}: bad architecture: layer 0: layer sizes must be positive: {{'in_features': 3, 'out_features': -2}}"
    )


def test_teeth_build_checks(tmp_path: Path) -> None:
    p = tmp_path / "m.safetensors"
    huge = {"type": "dense", "in_features": 30000, "out_features": 20000}
    assert _err(_model(tmp_path, arch={"layers": [huge]})) == (
        f"{p}: architecture declares {30000 * 20000 + 20000} parameters, over the limit of 500000000"
    )
    edge = {"type": "dense", "in_features": 499_999_999, "out_features": 1}  # exactly the limit
    assert "weights do not match the architecture (missing ['0.W'])" in _err(
        _model(tmp_path, arch={"layers": [edge]}, tensors={})
    )
    assert _err(_model(tmp_path, tensors={"0.W": W})) == (
        f"{p}: weights do not match the architecture (missing ['0.b'])"
    )
    assert _err(_model(tmp_path, tensors={"0.W": W.T.copy(), "0.b": B})) == (
        f"{p}: tensor '0.W' has shape (2, 3), architecture says (3, 2)"
    )
    bad = {**DENSE, "out_features": 2.7}
    assert _err(_model(tmp_path, arch={"layers": [bad]})) == (
        f"{p}: bad architecture: layer 0 (dense) field 'out_features' = 2.7 is not a valid value (it would be read as 2)"
    )
    one = {"0.W": W[:, :1].copy(), "0.b": B[:1].copy()}
    assert _err(_model(tmp_path, arch={"layers": [{**DENSE, "out_features": True}]}, tensors=one)) == (
        f"{p}: bad architecture: layer 0 (dense) field 'out_features' = True is not a valid value "
        "(it would be read as 1)"
    )
    S.load(_model(tmp_path, arch={"layers": [{**DENSE, "out_features": 1}]}, tensors=one))
    unknown = _model(tmp_path, arch={"layers": [{**DENSE, "colour": "red"}]})
    assert _err(unknown) == (
        f"{p}: bad architecture: layer 0 (dense) field 'colour' = red is not a valid value (it would be read as None)"
    )


def test_teeth_load_checks_tensors(tmp_path: Path) -> None:
    p = tmp_path / "m.safetensors"
    extra = _model(tmp_path, tensors={"0.W": W, "0.b": B, "9.W": B})
    assert _err(extra) == f"{p}: weights do not match the architecture (missing [], unexpected ['9.W'])"
    nan = W.copy()
    nan[2, 1] = np.nan
    assert _err(_model(tmp_path, tensors={"0.W": nan, "0.b": B})) == f"{p}: tensor '0.W' contains NaN or Inf"
    inf = B.copy()
    inf[0] = -np.inf
    assert _err(_model(tmp_path, tensors={"0.W": W, "0.b": inf})) == f"{p}: tensor '0.b' contains NaN or Inf"
    # offsets need not follow the key order: each tensor is read from its own offset
    entries = {
        "0.W": {"dtype": "F32", "shape": [3, 2], "data_offsets": [8, 32]},
        "0.b": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
    }
    header = json.loads(_model(tmp_path).read_bytes()[8:].split(b"}}", 1)[0] + b"}}")
    header.update(entries)
    p.write_bytes(_bytes(header, B.tobytes() + W.tobytes()))
    net = S.load(p)
    np.testing.assert_array_equal(net.layers[0].W.value, W)
    np.testing.assert_array_equal(net.layers[0].b.value, B)
    assert math.isclose(float(net.layers[0].b.value[1]), -1.5)


def test_teeth_without_safetensors_saving_names_the_extra(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import sys

    from chainrule.errors import MissingDependencyError

    monkeypatch.setitem(sys.modules, "safetensors.numpy", None)  # as if the package were not installed
    with pytest.raises(MissingDependencyError) as e:
        S.save(mlp([3, 2]), tmp_path / "m.safetensors")
    assert (
        str(e.value)
        == "saving and loading models needs the optional package 'safetensors': pip install 'chainrule[cli]'"
    )
    assert (e.value.package, e.value.extra) == ("safetensors", "cli")
    assert not (tmp_path / "m.safetensors").exists()


def test_teeth_builder_refusals_are_model_file_errors(tmp_path: Path) -> None:
    from chainrule.errors import ChainruleError
    from chainrule.nn.builders import from_config

    p = tmp_path / "m.safetensors"
    arch = {**ARCH, "loss": "bogus"}
    with pytest.raises(ChainruleError) as built:
        from_config(arch)  # what the builder itself says
    assert _err(_model(tmp_path, arch=arch)) == f"{p}: bad architecture: {built.value}"


def test_teeth_long_field_values_are_cut_at_40_characters(tmp_path: Path) -> None:
    p = tmp_path / "m.safetensors"
    value = "r" * 50
    assert _err(_model(tmp_path, arch={"layers": [{**DENSE, "colour": value}]})) == (
        f"{p}: bad architecture: layer 0 (dense) field 'colour' = {value[:40]} is not a valid value "
        "(it would be read as None)"
    )


def test_teeth_same_with_one_side_a_list() -> None:
    assert not S._same([1, 2], 5) and not S._same(3, [3]) and not S._same("ab", ["a", "b"])


def test_teeth_input_dim_one_and_empty_tensors(tmp_path: Path) -> None:
    one = {"0.W": np.ones((1, 2), np.float32), "0.b": B}
    arch = {"input_dim": 1, "layers": [{"type": "dense", "in_features": 1, "out_features": 2}]}
    assert S.load(_model(tmp_path, arch=arch, tensors=one)).input_dim == 1
    # an empty tensor is well-formed (shape [0], an empty byte range); it is then just not expected
    p = _model(tmp_path, entries={"9.e": {"dtype": "F32", "shape": [0], "data_offsets": [32, 32]}})
    assert _err(p) == f"{p}: weights do not match the architecture (missing [], unexpected ['9.e'])"
    shape = [1] * 30
    p = _model(tmp_path, entries={"0.W": {"dtype": "F32", "shape": shape, "data_offsets": [0, 4]}})
    assert len(str(shape)) > 80
    assert _err(p) == f"{p}: tensor '0.W' has a malformed shape {str(shape)[:80]}"


def test_teeth_unexpected_tensors_are_listed_five_at_most(tmp_path: Path) -> None:
    extra = {f"9.{c}": B for c in "abcdef"}
    p = _model(tmp_path, tensors={"0.W": W, "0.b": B, **extra})
    assert _err(p) == (
        f"{p}: weights do not match the architecture (missing [], unexpected {sorted(extra)[:5]})"
    )
