"""Build src/chainrule/_data/mnist_small.npz, the embedded default dataset, from MNIST.

The subset is stratified and reproducible: with ``np.random.default_rng(SEED)`` it draws, for
each digit 0..9 in turn, 600 images without replacement from the 60,000 MNIST training images
and then 100 from the 10,000 test images; the chosen indices are kept in their original MNIST
order. Arrays are stored as uint8 (pixels 0..255, labels 0..9) under the keys x_train (6000,
784), y_train (6000,), x_test (1000, 784), y_test (1000,).

The .npz is written with fixed zip timestamps so that a rebuild gives the same bytes (given the
same zlib); the SHA-256 of each array's raw bytes is printed and is the real check.

Usage (from the repository root)::

    python scripts/make_default_dataset.py [MNIST_DIR] [--out PATH] [--check]

MNIST_DIR defaults to ../shared/data/mnist relative to the repository root. ``--check`` builds
the arrays in memory and compares them with the existing file instead of writing it.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import sys
import zipfile
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from chainrule.io import MNIST_FILES, read_idx  # noqa: E402

SEED = 20240601
TRAIN_PER_CLASS = 600
TEST_PER_CLASS = 100
DEFAULT_MNIST_DIR = REPO.parent / "shared" / "data" / "mnist"
DEFAULT_OUT = REPO / "src" / "chainrule" / "_data" / "mnist_small.npz"
KEYS = ("x_train", "y_train", "x_test", "y_test")


def _find(directory: Path, name: str) -> Path:
    for candidate in (name, name + ".gz"):
        if (directory / candidate).is_file():
            return directory / candidate
    raise SystemExit(f"error: {name}[.gz] not found in {directory}")


def _subset(
    images: np.ndarray, labels: np.ndarray, per_class: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    chosen = []
    for digit in range(10):
        pool = np.flatnonzero(labels == digit)
        chosen.append(rng.choice(pool, size=per_class, replace=False))
    idx = np.sort(np.concatenate(chosen))
    x = images[idx].reshape(len(idx), -1).astype(np.uint8)
    y = labels[idx].astype(np.uint8)
    return x, y


def build(mnist_dir: Path) -> dict[str, np.ndarray]:
    """Return the four subset arrays built from the IDX files in ``mnist_dir``."""
    rng = np.random.default_rng(SEED)
    arrays: dict[str, np.ndarray] = {}
    for part, per_class in (("train", TRAIN_PER_CLASS), ("test", TEST_PER_CLASS)):
        images = read_idx(_find(mnist_dir, MNIST_FILES[f"{part}_images"]))
        labels = read_idx(_find(mnist_dir, MNIST_FILES[f"{part}_labels"]))
        arrays[f"x_{part}"], arrays[f"y_{part}"] = _subset(images, labels, per_class, rng)
    return arrays


def array_sha256(a: np.ndarray) -> str:
    """SHA-256 of an array's dtype, shape and C-order bytes."""
    h = hashlib.sha256(f"{a.dtype.str}{a.shape}".encode())
    h.update(np.ascontiguousarray(a).tobytes())
    return h.hexdigest()


def save_npz(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """Like np.savez_compressed, but with fixed member timestamps (byte-reproducible)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as zf:
        for key in KEYS:
            buf = io.BytesIO()
            np.lib.format.write_array(buf, arrays[key], allow_pickle=False)
            info = zipfile.ZipInfo(f"{key}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            zf.writestr(info, buf.getvalue(), compresslevel=9)
    tmp.replace(path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("mnist_dir", nargs="?", type=Path, default=DEFAULT_MNIST_DIR)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--check", action="store_true", help="compare with the existing file, do not write")
    args = parser.parse_args(argv)

    arrays = build(args.mnist_dir)
    for key in KEYS:
        a = arrays[key]
        print(f"{key:8s} {a.dtype} {a.shape!s:12s} sha256={array_sha256(a)}")
    for part in ("train", "test"):
        counts = np.bincount(arrays[f"y_{part}"], minlength=10)
        print(f"{part} label counts: {' '.join(map(str, counts))}")

    if args.check:
        with np.load(args.out, allow_pickle=False) as z:
            same = all(np.array_equal(z[k], arrays[k]) and z[k].dtype == arrays[k].dtype for k in KEYS)
        print(f"{args.out}: {'matches' if same else 'DIFFERS from'} a fresh build")
        return 0 if same else 1

    save_npz(args.out, arrays)
    with np.load(args.out, allow_pickle=False) as z:
        assert all(np.array_equal(z[k], arrays[k]) for k in KEYS), "round trip failed"
    data = args.out.read_bytes()
    print(f"wrote {args.out} ({len(data)} bytes)")
    print(f"file md5={hashlib.md5(data).hexdigest()} sha256={hashlib.sha256(data).hexdigest()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
