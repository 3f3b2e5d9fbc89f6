"""``chainrule vanishing``: the vanishing/exploding gradient experiment of seed 004 (Nielsen ch. 5)."""

from __future__ import annotations

import argparse
import sys

from chainrule.cli.commands import _common as c
from chainrule.jobs.vanishing import VanishingConfig, run_vanishing
from chainrule.jobs.vanishing_rnn import run_vanishing_rnn

NAME = "vanishing"
HELP = "measure vanishing and exploding gradients in deep sigmoid/tanh/ReLU nets (seed 004)"
DESCRIPTION = (
    "Train deep fully connected nets (5 and 10 hidden layers of 30 units) with sigmoid, tanh and "
    "ReLU under N(0,1), Xavier and He initialisation, plus a linear net with N(0,1) weights, and "
    "record ‖∂E/∂b^l‖ of every layer at initialisation and during SGD. Prints the first/last "
    "hidden-layer gradient ratio of each net and the σ' ≤ 1/4 bound, and writes PNG plots and "
    "vanishing.json into --out. --quick (5 hidden layers, 200 steps) takes seconds."
)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--quick", action="store_true", help="5 hidden layers, 200 steps, 500-image probe")
    p.add_argument("--out", metavar="DIR", default=".", help="where the PNG plots go (default: .)")
    p.add_argument(
        "--data",
        default="default",
        choices=["default", "mnist"],
        help="'default' (embedded MNIST subset) or 'mnist' (default: default)",
    )
    p.add_argument("--data-dir", metavar="DIR", help="where the MNIST IDX files are (with --data mnist)")
    p.add_argument("--seed", type=c.nonneg_int, default=0)
    p.add_argument("--steps", type=c.positive_int, help="SGD steps per net (default: 200 quick, 1000 full)")
    p.add_argument(
        "--depths",
        type=c.int_list(1, 2, "depths", "5,10"),
        metavar="D,D",
        help="hidden-layer counts, comma separated (default: 5 quick, 5,10 full)",
    )
    p.add_argument("--width", type=c.positive_int, default=30, help="units per hidden layer (default 30)")
    p.add_argument("--no-plots", action="store_true", help="print the tables only")
    p.add_argument("--json", action="store_true", help="print one JSON object (the summary) as the last line")
    p.add_argument("--quiet", action="store_true", help="no progress bar, no tables")
    p.add_argument(
        "--rnn",
        action="store_true",
        help="through time instead: ‖∂E/∂h_t‖ against distance from the loss, tanh RNN vs LSTM (issue 9)",
    )


def _run_rnn(args: argparse.Namespace) -> int:
    res = run_vanishing_rnn(args.out, seed=args.seed, steps=args.steps, plots=not args.no_plots)
    if not args.quiet:
        print(res.result.table, file=sys.stderr if args.json else sys.stdout)
        for path in res.written:
            print(f"wrote {path}", file=sys.stderr)
    if args.json:
        c.json_line({**res.result.to_dict(), "written": [str(p) for p in res.written]})
    return 0


def run(args: argparse.Namespace) -> int:
    if args.rnn:
        return _run_rnn(args)
    cfg = c.config_from(VanishingConfig, args, plots=not args.no_plots, progress=not args.quiet)
    res = run_vanishing(cfg, log=lambda msg: c.status(msg, args.quiet))
    if not args.quiet:
        s = res.result.settings
        stream = sys.stderr if args.json else sys.stdout
        print(
            f"{s['dataset']}: SGD lr {s['lr']}, batch {s['batch_size']}, {s['steps']} steps per net; "
            f"gradient measured as {s['measure']}, {s['probe_size']} rows\n",
            file=stream,
        )
        print(res.result.table, file=stream)
        print("", file=stream)
        print(res.result.bound_table(), file=stream)
        for path in res.written:
            print(f"wrote {path}", file=sys.stderr)
    if args.json:
        summary = res.result.to_dict()
        summary["written"] = [str(p) for p in res.written]
        c.json_line(summary)
    return 0
