"""Tests that kill the mutation survivors of benchmarks/mutation_run.py group jobs-common
(jobs/common.py): exact messages, and outputs checked against the inputs written here."""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from chainrule import limits
from chainrule.errors import ConfigError, DataError, MissingDependencyError
from chainrule.jobs import common


def test_teeth_say() -> None:
    lines: list[str] = []
    common.say(lines.append, "hello")
    common.say(None, "nobody listens")
    assert lines == ["hello"]


def _csv(tmp_path: Path, n_classes: int = 3, rows: int = 30) -> Path:
    p = tmp_path / "d.csv"
    # the label is the FIRST column: load_dataset must pass target= through (the default is the last)
    body = "".join(f"{i % n_classes},{i},{(i * 7) % 5}\n" for i in range(rows))
    p.write_text("label,a,b\n" + body)
    return p


def test_teeth_load_dataset_passes_target_and_seed(tmp_path: Path) -> None:
    p = _csv(tmp_path)
    d0 = common.load_dataset(str(p), target="label", seed=0, progress=False)
    assert d0.n_classes == 3 and d0.feature_names == ["a", "b"]
    # the label column is i % 3 and feature a is i: each row's label follows from its features
    x = np.concatenate([d0.x_train, d0.x_test])
    y = np.concatenate([d0.y_train, d0.y_test])
    np.testing.assert_array_equal(y, x[:, 0].astype(int) % 3)
    d1 = common.load_dataset(str(p), target="label", seed=1, progress=False)
    assert sorted(d1.x_test[:, 0]) != sorted(d0.x_test[:, 0])  # the seed reaches the split


def test_teeth_load_dataset_class_checks(tmp_path: Path) -> None:
    p = _csv(tmp_path, n_classes=3)
    common.load_dataset(str(p), target="label", min_classes=3, progress=False)
    with pytest.raises(DataError) as e:
        common.load_dataset(str(p), target="label", min_classes=4, progress=False)
    assert str(e.value) == f"{p}: the labels hold 3 class(es); training a classifier needs at least 4"


def test_teeth_load_dataset_checks_any_loader_against_the_class_limit(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # a loader that does not bound its labels itself: load_dataset still does, inclusively
    calls: list[dict] = []

    def fake_load_data(data: str, data_dir: object, **kw: object) -> SimpleNamespace:
        calls.append({"data_dir": data_dir, **kw})
        return SimpleNamespace(n_classes=int(data))

    monkeypatch.setattr(common, "load_data", fake_load_data)
    with limits.override(max_classes=3):
        assert common.load_dataset("3").n_classes == 3
        with pytest.raises(DataError) as e:
            common.load_dataset("4")
    assert str(e.value).startswith("4: the labels ask for 4 classes, over the limit of 3 ")
    common.load_dataset("1")  # one class is enough unless the job asks for more
    with pytest.raises(DataError, match=r"^1: the labels hold 1 class"):
        common.load_dataset("1", min_classes=2)
    kw = calls[0]
    assert (kw["data_dir"], kw["target"], kw["download"], kw["seed"]) == (None, None, False, 0)
    assert isinstance(kw["progress"], common.DownloadBars) and kw["progress"].enabled
    common.load_dataset("2", "dir", target="t", download=True, seed=7, progress=False)
    kw = calls[-1]
    assert (kw["data_dir"], kw["target"], kw["download"], kw["seed"]) == ("dir", "t", True, 7)
    assert not kw["progress"].enabled
    monkeypatch.setattr(common, "load_data", lambda *a, **k: SimpleNamespace(n_classes=None))
    assert common.load_dataset("x", min_classes=5).n_classes is None  # a regression set: no count
    monkeypatch.setattr(common, "load_data", lambda *a, **k: SimpleNamespace(rows=3))
    assert common.load_dataset("x", min_classes=5).rows == 3  # no class count at all: nothing to check


def test_teeth_download_bars(capsys: pytest.CaptureFixture[str]) -> None:
    off = common.DownloadBars(enabled=False)
    off("a.gz", 5, 10)
    assert off._bars == {}
    bars = common.DownloadBars()
    bars("a.gz", 10, 100)
    first = bars._bars["a.gz"]
    bars("a.gz", 30, 100)
    assert bars._bars["a.gz"] is first and first.n == 30  # one bar per file, advanced
    bars("b.gz", 7, None)
    a, b = bars._bars["a.gz"], bars._bars["b.gz"]
    assert (a.n, a.total, b.n, b.total) == (30, 100, 7, None)
    assert a.desc == "downloading a.gz" and a.unit == "B" and a.unit_scale is True and a.leave is False
    bars.close()
    err = capsys.readouterr().err
    assert "downloading a.gz" in err and "downloading b.gz" in err
    assert capsys.readouterr().out == ""


def test_teeth_download_bars_without_tqdm(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "tqdm.auto", None)  # import fails as if tqdm were not installed
    bars = common.DownloadBars()
    bars("a.gz", 1, 2)
    assert bars.enabled is False and bars._bars == {}
    bars.close()


def test_teeth_check_writable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    common.check_writable(None)
    common.check_writable("")
    common.check_writable(tmp_path / "new.bin", "--save")
    assert list(tmp_path.iterdir()) == []  # the probe is gone, nothing created
    with pytest.raises(
        ConfigError, match=f"^cannot write --save {re.escape(str(tmp_path))}: it is a directory$"
    ):
        common.check_writable(tmp_path, "--save")
    with pytest.raises(ConfigError, match=f"^cannot write {re.escape(str(tmp_path))}: it is a directory$"):
        common.check_writable(str(tmp_path))
    with pytest.raises(
        ConfigError, match=r"^cannot write --log /dev/null: it exists and is not a regular file$"
    ):
        common.check_writable("/dev/null", "--log")
    missing = tmp_path / "no" / "x.bin"
    with pytest.raises(ConfigError) as e:
        common.check_writable(missing, "--out")
    assert str(e.value) == f"cannot write --out {missing}: directory {tmp_path / 'no'} does not exist"
    monkeypatch.setenv("HOME", str(tmp_path))
    with pytest.raises(ConfigError) as e:
        common.check_writable("~/no/x.bin")
    assert str(e.value) == f"cannot write ~/no/x.bin: directory {tmp_path / 'no'} does not exist"
    (tmp_path / "f.txt").write_text("keep")
    common.check_writable("~/f.txt")
    assert [p.name for p in tmp_path.iterdir()] == ["f.txt"] and (tmp_path / "f.txt").read_text() == "keep"


def test_teeth_check_writable_unwritable_directory(tmp_path: Path) -> None:
    # /proc refuses new files even for root; the message names the directory and the reason
    with pytest.raises(ConfigError) as e:
        common.check_writable("/proc/chainrule-out.bin", "--save")
    assert re.fullmatch(
        r"cannot write --save /proc/chainrule-out\.bin: directory /proc is not writable \(.+\)", str(e.value)
    )
    assert "None" not in str(e.value)


def test_teeth_check_outputs(tmp_path: Path) -> None:
    data = tmp_path / "d.csv"
    data.write_text("1,2\n")
    common.check_outputs({"--save": tmp_path / "m.st", "--log": None, "--out": ""}, {"--data": data})
    with pytest.raises(ConfigError) as e:
        common.check_outputs({"--save": tmp_path / "m.st", "--log": data}, {"--data": str(data)})
    assert str(e.value) == f"--log {data} would overwrite the input --data {data}; choose another output path"
    link = tmp_path / "hard.csv"
    os.link(data, link)
    with pytest.raises(ConfigError, match="would overwrite the input --data"):
        common.check_outputs({"--save": link}, {"--data": data})
    sym = tmp_path / "sym.csv"
    sym.symlink_to(data)
    with pytest.raises(ConfigError, match="would overwrite the input --data"):
        common.check_outputs({"--save": sym}, {"--data": data})
    # an input that does not exist (a name such as "default") is not a file to protect
    common.check_outputs({"--save": tmp_path / "default"}, {"--data": tmp_path / "default", "--x": None})
    a, b = tmp_path / "a.json", tmp_path / "sub" / ".." / "a.json"
    with pytest.raises(ConfigError) as e:
        common.check_outputs({"--save": tmp_path / "m.st", "--log": a, "--json": b})
    assert str(e.value) == f"--json {b} and --log {a} are the same file; give each output its own path"
    with pytest.raises(ConfigError) as e:
        common.check_outputs({"--save": tmp_path / "no" / "m.st"})
    assert str(e.value).startswith(f"cannot write --save {tmp_path / 'no' / 'm.st'}: directory ")
    common.check_outputs({"--save": tmp_path / "one", "--log": tmp_path / "two"})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d.csv", "hard.csv", "sym.csv"]


def test_teeth_same_file() -> None:
    assert common._same_file("/no/such/a", "/no/such/b/../a")
    assert not common._same_file("/no/such/a", "/no/such/b")  # neither exists: samefile fails, not the same


def test_teeth_require_packages() -> None:
    common.require_packages([("numpy", "arrays", "core", True), ("no_such_package_xyz", "f", "e", False)])
    with pytest.raises(MissingDependencyError) as e:
        common.require_packages(
            [("numpy", "arrays", "core", True), ("no_such_package_xyz", "plots", "viz", 1)]
        )
    assert (
        str(e.value) == "plots needs the optional package 'no_such_package_xyz': pip install 'chainrule[viz]'"
    )


def _net(input_dim: int | None, out: int | None) -> SimpleNamespace:
    return SimpleNamespace(input_dim=input_dim, output_dim=lambda: out)


def test_teeth_check_model_fits() -> None:
    common.check_model_fits(_net(None, None), 5, 3)
    common.check_model_fits(_net(5, 3), 5, 3)
    common.check_model_fits(_net(5, 4), 5, 3)
    common.check_model_fits(_net(5, 1), 5, 2)  # one logit: binary
    with pytest.raises(ConfigError, match=r"^the model expects 4 input features but the data has 5$"):
        common.check_model_fits(_net(4, 3), 5, 3)
    with pytest.raises(ConfigError, match=r"^the model has 2 outputs but the data has 3 classes$"):
        common.check_model_fits(_net(5, 2), 5, 3)
