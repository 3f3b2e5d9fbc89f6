"""Data parallelism over MPI (issue 12): ``mpiexec -n 2`` on loopback.

* the same weights as one process at the same global batch, seed and data order (float64: 1e-12;
  float32: see FLOAT32_TOL);
* a failing rank (exception, SIGKILL, a hang) stops every rank with one line, never a hang;
* rank 0 alone writes; bad input gets one line and a non-zero exit.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from chainrule.backend import to_numpy
from chainrule.cli import main
from chainrule.errors import ConfigError
from chainrule.nn.spec import word_classes
from chainrule.parallel import check_batch, plan_shards
from chainrule.parallel.launch import find_mpiexec, strip_workers
from chainrule.train import fit

sys.path.insert(0, str(Path(__file__).parent))
import mpi_programs

ROOT = Path(__file__).resolve().parents[1]
PROGRAM = str(Path(__file__).parent / "mpi_programs.py")
MPIEXEC = find_mpiexec()
#: float32: each rank's GEMM sums half the rows, and the shards' sums are added afterwards, so
#: every gradient element is rounded in a different order: |Δg| ≲ ε₃₂·|g| ≈ 6e-8·|g| per step.
#: The weights drift by about that per update (measured: 7.5e-8 after 50 SGD steps, 4.8e-7
#: with Adam, whose g/√v amplifies small gradients' relative error); 1e-5 leaves 20x headroom.
FLOAT32_TOL = 1e-5
TIMEOUT = 120

needs_mpi = pytest.mark.skipif(MPIEXEC is None, reason="mpiexec (the mpich wheel) is not installed")


def env(**extra: str) -> dict[str, str]:
    e = dict(os.environ)
    e["PYTHONPATH"] = str(ROOT / "src") + os.pathsep + e.get("PYTHONPATH", "")
    e.update({"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"})
    e.update(extra)
    return e


def mpirun(n: int, *args: str, timeout: float = TIMEOUT, cwd: Path | None = None, **extra: str):
    return subprocess.run(
        [MPIEXEC, "-n", str(n), sys.executable, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env(**extra),
        cwd=cwd,
    )


def single_process(argv: list[str]):
    args = mpi_programs.parser().parse_args(["-", *argv])
    net, x, y = mpi_programs.problem(
        args.n, args.dtype, args.activation, backend=args.backend, arch=args.arch, shape=args.shape
    )
    history = fit(net, x, y, **mpi_programs.train_options(args))
    return net, history


# -- the same maths as one process --------------------------------------------------------------
CASES = [
    pytest.param([], id="fast-sgd"),
    pytest.param(["--plain"], id="plain-sgd"),
    pytest.param(["--n", "301"], id="uneven-last-batch"),
    pytest.param(["--optimizer", "adam", "--l2", "0.01"], id="adam-l2"),
    pytest.param(["--optimizer", "momentum", "--overlap"], id="momentum-overlap"),
    pytest.param(["--activation", "maxout"], id="maxout-plain-runner"),
    pytest.param(["--backend", "torch", "--optimizer", "momentum"], id="torch-cpu-staged"),
    pytest.param(["--allreduce", "mpi"], id="mpi-allreduce"),
    pytest.param(["--allreduce", "shm", "--optimizer", "momentum", "--n", "301"], id="shm-sum"),
]


def expected_method(argv: list[str]) -> str:
    """What ``auto`` must pick on loopback: the shared-memory sum, unless overlap asks for MPI."""
    if "--allreduce" in argv:
        return argv[argv.index("--allreduce") + 1]
    return "mpi" if "--overlap" in argv else "shm"


@needs_mpi
@pytest.mark.parametrize("argv", CASES)
def test_two_ranks_give_the_weights_of_one_process_float64(tmp_path: Path, argv: list[str]) -> None:
    out = tmp_path / "w.npz"
    r = mpirun(2, PROGRAM, str(out), *argv)
    assert r.returncode == 0, r.stderr
    net, history = single_process(argv)
    got = np.load(out)
    assert "+mpi2" in str(got["runner"])
    assert str(got["method"]) == expected_method(argv)
    for i, p in enumerate(net.params):
        np.testing.assert_allclose(got[f"p{i}"], to_numpy(p.value), rtol=0, atol=1e-12)
    # the epoch's loss and accuracy are global: the single process's, not rank 0's shard's
    np.testing.assert_allclose(got["loss"], history["loss"], rtol=0, atol=1e-12)
    np.testing.assert_allclose(got["accuracy"], history["accuracy"], rtol=0, atol=1e-12)


#: every model kind through the same hook: a CNN and recurrent nets (run once their layers exist)
ARCHS = [
    pytest.param("conv:4:3 relu maxpool:2 flatten dense:4", "1,6,6", id="cnn"),
    pytest.param("rnn:6 last dense:4", "5,3", id="rnn"),
    pytest.param("lstm:6 last dense:4", "5,3", id="lstm"),
    pytest.param("gru:6 last dense:4", "5,3", id="gru"),
]


@needs_mpi
@pytest.mark.parametrize(("arch", "shape"), ARCHS)
def test_two_ranks_any_model_kind_float64(tmp_path: Path, arch: str, shape: str) -> None:
    missing = {w.split(":")[0] for w in arch.split()} - set(word_classes())
    if missing:
        pytest.skip(f"layer words not registered yet: {sorted(missing)}")
    argv = ["--arch", arch, "--shape", shape, "--n", "120", "--batch", "16", "--optimizer", "momentum"]
    out = tmp_path / "w.npz"
    r = mpirun(2, PROGRAM, str(out), *argv)
    assert r.returncode == 0, r.stderr
    net, history = single_process(argv)
    got = np.load(out)
    for i, p in enumerate(net.params):
        np.testing.assert_allclose(got[f"p{i}"], to_numpy(p.value), rtol=0, atol=1e-12)
    np.testing.assert_allclose(got["loss"], history["loss"], rtol=0, atol=1e-12)


@needs_mpi
@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_two_ranks_float32_within_stated_tolerance(tmp_path: Path, optimizer: str) -> None:
    argv = ["--dtype", "float32", "--epochs", "5", "--optimizer", optimizer]
    out = tmp_path / "w.npz"
    r = mpirun(2, PROGRAM, str(out), *argv)
    assert r.returncode == 0, r.stderr
    net, _ = single_process(argv)
    got = np.load(out)
    diffs = [np.abs(got[f"p{i}"] - p.value).max() for i, p in enumerate(net.params)]
    assert max(diffs) < FLOAT32_TOL
    assert max(diffs) > 0 or optimizer == "sgd"  # the tolerance is needed, not decorative


@needs_mpi
@pytest.mark.parametrize("method", ["shm", "mpi"])
def test_three_ranks_uneven_shards(tmp_path: Path, method: str) -> None:
    argv = ["--n", "301", "--batch", "36", "--allreduce", method]  # the last batch of 13 splits 4/4/5
    out = tmp_path / "w.npz"
    assert mpirun(3, PROGRAM, str(out), *argv).returncode == 0
    net, _ = single_process(argv)
    got = np.load(out)
    assert str(got["method"]) == method
    for i, p in enumerate(net.params):
        np.testing.assert_allclose(got[f"p{i}"], p.value, rtol=0, atol=1e-12)


@needs_mpi
def test_float32_ranks_end_on_identical_weights_with_either_sum(tmp_path: Path) -> None:
    """Both sums hand every rank the same bits: after training, rank 1's float32 weights equal
    rank 0's exactly (compared inside the job)."""
    for method in ("shm", "mpi"):
        out = tmp_path / f"{method}.npz"
        argv = ["--dtype", "float32", "--epochs", "3", "--allreduce", method, "--check-identical"]
        r = mpirun(2, PROGRAM, str(out), *argv)
        assert r.returncode == 0, r.stderr
        assert bool(np.load(out)["identical"])


def test_allreduce_method_names_the_choices(monkeypatch) -> None:
    from chainrule.parallel.allreduce import allreduce_method

    assert allreduce_method() == "auto"
    monkeypatch.setenv("CHAINRULE_ALLREDUCE", "mpi")
    assert allreduce_method() == "mpi"
    assert allreduce_method("shm") == "shm"  # the argument wins over the environment
    monkeypatch.setenv("CHAINRULE_ALLREDUCE", "nccl")
    with pytest.raises(ConfigError, match=r"CHAINRULE_ALLREDUCE must be one of auto, mpi, shm, got 'nccl'"):
        allreduce_method()


@needs_mpi
def test_without_a_shared_window_auto_falls_back_and_shm_stops(tmp_path: Path) -> None:
    out = tmp_path / "w.npz"
    r = mpirun(2, PROGRAM, str(out), "--no-shared-memory")
    assert r.returncode == 0, r.stderr
    assert str(np.load(out)["method"]) == "mpi"
    r = mpirun(2, PROGRAM, str(tmp_path / "x.npz"), "--no-shared-memory", "--allreduce", "shm", timeout=60)
    assert r.returncode != 0
    lines = [ln for ln in r.stderr.splitlines() if ln.startswith("chainrule: error:")]
    assert len(lines) == 1, r.stderr
    assert (
        "the shared-memory window could not be allocated (RuntimeError: no space left in /dev/shm)"
        in lines[0]
    )


@needs_mpi
def test_shared_sum_with_overlap_is_refused_in_one_line(tmp_path: Path) -> None:
    r = mpirun(2, PROGRAM, str(tmp_path / "w.npz"), "--allreduce", "shm", "--overlap", timeout=60)
    assert r.returncode != 0
    lines = [ln for ln in r.stderr.splitlines() if ln.startswith("chainrule: error:")]
    assert len(lines) == 1, r.stderr
    assert "overlap needs the MPI all-reduce" in lines[0]
    assert "Traceback" not in r.stderr


# -- shards --------------------------------------------------------------------------------------
def test_plan_shards_cover_every_batch_once() -> None:
    order = np.arange(106)  # the last batch of 6 splits 1/1/2/2
    plans = [plan_shards(order, 20, r, 4, drop_remainder=False) for r in range(4)]
    assert {p.steps for p in plans} == {6}
    rows = np.sort(np.concatenate([p.order for p in plans]))
    np.testing.assert_array_equal(rows, order)
    # the last batch (3 rows) is smaller than the 4 ranks: refused without --drop-remainder
    with pytest.raises(ConfigError, match="last batch"):
        plan_shards(np.arange(83), 20, 0, 4, drop_remainder=False)
    dropped = plan_shards(np.arange(83), 20, 0, 4, drop_remainder=True)
    assert dropped.steps == 4 and dropped.n_used == 80


def test_plan_shards_weights_sum_to_one_per_step() -> None:
    plans = [plan_shards(np.arange(101), 36, r, 3, drop_remainder=False) for r in range(3)]
    for step in range(plans[0].steps):
        assert sum(p.weights[step] for p in plans) == pytest.approx(1.0)


def test_batch_must_split_over_ranks() -> None:
    with pytest.raises(ConfigError, match="does not split evenly over 3 ranks"):
        check_batch(128, 3, drop_remainder=False)
    check_batch(128, 3, drop_remainder=True)
    check_batch(129, 3, drop_remainder=False)


def test_strip_workers() -> None:
    assert strip_workers(["train", "--workers", "2", "--epochs", "1", "--workers=3"]) == [
        "train",
        "--epochs",
        "1",
    ]


# -- fault behaviour ------------------------------------------------------------------------------
def error_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith("chainrule: error:")]


@needs_mpi
def test_an_exception_on_one_rank_stops_every_rank(tmp_path: Path) -> None:
    t0 = time.monotonic()
    r = mpirun(2, PROGRAM, str(tmp_path / "w.npz"), "--fail", "raise:1:3", timeout=60)
    assert r.returncode != 0
    assert time.monotonic() - t0 < 30
    lines = error_lines(r.stderr)
    assert len(lines) == 1, r.stderr
    assert "rank 1 of 2" in lines[0] and "injected failure at step 3" in lines[0]
    assert "Traceback" not in r.stderr
    assert not (tmp_path / "w.npz").exists()


@needs_mpi
def test_sigkill_of_one_rank_stops_every_rank(tmp_path: Path) -> None:
    t0 = time.monotonic()
    r = mpirun(2, PROGRAM, str(tmp_path / "w.npz"), "--fail", "kill:1:3", timeout=60)
    assert r.returncode != 0
    assert time.monotonic() - t0 < 30


@needs_mpi
def test_a_stuck_rank_is_caught_by_the_watchdog(tmp_path: Path) -> None:
    t0 = time.monotonic()
    r = mpirun(
        2, PROGRAM, str(tmp_path / "w.npz"), "--fail", "hang:1:3", timeout=60, CHAINRULE_MPI_TIMEOUT="3"
    )
    assert r.returncode != 0
    assert time.monotonic() - t0 < 30
    lines = error_lines(r.stderr)
    assert len(lines) == 1 and "rank 0 of 2: waited 3 s in allreduce of the gradients" in lines[0], r.stderr


def chainrule(*args: str, timeout: float = TIMEOUT, cwd: Path | None = None, **extra: str):
    return subprocess.Popen(
        [sys.executable, "-m", "chainrule", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env(**extra),
        cwd=cwd,
    )


@needs_mpi
def test_workers_name_the_rank_killed_by_a_signal(tmp_path: Path) -> None:
    psutil = pytest.importorskip("psutil")
    proc = chainrule("train", "--workers", "2", "--epochs", "200", "--quiet", "--data", "default")
    rank1 = None
    deadline = time.monotonic() + 60
    while rank1 is None and time.monotonic() < deadline:
        time.sleep(0.5)
        for child in psutil.Process(proc.pid).children(recursive=True):
            try:
                if child.environ().get("PMI_RANK") == "1" and "python" in child.name():
                    rank1 = child
            except psutil.Error:
                continue
    assert rank1 is not None, "rank 1 never started"
    while rank1.cpu_times().user + rank1.cpu_times().system < 4.0 and time.monotonic() < deadline:
        time.sleep(0.25)  # past start-up (imports, MPI, the pid report): training
    rank1.send_signal(signal.SIGKILL)
    t0 = time.monotonic()
    out, err = proc.communicate(timeout=60)
    assert time.monotonic() - t0 < 30
    assert proc.returncode == 1
    lines = error_lines(err)
    assert len(lines) == 1, err
    assert f"rank 1 of 2 (pid {rank1.pid}" in lines[0] and "signal 9" in lines[0], (err, rank1)
    assert "BAD TERMINATION" not in out + err


# -- only rank 0 writes ---------------------------------------------------------------------------
AUDIT = """
import os, sys
_rank = os.environ.get("PMI_RANK")
_log = os.environ.get("WRITE_AUDIT")
if _rank is not None and _log:
    _path = os.path.join(_log, f"rank{_rank}.txt")
    _open = open
    def _hook(event, args):
        if event == "open" and args[0] is not None and isinstance(args[0], (str, bytes)):
            mode, flags = args[1], args[2]
            writing = (mode and any(c in mode for c in "wax+")) or (flags & (os.O_WRONLY | os.O_RDWR))
            if writing and not str(args[0]).startswith(_log) and not str(args[0]).startswith("/dev/"):
                with _open(_path, "a") as fh:
                    fh.write(f"{args[0]}\\n")
    sys.addaudithook(_hook)
"""


@needs_mpi
def test_only_rank_0_writes(tmp_path: Path) -> None:
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(textwrap.dedent(AUDIT))
    audit = tmp_path / "audit"
    audit.mkdir()
    out = tmp_path / "out"
    out.mkdir()
    proc = chainrule(
        "train",
        "--workers",
        "2",
        "--epochs",
        "1",
        "--quiet",
        "--save",
        str(out / "m.safetensors"),
        "--log",
        str(out / "run.json"),
        "--json",
        PYTHONPATH=f"{site}{os.pathsep}{ROOT / 'src'}",
        WRITE_AUDIT=str(audit),
    )
    stdout, stderr = proc.communicate(timeout=TIMEOUT)
    assert proc.returncode == 0, stderr
    assert sorted(p.name for p in out.iterdir()) == ["m.safetensors", "run.json"]  # the probe is gone
    assert len([line for line in stdout.splitlines() if line.startswith("{")]) == 1  # one summary
    rank0 = (audit / "rank0.txt").read_text() if (audit / "rank0.txt").exists() else ""
    assert str(out / "m.safetensors") in rank0 or "m.safetensors" in rank0
    assert not (audit / "rank1.txt").exists(), (audit / "rank1.txt").read_text()


# -- bad input ------------------------------------------------------------------------------------
def test_workers_without_mpi_names_the_extra(monkeypatch, capsys) -> None:
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "mpi4py" else real(name, *a)
    )
    assert main(["train", "--workers", "2", "--epochs", "1"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [
        "chainrule: error: --workers needs the optional package 'mpi4py': pip install 'chainrule[mpi]'"
    ]


def test_workers_with_a_batch_that_does_not_split(capsys) -> None:
    assert main(["train", "--workers", "3", "--batch-size", "128"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "does not split evenly over 3 ranks" in err[0] and "--drop-remainder" in err[0]


@needs_mpi
def test_outputs_not_shared_by_the_ranks(tmp_path: Path) -> None:
    """MPMD: rank 1 runs in another directory, so the relative output path is not rank 0's."""
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir()
    b.mkdir()
    cmd = [sys.executable, "-m", "chainrule", "train", "--epochs", "1", "--quiet", "--log", "run.json"]
    r = subprocess.run(
        [MPIEXEC, "-n", "1", "-wdir", str(a), *cmd, ":", "-n", "1", "-wdir", str(b), *cmd],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        env=env(),
    )
    assert r.returncode != 0
    lines = error_lines(r.stderr)
    assert len(lines) == 1, r.stderr
    assert f"output directory {b}" in lines[0] and "not shared" in lines[0] and "rank 1" in lines[0]
    assert list(a.iterdir()) == [] and list(b.iterdir()) == []


# -- checkpoint / resume with N ranks (issue 11's --checkpoint/--resume, once merged) ----------------
def _checkpoint_epoch(d: Path) -> int:
    try:
        return int(json.loads(str(np.load(d / "checkpoint.npz")["__doc__"])).get("epoch", 0))
    except (OSError, KeyError, ValueError):
        return 0


@needs_mpi
def test_resume_with_two_ranks_is_exact(tmp_path: Path) -> None:
    import dataclasses

    from chainrule.jobs.train import TrainConfig

    if "checkpoint" not in {f.name for f in dataclasses.fields(TrainConfig)}:
        pytest.skip("train --checkpoint/--resume (issue 11) is not here yet")
    args = ["train", "--workers", "2", "--epochs", "4", "--quiet", "--json", "--dtype", "float64"]
    straight, killed = tmp_path / "straight", tmp_path / "killed"
    straight.mkdir()
    killed.mkdir()
    ref = chainrule(*args, "--checkpoint", str(straight))
    ref_out, ref_err = ref.communicate(timeout=TIMEOUT)
    assert ref.returncode == 0, ref_err
    job = subprocess.Popen(
        [sys.executable, "-m", "chainrule", *args, "--checkpoint", str(killed)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env(),
        start_new_session=True,
    )
    deadline = time.monotonic() + TIMEOUT
    while _checkpoint_epoch(killed) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    os.killpg(job.pid, signal.SIGKILL)  # the whole job dies after rank 0's checkpoint of epoch 2
    job.wait()
    assert 2 <= _checkpoint_epoch(killed) < 4
    res = chainrule(*args, "--resume", str(killed))
    out, err = res.communicate(timeout=TIMEOUT)
    assert res.returncode == 0, err
    a, b = np.load(straight / "checkpoint.npz"), np.load(killed / "checkpoint.npz")
    for k in a.files:
        if k != "__doc__":
            np.testing.assert_array_equal(a[k], b[k])
    losses = [[e["loss"] for e in json.loads(o.strip().splitlines()[-1])["history"]] for o in (ref_out, out)]
    assert losses[0] == losses[1]  # the resumed history is the straight run's, epoch for epoch
