"""``chainrule rbm``: a restricted Boltzmann machine trained by contrastive divergence."""

from __future__ import annotations

import argparse
import sys

from chainrule.cli.commands import _common as c
from chainrule.jobs.rbm import RBMConfig, run_rbm

NAME = "rbm"
HELP = "train an RBM by CD-k or persistent CD; pseudo-log-likelihood, AIS log-likelihood, pictures"
DESCRIPTION = (
    "Train a Bernoulli-Bernoulli (or Gaussian-Bernoulli) RBM by contrastive divergence (CD-k, or PCD-k "
    "with --persistent), float32. Each epoch reports its seconds, the pseudo-log-likelihood of the "
    "first --score-images test images (scikit-learn's score_samples definition and flips, "
    "random_state=--seed) and the reconstruction error; --ais estimates log Z by annealed importance "
    "sampling and the test log-likelihood with its standard error (exact enumeration too for <= 20 "
    "hidden units). Bernoulli units need binary data: --binarize T maps x > T to 1."
)


def add_arguments(p: argparse.ArgumentParser) -> None:
    c.add_data_args(p, default="mnist")
    p.add_argument("--hidden", type=c.positive_int, default=500)
    p.add_argument("--visible", choices=["bernoulli", "gaussian"], default="bernoulli")
    p.add_argument("--binarize", type=float, metavar="T", help="binarise the data: x > T -> 1, else 0")
    p.add_argument("--cd", type=c.positive_int, default=1, metavar="K", help="Gibbs steps per update (default 1)")
    p.add_argument("--persistent", action="store_true", help="persistent CD (PCD): keep the chain across batches")
    p.add_argument("--lr", type=c.positive_float, default=0.05)
    p.add_argument("--batch-size", type=c.positive_int, default=100)
    p.add_argument("--momentum", type=c.fraction, default=0.0)
    p.add_argument("--weight-decay", type=c.nonneg_float, default=0.0)
    p.add_argument("--epochs", type=c.nonneg_int, default=10)
    p.add_argument("--no-shuffle", dest="shuffle", action="store_false", help="batches in file order (scikit-learn)")
    p.add_argument("--train-images", type=c.positive_int, help="use only the first N training images")
    p.add_argument("--score-images", type=c.positive_int, default=2000, help="test images scored (default 2000)")
    p.add_argument("--ais", action="store_true", help="estimate log Z by AIS and report the test log-likelihood")
    p.add_argument("--ais-runs", type=c.positive_int, default=100)
    p.add_argument("--ais-betas", type=c.positive_int, default=10000)
    p.add_argument("--seed", type=c.nonneg_int, default=0)
    p.add_argument("--load", metavar="M", help="start from an RBM saved by --save")
    p.add_argument("--save", metavar="M", help="save the RBM (.npz: W, b, c, config)")
    p.add_argument("--out", metavar="DIR", help="write rbm_filters.png, rbm_samples.png and rbm.json")
    p.add_argument("--json", action="store_true", help="print one JSON object as the last line")
    p.add_argument("--quiet", action="store_true")


def run(args: argparse.Namespace) -> int:
    cfg = c.config_from(RBMConfig, args, progress=not args.quiet)
    res = run_rbm(cfg, log=lambda msg: c.status(msg, args.quiet))
    s = res.summary
    if not args.quiet:
        stream = sys.stderr if args.json else sys.stdout
        pll = s["final"].get("pseudo_log_likelihood")
        print(f"{s['method']} {res.rbm}: reconstruction error {s['final']['reconstruction_error']:.3f}"
              + (f", pseudo-log-likelihood {pll:.3f}" if pll is not None else ""), file=stream)
        for path in res.written:
            print(f"wrote {path}", file=sys.stderr)
    if args.json:
        c.json_line({**s, "written": [str(p) for p in res.written]})
    return 0
