"""``chainrule evaluate``: accuracy, loss and confusion matrix of a saved model on a dataset."""

from __future__ import annotations

import argparse
import sys

import numpy as np

from chainrule.cli.commands import _common as c

NAME = "evaluate"
HELP = "evaluate a saved model on a dataset's test part"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", required=True, metavar="PATH", help="a model saved with `train --save`")
    c.add_data_args(p)
    p.add_argument(
        "--seed", type=c.nonneg_int, default=0, help="seed of the train/test split for CSV/NumPy data"
    )
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--quiet", action="store_true")


def run(args: argparse.Namespace) -> int:
    from chainrule.io.serialize import load
    from chainrule.train.loop import evaluate

    net = load(args.model)
    data = c.load_dataset(args)
    c.check_model_fits(net, data.n_features, data.n_classes)
    x, y = (data.x_test, data.y_test) if data.n_test else (data.x_train, data.y_train)
    ev = evaluate(net, x.astype(net.dtype, copy=False), y)
    if args.json:
        c.json_line(
            {"accuracy": ev["accuracy"], "loss": ev["loss"], "n": ev["n"], "confusion": ev["confusion"]}
        )
        return 0
    print(f"{data.name}: accuracy {ev['accuracy']:.4f}  loss {ev['loss']:.4f}  on {ev['n']} samples")
    if not args.quiet:
        conf = ev["confusion"]
        width = max(5, len(str(conf.max())) + 1)
        print("confusion matrix (rows: true class, columns: predicted)", file=sys.stdout)
        print(" " * 4 + "".join(f"{j:>{width}}" for j in range(conf.shape[1])))
        for i, row in enumerate(conf):
            print(f"{i:>3} " + "".join(f"{v:>{width}}" for v in row))
        print(f"per-class accuracy: {np.round(np.diag(conf) / np.maximum(conf.sum(1), 1), 3).tolist()}")
    return 0
