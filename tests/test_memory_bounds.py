"""Peak-memory bounds of hostile and large inputs, measured in a fresh subprocess (issue 13).

- loading any model file: peak RSS <= 64 MB + 2x the file's size (hostile headers included);
- decompressing an IDX file: RSS grows by at most its declared payload + 1 MB (gzip bombs too);
- ``predict`` on a 1M-row CSV: peak RSS <= 200 MB for the whole process;
- ``load_csv`` (training input) on a 150k-row CSV: peak RSS <= the interpreter after its imports +
  2.5x the float32 features + 24 MB (one block of cells as strings).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent / "fuzz"))

import hostile as h

REPO = Path(__file__).resolve().parents[1]
MB = 1 << 20


HWM = """
def hwm():
    # the peak RSS of this process image: VmHWM is per address space, so unlike ru_maxrss it
    # does not inherit the forking parent's peak across exec
    with open("/proc/self/status") as fh:
        return next(int(line.split()[1]) * 1024 for line in fh if line.startswith("VmHWM:"))
"""


def _python(code: str, cwd: Path) -> dict:
    """Run ``code`` in a fresh interpreter; it prints one JSON object as its last line."""
    env = {**os.environ, "PYTHONPATH": str(REPO / "src"), "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}
    res = subprocess.run(
        [sys.executable, "-c", HWM + textwrap.dedent(code)],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert res.returncode == 0, res.stderr[-2000:]
    return json.loads(res.stdout.strip().splitlines()[-1])


LOAD = """
    import json, sys
    from chainrule.io.serialize import load
    from chainrule.errors import ModelFileError
    try:
        load(sys.argv[1] if len(sys.argv) > 1 else "m.safetensors")
        ok = True
    except ModelFileError as exc:
        ok = False
    print(json.dumps({"ok": ok, "peak": hwm()}))
"""


def _big_model(n: int) -> bytes:
    rng = np.random.default_rng(0)
    arch = {
        "input_dim": n,
        "loss": "softmax-ce",
        "layers": [{"type": "dense", "in_features": n, "out_features": n}],
    }
    t = {"0.W": rng.standard_normal((n, n)).astype(np.float32), "0.b": np.zeros(n, np.float32)}
    return h.safetensors_bytes(t, h.model_metadata(arch))


MODELS = {
    "22000x22000 declared in 335 bytes": lambda: h.safetensors_bytes(
        {}, h.model_metadata({"layers": [{"type": "dense", "in_features": 22000, "out_features": 22000}]})
    ),
    "declared shape larger than its tensor": lambda: h.raw_model(
        {
            "0.W": {"dtype": "F32", "shape": [22000, 22000], "data_offsets": [0, 48]},
            "__metadata__": h.model_metadata(),
        },
        bytes(48),
    ),
    "tensor table pointing past the file": lambda: h.raw_model(
        {
            "0.W": {"dtype": "F32", "shape": [22000, 22000], "data_offsets": [0, 22000 * 22000 * 4]},
            "__metadata__": h.model_metadata(
                {"layers": [{"type": "dense", "in_features": 22000, "out_features": 22000}]}
            ),
        }
    ),
    "valid 16 MB model": lambda: _big_model(2048),
}


@pytest.mark.parametrize("kind", sorted(MODELS))
def test_loading_a_model_file_stays_within_64mb_plus_twice_its_size(tmp_path: Path, kind: str) -> None:
    raw = MODELS[kind]()
    (tmp_path / "m.safetensors").write_bytes(raw)
    res = _python(LOAD, tmp_path)
    assert res["ok"] == (kind.startswith("valid")), res
    bound = 64 * MB + 2 * len(raw)
    assert res["peak"] <= bound, f"{kind}: peak {res['peak'] / MB:.1f} MB > {bound / MB:.1f} MB"


IDX = """
    import json, psutil
    from chainrule.io.idx import read_idx
    from chainrule.errors import DataError
    before = psutil.Process().memory_info().rss
    try:
        n = int(read_idx("f.gz").nbytes)
    except DataError as exc:
        n = -1
    peak = hwm()
    print(json.dumps({"n": n, "grew": peak - before}))
"""


@pytest.mark.parametrize(
    ("declared", "padding"),
    [(10, 200 * MB), (60_000, 64 * MB), (30 * MB, 0), (30 * MB, 100 * MB)],
)
def test_idx_decompression_never_exceeds_the_declared_size_plus_1mb(
    tmp_path: Path, declared: int, padding: int
) -> None:
    payload = np.zeros(declared, np.uint8)
    raw = h.idx_bytes(payload) + bytes(padding)
    (tmp_path / "f.gz").write_bytes(gzip_compress(raw))
    res = _python(IDX, tmp_path)
    assert res["n"] == (declared if not padding else -1), res
    assert res["grew"] <= declared + MB, (
        f"RSS grew {res['grew'] / MB:.1f} MB for {declared / MB:.2f} MB declared"
    )


def gzip_compress(raw: bytes) -> bytes:
    import gzip

    return gzip.compress(raw, compresslevel=1, mtime=0)


PREDICT = """
    import json, contextlib
    from chainrule.cli import main
    with open("out.txt", "w") as out, contextlib.redirect_stdout(out):
        rc = main(["predict", "--model", "m.safetensors", "--input", "big.csv"])
    print(json.dumps({"rc": rc, "peak": hwm()}))
"""


@pytest.mark.slow
def test_predict_on_a_million_rows_peaks_under_200mb(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    with open(tmp_path / "big.csv", "w") as fh:
        fh.write("a,b,c,d\n")
        for _ in range(10):
            np.savetxt(fh, rng.standard_normal((100_000, 4)), fmt="%.4f", delimiter=",")
    (tmp_path / "m.safetensors").write_bytes(h.valid_model())
    res = _python(PREDICT, tmp_path)
    assert res["rc"] == 0
    with open(tmp_path / "out.txt") as fh:
        assert sum(1 for _ in fh) == 1_000_000
    assert res["peak"] <= 200 * MB, f"peak {res['peak'] / MB:.0f} MB"


LOAD_CSV = """
    import json
    from chainrule.io.tabular import BLOCK_CELLS, load_csv
    base = hwm()
    d = load_csv("big.csv", seed=0)
    x32 = d.x_train.nbytes + d.x_test.nbytes
    print(json.dumps({"base": base, "peak": hwm(), "x32": x32, "rows": d.n_train + d.n_test, "block": BLOCK_CELLS}))
"""


def test_training_csv_peaks_at_a_small_multiple_of_its_float32_features(tmp_path: Path) -> None:
    """A 29 MB CSV (150k rows, 20 features, integer labels) is 11.4 MB of float32 features.

    The loader holds at once: the float32 blocks and their concatenation (2x), later the table and its
    train/test copies (2x); the labels (float64 values and int32 codes while reading, int64 classes)
    are 20 bytes a row, 0.25x at 20 features; so k = 2.5. The fixed part is one block of cells as
    Python strings (BLOCK_CELLS = 2^18 cells, ~64 bytes each: 16 MB) plus 8 MB of allocator slack.
    The loader that held every row as strings peaked at ~290 MB over its imports here (~25x).
    """
    rng = np.random.default_rng(0)
    n = 150_000
    with open(tmp_path / "big.csv", "w") as fh:
        fh.write(",".join([*(f"f{j}" for j in range(20)), "label"]) + "\n")
        table = np.column_stack([rng.standard_normal((n, 20)), rng.integers(0, 10, n)])
        np.savetxt(fh, table, fmt=["%.6f"] * 20 + ["%d"], delimiter=",")
    res = _python(LOAD_CSV, tmp_path)
    assert res["rows"] == n and res["block"] == 1 << 18
    bound = res["base"] + 2.5 * res["x32"] + 24 * MB
    assert res["peak"] <= bound, (
        f"peak {res['peak'] / MB:.1f} MB > {bound / MB:.1f} MB "
        f"(imports {res['base'] / MB:.1f} MB, float32 features {res['x32'] / MB:.1f} MB)"
    )
