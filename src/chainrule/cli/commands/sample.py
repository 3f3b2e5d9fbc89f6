"""``chainrule sample``: generate text from a model saved by ``chainrule lm --save``."""

from __future__ import annotations

import argparse
import sys

from chainrule.cli.commands import _common as c
from chainrule.jobs.sample import SampleConfig, run_sample

NAME = "sample"
HELP = "generate text from a saved character language model"
DESCRIPTION = (
    "Feed --prime through the model, then draw --length characters one at a time from "
    "softmax(logits / --temperature), each fed back in with the hidden state carried."
)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", required=True, metavar="PATH", help="a model saved by `chainrule lm --save`")
    p.add_argument("--prime", default="\n", help="starting text (every character must be in the vocabulary)")
    p.add_argument("--length", type=c.nonneg_int, default=400, help="characters to generate (default 400)")
    p.add_argument(
        "--temperature", type=c.positive_float, default=0.8, help="> 0; lower is more conservative"
    )
    p.add_argument("--seed", type=c.nonneg_int, default=0)


def run(args: argparse.Namespace) -> int:
    sys.stdout.write(run_sample(c.config_from(SampleConfig, args)) + "\n")
    return 0
