"""``chainrule seeds``: the five seed posts formula by formula, with live checks and errata."""

from __future__ import annotations

import argparse
import sys

from chainrule.jobs.seeds import SeedsConfig, run_seeds
from chainrule.studies.seeds import SEEDS

NAME = "seeds"
HELP = "walk through the seed posts: each formula, its chainrule implementation, a live check, the slips"
DESCRIPTION = (
    "For each of the five seed posts: the formula as the post states it, the same in chainrule's row "
    "layout, the function that implements it, and a check run now (gradient check or exact value); "
    "then every slip found in the post, with the correct form and the values computed live."
)


def _seeds(text: str) -> list[str]:
    out = []
    for part in text.split(","):
        p = part.strip()
        if not p:
            continue
        key = p.zfill(3) if p.isdigit() else p
        if key not in SEEDS:
            raise argparse.ArgumentTypeError(f"unknown seed {p!r}; choose from {', '.join(SEEDS)}")
        out.append(key)
    if not out:
        raise argparse.ArgumentTypeError("name at least one seed, e.g. 002 or 2,3")
    return out


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--format", default="text", choices=["text", "markdown", "json"], help="output format")
    p.add_argument("--json", action="store_true", help="same as --format json")
    p.add_argument("--only", type=_seeds, metavar="S,...", help="only these posts (000-004, e.g. 2,3)")
    p.add_argument("--errata", action="store_true", help="list the slips only")


def run(args: argparse.Namespace) -> int:
    out = run_seeds(
        SeedsConfig(only=args.only, format="json" if args.json else args.format, errata=args.errata)
    )
    sys.stdout.write(out.text)
    return 0 if out.ok else 1
