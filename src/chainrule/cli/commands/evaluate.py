"""``chainrule evaluate``: accuracy, loss and confusion matrix of a saved model on a dataset (MSE, MAE
and R² for a regression model)."""

from __future__ import annotations

import argparse
import sys

from chainrule.cli.commands import _common as c
from chainrule.jobs.evaluate import EvaluateConfig, EvaluateResult, run_evaluate

NAME = "evaluate"
HELP = "evaluate a saved model on a dataset's test part"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", required=True, metavar="PATH", help="a model saved with `train --save`")
    c.add_data_args(p)
    p.add_argument(
        "--seed",
        type=c.nonneg_int,
        default=None,
        help="seed of the train/test split for CSV/NumPy data (default: the one stored in the model)",
    )
    p.add_argument(
        "--test-fraction", type=c.fraction, default=None, help="default: the one stored in the model"
    )
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--quiet", action="store_true", help="only the result line")


def run(args: argparse.Namespace) -> int:
    res = run_evaluate(c.config_from(EvaluateConfig, args, progress=not args.quiet), warn=c.warning)
    if args.json:
        out = {"task": res.task, "n": res.n, "split_seed": res.split_seed}
        if res.task == "regress":
            out.update(res.metrics)
        else:
            out.update(accuracy=res.accuracy, loss=res.loss, confusion=res.confusion, classes=res.class_names)
        c.json_line(out)
        return 0
    if res.task == "regress":
        m = res.metrics
        print(f"{res.dataset}: R² {m['r2']:.4f}  MSE {m['mse']:.6g}  MAE {m['mae']:.6g}  on {res.n} samples")
        return 0
    print(f"{res.dataset}: accuracy {res.accuracy:.4f}  loss {res.loss:.4f}  on {res.n} samples")
    if not args.quiet:
        _print_confusion(res)
    return 0


def _print_confusion(res: EvaluateResult) -> None:
    conf, names = res.confusion, res.class_names
    label = max(3, *(len(n) for n in names))
    width = max(5, len(str(conf.max())) + 1, *(len(n) + 1 for n in names))
    print("confusion matrix (rows: true class, columns: predicted)", file=sys.stdout)
    print(" " * (label + 1) + "".join(f"{n:>{width}}" for n in names))
    for name, row in zip(names, conf, strict=True):
        print(f"{name:>{label}} " + "".join(f"{v:>{width}}" for v in row))
    print(f"per-class accuracy: {dict(zip(names, res.per_class_accuracy, strict=True))}")
