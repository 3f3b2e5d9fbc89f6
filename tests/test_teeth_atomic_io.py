"""Tests that kill the mutation survivors of benchmarks/mutation_run.py group atomic-io (chainrule._io)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from chainrule import _io

TEXT = "∂E/∂w = δ·xᵀ\n"


def test_teeth_atomic_write_text_is_utf8_whatever_the_locale(tmp_path: Path) -> None:
    # a C locale without coercion makes open()'s default encoding ASCII: the text must still be UTF-8
    out = tmp_path / "t.txt"
    _io.atomic_write_text(out, "old")  # in this process too, so that coverage-based selection finds this test
    # the module is loaded from its own file: an installed (editable) chainrule must not stand in for it;
    # under its own name, which mutation testing uses to tell which functions to switch
    code = (
        "import importlib.util as u; "
        f"s = u.spec_from_file_location('chainrule._io', {_io.__file__!a}); "
        "m = u.module_from_spec(s); s.loader.exec_module(m); "
        f"m.atomic_write_text({str(out)!a}, {TEXT!a})"
    )
    env = dict(os.environ, LC_ALL="C", LANG="C", PYTHONCOERCECLOCALE="0", PYTHONUTF8="0")
    env["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p)
    r = subprocess.run([sys.executable, "-X", "utf8=0", "-c", code], env=env, capture_output=True, timeout=60)
    assert r.returncode == 0, r.stderr.decode(errors="replace")
    assert out.read_bytes() == TEXT.encode("utf-8")


def test_teeth_atomic_write_text_replaces_the_file(tmp_path: Path) -> None:
    out = tmp_path / "t.txt"
    out.write_bytes(b"old contents, longer than the new ones")
    _io.atomic_write_text(out, TEXT)
    assert out.read_bytes() == TEXT.encode("utf-8")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["t.txt"]


def test_teeth_atomic_write_bytes(tmp_path: Path) -> None:
    out = tmp_path / "b.bin"
    _io.atomic_write_bytes(out, b"\x00\xff\n\r\n")
    assert out.read_bytes() == b"\x00\xff\n\r\n"


def test_teeth_json_default_converts_numpy_and_names_what_it_refuses() -> None:
    doc = {"s": np.float32(0.5), "i": np.int64(3), "a": np.arange(3)}
    assert json.loads(json.dumps(doc, default=_io.json_default)) == {"s": 0.5, "i": 3, "a": [0, 1, 2]}
    with pytest.raises(TypeError, match=r"^not JSON serialisable: complex$"):
        json.dumps({"z": 1j}, default=_io.json_default)


def test_teeth_alive_only_probes_a_live_process() -> None:
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        assert _io._alive(child.pid)
        time.sleep(0.1)
        assert child.poll() is None  # signal 0 probes; any real signal would have ended it
    finally:
        child.kill()
        child.wait()
    assert not _io._alive(child.pid)  # reaped: no such process


def test_teeth_alive_counts_a_process_we_may_not_signal_as_alive(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(pid: int, sig: int) -> None:
        raise PermissionError(1, "Operation not permitted")  # another user's process (EPERM)

    monkeypatch.setattr(_io.os, "kill", refuse)
    assert _io._alive(12345) is True


def test_teeth_an_unremovable_stale_temp_does_not_stop_the_write(tmp_path: Path) -> None:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()  # a dead writer's pid
    stale = tmp_path / f".m.bin.{child.pid}.abc.tmp"
    stale.mkdir()  # unlink() fails on a directory: the write must go on regardless
    (stale / "x").write_text("x")
    _io.atomic_write_bytes(tmp_path / "m.bin", b"new")
    assert (tmp_path / "m.bin").read_bytes() == b"new"
    assert stale.is_dir()
