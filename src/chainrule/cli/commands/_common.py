"""Option types and helpers shared by the subcommands."""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import sys
from collections.abc import Callable
from typing import Any, TypeVar

from chainrule._io import json_default
from chainrule.limits import LIMITS

T = TypeVar("T")


def _number(cast: Callable[[str], Any], ok: Callable[[Any], bool], what: str) -> Callable[[str], Any]:
    """An argparse ``type=``: ``cast`` the text and accept it when ``ok``, else name ``what``."""

    def parse(text: str) -> Any:
        try:
            value = cast(text)
        except ValueError:
            value = None
        if value is None or not ok(value):
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}")
        return value

    parse.__name__ = what.replace(" ", "_")
    return parse


positive_int = _number(int, lambda v: v >= 1, "a positive integer")
nonneg_int = _number(int, lambda v: v >= 0, "a non-negative integer")
positive_float = _number(float, lambda v: v > 0 and math.isfinite(v), "a positive number")
nonneg_float = _number(float, lambda v: v >= 0 and math.isfinite(v), "a non-negative number")
fraction = _number(float, lambda v: 0 <= v < 1, "a fraction in [0, 1)")


def batch_size(text: str) -> int:
    """A positive integer, or ``full`` (0) for full-batch gradient descent."""
    if text.strip().lower() in ("full", "all", "0"):
        return 0
    return positive_int(text)


def int_list(min_len: int, min_value: int, what: str, example: str) -> Callable[[str], list[int]]:
    """An argparse ``type=`` for comma- (or semicolon-) separated integers: at least ``min_len``
    of them, each at least ``min_value``; errors name ``what`` and show ``example``."""

    def parse(text: str) -> list[int]:
        parts = [t for t in text.replace(";", ",").replace(" ", "").split(",") if t]
        try:
            values = [int(t) for t in parts]
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"{what} must be comma-separated integers like {example}, got {text!r}"
            ) from None
        if len(values) < min_len or min(values, default=min_value) < min_value:
            raise argparse.ArgumentTypeError(
                f"{what} needs at least {min_len} integer(s), each at least {min_value}, got {text!r}"
            )
        return values

    parse.__name__ = what.replace(" ", "_")
    return parse


layer_sizes = int_list(2, 1, "layers", "784,256,10")


def add_data_args(p: argparse.ArgumentParser, default: str | None = "default") -> None:
    p.add_argument(
        "--data",
        default=default,
        metavar="NAME|PATH",
        help="'default' (embedded MNIST subset, offline), 'mnist', an MNIST directory, or a .csv/.npy/.npz file"
        + (f" (default: {default})" if default else ""),
    )
    p.add_argument(
        "--data-dir", metavar="DIR", help="where the MNIST IDX files are (else $CHAINRULE_DATA or the cache)"
    )
    p.add_argument("--download", action="store_true", help="fetch MNIST into the data dir if it is missing")
    p.add_argument("--target", metavar="NAME", help="label column of a CSV file (default: the last column)")


def add_backend_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--backend",
        choices=["numpy", "torch", "cupy"],
        help="array backend (default: numpy on cpu, fastest on cuda)",
    )
    p.add_argument("--device", choices=["cpu", "cuda"], help="device (default: cpu)")
    p.add_argument(
        "--threads", type=positive_int, help="BLAS / torch threads on the CPU (default: library default)"
    )


def add_limit_args(p: argparse.ArgumentParser) -> None:
    """``--max-params`` and ``--max-classes`` (every command has them; see :mod:`chainrule.limits`)."""
    p.add_argument(
        "--max-params",
        type=positive_int,
        metavar="N",
        help=f"refuse networks with more than N parameters (default {LIMITS.max_params:,})",
    )
    p.add_argument(
        "--max-classes",
        type=positive_int,
        metavar="K",
        help=f"refuse datasets with more than K classes (default {LIMITS.max_classes:,})",
    )


def config_from(cls: type[T], args: argparse.Namespace, **overrides: Any) -> T:
    """The dataclass ``cls`` (a job's config) from the parsed options of the same names, then
    ``overrides`` (for fields without an option of their name, e.g. ``progress=not args.quiet``)."""
    values = {f.name: getattr(args, f.name) for f in dataclasses.fields(cls) if hasattr(args, f.name)}
    return cls(**{**values, **overrides})


def json_line(obj: Any) -> None:
    """Print one JSON object on one line to stdout (the machine-readable last line)."""
    print(json.dumps(obj, default=json_default, separators=(",", ":")))


def warning(msg: str) -> None:
    """A warning about the data or options: one line on stderr, shown even under --quiet."""
    print(f"chainrule: warning: {' '.join(msg.split())}", file=sys.stderr)


def status(msg: str, quiet: bool) -> None:
    if not quiet:
        print(msg, file=sys.stderr)
