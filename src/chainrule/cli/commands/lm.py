"""``chainrule lm``: train a character-level language model (RNN, LSTM or GRU) by truncated BPTT."""

from __future__ import annotations

import argparse
import sys

from chainrule.cli.commands import _common as c
from chainrule.jobs.lm import CELLS, LMConfig, run_lm

NAME = "lm"
HELP = "train a character-level language model (rnn/lstm/gru) with truncated BPTT and sample from it"
DESCRIPTION = (
    "One-hot characters -> one recurrent layer -> a dense layer at every step, softmax cross-entropy; "
    "the text's last 10%% is held out. The training text is cut into --batch-size contiguous streams "
    "walked --seq-len characters at a time, the hidden state carried from window to window (stateful "
    "truncated BPTT); each step clips the global gradient norm to --clip. Prints validation nats per "
    "character every --eval-every steps and a sample at the end. Without --text it trains on the "
    "embedded opening of Romeo and Juliet."
)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--text", metavar="FILE", help="a UTF-8 text file (default: the embedded Romeo and Juliet)"
    )
    p.add_argument("--cell", default="lstm", choices=CELLS, help="recurrent cell (default lstm; rnn is tanh)")
    p.add_argument("--hidden", type=c.positive_int, default=256, help="hidden units (default 256)")
    p.add_argument(
        "--seq-len", type=c.positive_int, default=64, help="BPTT window in characters (default 64)"
    )
    p.add_argument("--batch-size", type=c.positive_int, default=32, help="parallel streams (default 32)")
    p.add_argument("--steps", type=c.positive_int, default=200, help="training steps (default 200)")
    p.add_argument("--optimizer", default="adam", choices=["sgd", "momentum", "nesterov", "adam"])
    p.add_argument("--lr", type=c.positive_float, default=0.002, help="learning rate (default 0.002)")
    p.add_argument(
        "--clip", type=c.nonneg_float, default=5.0, help="global gradient-norm clip, 0 for none (5)"
    )
    p.add_argument("--eval-every", type=c.positive_int, default=100, help="validate every N steps (100)")
    p.add_argument("--sample-length", type=c.nonneg_int, default=200, help="characters to sample at the end")
    p.add_argument("--temperature", type=c.positive_float, default=0.8, help="sampling temperature (0.8)")
    p.add_argument(
        "--prime", help="text to start the sample with (default: the validation text's first char)"
    )
    p.add_argument("--seed", type=c.nonneg_int, default=0)
    p.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    c.add_backend_args(p)
    p.add_argument("--plain", action="store_true", help="the readable time loops, not the in-place kernels")
    p.add_argument("--save", metavar="PATH", help="save the model and its vocabulary (.safetensors)")
    p.add_argument("--json", action="store_true", help="print one JSON object as the last line")
    p.add_argument("--quiet", action="store_true", help="no status lines")


def run(args: argparse.Namespace) -> int:
    cfg = c.config_from(LMConfig, args, clip=args.clip or None)
    res = run_lm(cfg, log=lambda msg: c.status(msg, args.quiet))
    stream = sys.stderr if args.json else sys.stdout
    if res.sample and not args.quiet:
        print(f"sample ({len(res.sample)} characters, temperature {cfg.temperature}):", file=stream)
        print(res.sample, file=stream)
    if args.save and not args.quiet:
        print(f"wrote {args.save}", file=sys.stderr)
    if args.json:
        c.json_line(res.to_dict())
    else:
        print(f"validation {res.val_nats_per_char:.4f} nats/char after {res.steps} steps")
    return 0
