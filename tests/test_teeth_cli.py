"""Tests that kill the mutation survivors of benchmarks/mutation_run.py group cli
(cli/__init__.py, cli/commands/_common.py). ``main`` is driven in-process with the ``example``
command's ``run`` replaced, so each failure path is checked by its exact stderr line and exit code
without training anything."""

from __future__ import annotations

import argparse
import dataclasses
import os
import signal
import threading
from typing import Any

import numpy as np
import pytest

import chainrule.cli as cli
from chainrule import __version__, limits
from chainrule.cli.commands import _common as C
from chainrule.cli.commands import example
from chainrule.errors import DataError

ORDER = ["train", "evaluate", "predict", "example", "gradcheck", "explain", "seeds"]
OTHERS = ["autoencoder", "bench", "export", "lm", "rbm", "report", "sample", "vanishing"]


def _run_with(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], action: Any, *argv: str):  # type: ignore[no-untyped-def]
    seen: dict[str, Any] = {}

    def fake_run(args: argparse.Namespace) -> Any:
        seen["args"] = args
        seen["sigterm"] = signal.getsignal(signal.SIGTERM)
        seen["max_params"], seen["max_classes"] = limits.LIMITS.max_params, limits.LIMITS.max_classes
        return action()

    monkeypatch.setattr(example, "run", fake_run)
    code = cli.main(["example", *argv])
    out, err = capsys.readouterr()
    return code, out, err, seen


def _raise(exc: BaseException):  # type: ignore[no-untyped-def]
    def f() -> None:
        raise exc

    return f


def test_teeth_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as e:
        cli.main(["--version"])
    assert e.value.code == 0
    assert capsys.readouterr().out == f"chainrule {__version__}\n"


def test_teeth_no_command_prints_help_and_usage_status(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main([]) == 2
    out, err = capsys.readouterr()
    assert out == "" and err.startswith("usage: chainrule [-h] [--version] [--debug] COMMAND ...")
    assert "Neural networks with hand-derived, checked gradients." in err
    assert "--debug      show the traceback of an unexpected error" in err
    listed = [line.split()[0] for line in err.splitlines() if line.startswith("    ") and line[4] != " "]
    assert listed == ORDER + OTHERS
    assert [m.NAME for m in cli._commands()] == ORDER + OTHERS


def test_teeth_subcommand_help_has_limit_options(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        cli.main(["example", "--help"])
    out = capsys.readouterr().out
    assert out.startswith("usage: chainrule example")
    assert f"(default {limits.LIMITS.max_params:,})" in " ".join(out.split())
    assert "--max-params N" in out and "--max-classes K" in out


def test_teeth_bad_flag_is_one_usage_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["example", "--bogus"]) == 2
    assert capsys.readouterr().err == "chainrule: error: chainrule: unrecognized arguments: --bogus\n"
    assert cli.main(["nosuch"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("chainrule: error: chainrule: argument COMMAND: invalid choice: 'nosuch'")
    assert err.count("\n") == 1


def test_teeth_run_result_limits_and_argv(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def mine(signum: int, frame: object) -> None:
        pass

    before = signal.signal(signal.SIGTERM, mine)  # a handler of our own, to see it put back
    code, out, err, seen = _run_with(
        monkeypatch, capsys, lambda: None, "--max-params", "123", "--max-classes", "7"
    )
    assert (code, out, err) == (0, "", "")
    assert (seen["max_params"], seen["max_classes"]) == (123, 7)
    assert seen["sigterm"] is cli._on_sigterm
    assert seen["args"]._argv == ["example", "--max-params", "123", "--max-classes", "7"]
    assert signal.getsignal(signal.SIGTERM) is mine
    signal.signal(signal.SIGTERM, before)
    assert limits.LIMITS.max_params == limits.Limits().max_params
    code, *_, seen = _run_with(monkeypatch, capsys, lambda: 3, "--debug")
    assert code == 3 and seen["args"]._argv == ["example"]
    assert seen["max_params"] == limits.Limits().max_params


def test_teeth_chainrule_and_os_errors(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err, _ = _run_with(monkeypatch, capsys, _raise(DataError("bad\n   data  here")))
    assert (code, out, err) == (1, "", "chainrule: error: bad data here\n")
    code, _, err, _ = _run_with(monkeypatch, capsys, _raise(FileNotFoundError(2, "No such file", "x.csv")))
    assert (code, err) == (1, "chainrule: error: No such file: x.csv\n")
    code, _, err, _ = _run_with(monkeypatch, capsys, _raise(OSError("plain trouble")))
    assert (code, err) == (1, "chainrule: error: plain trouble\n")
    with pytest.raises(DataError):
        _run_with(monkeypatch, capsys, _raise(DataError("x")), "--debug")
    with pytest.raises(OSError):
        _run_with(monkeypatch, capsys, _raise(OSError("x")), "--debug")
    monkeypatch.setenv("CHAINRULE_DEBUG", "1")
    with pytest.raises(DataError):
        _run_with(monkeypatch, capsys, _raise(DataError("x")))
    monkeypatch.setenv("CHAINRULE_DEBUG", "")
    assert _run_with(monkeypatch, capsys, _raise(DataError("x")))[0] == 1


def test_teeth_unexpected_errors(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err, _ = _run_with(monkeypatch, capsys, _raise(RuntimeError("boom\n  bang")))
    assert (code, out) == (1, "")
    assert err == (
        "chainrule: error: example failed unexpectedly (RuntimeError: boom bang); rerun with --debug for the traceback\n"
    )
    _, _, err, _ = _run_with(monkeypatch, capsys, _raise(KeyError()))
    assert (
        err
        == "chainrule: error: example failed unexpectedly (KeyError); rerun with --debug for the traceback\n"
    )
    _, _, err, _ = _run_with(monkeypatch, capsys, _raise(MemoryError()))
    assert err == (
        "chainrule: error: example: out of memory (MemoryError); the input or the sizes asked for are too large\n"
    )
    _, _, err, _ = _run_with(monkeypatch, capsys, _raise(RecursionError()))
    assert err == "chainrule: error: example: input nested too deeply (RecursionError)\n"
    _, _, err, _ = _run_with(monkeypatch, capsys, _raise(ValueError("v" * 400)))
    assert (
        err
        == f"chainrule: error: example failed unexpectedly (ValueError: {'v' * 297}...); rerun with --debug for the traceback\n"
    )
    with pytest.raises(RuntimeError):
        _run_with(monkeypatch, capsys, _raise(RuntimeError("x")), "--debug")


def test_teeth_command_name_in_the_last_resort_message(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(cli, "_run", _raise_args(RuntimeError("r")))
    assert cli.main(["--threads", "example"]) == 1
    assert capsys.readouterr().err.startswith(
        "chainrule: error: example failed unexpectedly (RuntimeError: r)"
    )
    assert cli.main(["--only-flags"]) == 1
    assert capsys.readouterr().err.startswith("chainrule: error: chainrule failed unexpectedly")


def _raise_args(exc: BaseException):  # type: ignore[no-untyped-def]
    def f(*a: Any) -> None:
        raise exc

    return f


def test_teeth_interrupt_and_terminate(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err, _ = _run_with(monkeypatch, capsys, _raise(KeyboardInterrupt()))
    assert (code, out, err) == (130, "", "chainrule: error: interrupted\n")

    def terminate() -> None:
        os.kill(os.getpid(), signal.SIGTERM)

    before = signal.getsignal(signal.SIGTERM)
    code, out, err, _ = _run_with(monkeypatch, capsys, terminate)
    assert (code, out, err) == (143, "", "chainrule: error: terminated\n")
    assert signal.getsignal(signal.SIGTERM) is before


def test_teeth_one_line() -> None:
    assert cli._one_line(" a \n b\t c ") == "a b c"
    assert cli._one_line("x" * 2000) == "x" * 2000
    assert cli._one_line("x" * 2001) == "x" * 1997 + "..."
    assert cli._one_line("abcdef", 5) == "ab..."


def test_teeth_install() -> None:
    def handler(signum: int, frame: object) -> None:
        pass

    old = cli._install(signal.SIGUSR1, handler)
    try:
        assert signal.getsignal(signal.SIGUSR1) is handler
        assert cli._install(signal.SIGUSR1, "not a handler") is None
        got: list[object] = []
        t = threading.Thread(target=lambda: got.append(cli._install(signal.SIGUSR1, signal.SIG_IGN)))
        t.start()
        t.join()
        assert got == [None] and signal.getsignal(signal.SIGUSR1) is handler
    finally:
        signal.signal(signal.SIGUSR1, old)  # type: ignore[arg-type]


def test_teeth_os_message() -> None:
    assert cli._os_message(PermissionError(13, "Permission denied", "/x")) == "Permission denied: /x"
    assert cli._os_message(OSError(5, "I/O error")) == "I/O error"
    assert cli._os_message(OSError("just text")) == "just text"


def test_teeth_parser_error_raises_usage() -> None:
    p = cli.Parser(prog="prog")
    with pytest.raises(cli.UsageError, match=r"^prog: oops$"):
        p.error("oops")


# --- cli/commands/_common.py ----------------------------------------------------------------


def _bad(parse: Any, text: str) -> str:
    with pytest.raises(argparse.ArgumentTypeError) as e:
        parse(text)
    return str(e.value)


def test_teeth_number_types() -> None:
    assert C.positive_int("3") == 3 and C.positive_int("1") == 1
    for t in ("0", "-2", "x", "1.5", ""):
        assert _bad(C.positive_int, t) == f"expected a positive integer, got {t!r}"
    assert C.nonneg_int("0") == 0
    assert _bad(C.nonneg_int, "-1") == "expected a non-negative integer, got '-1'"
    assert C.positive_float("1e-3") == 1e-3
    for t in ("0", "-1", "inf", "nan", "abc"):
        assert _bad(C.positive_float, t) == f"expected a positive number, got {t!r}"
    assert C.nonneg_float("0") == 0.0 and C.nonneg_float("2.5") == 2.5
    for t in ("-0.5", "inf", "nan"):
        assert _bad(C.nonneg_float, t) == f"expected a non-negative number, got {t!r}"
    assert C.fraction("0") == 0.0 and C.fraction("0.99") == 0.99
    for t in ("1", "-0.1", "nan"):
        assert _bad(C.fraction, t) == f"expected a fraction in [0, 1), got {t!r}"
    assert C.positive_int.__name__ == "a_positive_integer" and C.fraction.__name__ == "a_fraction_in_[0,_1)"


def test_teeth_batch_size() -> None:
    assert C.batch_size("full") == 0 and C.batch_size(" ALL ") == 0 and C.batch_size("0") == 0
    assert C.batch_size("32") == 32
    assert _bad(C.batch_size, "-1") == "expected a positive integer, got '-1'"


def test_teeth_int_list() -> None:
    assert C.layer_sizes("784, 256;10") == [784, 256, 10]
    assert C.layer_sizes("3,,4,") == [3, 4]
    assert C.layer_sizes("1,1") == [1, 1]
    for t in ("784", "3,0", "", "5,-1"):
        assert _bad(C.layer_sizes, t) == f"layers needs at least 2 integer(s), each at least 1, got {t!r}"
    assert _bad(C.layer_sizes, "a,b") == "layers must be comma-separated integers like 784,256,10, got 'a,b'"
    assert C.layer_sizes.__name__ == "layers"
    sizes = C.int_list(1, 0, "hidden sizes", "8")
    assert sizes("0") == [0] and sizes.__name__ == "hidden_sizes"
    assert _bad(sizes, ",") == "hidden sizes needs at least 1 integer(s), each at least 0, got ','"


def test_teeth_data_backend_and_limit_args() -> None:
    p = argparse.ArgumentParser()
    C.add_data_args(p)
    C.add_backend_args(p)
    C.add_limit_args(p)
    a = p.parse_args([])
    assert (a.data, a.data_dir, a.download, a.target) == ("default", None, False, None)
    assert (a.backend, a.device, a.threads, a.max_params, a.max_classes) == (None, None, None, None, None)
    a = p.parse_args(
        "--data x.csv --data-dir d --download --target y --backend torch --device cuda --threads 2 "
        "--max-params 9 --max-classes 4".split()
    )
    assert (a.data, a.data_dir, a.download, a.target) == ("x.csv", "d", True, "y")
    assert (a.backend, a.device, a.threads, a.max_params, a.max_classes) == ("torch", "cuda", 2, 9, 4)
    text = " ".join(p.format_help().split())
    assert "(default: default)" in text and "--data NAME|PATH" in text and "--data-dir DIR" in text
    assert "--target NAME" in text and "--max-params N" in text and "--max-classes K" in text
    assert f"more than N parameters (default {limits.LIMITS.max_params:,})" in text
    assert f"more than K classes (default {limits.LIMITS.max_classes:,})" in text
    assert "{numpy,torch,cupy}" in text and "{cpu,cuda}" in text
    for bad in (["--threads", "0"], ["--backend", "jax"], ["--max-classes", "0"]):
        with pytest.raises(SystemExit):
            p.parse_args(bad)
    q = argparse.ArgumentParser()
    C.add_data_args(q, default=None)
    assert q.parse_args([]).data is None and "(default: None)" not in q.format_help()
    assert "or a .csv/.npy/.npz file --data-dir" in " ".join(q.format_help().split())


@dataclasses.dataclass
class _Config:
    a: int
    b: str = "b"
    c: float = 0.5


def test_teeth_config_from() -> None:
    args = argparse.Namespace(a=1, b="x", z=9)
    assert C.config_from(_Config, args) == _Config(1, "x", 0.5)
    assert C.config_from(_Config, args, c=2.0, b="o") == _Config(1, "o", 2.0)


def test_teeth_json_warning_status(capsys: pytest.CaptureFixture[str]) -> None:
    C.json_line({"a": np.int64(1), "b": np.array([0.5, 2.0]), "c": "é"})
    C.warning("two\n  lines")
    C.status("shown", quiet=False)
    C.status("hidden", quiet=True)
    out, err = capsys.readouterr()
    assert out == '{"a":1,"b":[0.5,2.0],"c":"\\u00e9"}\n'
    assert err == "chainrule: warning: two lines\nshown\n"


def test_teeth_number_factory_at_test_time() -> None:
    # the module's parsers are built at import; build fresh ones so the factory's own code is what runs
    even = C._number(int, lambda v: v % 2 == 0, "an even number")
    assert even("4") == 4 and even("0") == 0 and even.__name__ == "an_even_number"
    for t in ("3", "x", "4.0"):
        assert _bad(even, t) == f"expected an even number, got {t!r}"
    anything = C._number(float, lambda v: True, "a float")
    assert anything("-0.0") == 0.0
    assert _bad(anything, "") == "expected a float, got ''"


def test_teeth_entry_exits_with_main_s_status(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr("sys.argv", ["chainrule", "nosuch"])
    with pytest.raises(SystemExit) as e:
        cli.entry()
    assert e.value.code == 2
    assert capsys.readouterr().err.startswith("chainrule: error: chainrule: argument COMMAND: invalid choice")


def _help(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    with pytest.raises(SystemExit):
        cli.main([*argv, "--help"])
    return " ".join(capsys.readouterr().out.split())


def test_teeth_help_texts(capsys: pytest.CaptureFixture[str]) -> None:
    from chainrule.cli.commands import evaluate

    assert cli.main([]) == 2
    top = capsys.readouterr().err
    assert "\n\nNeural networks with hand-derived, checked gradients.\n\n" in top
    assert " ".join(example.HELP.split()) in " ".join(top.split())  # each command's one-line help
    assert " ".join(example.DESCRIPTION.split())[:60] in _help(capsys, "example")  # its own description
    assert not hasattr(evaluate, "DESCRIPTION")
    assert "usage: chainrule evaluate [-h] " in _help(capsys, "evaluate")
    assert " ".join(evaluate.HELP.split()) in _help(capsys, "evaluate")  # else its help is the description


def test_teeth_a_bad_subcommand_value_is_one_usage_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["example", "--lr", "abc"]) == 2
    assert capsys.readouterr().err == (
        "chainrule: error: chainrule example: argument --lr: expected a positive number, got 'abc'\n"
    )


def test_teeth_int_list_factory_at_test_time() -> None:
    sizes = C.int_list(2, 1, "sizes", "8,4")
    assert sizes("1; 2 ,3") == [1, 2, 3] and sizes(" 4 ;5 ") == [4, 5]
    assert _bad(sizes, "1,x") == "sizes must be comma-separated integers like 8,4, got '1,x'"
    assert _bad(sizes, "7") == "sizes needs at least 2 integer(s), each at least 1, got '7'"
    optional = C.int_list(0, 1, "extra", "2")
    assert optional("") == [] and optional(" ; ") == []


def test_teeth_shared_option_help_texts() -> None:
    """The help line of every option the commands share, as ``--help`` shows it."""
    p = argparse.ArgumentParser(prog="x")
    C.add_data_args(p)
    C.add_backend_args(p)
    shown = " ".join(p.format_help().split())
    for line in (
        "--data NAME|PATH 'default' (embedded MNIST subset, offline), 'mnist', an MNIST directory, "
        "or a .csv/.npy/.npz file (default: default)",
        "--data-dir DIR where the MNIST IDX files are (else $CHAINRULE_DATA or the cache)",
        "--download fetch MNIST into the data dir if it is missing",
        "--target NAME label column of a CSV file (default: the last column)",
        "--backend {numpy,torch,cupy} array backend (default: numpy on cpu, fastest on cuda)",
        "--device {cpu,cuda} device (default: cpu)",
        "--threads THREADS BLAS / torch threads on the CPU (default: library default)",
    ):
        assert line in shown
