"""``chainrule bench``: chainrule and PyTorch autograd side by side, one JSON object out."""

from __future__ import annotations

import argparse
import sys

from chainrule.cli.commands import _common as c
from chainrule.jobs.bench import BenchConfig, run_bench
from chainrule.nn.layer import activation_kinds

NAME = "bench"
HELP = "time chainrule against PyTorch autograd on the same net, weights and shuffles"
DESCRIPTION = (
    "Train the same MLP (softmax cross-entropy, plain SGD) from the same initial weights with "
    "chainrule's fast runner, its plain runner and PyTorch autograd (eager; + CUDA graph on a GPU), "
    "epoch by epoch in one process, then measure each one's peak memory in its own subprocess. "
    "Prints one JSON object (the last line): epoch seconds, medians, ratios, test accuracy, peak "
    "memory, BLAS and versions. See benchmarks/README.md."
)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--layers", type=c.layer_sizes, default=[784, 256, 128, 10], metavar="D,H,...,K")
    p.add_argument(
        "--activation",
        default="relu",
        choices=activation_kinds(),
    )
    p.add_argument(
        "--arch",
        metavar="SPEC",
        help="any layer-spec network instead of the MLP (conv nets; PyTorch gets the same modules and "
        "weights), e.g. the reference CNN 'conv:32:3 relu maxpool:2 conv:64:3 relu maxpool:2 flatten "
        "dense:128 relu dense:10'",
    )
    p.add_argument("--momentum", type=c.fraction, default=0.0, help="SGD momentum for both sides (default 0)")
    p.add_argument("--batch-size", type=c.positive_int, default=128)
    p.add_argument("--epochs", type=c.positive_int, default=5)
    p.add_argument("--lr", type=c.positive_float, default=0.1)
    c.add_backend_args(p)
    p.add_argument("--data", default="mnist", help="'mnist' (default), 'default' (embedded subset) or a path")
    p.add_argument(
        "--data-dir", metavar="DIR", help="where the MNIST IDX files are (else $CHAINRULE_DATA or the cache)"
    )
    p.add_argument("--seed", type=c.nonneg_int, default=0)
    p.add_argument(
        "--quick", action="store_true", help="2 epochs, no plain runner, memory workers train 1 epoch"
    )
    p.add_argument("--no-plain", action="store_true", help="skip chainrule's plain runner")
    p.add_argument("--no-torch", action="store_true", help="skip PyTorch (chainrule only)")
    p.add_argument("--no-memory", action="store_true", help="skip the peak-memory subprocesses")
    p.add_argument(
        "--cooldown",
        type=c.nonneg_float,
        default=0.25,
        help="seconds of idle before each timed epoch (default 0.25)",
    )
    p.add_argument("--quiet", action="store_true", help="no progress bar or status lines on stderr")


def run(args: argparse.Namespace) -> int:
    cfg = BenchConfig(
        layers=args.layers,
        activation=args.activation,
        arch=args.arch,
        momentum=args.momentum,
        batch_size=args.batch_size,
        epochs=2 if args.quick and args.epochs == 5 else args.epochs,
        lr=args.lr,
        device=args.device or "cpu",
        backend=args.backend,
        threads=args.threads,
        data=args.data,
        data_dir=args.data_dir,
        seed=args.seed,
        plain=not (args.no_plain or args.quick),
        torch=not args.no_torch,
        memory=not args.no_memory,
        memory_epochs=1 if args.quick else None,
        cooldown=args.cooldown,
        progress=not args.quiet and sys.stderr.isatty(),
    )
    result = run_bench(cfg, log=None if args.quiet else (lambda msg: print(msg, file=sys.stderr)))
    if not args.quiet:
        med, ratios = result["median_epoch_seconds"], result["ratios"]
        parts = [f"{k} {v:.3f}s" for k, v in med.items()]
        print("median epoch: " + ", ".join(parts), file=sys.stderr)
        if ratios:
            print("ratios: " + ", ".join(f"{k} {v}" for k, v in ratios.items()), file=sys.stderr)
    c.json_line(result)
    return 0
