"""Shared fixtures: the real MNIST location for tests (the library itself never assumes it)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]


def mnist_dir() -> Path | None:
    env = os.environ.get("CHAINRULE_TEST_MNIST")
    candidates = [Path(env)] if env else []
    candidates.append(REPO.parent / "shared" / "data" / "mnist")
    for c in candidates:
        if (c / "train-images-idx3-ubyte.gz").exists() or (c / "train-images-idx3-ubyte").exists():
            return c
    return None


@pytest.fixture
def mnist_path() -> Path:
    d = mnist_dir()
    if d is None:
        pytest.skip("real MNIST not found (set CHAINRULE_TEST_MNIST to the directory of the IDX files)")
    return d


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(1234)
