"""The ``chainrule`` command: ``main(argv) -> exit code``.

Each subcommand lives in its own module under :mod:`chainrule.cli.commands` and exposes ``NAME``,
``HELP``, ``add_arguments(parser)`` and ``run(args) -> int``; they are discovered, not listed here.

Errors a user can cause (bad flags, bad data, missing files, corrupt models) print one line on
stderr, ``chainrule: error: ...``, and exit with status 2 (usage) or 1 (everything else); no
traceback. ``CHAINRULE_DEBUG=1`` re-raises for a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import os
import pkgutil
import sys
from collections.abc import Sequence
from typing import NoReturn

from chainrule import __version__
from chainrule.cli import commands
from chainrule.errors import ChainruleError

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
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    for mod in _commands():
        p = sub.add_parser(mod.NAME, help=mod.HELP, description=getattr(mod, "DESCRIPTION", mod.HELP))
        mod.add_arguments(p)
        p.set_defaults(_run=mod.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status instead of exiting."""
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
        args._argv = argv  # what a command that re-launches itself passes on (train --workers)
        if getattr(args, "_run", None) is None:
            parser.print_help(sys.stderr)
            return EXIT_USAGE
        return int(args._run(args) or 0)
    except UsageError as exc:
        print(f"chainrule: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except (ChainruleError, OSError) as exc:
        if os.environ.get("CHAINRULE_DEBUG"):
            raise
        msg = str(exc) if isinstance(exc, ChainruleError) else _os_message(exc)
        print(f"chainrule: error: {' '.join(msg.split())}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("chainrule: interrupted", file=sys.stderr)
        return 130


def _os_message(exc: OSError) -> str:
    where = f": {exc.filename}" if getattr(exc, "filename", None) else ""
    return f"{exc.strerror or exc}{where}"


def entry() -> NoReturn:  # pragma: no cover - console script
    sys.exit(main())


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
