"""The ``chainrule`` command: ``main(argv) -> exit code``.

Each subcommand lives in its own module under :mod:`chainrule.cli.commands` and exposes ``NAME``,
``HELP``, ``add_arguments(parser)`` and ``run(args) -> int``; they are discovered, not listed here.

Errors a user can cause (bad flags, bad data, missing files, corrupt models) print one line on
stderr, ``chainrule: error: ...``, and exit with status 2 (usage) or 1 (everything else); no
traceback. Anything unexpected is one line too, naming the command and the exception kind;
``--debug`` (anywhere on the line) or ``CHAINRULE_DEBUG=1`` re-raises for a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import os
import pkgutil
import signal
import sys
import threading
from collections.abc import Sequence
from typing import NoReturn

from chainrule import __version__
from chainrule.cli import commands
from chainrule.cli.commands._common import add_limit_args
from chainrule.errors import ChainruleError
from chainrule.limits import override

EXIT_ERROR = 1
EXIT_USAGE = 2


class UsageError(Exception):
    """Raised by the parser instead of printing usage and exiting."""


class Parser(argparse.ArgumentParser):
    """argparse, but a bad flag is one line on stderr (raised, so ``main`` owns the exit)."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{self.prog}: {message}")


def _commands() -> list[object]:
    mods = []
    for info in sorted(pkgutil.iter_modules(commands.__path__), key=lambda m: m.name):
        if info.name.startswith("_"):
            continue
        mod = importlib.import_module(f"{commands.__name__}.{info.name}")
        if hasattr(mod, "NAME") and hasattr(mod, "run"):
            mods.append(mod)
    order = ["train", "evaluate", "predict", "example", "gradcheck", "explain", "seeds"]
    return sorted(mods, key=lambda m: (order.index(m.NAME) if m.NAME in order else 99, m.NAME))


def build_parser() -> Parser:
    parser = Parser(
        prog="chainrule",
        description="Neural networks with hand-derived, checked gradients.",
    )
    parser.add_argument("--version", action="version", version=f"chainrule {__version__}")
    parser.add_argument("--debug", action="store_true", help="show the traceback of an unexpected error")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    for mod in _commands():
        p = sub.add_parser(mod.NAME, help=mod.HELP, description=getattr(mod, "DESCRIPTION", mod.HELP))
        mod.add_arguments(p)
        add_limit_args(p)
        p.set_defaults(_run=mod.run)
    return parser


class Terminated(BaseException):
    """SIGTERM, raised in the main thread so ``finally`` blocks (temp-file clean-up) run."""


def _on_sigterm(signum: int, frame: object) -> NoReturn:
    raise Terminated()


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status instead of exiting.

    Every failure is one line on stderr: a :class:`ChainruleError` or an ``OSError`` prints its
    message; anything unexpected (a bug, ``MemoryError``) prints the command and the exception
    kind, and ``--debug`` (or ``CHAINRULE_DEBUG=1``) re-raises it for the traceback. SIGINT gives
    exit status 130 and SIGTERM 143, after temp files are removed."""
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv or bool(os.environ.get("CHAINRULE_DEBUG"))
    argv = [a for a in argv if a != "--debug"]
    command = next((a for a in argv if not a.startswith("-")), "chainrule")
    old = _install(signal.SIGTERM, _on_sigterm)
    try:
        return _run(argv, debug)
    except KeyboardInterrupt:
        print("chainrule: error: interrupted", file=sys.stderr)
        return 130
    except Terminated:
        print("chainrule: error: terminated", file=sys.stderr)
        return 143
    except Exception as exc:  # the last resort: one line, never a traceback (unless --debug)
        if debug:
            raise
        print(f"chainrule: error: {_unexpected(command, exc)}", file=sys.stderr)
        return EXIT_ERROR
    finally:
        _install(signal.SIGTERM, old)


def _run(argv: list[str], debug: bool) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
        args._argv = argv  # what a command that re-launches itself passes on (train --workers)
        if getattr(args, "_run", None) is None:
            parser.print_help(sys.stderr)
            return EXIT_USAGE
        with override(max_params=args.max_params, max_classes=args.max_classes):
            return int(args._run(args) or 0)
    except UsageError as exc:
        print(f"chainrule: error: {_one_line(str(exc))}", file=sys.stderr)
        return EXIT_USAGE
    except (ChainruleError, OSError) as exc:
        if debug:
            raise
        msg = str(exc) if isinstance(exc, ChainruleError) else _os_message(exc)
        print(f"chainrule: error: {_one_line(msg)}", file=sys.stderr)
        return EXIT_ERROR


def _one_line(msg: str, limit: int = 2000) -> str:
    msg = " ".join(msg.split())
    return msg if len(msg) <= limit else msg[: limit - 3] + "..."


def _unexpected(command: str, exc: BaseException) -> str:
    """The last-resort message: which command failed, and how."""
    kind = type(exc).__name__
    if isinstance(exc, MemoryError):
        return f"{command}: out of memory ({kind}); the input or the sizes asked for are too large"
    if isinstance(exc, RecursionError):
        return f"{command}: input nested too deeply ({kind})"
    detail = _one_line(str(exc), 300)
    return f"{command} failed unexpectedly ({kind}{': ' + detail if detail else ''}); rerun with --debug for the traceback"


def _install(signum: int, handler: object) -> object:
    """Set a signal handler when we can (main thread only); returns the previous one."""
    if threading.current_thread() is not threading.main_thread():
        return None
    try:
        return signal.signal(signum, handler)  # type: ignore[arg-type]
    except (ValueError, TypeError):
        return None


def _os_message(exc: OSError) -> str:
    where = f": {exc.filename}" if getattr(exc, "filename", None) else ""
    return f"{exc.strerror or exc}{where}"


def entry() -> NoReturn:  # pragma: no cover - console script
    sys.exit(main())


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
