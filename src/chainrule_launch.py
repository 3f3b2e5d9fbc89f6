"""The ``chainrule`` console script's first module: it imports nothing heavy, so a Ctrl-C while
the library is still being imported (numpy and friends take a moment) gives the same one line and
exit status 130 as a Ctrl-C at any later moment, instead of a traceback.

It lives outside the ``chainrule`` package because importing anything inside the package first
runs ``chainrule/__init__.py``, which imports the whole library.
"""

from __future__ import annotations

import sys

INTERRUPTED = 130


def main() -> int:
    try:
        from chainrule.cli import main as cli_main

        return cli_main()
    except KeyboardInterrupt:
        sys.stderr.write("chainrule: error: interrupted\n")
        return INTERRUPTED


def entry() -> None:  # pragma: no cover - console script
    try:
        code = main()
        sys.stdout.flush()
    except KeyboardInterrupt:
        code = INTERRUPTED
        sys.stderr.write("chainrule: error: interrupted\n")
    except BrokenPipeError:
        code = 1
    raise SystemExit(code)


if __name__ == "__main__":  # pragma: no cover
    entry()
