"""``chainrule predict``: class predictions of a saved model for rows of a CSV/NumPy file."""

from __future__ import annotations

import argparse
import sys

import numpy as np

from chainrule.cli.commands import _common as c
from chainrule.jobs.predict import PredictConfig, run_predict

NAME = "predict"
HELP = "predict classes for the rows of a .csv/.npy file with a saved model"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", required=True, metavar="PATH")
    p.add_argument(
        "--input", required=True, metavar="FILE", help=".csv (features only, optional header) or .npy (N, D)"
    )
    p.add_argument("--proba", action="store_true", help="also print class probabilities")
    p.add_argument("--json", action="store_true", help="print one JSON object")


def run(args: argparse.Namespace) -> int:
    pred = run_predict(c.config_from(PredictConfig, args))
    proba = pred.probabilities
    if args.json:
        out = {"predictions": pred.labels}
        if proba is not None:
            out["probabilities"] = np.round(proba, 6)
        c.json_line(out)
        return 0
    for i, lab in enumerate(pred.labels):
        extra = "  " + " ".join(f"{v:.4f}" for v in proba[i]) if proba is not None else ""
        print(f"{lab}{extra}", file=sys.stdout)
    return 0
