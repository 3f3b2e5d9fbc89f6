"""The README's Python example runs as written, and its two commands are the ones CI uses."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_python_example_runs(tmp_path: Path, monkeypatch, capsys) -> None:
    text = (REPO / "README.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```python\n(.*?)```", text, flags=re.S)
    assert blocks, "README has no python example"
    monkeypatch.chdir(tmp_path)
    exec(compile(blocks[0], "README.md", "exec"), {"__name__": "readme"})
    out = capsys.readouterr().out
    acc = float(re.search(r"test accuracy (\d\.\d+)", out).group(1))
    assert acc > 0.85
    assert "True" in out and (tmp_path / "net.safetensors").exists()


def test_new_activation_example_runs(tmp_path: Path) -> None:
    """The second example registers a class, so it runs in its own process (the registry is global)."""
    text = (REPO / "README.md").read_text(encoding="utf-8")
    block = re.findall(r"```python\n(.*?)```", text, flags=re.S)[1]
    proc = subprocess.run(
        [sys.executable, "-c", block], capture_output=True, text=True, cwd=tmp_path, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().splitlines()[-1] == "True"


def test_ci_runs_the_readme_test_command() -> None:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    ci = (REPO / ".ci" / "run").read_text(encoding="utf-8")
    test_cmd = re.search(r'pip install -e "\.\[test\]" && (python -m pytest[^\n`]*)', readme).group(1)
    assert test_cmd in ci
    assert 'pip install -q -e ".[test]"' in ci
