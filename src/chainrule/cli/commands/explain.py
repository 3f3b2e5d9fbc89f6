"""``chainrule explain``: one training step of a small network, forward, backward and update."""

from __future__ import annotations

import argparse
import sys

import numpy as np

from chainrule.cli.commands import _common as c
from chainrule.jobs.explain import ExplainConfig, run_explain
from chainrule.nn.builders import hidden_activations

NAME = "explain"
HELP = "show one forward/backward pass and update of a small network, every gradient checked"
DESCRIPTION = (
    "Print the forward pass, then the backward pass layer by layer with each formula (the seeds' "
    "column form and chainrule's row form), the numbers substituted and a central-difference check "
    "beside every δ and gradient, then the SGD update. The network comes from --layers, --model or "
    "--seed002 (seed 002's worked example). Networks with more than 64 units in a layer, 2000 "
    "parameters or 8 samples are refused: use --summary (per-layer norms, any size)."
)

LOSSES = ("squared", "softmax-ce", "bce")


def _matrix(text: str) -> list[list[float]]:
    """``"1,4,5"`` or ``"1,4,5;2,3,4"`` (rows separated by ';')."""
    rows = []
    for part in text.split(";"):
        if not part.strip():
            continue
        try:
            rows.append([float(v) for v in part.replace(" ", "").split(",") if v])
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"expected comma-separated numbers, rows separated by ';', got {text!r}"
            ) from None
    if not rows or len({len(r) for r in rows}) != 1 or not rows[0]:
        raise argparse.ArgumentTypeError(f"expected equal-length rows of numbers, got {text!r}")
    if not np.all(np.isfinite(rows)):
        raise argparse.ArgumentTypeError(f"numbers must be finite, got {text!r}")
    return rows


def add_arguments(p: argparse.ArgumentParser) -> None:
    net = p.add_mutually_exclusive_group()
    net.add_argument(
        "--layers", type=c.layer_sizes, metavar="D,H,...,K", help="layer sizes of a fresh MLP (default 3,2,2)"
    )
    net.add_argument("--model", metavar="PATH", help="a saved model (chainrule.io.serialize)")
    net.add_argument("--seed002", action="store_true", help="seed 002's worked 3-2-2 example, its x and t")
    # issue 10: one CD-1 step of a tiny RBM instead of a backprop step
    net.add_argument("--rbm", type=c.int_list(2, 1, "rbm", "6,3"), metavar="D,H", help="one CD-1 step of a D x H RBM")
    # -- any layer-spec network (issue 8: a tiny CNN; issue 9: a tiny RNN unrolled through time) ----
    net.add_argument(
        "--arch",
        metavar="SPEC",
        help="a layer-spec network, e.g. 'conv:2:3 relu maxpool:2 flatten dense:3' or 'rnn:3 last dense:2'",
    )
    p.add_argument(
        "--input-shape",
        type=c.int_list(1, 1, "input shape", "1,6,6"),
        metavar="SHAPE",
        help="per-sample input shape of --arch (images C,H,W; sequences T,D)",
    )
    p.add_argument("--activation", default="sigmoid", choices=hidden_activations(), help="hidden activation")
    p.add_argument("--loss", default="squared", choices=LOSSES, help="loss of a fresh MLP (default squared)")
    p.add_argument("--seed", type=c.nonneg_int, default=0, help="weights and any random input (default 0)")
    p.add_argument("--input", type=_matrix, metavar="X", help="input rows: 1,4,5 or 1,4,5;2,3,4")
    tgt = p.add_mutually_exclusive_group()
    tgt.add_argument(
        "--target", type=_matrix, metavar="Y", help="target rows: 0.1,0.05 (one row per input row)"
    )
    tgt.add_argument(
        "--label",
        type=c.int_list(1, 0, "labels", "2 or 0,1,1"),
        metavar="K",
        help="class label(s), one per input row",
    )
    p.add_argument(
        "--batch", type=c.positive_int, default=1, help="random input rows when --input is not given"
    )
    p.add_argument("--lr", type=c.positive_float, help="SGD step size (default 0.1; 0.01 with --seed002)")
    p.add_argument("--format", default="text", choices=["text", "markdown", "json"], help="output format")
    p.add_argument("--summary", action="store_true", help="per-layer norms only (any network size)")
    p.add_argument("--out", metavar="FILE", help="write to FILE (atomically) instead of stdout")


def run(args: argparse.Namespace) -> int:
    res = run_explain(c.config_from(ExplainConfig, args))
    if args.out:
        print(f"wrote {args.out}", file=sys.stderr)
    else:
        sys.stdout.write(res.text)
    return 0 if res.ok else 1
