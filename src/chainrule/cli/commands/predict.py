"""``chainrule predict``: predictions of a saved model for rows of a CSV/NumPy file (or stdin)."""

from __future__ import annotations

import argparse
import sys

import numpy as np

from chainrule.cli.commands import _common as c
from chainrule.jobs.predict import PredictConfig, run_predict

NAME = "predict"
HELP = "predict classes (or values) for the rows of a .csv/.npy/.npz file with a saved model"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", required=True, metavar="PATH")
    p.add_argument(
        "--input",
        required=True,
        metavar="FILE",
        help=".csv (features, optional header), .npy (N, D), .npz (array 'x'), or - for CSV on stdin",
    )
    p.add_argument("--proba", action="store_true", help="also print class probabilities")
    p.add_argument(
        "--out", metavar="CSV", help="write a CSV: prediction, then one p_<class> column per class"
    )
    p.add_argument(
        "--target",
        metavar="NAME",
        help="a label column to drop from a CSV with a header (default: the model's training target)",
    )
    p.add_argument("--json", action="store_true", help="print one JSON object")


def run(args: argparse.Namespace) -> int:
    pred = run_predict(c.config_from(PredictConfig, args))
    proba = pred.probabilities if args.proba else None
    if args.json:
        out = {"predictions": pred.labels}
        if proba is not None:
            out["probabilities"] = np.round(proba, 6)
            out["classes"] = pred.class_names
        c.json_line(out)
        return 0
    if args.out:
        print(f"wrote {len(pred.labels)} predictions to {args.out}", file=sys.stderr)
        return 0
    if proba is not None:
        print("prediction  " + " ".join(f"p_{n}" for n in pred.class_names or []))
    for i, lab in enumerate(pred.labels):
        extra = "  " + " ".join(f"{v:.4f}" for v in proba[i]) if proba is not None else ""
        shown = f"{lab:.6g}" if isinstance(lab, float) else lab
        print(f"{shown}{extra}", file=sys.stdout)
    return 0
