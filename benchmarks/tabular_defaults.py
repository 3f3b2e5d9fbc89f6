"""Acceptance 2 of issue 11: `chainrule train --data FILE.csv` with no other flags against
scikit-learn's `MLPClassifier()` / `MLPRegressor()` defaults, on the same train/test split.

The datasets are scikit-learn's bundled ones (no download), written to CSV as a user would: the
feature columns, then the target column, no scaling. chainrule runs as a subprocess exactly as a
user types it; scikit-learn gets the same training rows (chainrule's split: seed 0, 20% test).

    python benchmarks/tabular_defaults.py [--out DIR] [--seeds 0,1,2]

prints a Markdown table (the one in docs/tabular.md). Both sides run with one BLAS thread
(chainrule's default for small tables; scikit-learn under threadpoolctl).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
from sklearn import datasets
from sklearn.exceptions import ConvergenceWarning
from sklearn.metrics import r2_score
from sklearn.neural_network import MLPClassifier, MLPRegressor
from threadpoolctl import threadpool_info, threadpool_limits

from chainrule.io import load_csv

CLASSIFY = ["iris", "wine", "breast_cancer", "digits"]
REGRESS = ["diabetes"]


def write_csv(name: str, out: Path) -> Path:
    bunch = getattr(datasets, f"load_{name}")()
    table = np.column_stack([bunch.data, bunch.target])
    header = ",".join([*(f"f{i}" for i in range(bunch.data.shape[1])), "target"])
    path = out / f"{name}.csv"
    np.savetxt(path, table, delimiter=",", header=header, comments="", fmt="%.10g")
    return path


def chainrule_run(path: Path, seed: int) -> tuple[dict, float]:
    argv = [sys.executable, "-m", "chainrule", "train", "--data", str(path), "--json", "--quiet"]
    if seed:
        argv += ["--seed", str(seed)]
    t0 = time.perf_counter()
    proc = subprocess.run(argv, capture_output=True, text=True, check=True)
    return json.loads(proc.stdout.strip().splitlines()[-1]), time.perf_counter() - t0


def sklearn_run(path: Path, seed: int, regress: bool) -> tuple[float, float]:
    data = load_csv(path, seed=seed, task="regress" if regress else "auto")
    est = (MLPRegressor if regress else MLPClassifier)(random_state=seed)
    t0 = time.perf_counter()
    with warnings.catch_warnings(), threadpool_limits(1):  # as chainrule on small tables
        warnings.simplefilter("ignore", ConvergenceWarning)
        est.fit(data.x_train, data.y_train)
    seconds = time.perf_counter() - t0
    pred = est.predict(data.x_test)
    score = r2_score(data.y_test, pred) if regress else float(np.mean(pred == data.y_test))
    return float(score), seconds


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument("--seeds", default="0")
    ap.add_argument(
        "--times", action="store_true", help="add wall-time columns (run under the benchmark lock for those)"
    )
    args = ap.parse_args()
    out = args.out or Path(tempfile.mkdtemp(prefix="chainrule-tabular-"))
    seeds = [int(s) for s in args.seeds.split(",")]
    blas = sorted({(p.get("internal_api"), p.get("architecture")) for p in threadpool_info()}, key=str)
    print(f"BLAS: {blas}\n", flush=True)
    times = " chainrule s | sklearn s |" if args.times else ""
    print(
        f"| dataset | rows × features | metric | seed | chainrule (defaults) | MLP*() defaults | difference |{times}"
    )
    print("|---|---|---|---|---|---|---|" + ("---|---|" if args.times else ""))
    means: dict[str, tuple[list[float], list[float]]] = {}
    for name in CLASSIFY + REGRESS:
        path = write_csv(name, out)
        regress = name in REGRESS
        shape = getattr(datasets, f"load_{name}")().data.shape
        for seed in seeds:
            res, t_cr = chainrule_run(path, seed)
            ours = res["test_metrics"]["r2"] if regress else res["test_accuracy"]
            theirs, t_sk = sklearn_run(path, seed, regress)
            metric = "R²" if regress else "accuracy"
            row = f"| {name} | {shape[0]} × {shape[1]} | {metric} | {seed} | {ours:.4f} | {theirs:.4f} | "
            row += f"{ours - theirs:+.4f} |" + (f" {t_cr:.1f} | {t_sk:.1f} |" if args.times else "")
            print(row, flush=True)
            means.setdefault(name, ([], []))[0].append(ours)
            means[name][1].append(theirs)
    print("\n| dataset | chainrule mean | MLP*() mean | difference |\n|---|---|---|---|")
    for name, (ours_all, theirs_all) in means.items():
        a, b = float(np.mean(ours_all)), float(np.mean(theirs_all))
        print(f"| {name} | {a:.4f} | {b:.4f} | {a - b:+.4f} |")


if __name__ == "__main__":
    main()
