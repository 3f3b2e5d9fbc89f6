"""``chainrule evaluate``: accuracy, loss and confusion matrix of a saved model on a dataset."""

from __future__ import annotations

import argparse
import sys

from chainrule.cli.commands import _common as c
from chainrule.jobs.evaluate import EvaluateConfig, run_evaluate

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
    res = run_evaluate(c.config_from(EvaluateConfig, args, progress=not args.quiet))
    if args.json:
        c.json_line({"accuracy": res.accuracy, "loss": res.loss, "n": res.n, "confusion": res.confusion})
        return 0
    print(f"{res.dataset}: accuracy {res.accuracy:.4f}  loss {res.loss:.4f}  on {res.n} samples")
    if not args.quiet:
        conf = res.confusion
        width = max(5, len(str(conf.max())) + 1)
        print("confusion matrix (rows: true class, columns: predicted)", file=sys.stdout)
        print(" " * 4 + "".join(f"{j:>{width}}" for j in range(conf.shape[1])))
        for i, row in enumerate(conf):
            print(f"{i:>3} " + "".join(f"{v:>{width}}" for v in row))
        print(f"per-class accuracy: {res.per_class_accuracy}")
    return 0
