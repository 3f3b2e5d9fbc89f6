"""Under CI a missing data set or tool fails the tests that need it instead of skipping them.

Runs a few of those tests in a subprocess with ``CHAINRULE_TEST_MNIST``/``CHAINRULE_SEED_POSTS``
pointed at an empty directory and ``PATH`` without chromium: without ``CI`` they skip, with
``CI=1`` they fail. ``.ci/run`` itself stops before the tests when it cannot provide them.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
NEEDS = [
    "tests/test_data.py::test_real_mnist",
    "tests/test_plots_report.py::test_report_renders_in_headless_chromium",
    "tests/test_example.py::test_post_data_is_in_the_post_itself",
]


def _run(tmp: Path, ci: bool) -> str:
    env = {k: v for k, v in os.environ.items() if k != "CI"}
    env.update(
        CHAINRULE_TEST_MNIST=str(tmp),
        CHAINRULE_SEED_POSTS=str(tmp),
        PATH=str(tmp),  # no chromium on it,
    )
    if ci:
        env["CI"] = "1"
    res = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-m", "not gpu", "-rfs", *NEEDS],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    return res.stdout


@pytest.mark.parametrize("ci", [False, True])
def test_missing_data_or_tool_skips_locally_and_fails_in_ci(tmp_path: Path, ci: bool) -> None:
    out = _run(tmp_path, ci)
    summary = out.strip().splitlines()[-1]
    if ci:
        assert "3 failed" in summary and "skipped" not in summary, out[-3000:]
    else:
        assert "3 skipped" in summary and "failed" not in summary, out[-3000:]


def test_ci_script_verifies_what_the_tests_need() -> None:
    script = (REPO / ".ci" / "run").read_text()
    assert "export CI=1" in script
    for needed in ("chromium is required", "real MNIST is required", "seed posts are required"):
        assert needed in script
