"""``chainrule train``: build an MLP, train it, report test accuracy, optionally save it."""

from __future__ import annotations

import argparse
import sys
from typing import Any

import numpy as np

from chainrule.cli.commands import _common as c
from chainrule.errors import ConfigError
from chainrule.io.dataset import TASKS
from chainrule.io.scaling import SCALES
from chainrule.jobs.train import TrainConfig, default_lr, run_train
from chainrule.nn.builders import hidden_activations
from chainrule.nn.init import INITIALIZERS
from chainrule.nn.layer import activation_kinds
from chainrule.nn.losses import LOSSES
from chainrule.nn.spec import spec_help
from chainrule.optim import OPTIMIZERS
from chainrule.parallel import current_world, launch, mpi_job_size
from chainrule.parallel.shards import check_batch
from chainrule.report.record import RunRecord
from chainrule.train.schedules import SCHEDULES

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
    p.add_argument("--loss", choices=list(LOSSES), help="default: softmax-ce (classify), squared (regress)")
    p.add_argument("--optimizer", choices=list(OPTIMIZERS), help="default: adam for tables, sgd for images")
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
        default=None,
        help="mini-batch size; 1 = online, 'full' = full batch (default: 128, at most N)",
    )
    p.add_argument(
        "--epochs", type=c.positive_int, help="default: 200 with early stopping for tables, 5 for images"
    )
    p.add_argument("--augment", choices=["shift"], help="'shift': add 1-pixel shifts, x5 (Nielsen ch. 6)")
    p.add_argument(
        "--l2",
        type=c.nonneg_float,
        default=None,
        help="L2 strength λ: cost += λ/2·ΣW², weights only (seed 001); default 1e-3 for tables, 0 for images",
    )
    p.add_argument("--init", default="auto", choices=["auto", *INITIALIZERS])
    p.add_argument("--seed", type=c.nonneg_int, default=0)
    p.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    p.add_argument(
        "--validation-split",
        type=c.fraction,
        help="fraction of training data held out (default: 0.1 for tables, 0 for images)",
    )
    p.add_argument(
        "--early-stopping",
        type=c.nonneg_int,
        metavar="PATIENCE",
        help="stop after PATIENCE epochs without improvement, keep the best weights "
        "(default: 10 for tables without --epochs; 0 = off)",
    )
    _add_tabular_args(p)
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
    p.add_argument(
        "--quiet", action="store_true", help="no progress bar or status lines (the result line stays)"
    )
    # -- data parallel (docs/distributed.md) ---------------------------------------------------
    p.add_argument(
        "--workers",
        type=c.positive_int,
        metavar="N",
        help="train data-parallel on N MPI processes of this machine (the mpi extra); "
        "across hosts run `mpiexec -n N chainrule train ...`",
    )
    p.add_argument(
        "--drop-remainder",
        action="store_true",
        help="with several ranks, drop the samples of a batch that do not split evenly over them",
    )
    p.add_argument("--verbose", action="store_true", help="one line of metrics per epoch (validation too)")


def _add_tabular_args(p: argparse.ArgumentParser) -> None:
    """Options for real tabular data, regression, schedules, checkpoints and fine-tuning (issue 11)."""
    p.add_argument(
        "--task", default="auto", choices=TASKS, help="classify or regress (auto: from the target column)"
    )
    p.add_argument(
        "--scale",
        default="auto",
        choices=["auto", *SCALES],
        help="feature scaling fitted on the training rows and saved in the model (auto: standard "
        "for tables, none for images)",
    )
    p.add_argument(
        "--test-fraction",
        type=c.fraction,
        default=0.2,
        help="rows of a .csv/.npy file held out for testing (default 0.2; stored in the model)",
    )
    p.add_argument("--schedule", default="none", choices=SCHEDULES, help="learning-rate schedule")
    p.add_argument("--checkpoint", metavar="DIR", help="write DIR/checkpoint.npz atomically while training")
    p.add_argument(
        "--checkpoint-every", type=c.positive_int, default=1, metavar="N", help="checkpoint every N epochs"
    )
    p.add_argument(
        "--resume", metavar="DIR", help="continue the run checkpointed in DIR exactly (same options)"
    )
    p.add_argument("--init-from", metavar="MODEL", help="start from a saved model's weights and scaling")
    p.add_argument(
        "--no-guard",
        dest="guard",
        action="store_false",
        help="do not stop a run whose loss diverges or stays at chance level",
    )


def run(args: argparse.Namespace) -> int:
    # -- data parallel: --workers launches the ranks; inside an MPI job every rank trains ----
    if args.workers and args.workers > 1 and mpi_job_size() == 1:
        check_batch(args.batch_size, args.workers, args.drop_remainder)
        return launch(args.workers, getattr(args, "_argv", None) or sys.argv[1:], threads=args.threads)
    world = current_world()
    if args.workers and args.workers != world.size:
        raise ConfigError(f"--workers {args.workers} inside an MPI job of {world.size} ranks")
    if world.distributed:
        if not world.is_root:  # rank 0 alone prints (and, in the job, writes)
            args.quiet = True
        return world.guarded(lambda: _run(args, speak=world.is_root))
    return _run(args)


def _run(args: argparse.Namespace, speak: bool = True) -> int:
    cfg = c.config_from(TrainConfig, args, progress=not args.quiet)
    record = run_train(cfg, log=lambda msg: c.status(msg, args.quiet), warn=c.warning if speak else None)
    if not speak:  # another rank than 0 of an MPI job: rank 0 prints the results
        return 0
    _print_summary(record, cfg, to_stderr=args.json, quiet=args.quiet)
    if args.json:
        c.json_line(_json_summary(record, cfg))
    return 0


def _print_summary(record: RunRecord, cfg: TrainConfig, to_stderr: bool, quiet: bool = False) -> None:
    """The result line (stdout, or stderr under --json; kept under --quiet) and one line per file
    written."""
    history, ev = record.history, record.evaluation
    timing = (
        f"({len(history.epochs)} epochs, median {np.median(history.epoch_seconds):.3f} s/epoch, "
        f"{history.runner} runner)"
    )
    reg = record.config.get("test_metrics")
    out = sys.stderr if to_stderr else sys.stdout
    if reg is not None:
        print(f"test R² {reg['r2']:.4f}  MSE {reg['mse']:.6g}  MAE {reg['mae']:.6g}  {timing}", file=out)
    elif ev is not None:
        print(f"test accuracy {ev.accuracy:.4f}  test loss {ev.loss:.4f}  {timing}", file=out)
    else:
        print(f"final training loss {history.final_loss:.4f}  {timing}", file=out)
    if quiet:
        return
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
        "task": record.config["task"],
        "test_metrics": record.config.get("test_metrics"),
        "saved": cfg.save,
    }
