"""Hostile inputs for every format chainrule reads, and the one-line error contract.

Shared by the hypothesis fuzz suite (``tests/fuzz/test_fuzz.py``), the regression tests
(``tests/test_hostile.py``) and the campaign (``benchmarks/hostile_campaign.py``).

The contract a refused input must meet (:func:`refused`): exit status 1 or 2, exactly one line
on stderr starting ``chainrule: error:``, no traceback anywhere, and no file in the working
directory created, removed or changed.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import io
import json
import os
import struct
import zipfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from chainrule.cli import main

# ----------------------------------------------------------------------------------------------
# running the CLI in-process and checking the contract
# ----------------------------------------------------------------------------------------------


def snapshot(root: Path) -> dict[str, str]:
    """``{relative path: sha256}`` of every file under ``root`` (hidden ones included; a symlink
    by its target)."""
    out = {}
    for dirpath, _, files in os.walk(root):
        for name in files:
            p = Path(dirpath) / name
            try:
                if p.is_symlink():  # never follow: a link may point at /dev/zero
                    out[str(p.relative_to(root))] = "-> " + os.readlink(p)
                else:
                    out[str(p.relative_to(root))] = hashlib.sha256(p.read_bytes()).hexdigest()
            except OSError:
                out[str(p.relative_to(root))] = "<unreadable>"
    return out


def run_cli(argv: Sequence[str], cwd: Path) -> tuple[int, str, str]:
    """``main(argv)`` in ``cwd``; returns ``(status, stdout, stderr)``."""
    out, err = io.StringIO(), io.StringIO()
    old = os.getcwd()
    os.chdir(cwd)
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            rc = main([*argv, "--quiet"] if _takes_quiet(argv) else list(argv))
    except BaseException:  # main() must never raise: record it as a traceback
        import traceback

        return -1, out.getvalue(), err.getvalue() + "Traceback (escaped main):\n" + traceback.format_exc()
    finally:
        os.chdir(old)
    return rc, out.getvalue(), err.getvalue()


def _takes_quiet(argv: Sequence[str]) -> bool:
    return bool(argv) and argv[0] in ("train", "evaluate", "report", "vanishing") and "--quiet" not in argv


class ContractBroken(AssertionError):
    pass


def refused(argv: Sequence[str], cwd: Path) -> str:
    """Run ``argv`` in ``cwd`` and check the refusal contract; returns the error line."""
    before = snapshot(cwd)
    rc, out, err = run_cli(argv, cwd)
    after = snapshot(cwd)
    lines = err.strip().splitlines()
    problems = []
    if rc not in (1, 2):
        problems.append(f"exit status {rc}")
    if len(lines) != 1 or not lines[0].startswith("chainrule: error:"):
        problems.append(f"stderr is not one 'chainrule: error:' line: {err[-500:]!r}")
    if "Traceback" in err or "Traceback" in out:
        problems.append("a traceback was printed")
    if before != after:
        changed = sorted(set(before.items()) ^ set(after.items()))
        problems.append(f"files created or changed: {changed[:4]}")
    if problems:
        raise ContractBroken(f"{' '.join(argv)}: " + "; ".join(problems))
    return lines[0]


# ----------------------------------------------------------------------------------------------
# model files
# ----------------------------------------------------------------------------------------------

ARCH: dict[str, Any] = {
    "input_dim": 4,
    "loss": "softmax-ce",
    "layers": [
        {"type": "dense", "in_features": 4, "out_features": 3},
        {"type": "leaky_relu", "alpha": 0.01},
        {"type": "dense", "in_features": 3, "out_features": 2},
    ],
}


def model_tensors(seed: int = 0, dtype: Any = np.float32) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {
        "0.W": rng.standard_normal((4, 3)).astype(dtype),
        "0.b": np.zeros(3, dtype),
        "2.W": rng.standard_normal((3, 2)).astype(dtype),
        "2.b": np.zeros(2, dtype),
    }


def model_metadata(arch: Any = None, info: Any = None, **extra: Any) -> dict[str, Any]:
    meta = {
        "chainrule_format": "1",
        "architecture": json.dumps(ARCH if arch is None else arch),
        "info": json.dumps({"class_names": ["no", "yes"], "n_classes": 2} if info is None else info),
    }
    meta.update(extra)
    return meta


def safetensors_bytes(tensors: dict[str, np.ndarray], metadata: dict[str, Any] | None) -> bytes:
    """A safetensors file written by hand (so hostile headers can be anything)."""
    header: dict[str, Any] = {}
    payload = b""
    codes = {"float32": "F32", "float64": "F64", "int64": "I64", "float16": "F16", "int32": "I32"}
    for key, arr in tensors.items():
        data = np.ascontiguousarray(arr).tobytes()
        header[key] = {
            "dtype": codes.get(arr.dtype.name, "F32"),
            "shape": list(arr.shape),
            "data_offsets": [len(payload), len(payload) + len(data)],
        }
        payload += data
    if metadata is not None:
        header["__metadata__"] = metadata
    return raw_model(header, payload)


def raw_model(header: Any, payload: bytes = b"") -> bytes:
    text = header if isinstance(header, str | bytes) else json.dumps(header)
    raw = text.encode() if isinstance(text, str) else text
    return struct.pack("<Q", len(raw)) + raw + payload


def valid_model() -> bytes:
    return safetensors_bytes(model_tensors(), model_metadata())


def valid_header() -> tuple[dict[str, Any], bytes]:
    """The parsed header and the payload of :func:`valid_model` (to mutate)."""
    raw = valid_model()
    n = struct.unpack("<Q", raw[:8])[0]
    return json.loads(raw[8 : 8 + n]), raw[8 + n :]


# ----------------------------------------------------------------------------------------------
# CSV
# ----------------------------------------------------------------------------------------------


def csv_rows(n: int = 30, seed: int = 0, label: bool = True, header: bool = True) -> list[list[str]]:
    rng = np.random.default_rng(seed)
    rows = [["a", "b", "c", "d", *(["label"] if label else [])]] if header else []
    for i in range(n):
        cells = [f"{v:.3f}" for v in rng.standard_normal(4)]
        rows.append(cells + ([str(i % 3)] if label else []))
    return rows


def csv_text(rows: list[list[str]]) -> str:
    return "".join(",".join(r) + "\n" for r in rows)


# ----------------------------------------------------------------------------------------------
# IDX / MNIST directories
# ----------------------------------------------------------------------------------------------

MNIST_NAMES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}


def idx_bytes(arr: np.ndarray, code: int = 8) -> bytes:
    return bytes([0, 0, code, arr.ndim]) + struct.pack(f">{arr.ndim}I", *arr.shape) + arr.tobytes()


def mnist_files(n_train: int = 20, n_test: int = 10, seed: int = 0) -> dict[str, bytes]:
    rng = np.random.default_rng(seed)
    return {
        "train_images": idx_bytes(rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8)),
        "train_labels": idx_bytes((np.arange(n_train) % 10).astype(np.uint8)),
        "test_images": idx_bytes(rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8)),
        "test_labels": idx_bytes((np.arange(n_test) % 10).astype(np.uint8)),
    }


def write_mnist(d: Path, files: dict[str, bytes], gz: bool = False) -> Path:
    d.mkdir(parents=True, exist_ok=True)
    for key, data in files.items():
        name = MNIST_NAMES[key] + (".gz" if gz else "")
        (d / name).write_bytes(gzip.compress(data, mtime=0) if gz else data)
    return d


# ----------------------------------------------------------------------------------------------
# npy / npz
# ----------------------------------------------------------------------------------------------


def npy_bytes(arr: np.ndarray, allow_pickle: bool = False) -> bytes:
    buf = io.BytesIO()
    np.save(buf, arr, allow_pickle=allow_pickle)
    return buf.getvalue()


def npz_bytes(members: dict[str, bytes], compress: bool = False) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buf.getvalue()


def npz_arrays(**arrays: np.ndarray) -> bytes:
    return npz_bytes({f"{k}.npy": npy_bytes(v, allow_pickle=v.dtype.hasobject) for k, v in arrays.items()})


def valid_xy(n: int = 30, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, 4)).astype(np.float32), np.arange(n) % 3


# ----------------------------------------------------------------------------------------------
# run records
# ----------------------------------------------------------------------------------------------


_RECORD: dict[str, Any] = {}


def valid_record() -> dict[str, Any]:
    """A real record from ``train --log`` on a tiny CSV (made once per process, in a temp dir)."""
    if not _RECORD:
        import tempfile

        with tempfile.TemporaryDirectory() as tmp:
            d = Path(tmp)
            (d / "t.csv").write_text(csv_text(csv_rows()))
            rc, _, err = run_cli(
                ["train", "--data", "t.csv", "--epochs", "2", "--layers", "4,3,3", "--log", "r.json"], d
            )
            assert rc == 0, err
            _RECORD.update(json.loads((d / "r.json").read_text()))
    return json.loads(json.dumps(_RECORD))


Maker = Callable[[Path], list[str]]

# ----------------------------------------------------------------------------------------------
# mutations: each writes a hostile input into ``d`` and returns the command that reads it. Every
# mutation is invalid by construction (the contract must hold for every draw). ``rng`` picks
# positions and sizes; ``value`` is a hostile JSON value (hypothesis draws it in the fuzz suite,
# the campaign takes it from HOSTILE_VALUES).
# ----------------------------------------------------------------------------------------------

HOSTILE_VALUES: list[Any] = [
    None,
    True,
    False,
    -1,
    0,
    -(2**63),
    2**64,
    10**30,
    3.7,
    -0.5,
    1e300,
    "",
    "4",
    "x" * 300,
    [],
    [4],
    [[[]]],
    {},
    {"a": 1},
    {"type": "dense"},
]
CASES: dict[str, dict[str, Callable[[Path, np.random.Generator, Any], list[str]]]] = {}


def case(fmt: str, kind: str) -> Callable[[Callable[..., list[str]]], Callable[..., list[str]]]:
    def deco(fn: Callable[..., list[str]]) -> Callable[..., list[str]]:
        CASES.setdefault(fmt, {})[kind] = fn
        return fn

    return deco


def _model_cmd(d: Path, rng: np.random.Generator, model: bytes) -> list[str]:
    (d / "m.safetensors").write_bytes(model)
    (d / "x.csv").write_text(csv_text(csv_rows(5, label=False)))
    (d / "t.csv").write_text(
        csv_text(csv_rows(12)[:1] + [[*r[:4], str(int(r[4]) % 2)] for r in csv_rows(12)[1:]])
    )
    which = int(rng.integers(3))
    if which == 0:
        return ["predict", "--model", "m.safetensors", "--input", "x.csv"]
    if which == 1:
        return ["evaluate", "--model", "m.safetensors", "--data", "t.csv"]
    return ["gradcheck", "--model", "m.safetensors"]


def _is_same(a: Any, b: Any) -> bool:
    return type(a) is type(b) and json.dumps(a) == json.dumps(b)


@case("model", "layer field replaced")
def _m_field(d: Path, rng: np.random.Generator, value: Any) -> list[str]:
    arch = json.loads(json.dumps(ARCH))
    i = int(rng.integers(3))
    keys = [k for k in arch["layers"][i] if k != "type" or i != 1]
    key = keys[int(rng.integers(len(keys)))]
    if key == "alpha" and isinstance(value, int | float) and not isinstance(value, bool):
        value = str(value)  # any number is a valid alpha; its string is not
    if _is_same(value, arch["layers"][i][key]):
        value = [value]
    arch["layers"][i][key] = value
    return _model_cmd(d, rng, safetensors_bytes(model_tensors(), model_metadata(arch)))


@case("model", "layer key added")
def _m_key(d: Path, rng: np.random.Generator, value: Any) -> list[str]:
    arch = json.loads(json.dumps(ARCH))
    arch["layers"][int(rng.integers(3))][f"extra{int(rng.integers(99))}"] = value
    return _model_cmd(d, rng, safetensors_bytes(model_tensors(), model_metadata(arch)))


@case("model", "architecture field replaced")
def _m_top(d: Path, rng: np.random.Generator, value: Any) -> list[str]:
    arch = json.loads(json.dumps(ARCH))
    key = ["input_dim", "layers", "loss"][int(rng.integers(3))]
    if key == "loss" and isinstance(value, str):
        value = "no-such-loss-" + value
    if key == "input_dim" and isinstance(value, int) and not isinstance(value, bool) and value > 0:
        value = -value
    if key == "layers" and isinstance(value, list):
        value = [value]
    arch[key] = value
    return _model_cmd(d, rng, safetensors_bytes(model_tensors(), model_metadata(arch)))


@case("model", "info field replaced")
def _m_info(d: Path, rng: np.random.Generator, value: Any) -> list[str]:
    info: dict[str, Any] = {"class_names": ["no", "yes"], "n_classes": 2}
    if rng.integers(2):
        names_ok = value is None or (isinstance(value, list) and all(isinstance(v, str) for v in value))
        info["class_names"] = [1] if names_ok else value
    else:
        ok = isinstance(value, int) and not isinstance(value, bool) and value >= 0
        info["n_classes"] = -1 if ok or value is None else value
    return _model_cmd(d, rng, safetensors_bytes(model_tensors(), model_metadata(info=info)))


@case("model", "metadata replaced")
def _m_meta(d: Path, rng: np.random.Generator, value: Any) -> list[str]:
    meta = model_metadata()
    key = ["chainrule_format", "architecture", "info"][int(rng.integers(3))]
    if isinstance(value, str):
        meta[key] = "9" + value if key == "chainrule_format" else value + "{"
    else:
        meta[key] = value if value is not None else 1
    return _model_cmd(d, rng, safetensors_bytes(model_tensors(), meta))


@case("model", "tensor entry replaced")
def _m_entry(d: Path, rng: np.random.Generator, value: Any) -> list[str]:
    header, payload = valid_header()
    key = sorted(k for k in header if k != "__metadata__")[int(rng.integers(4))]
    field = ["dtype", "shape", "data_offsets"][int(rng.integers(3))]
    entry = header[key]
    if field == "dtype":
        entry["dtype"] = value if value not in ("F32",) else "I64"
        if entry["dtype"] == "F64":
            entry["dtype"] = "F16"
    elif field == "shape":
        entry["shape"] = value if not _is_same(value, entry["shape"]) else [*entry["shape"], 2]
        if isinstance(value, list) and value and all(isinstance(v, int) for v in value):
            entry["shape"] = [*value, 7]  # never the declared shape
    else:
        b, e = entry["data_offsets"]
        entry["data_offsets"] = [
            [b, e + 1 + int(rng.integers(9))],
            [b + 1, e],
            [e, b - 1],
            value,
            [b, 10**12],
        ][int(rng.integers(5))]
        if _is_same(entry["data_offsets"], [b, e]):
            entry["data_offsets"] = None
    return _model_cmd(d, rng, raw_model(header, payload))


@case("model", "tensor missing or extra")
def _m_tensors(d: Path, rng: np.random.Generator, value: Any) -> list[str]:
    t = model_tensors()
    if rng.integers(2):
        del t[sorted(t)[int(rng.integers(4))]]
    else:
        t[f"{int(rng.integers(9))}.Z"] = np.zeros(int(rng.integers(1, 5)), np.float32)
    return _model_cmd(d, rng, safetensors_bytes(t, model_metadata()))


@case("model", "non-finite weight")
def _m_nan(d: Path, rng: np.random.Generator, value: Any) -> list[str]:
    t = model_tensors()
    key = sorted(t)[int(rng.integers(4))]
    t[key].flat[int(rng.integers(t[key].size))] = [np.nan, np.inf, -np.inf][int(rng.integers(3))]
    return _model_cmd(d, rng, safetensors_bytes(t, model_metadata()))


@case("model", "mixed dtypes")
def _m_mixed(d: Path, rng: np.random.Generator, value: Any) -> list[str]:
    t = model_tensors()
    key = sorted(t)[int(rng.integers(4))]
    t[key] = t[key].astype(np.float64)
    return _model_cmd(d, rng, safetensors_bytes(t, model_metadata()))


@case("model", "deep nesting")
def _m_deep(d: Path, rng: np.random.Generator, value: Any) -> list[str]:
    depth = int(rng.integers(33, 50_000))
    where = int(rng.integers(3))
    nested = "[" * depth + "]" * depth
    if where == 0:  # the header itself
        return _model_cmd(d, rng, raw_model('{"a":' + nested + "}"))
    meta = model_metadata()
    if where == 1:
        meta["architecture"] = '{"layers": [], "x": ' + nested + "}"
    else:
        meta["info"] = '{"x": ' + nested + "}"
    return _model_cmd(d, rng, safetensors_bytes(model_tensors(), meta))


@case("model", "huge declared layer")
def _m_huge(d: Path, rng: np.random.Generator, value: Any) -> list[str]:
    n = int(10 ** rng.uniform(3.5, 12))
    arch = {"layers": [{"type": "dense", "in_features": n, "out_features": n}]}
    return _model_cmd(d, rng, safetensors_bytes({}, model_metadata(arch)))


@case("model", "non-finite or overflowing number")
def _m_inf(d: Path, rng: np.random.Generator, value: Any) -> list[str]:
    meta = model_metadata()
    token = ["1e400", "-1e400", "NaN", "Infinity", "-Infinity"][int(rng.integers(5))]
    target = ["alpha", "in_features", "input_dim"][int(rng.integers(3))]
    text = meta["architecture"]
    if target == "alpha":
        text = text.replace('"alpha": 0.01', f'"alpha": {token}')
    elif target == "in_features":
        text = text.replace('"in_features": 4', f'"in_features": {token}', 1)
    else:
        text = text.replace('"input_dim": 4', f'"input_dim": {token}')
    meta["architecture"] = text
    return _model_cmd(d, rng, safetensors_bytes(model_tensors(), meta))


@case("model", "truncated")
def _m_trunc(d: Path, rng: np.random.Generator, value: Any) -> list[str]:
    raw = valid_model()
    return _model_cmd(d, rng, raw[: int(rng.integers(len(raw)))])


@case("model", "garbage bytes")
def _m_garbage(d: Path, rng: np.random.Generator, value: Any) -> list[str]:
    raw = rng.integers(0, 256, int(rng.integers(0, 4096)), dtype=np.uint8).tobytes()
    return _model_cmd(d, rng, raw)


@case("model", "header not an object")
def _m_notobj(d: Path, rng: np.random.Generator, value: Any) -> list[str]:
    v = value if not isinstance(value, dict) else [value]
    return _model_cmd(d, rng, raw_model(json.dumps(v)))


# --- CSV -------------------------------------------------------------------------------------


def _csv_cmd(d: Path, rng: np.random.Generator, data: bytes | str, predict: bool) -> list[str]:
    raw = data.encode() if isinstance(data, str) else data
    if predict:
        (d / "m.safetensors").write_bytes(valid_model())
        (d / "x.csv").write_bytes(raw)
        return ["predict", "--model", "m.safetensors", "--input", "x.csv"]
    (d / "t.csv").write_bytes(raw)
    return ["train", "--data", "t.csv", "--epochs", "1", "--save", "out.safetensors"]


def _not_number(text: str) -> str:
    cell = "".join(ch for ch in text if ch not in ',"\r\n\x00').strip() or "x"
    try:
        float(cell)
    except ValueError:
        return cell
    return cell + "x"


def _csv_variant(kind: str) -> Callable[..., list[str]]:
    def make(d: Path, rng: np.random.Generator, value: Any, predict: bool) -> list[str]:
        rows = csv_rows(int(rng.integers(8, 40)), seed=int(rng.integers(99)), label=not predict)
        i = int(rng.integers(1, len(rows)))
        j = int(rng.integers(4))
        if kind == "non-numeric feature":
            rows[i][j] = _not_number(str(value))
        elif kind == "empty feature":
            rows[i][j] = ""
        elif kind == "ragged row":
            rows[i] = rows[i][:-1] if rng.integers(2) else [*rows[i], "1"]
        elif kind == "non-finite feature":
            rows[i][j] = ["nan", "inf", "-inf", "NaN", "1e999"][int(rng.integers(5))]
        elif kind == "float32 overflow":
            rows[i][j] = f"{rng.uniform(3.5, 9):.2f}e{int(rng.integers(38, 300))}"
        elif kind == "bad label" and not predict:
            rows[i][4] = [
                "-1",
                "1.5",
                "2.0001",
                "nan",
                "inf",
                str(10**9),
                str(int(rng.integers(1_001, 10**7))),
            ][int(rng.integers(7))]
        elif kind == "one class" and not predict:
            for r in rows[1:]:
                r[4] = "0"
        elif kind == "huge field":
            rows[i][j] = '"' + "9" * int(rng.integers(131_073, 300_000)) + '"'
        elif kind == "long line":
            return _csv_cmd(d, rng, csv_text(rows[:i]) + "1," * int(rng.integers(600_000, 900_000)), predict)
        elif kind == "invalid UTF-8":
            text = csv_text(rows).encode()
            k = int(rng.integers(len(text)))
            return _csv_cmd(
                d, rng, text[:k] + bytes([int(rng.integers(0x80, 0x100))]) + b"\xff" + text[k:], predict
            )
        elif kind == "empty":
            return _csv_cmd(d, rng, ["", "\n\n", "a,b,c,d\n", " , ,\n"][int(rng.integers(4))], predict)
        elif kind == "binary":
            return _csv_cmd(
                d, rng, b"\xff\xfe" + rng.integers(0, 256, 2000, dtype=np.uint8).tobytes(), predict
            )
        elif kind in ("bad label", "one class"):  # predict has no labels: a text cell instead
            rows[i][j] = "label?"
        return _csv_cmd(d, rng, csv_text(rows), predict)

    return make


CSV_KINDS = [
    "non-numeric feature",
    "empty feature",
    "ragged row",
    "non-finite feature",
    "float32 overflow",
    "bad label",
    "one class",
    "huge field",
    "long line",
    "invalid UTF-8",
    "empty",
    "binary",
]
for _kind in CSV_KINDS:
    _make = _csv_variant(_kind)
    case("csv", f"train: {_kind}")(lambda d, rng, value, _m=_make: _m(d, rng, value, False))
    case("csv", f"predict: {_kind}")(lambda d, rng, value, _m=_make: _m(d, rng, value, True))


# --- IDX -------------------------------------------------------------------------------------


def _idx_mutant(kind: str, data: bytes, rng: np.random.Generator, is_labels: bool) -> bytes:
    ndim = data[3]
    head = 4 + 4 * ndim
    if kind == "bad magic":
        b = bytearray(data)
        pos = int(rng.integers(2))
        b[pos] = int(rng.integers(1, 256))
        return bytes(b)
    if kind == "type code":
        return data[:2] + bytes([[0x09, 0x0B, 0x0C, 0x0D, 0x0E, 0x00, 0xFF][int(rng.integers(7))]]) + data[3:]
    if kind == "rank":
        return data[:3] + bytes([[0, 5, 9, 255, 2 if not is_labels else 3][int(rng.integers(5))]]) + data[4:]
    if kind == "truncated header":
        return data[: int(rng.integers(head))]
    if kind == "truncated payload":
        return data[: len(data) - int(rng.integers(1, len(data) - head + 1))]
    if kind == "trailing bytes":
        return data + bytes(int(rng.integers(1, 5000)))
    if kind == "count changed":
        n = struct.unpack(">I", data[4:8])[0]
        new = [0, n + 1 + int(rng.integers(100)), max(n - 1, 1) if n > 1 else 0, 2**31, 2**32 - 1][
            int(rng.integers(5))
        ]
        return data[:4] + struct.pack(">I", new) + data[8:]
    if kind == "label out of range":
        if not is_labels:
            return data[:4] + struct.pack(">I", 0) + data[8:]
        b = bytearray(data)
        b[head + int(rng.integers(len(data) - head))] = int(rng.integers(10, 256))
        return bytes(b)
    raise KeyError(kind)


IDX_KINDS = [
    "bad magic",
    "type code",
    "rank",
    "truncated header",
    "truncated payload",
    "trailing bytes",
    "count changed",
    "label out of range",
    "corrupt gzip",
    "truncated gzip",
    "gzip bomb",
]


def _idx_variant(kind: str) -> Callable[..., list[str]]:
    def make(d: Path, rng: np.random.Generator, value: Any) -> list[str]:
        files = mnist_files(int(rng.integers(10, 30)), int(rng.integers(5, 15)), seed=int(rng.integers(99)))
        key = sorted(files)[int(rng.integers(4))]
        gz = kind in ("corrupt gzip", "truncated gzip", "gzip bomb") or bool(rng.integers(2))
        if kind in ("corrupt gzip", "truncated gzip", "gzip bomb"):
            write_mnist(d / "mn", files, gz=True)
            p = d / "mn" / (MNIST_NAMES[key] + ".gz")
            raw = p.read_bytes()
            if kind == "corrupt gzip":
                b = bytearray(raw)
                for _ in range(3):
                    b[int(rng.integers(10, len(b) - 8))] ^= 0xFF
                raw = bytes(b)
            elif kind == "truncated gzip":
                raw = raw[: int(rng.integers(2, len(raw) - 1))]
            else:  # a tiny declared payload followed by megabytes of zeros
                raw = gzip.compress(files[key] + bytes(int(rng.integers(1, 16)) << 20), mtime=0)
            p.write_bytes(raw)
        else:
            files[key] = _idx_mutant(kind, files[key], rng, "labels" in key)
            write_mnist(d / "mn", files, gz=gz)
        return ["train", "--data", "mn", "--epochs", "1", "--layers", "784,5,10"]

    return make


for _kind in IDX_KINDS:
    case("idx", _kind)(_idx_variant(_kind))


# --- npy / npz -------------------------------------------------------------------------------


def _np_cmd(d: Path, name: str, data: bytes, predict: bool = False) -> list[str]:
    (d / name).write_bytes(data)
    if predict:
        (d / "m.safetensors").write_bytes(valid_model())
        return ["predict", "--model", "m.safetensors", "--input", name]
    return ["train", "--data", name, "--epochs", "1", "--save", "out.safetensors"]


def _npy_header_lie(arr: np.ndarray, rng: np.random.Generator) -> bytes:
    raw = npy_bytes(arr)
    shape = str(arr.shape).encode()
    bigger = str((arr.shape[0] * int(rng.integers(2, 10**6)), *arr.shape[1:])).encode()
    return raw.replace(shape, bigger.ljust(len(shape)) if len(bigger) <= len(shape) else bigger, 1)


NP_KINDS: dict[str, Callable[[Path, np.random.Generator, Any], list[str]]] = {}


def _np(kind: str) -> Callable[[Callable[..., list[str]]], Callable[..., list[str]]]:
    def deco(fn: Callable[..., list[str]]) -> Callable[..., list[str]]:
        case("npy/npz", kind)(fn)
        return fn

    return deco


@_np("garbage .npy")
def _n_garbage(d: Path, rng: np.random.Generator, value: Any) -> list[str]:
    raw = rng.integers(0, 256, int(rng.integers(0, 3000)), dtype=np.uint8).tobytes()
    return _np_cmd(d, "f.npy", raw, predict=bool(rng.integers(2)))


@_np("garbage .npz")
def _n_garbage_z(d: Path, rng: np.random.Generator, value: Any) -> list[str]:
    raw = [b"PK\x03\x04", b"", b"\x93NUMPY"][int(rng.integers(3))] + rng.integers(
        0, 256, 500, dtype=np.uint8
    ).tobytes()
    return _np_cmd(d, "f.npz", raw)


@_np("pickle")
def _n_pickle(d: Path, rng: np.random.Generator, value: Any) -> list[str]:
    import pickle

    raw = pickle.dumps({"x": value}, protocol=int(rng.integers(2, 6)))
    return _np_cmd(d, ["f.npy", "f.npz"][int(rng.integers(2))], raw, predict=False)


@_np("object array")
def _n_object(d: Path, rng: np.random.Generator, value: Any) -> list[str]:
    arr = np.array([[1, value], [2, "x"]], dtype=object)
    if rng.integers(2):
        return _np_cmd(d, "f.npy", npy_bytes(arr, allow_pickle=True), predict=bool(rng.integers(2)))
    _x, y = valid_xy()
    return _np_cmd(d, "f.npz", npz_arrays(x=arr, y=y))


@_np("npz member not .npy")
def _n_member(d: Path, rng: np.random.Generator, value: Any) -> list[str]:
    x, y = valid_xy()
    members = {
        "x.npy": npy_bytes(x),
        "y.npy": npy_bytes(y),
        f"note{int(rng.integers(9))}.txt": str(value).encode(),
    }
    return _np_cmd(d, "f.npz", npz_bytes(members, compress=bool(rng.integers(2))))


@_np("npz wrong keys")
def _n_keys(d: Path, rng: np.random.Generator, value: Any) -> list[str]:
    x, y = valid_xy()
    names = [["a", "b"], ["x"], ["y"], ["x_train", "y_train"], ["X", "Y"]][int(rng.integers(5))]
    return _np_cmd(d, "f.npz", npz_arrays(**{n: (x if i == 0 else y) for i, n in enumerate(names)}))


@_np("npz length mismatch")
def _n_len(d: Path, rng: np.random.Generator, value: Any) -> list[str]:
    x, y = valid_xy()
    return _np_cmd(d, "f.npz", npz_arrays(x=x, y=y[: -int(rng.integers(1, 10))]))


@_np("non-finite features")
def _n_nan(d: Path, rng: np.random.Generator, value: Any) -> list[str]:
    x, y = valid_xy()
    x.flat[int(rng.integers(x.size))] = [np.nan, np.inf, -np.inf][int(rng.integers(3))]
    if rng.integers(2):
        return _np_cmd(d, "f.npz", npz_arrays(x=x, y=y))
    return _np_cmd(d, "f.npy", npy_bytes(x), predict=True)


@_np("bad labels")
def _n_labels(d: Path, rng: np.random.Generator, value: Any) -> list[str]:
    x, y = valid_xy()
    yy = y.astype(np.float64)
    yy[int(rng.integers(len(yy)))] = [-1, 0.5, np.nan, 10**9, 2_000][int(rng.integers(5))]
    # -1 and 0.5 are a fine regression target (issue 11's --task auto); as class labels they are bad
    return [*_np_cmd(d, "f.npz", npz_arrays(x=x, y=yy)), "--task", "classify"]


@_np("wrong dtype")
def _n_dtype(d: Path, rng: np.random.Generator, value: Any) -> list[str]:
    arr = np.array([["a", "b"], ["c", "d"]]) if rng.integers(2) else np.zeros((3, 4), dtype=complex)
    if rng.integers(2):
        return _np_cmd(d, "f.npy", npy_bytes(arr), predict=True)
    return _np_cmd(d, "f.npz", npz_arrays(x=arr, y=np.arange(len(arr))))


@_np("wrong rank or empty")
def _n_rank(d: Path, rng: np.random.Generator, value: Any) -> list[str]:
    arr = [
        np.zeros((0, 4), np.float32),
        np.zeros((2, 3, 4), np.float32),
        np.zeros((5, 0), np.float32),
        np.float32(3.0),
    ]
    a = np.asarray(arr[int(rng.integers(4))])
    return _np_cmd(d, "f.npy", npy_bytes(a), predict=True)


@_np("npy header lies")
def _n_lie(d: Path, rng: np.random.Generator, value: Any) -> list[str]:
    x, _ = valid_xy()
    if rng.integers(2):
        return _np_cmd(d, "f.npy", _npy_header_lie(x, rng), predict=True)
    y = (np.arange(len(x)) % 3).astype(np.int64)
    return _np_cmd(d, "f.npz", npz_bytes({"x.npy": _npy_header_lie(x, rng), "y.npy": npy_bytes(y)}))


@_np("npz without features given to predict")
def _n_predict_npz(d: Path, rng: np.random.Generator, value: Any) -> list[str]:
    x, y = valid_xy()  # predict reads an .npz's 'x' (issue 11); several arrays and no 'x' is an error
    return _np_cmd(d, "f.npz", npz_arrays(a=x, b=y), predict=True)


# --- run records -----------------------------------------------------------------------------


def _rec_cmd(d: Path, text: str | bytes) -> list[str]:
    (d / "r.json").write_bytes(text.encode() if isinstance(text, str) else text)
    return ["report", "r.json", "--out", "r.html"]


@case("run record", "key missing")
def _r_missing(d: Path, rng: np.random.Generator, value: Any) -> list[str]:
    rec = valid_record()
    del rec[sorted(rec)[int(rng.integers(len(rec)))]]
    return _rec_cmd(d, json.dumps(rec))


@case("run record", "key of the wrong type")
def _r_type(d: Path, rng: np.random.Generator, value: Any) -> list[str]:
    rec = valid_record()
    key = ["config", "history", "chainrule_version", "evaluation", "gradient_flow"][int(rng.integers(5))]
    bad = {
        "config": lambda v: v if not isinstance(v, dict) else [v],
        "history": lambda v: v if not isinstance(v, dict) else [v],
        "chainrule_version": lambda v: v if not isinstance(v, str) else [v],
        "evaluation": lambda v: v if not isinstance(v, dict) and v is not None else 7,
        "gradient_flow": lambda v: v if not isinstance(v, dict) and v is not None else "flow",
    }
    rec[key] = bad[key](value)
    return _rec_cmd(d, json.dumps(rec))


@case("run record", "history field of the wrong type")
def _r_hist(d: Path, rng: np.random.Generator, value: Any) -> list[str]:
    rec = valid_record()
    key = sorted(rec["history"])[int(rng.integers(len(rec["history"])))]
    rec["history"][key] = {"epochs": "many", "stopped_early": "yes", "best_epoch": "first", "runner": 5}.get(
        key, "x"
    )
    if key == "epochs" and rng.integers(2):
        rec["history"]["epochs"] = [value if not isinstance(value, dict) else 1]
    return _rec_cmd(d, json.dumps(rec))


@case("run record", "deep nesting")
def _r_deep(d: Path, rng: np.random.Generator, value: Any) -> list[str]:
    depth = int(rng.integers(65, 50_000))
    text = json.dumps(valid_record()).replace(
        '"config": {', '"config": {"deep": ' + "[" * depth + "]" * depth + ", ", 1
    )
    return _rec_cmd(d, text)


@case("run record", "not JSON")
def _r_text(d: Path, rng: np.random.Generator, value: Any) -> list[str]:
    text = json.dumps(valid_record())
    choice = int(rng.integers(4))
    if choice == 0:
        return _rec_cmd(d, text[: int(rng.integers(len(text) - 1))])
    if choice == 1:
        return _rec_cmd(d, text.encode()[:50] + b"\xff\xfe" + text.encode()[50:])
    if choice == 2:
        return _rec_cmd(d, rng.integers(0, 256, 1000, dtype=np.uint8).tobytes())
    return _rec_cmd(d, json.dumps(value if not isinstance(value, dict) else [value]))
