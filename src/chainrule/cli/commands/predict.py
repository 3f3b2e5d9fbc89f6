"""``chainrule predict``: class predictions of a saved model for rows of a CSV/NumPy file."""

from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path

import numpy as np

from chainrule.cli.commands import _common as c
from chainrule.errors import DataError, DataNotFoundError

NAME = "predict"
HELP = "predict classes for the rows of a .csv/.npy file with a saved model"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", required=True, metavar="PATH")
    p.add_argument(
        "--input", required=True, metavar="FILE", help=".csv (features only, optional header) or .npy (N, D)"
    )
    p.add_argument("--proba", action="store_true", help="also print class probabilities")
    p.add_argument("--json", action="store_true", help="print one JSON object")


def read_features(path: str) -> np.ndarray:
    p = Path(path)
    if not p.exists():
        raise DataNotFoundError(f"input file not found: {path}")
    if p.suffix.lower() == ".npy":
        try:
            x = np.load(p, allow_pickle=False)
        except ValueError as exc:
            raise DataError(f"{path}: cannot read ({exc})") from None
        if x.ndim == 1:
            x = x[None, :]
    else:
        with open(p, newline="", encoding="utf-8") as fh:
            rows = [r for r in csv.reader(fh) if r and any(cell.strip() for cell in r)]
        if not rows:
            raise DataError(f"{path}: no rows")
        try:
            float(rows[0][0])
        except ValueError:
            rows = rows[1:]  # a header
        try:
            x = np.array([[float(v) for v in r] for r in rows], dtype=np.float64)
        except ValueError as exc:
            raise DataError(f"{path}: non-numeric value ({exc})") from None
    if x.ndim != 2 or x.shape[0] == 0:
        raise DataError(f"{path}: expected a non-empty 2-D table of features, got shape {x.shape}")
    if x.dtype.kind not in "fiu":
        raise DataError(f"{path}: features must be numeric, got dtype {x.dtype}")
    if not np.all(np.isfinite(x)):
        raise DataError(f"{path}: features contain NaN or Inf")
    return x


def run(args: argparse.Namespace) -> int:
    from chainrule.errors import ShapeError
    from chainrule.io.serialize import load_with_info

    net, info = load_with_info(args.model)
    x = read_features(args.input)
    if net.input_dim is not None and x.shape[1] != net.input_dim:
        raise ShapeError(
            f"{args.input}: rows have {x.shape[1]} features but the model expects {net.input_dim}"
        )
    x = x.astype(net.dtype)
    pred = net.predict(x)
    names = info.get("class_names")
    labels = [names[i] if names and i < len(names) else int(i) for i in pred]
    proba = net.predict_proba(x) if args.proba else None
    if args.json:
        out = {"predictions": labels}
        if proba is not None:
            out["probabilities"] = np.round(proba, 6)
        c.json_line(out)
        return 0
    for i, lab in enumerate(labels):
        extra = "  " + " ".join(f"{v:.4f}" for v in proba[i]) if proba is not None else ""
        print(f"{lab}{extra}", file=sys.stdout)
    return 0
