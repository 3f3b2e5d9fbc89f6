"""``chainrule train``: build an MLP, train it, report test accuracy, optionally save it."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

import numpy as np

from chainrule import __version__
from chainrule.cli.commands import _common as c
from chainrule.errors import ConfigError

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
        "--activation",
        default="relu",
        choices=["relu", "leaky_relu", "sigmoid", "tanh", "softplus", "identity", "maxout"],
    )
    p.add_argument(
        "--output-activation",
        default="auto",
        choices=["auto", "identity", "sigmoid", "softmax", "tanh", "relu"],
        help="activation after the last layer (auto: none for softmax-ce/bce, sigmoid for squared)",
    )
    p.add_argument("--loss", default="softmax-ce", choices=["softmax-ce", "squared", "bce"])
    p.add_argument("--optimizer", default="sgd", choices=["sgd", "momentum", "nesterov", "adam"])
    p.add_argument(
        "--lr", type=c.positive_float, default=None, help="learning rate (default: 0.1; 0.001 for adam)"
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
    p.add_argument("--init", default="auto", choices=["auto", "normal", "xavier", "he", "lecun"])
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
    from chainrule.backend import get_backend
    from chainrule.nn.builders import mlp
    from chainrule.train.loop import evaluate, fit

    backend = get_backend(args.backend, args.device)  # fail fast on a missing backend
    for out in (args.save, args.plot, args.log, args.report):
        _check_writable(out)
    _check_extras(args)
    data = c.load_dataset(args)
    c.status(data.summary(), args.quiet)
    layers = args.layers or [data.n_features, 256, 128, data.n_classes]
    if layers[0] != data.n_features:
        raise ConfigError(
            f"--layers starts with {layers[0]} inputs but the data has {data.n_features} features"
        )
    binary_single = args.loss in ("bce", "squared") and layers[-1] == 1 and data.n_classes == 2
    if layers[-1] != data.n_classes and not binary_single:
        raise ConfigError(
            f"--layers ends with {layers[-1]} outputs but the data has {data.n_classes} classes"
        )
    lr = args.lr if args.lr is not None else (0.001 if args.optimizer == "adam" else 0.1)
    net = mlp(
        layers,
        args.activation,
        loss=args.loss,
        output_activation=args.output_activation,
        init=args.init,
        seed=args.seed,
        dtype=np.dtype(args.dtype),
    )
    net.to(backend, args.dtype)
    opt_kwargs: dict[str, Any] = (
        {"momentum": args.momentum} if args.optimizer in ("momentum", "nesterov") else {}
    )
    callbacks = []
    flow = None
    if args.flow_interval or args.report or args.log:
        from chainrule.train.flow import GradientFlow

        flow = GradientFlow(**({"interval": args.flow_interval} if args.flow_interval else {}))
        callbacks.append(flow)
    from chainrule.accel.fast import limit_threads

    with limit_threads(args.threads):
        history = fit(
            net,
            data.x_train,
            data.y_train,
            optimizer=args.optimizer,
            lr=lr,
            batch_size=args.batch_size,
            epochs=args.epochs,
            l2=args.l2,
            seed=args.seed,
            validation_split=args.validation_split,
            early_stopping=args.early_stopping,
            callbacks=callbacks,
            progress=not args.quiet,
            fast=not args.plain,
            **opt_kwargs,
        )
        xt = backend.asarray(data.x_test, dtype=args.dtype)
        yt = backend.asarray(data.y_test)
        ev = evaluate(net, xt, yt) if data.n_test else None
    config = {k: v for k, v in vars(args).items() if not k.startswith("_")}
    config.update(layers=layers, lr=lr, backend=str(backend), runner=history.runner, dataset=data.name)
    record = {
        "chainrule_version": __version__,
        "config": config,
        "history": history.to_dict(),
        "evaluation": None
        if ev is None
        else {"loss": ev["loss"], "accuracy": ev["accuracy"], "confusion": ev["confusion"].tolist()},
        "gradient_flow": None if flow is None else flow.to_dict(),
    }
    if args.save:
        from chainrule.io.serialize import save

        save(
            net,
            args.save,
            info={
                "class_names": data.class_names,
                "n_classes": data.n_classes,
                "dataset": data.name,
                "train_config": config,
            },
        )
    if args.plot:
        from chainrule.report.plots import plot_history

        plot_history(history, args.plot)
    if args.log:
        from chainrule._io import atomic_write_text

        atomic_write_text(args.log, json.dumps(record, default=c._default, indent=1))
    if args.report:
        from chainrule.report.html import write_report

        write_report(json.loads(json.dumps(record, default=c._default)), args.report)
    secs = history.epoch_seconds
    if not args.quiet:
        if ev is not None:
            print(
                f"test accuracy {ev['accuracy']:.4f}  test loss {ev['loss']:.4f}  "
                f"({len(history.epochs)} epochs, median {np.median(secs):.3f} s/epoch, {history.runner} runner)",
                file=sys.stdout if not args.json else sys.stderr,
            )
        for what, path in (
            ("model", args.save),
            ("plot", args.plot),
            ("run log", args.log),
            ("report", args.report),
        ):
            if path:
                print(f"saved {what} to {path}", file=sys.stderr)
    if args.json:
        c.json_line(
            {
                "test_accuracy": None if ev is None else ev["accuracy"],
                "test_loss": None if ev is None else ev["loss"],
                "final_loss": history.final_loss,
                "epoch_seconds": secs,
                "epochs": len(history.epochs),
                "stopped_early": history.stopped_early,
                "history": history.epochs,
                "runner": history.runner,
                "backend": str(backend),
                "layers": layers,
                "saved": args.save,
            }
        )
    return 0


def _check_extras(args: argparse.Namespace) -> None:
    """Fail before training, not after, when an output needs an optional package that is missing."""
    import importlib.util

    from chainrule.errors import MissingDependencyError

    needs = [
        ("safetensors", "--save", "cli", args.save),
        ("matplotlib", "--plot/--report", "plot", args.plot or args.report),
    ]
    for package, feature, extra, wanted in needs:
        if wanted and importlib.util.find_spec(package) is None:
            raise MissingDependencyError(package, feature, extra)


def _check_writable(path: str | None) -> None:
    """Fail before training, not after, when an output's directory does not exist."""
    if not path:
        return
    from pathlib import Path

    parent = Path(path).expanduser().resolve().parent
    if not parent.is_dir():
        raise ConfigError(f"cannot write {path}: directory {parent} does not exist")
