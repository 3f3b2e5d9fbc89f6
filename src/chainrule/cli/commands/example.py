"""``chainrule example``: seed 002's worked 3-2-2 sigmoid example, figure by figure."""

from __future__ import annotations

import argparse
import json

from chainrule.cli.commands import _common as c
from chainrule.studies.example import LR, MAX_ITER, RATES, TOLERANCE, render_text, run_example

NAME = "example"
HELP = "rebuild seed 002's worked example and check every figure it prints"
DESCRIPTION = (
    "Rebuild seed 002's 3-2-2 sigmoid network (x = 1,4,5; t = 0.1,0.05; shared biases b1, b2) with "
    "chainrule's layers; print the forward values, every gradient and the updated parameters beside "
    "the post's figures (✓/✗ at 4 decimals), the post's slips with the correct values, and how many "
    "gradient-descent steps several learning rates need."
)


def _rates(text: str) -> list[float]:
    try:
        rates = [float(p) for p in text.split(",") if p.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"rates must be comma-separated numbers, got {text!r}") from None
    if not rates or any(not (r > 0 and r < float("inf")) for r in rates):
        raise argparse.ArgumentTypeError(f"rates must be positive numbers, got {text!r}")
    return rates


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--lr", type=c.positive_float, default=LR, help=f"step size of the one step (default {LR})"
    )
    p.add_argument(
        "--rates",
        type=_rates,
        default=list(RATES),
        metavar="A,B,...",
        help="learning rates of the convergence study (default: %(default)s)",
    )
    p.add_argument(
        "--tolerance",
        type=c.positive_float,
        default=TOLERANCE,
        help="stop when E < this (default %(default)g)",
    )
    p.add_argument("--max-iter", type=c.positive_int, default=MAX_ITER, help="step limit per rate")
    p.add_argument("--no-convergence", action="store_true", help="skip the convergence study")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of tables")


def run(args: argparse.Namespace) -> int:
    res = run_example(
        args.lr,
        rates=None if args.no_convergence else args.rates,
        tolerance=args.tolerance,
        max_iter=args.max_iter,
    )
    if args.json:
        print(json.dumps(res.to_dict(), ensure_ascii=False, indent=1, allow_nan=False))
    else:
        print(render_text(res), end="")
    return 0
