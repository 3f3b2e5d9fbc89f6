"""Shared fixtures: the real MNIST location for tests (the library itself never assumes it)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]

#: under CI (``.ci/run`` sets ``CI=1``) a missing data set or tool FAILS the test that needs it:
#: ``.ci/run`` installs and verifies them, so a skip there would hide a broken set-up
IN_CI = bool(os.environ.get("CI"))


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    """``chainrule argv`` in-process: ``(exit status, stdout, stderr)``."""
    from chainrule.cli import main

    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def missing(reason: str) -> None:
    """Skip a test whose data set or tool is absent; fail it instead under CI."""
    if IN_CI:
        pytest.fail(f"{reason} (required under CI: .ci/run installs and verifies it)", pytrace=False)
    pytest.skip(reason)


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
        missing("real MNIST not found (set CHAINRULE_TEST_MNIST to the directory of the IDX files)")
    return d


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(1234)
