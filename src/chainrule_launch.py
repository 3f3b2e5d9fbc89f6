"""The ``chainrule`` console script's first module: it imports nothing heavy, so a Ctrl-C while
the library is still being imported (numpy and friends take a moment) gives the same one line and
exit status 130 as a Ctrl-C at any later moment, instead of a traceback.

It lives outside the ``chainrule`` package because importing anything inside the package first
runs ``chainrule/__init__.py``, which imports the whole library. A Ctrl-C during an import can
surface as another exception (numpy wraps it in an ``ImportError``), so a SIGINT seen here turns
whatever the import raised into the interrupted line.
"""

import _signal  # the C module: ``signal`` imports enum, which takes a moment we cannot guard
import sys

INTERRUPTED = 130
TERMINATED = 143
_seen: list[int] = []


class _Terminated(BaseException):
    """SIGTERM before ``chainrule.cli.main`` installs its own handler (which cleans temp files)."""


def _on_sigterm(signum: int, frame: object) -> None:
    raise _Terminated


def _on_sigint(signum: int, frame: object) -> None:
    _seen.append(signum)
    raise KeyboardInterrupt


def _interrupted() -> int:
    sys.stderr.write("chainrule: error: interrupted\n")
    return INTERRUPTED


def main() -> int:
    _signal.signal(_signal.SIGINT, _on_sigint)
    _signal.signal(_signal.SIGTERM, _on_sigterm)
    try:
        from chainrule.cli import main as cli_main
    except KeyboardInterrupt:
        return _interrupted()
    except _Terminated:
        sys.stderr.write("chainrule: error: terminated\n")
        return TERMINATED
    except Exception as exc:
        if _seen:
            return _interrupted()
        sys.stderr.write(
            f"chainrule: error: cannot start ({type(exc).__name__}: {' '.join(str(exc).split())[:300]})\n"
        )
        return 1
    _signal.signal(_signal.SIGINT, _signal.default_int_handler)
    try:
        return cli_main()
    except KeyboardInterrupt:
        return _interrupted()
    except _Terminated:
        sys.stderr.write("chainrule: error: terminated\n")
        return TERMINATED


def entry() -> None:  # pragma: no cover - console script
    _signal.signal(_signal.SIGINT, _on_sigint)
    _signal.signal(_signal.SIGTERM, _on_sigterm)
    try:
        code = main()
        sys.stdout.flush()
    except KeyboardInterrupt:
        code = _interrupted()
    except BrokenPipeError:
        code = 1
    raise SystemExit(code)


if __name__ == "__main__":  # pragma: no cover
    entry()
