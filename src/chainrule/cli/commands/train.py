"""``chainrule train``: build an MLP, train it, report test accuracy, optionally save it."""

from __future__ import annotations

import argparse
import sys
from typing import Any

import numpy as np

from chainrule.cli.commands import _common as c
from chainrule.jobs.train import TrainConfig, default_lr, run_train
from chainrule.nn.builders import hidden_activations
from chainrule.nn.init import INITIALIZERS
from chainrule.nn.layer import activation_kinds
from chainrule.nn.losses import LOSSES
from chainrule.nn.spec import spec_help
from chainrule.optim import OPTIMIZERS
from chainrule.report.record import RunRecord

NAME = "train"
HELP = "train a fully connected network (default: the embedded MNIST subset)"
DESCRIPTION = (
    "Train an MLP with hand-derived backprop. Without options it trains 784-256-128-10 ReLU with "
    "softmax cross-entropy on the embedded MNIST subset, offline."
)


def add_arguments(p: argparse.ArgumentParser) -> None:
    c.add_data_args(p)
    p.add_argument(
        "--layers",
        type=c.layer_sizes,
        metavar="D,H,...,K",
        help="layer sizes (default: D,256,128,K from the data)",
    )
    p.add_argument(
        "--arch",
        metavar="SPEC",
        help="any architecture as layer words, e.g. 'conv:32:3 relu maxpool:2 flatten dense:10' "
        "(words: " + spec_help() + "); replaces --layers/--activation",
    )
    p.add_argument(
        "--activation",
        default="relu",
        choices=hidden_activations(),
    )
    p.add_argument(
        "--output-activation",
        default="auto",
        choices=["auto", *activation_kinds(), "softmax"],
        help="activation after the last layer (auto: none for softmax-ce/bce, sigmoid for squared)",
    )
    p.add_argument("--loss", default="softmax-ce", choices=list(LOSSES))
    p.add_argument("--optimizer", default="sgd", choices=list(OPTIMIZERS))
    p.add_argument(
        "--lr",
        type=c.positive_float,
        default=None,
        help=f"learning rate (default: {default_lr('sgd')}; {default_lr('adam')} for adam)",
    )
    p.add_argument(
        "--momentum", type=c.fraction, default=0.9, help="momentum for momentum/nesterov (default 0.9)"
    )
    p.add_argument(
        "--batch-size",
        type=c.batch_size,
        default=128,
        help="mini-batch size; 1 = online, 'full' = full batch",
    )
    p.add_argument("--epochs", type=c.positive_int, default=5)
    p.add_argument(
        "--l2",
        type=c.nonneg_float,
        default=0.0,
        help="L2 strength λ: cost += λ/2·ΣW², weights only (seed 001)",
    )
    p.add_argument("--init", default="auto", choices=["auto", *INITIALIZERS])
    p.add_argument("--seed", type=c.nonneg_int, default=0)
    p.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    p.add_argument(
        "--validation-split", type=c.fraction, default=0.0, help="fraction of training data held out"
    )
    p.add_argument(
        "--early-stopping",
        type=c.positive_int,
        metavar="PATIENCE",
        help="stop after PATIENCE epochs without improvement",
    )
    c.add_backend_args(p)
    p.add_argument("--plain", action="store_true", help="use the textbook step instead of the fast runner")
    p.add_argument("--save", metavar="PATH", help="save the trained model (.safetensors)")
    p.add_argument("--plot", metavar="PNG", help="save training curves as a PNG")
    p.add_argument(
        "--log", metavar="JSON", help="save a run record (config, history, evaluation) for `chainrule report`"
    )
    p.add_argument("--report", metavar="HTML", help="write a self-contained HTML report of the run")
    p.add_argument(
        "--flow-interval",
        type=c.positive_int,
        metavar="N",
        help="record per-layer gradient norms every N steps (default 100; on with --report/--log)",
    )
    p.add_argument("--json", action="store_true", help="print one JSON object as the last line")
    p.add_argument("--quiet", action="store_true", help="no progress bar or status lines")


def run(args: argparse.Namespace) -> int:
    cfg = c.config_from(TrainConfig, args, progress=not args.quiet)
    record = run_train(cfg, log=lambda msg: c.status(msg, args.quiet))
    if not args.quiet:
        _print_summary(record, cfg, to_stderr=args.json)
    if args.json:
        c.json_line(_json_summary(record, cfg))
    return 0


def _print_summary(record: RunRecord, cfg: TrainConfig, to_stderr: bool) -> None:
    """The test-accuracy line (stdout, or stderr under --json) and one line per file written."""
    history, ev = record.history, record.evaluation
    if ev is not None:
        print(
            f"test accuracy {ev.accuracy:.4f}  test loss {ev.loss:.4f}  ({len(history.epochs)} epochs, "
            f"median {np.median(history.epoch_seconds):.3f} s/epoch, {history.runner} runner)",
            file=sys.stderr if to_stderr else sys.stdout,
        )
    for what, path in (("model", cfg.save), ("plot", cfg.plot), ("run log", cfg.log), ("report", cfg.report)):
        if path:
            print(f"saved {what} to {path}", file=sys.stderr)


def _json_summary(record: RunRecord, cfg: TrainConfig) -> dict[str, Any]:
    """The one-line JSON object of ``--json``."""
    history, ev = record.history, record.evaluation
    return {
        "test_accuracy": None if ev is None else ev.accuracy,
        "test_loss": None if ev is None else ev.loss,
        "final_loss": history.final_loss,
        "epoch_seconds": history.epoch_seconds,
        "epochs": len(history.epochs),
        "stopped_early": history.stopped_early,
        "history": history.epochs,
        "runner": history.runner,
        "backend": record.config["backend"],
        "layers": record.config["layers"],
        "saved": cfg.save,
    }
