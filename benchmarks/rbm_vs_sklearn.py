"""chainrule's RBM beside scikit-learn's BernoulliRBM, in one process (issue 10, acceptance 3).

Same data (MNIST training images binarised at 0.5, in file order: scikit-learn does not shuffle,
so chainrule runs its epochs unshuffled too), same hyperparameters (500 hidden units, PCD-1,
learning rate 0.05, batch 100, N(0, 0.01²) initial weights, zero biases, the persistent chain
starting at zero), same threads. scikit-learn runs in float64 (its only dtype here), chainrule in
float32.

Seeds: ``--seeds N`` repeats everything with scikit-learn's ``random_state`` and chainrule's seed
``0 … N−1`` (initial weights and sampling differ between the two libraries' generators, so single
runs differ by several nats after one epoch; the comparison is of the means over seeds).

Timing: scikit-learn's ``fit(n_iter=1)`` and chainrule's epoch 1, then scikit-learn's
``fit(n_iter=E)`` (a fresh fit: its epoch 1 is the same as before) and chainrule's epoch 2 … E
(scikit-learn's fit cannot be resumed); seconds per epoch are each fit's wall time / its epochs.

Pseudo-log-likelihood, like with like: ``score_samples`` flips one random visible unit per image
(``RandomState(random_state).randint(0, D, N)``); both models are scored on the same first
``--score-images`` test images with the *same* flipped units, for ``--flips`` independent draws of
them (draw ``s`` uses ``RandomState(s)``; draw 0 is exactly what scikit-learn's own
``score_samples`` does with ``random_state=0``, which the script checks), and the mean over draws is
reported with its spread.

    flock /tmp/chainrule-bench.lock python benchmarks/rbm_vs_sklearn.py --epochs 2 --json out.json
"""

from __future__ import annotations

import argparse
import json
import os
import time

import numpy as np

from chainrule.io import load_data
from chainrule.unsupervised.rbm import RBM, CDSettings, CDTrainer


def pll(rbm: RBM, x: np.ndarray, flips: int) -> tuple[float, float, list[float]]:
    r64 = rbm.astype(np.float64)
    vals = [
        float(r64.pseudo_log_likelihood(x, np.random.RandomState(s).randint(0, x.shape[1], x.shape[0])).mean())
        for s in range(flips)
    ]
    return float(np.mean(vals)), float(np.std(vals, ddof=1) / np.sqrt(flips)) if flips > 1 else 0.0, vals


def from_sklearn(sk: object) -> RBM:
    comps = sk.components_  # type: ignore[attr-defined]
    return RBM(comps.shape[1], comps.shape[0], W=comps.T, b=sk.intercept_visible_,  # type: ignore[attr-defined]
               c=sk.intercept_hidden_, dtype=np.float64)  # type: ignore[attr-defined]


def main() -> None:
    from sklearn.neural_network import BernoulliRBM  # optional: the oracle of this benchmark
    from threadpoolctl import threadpool_info  # optional: record the BLAS kernel

    ap = argparse.ArgumentParser()
    ap.add_argument("--data-dir", default="../shared/data/mnist")
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--hidden", type=int, default=500)
    ap.add_argument("--score-images", type=int, default=2000)
    ap.add_argument("--flips", type=int, default=10)
    ap.add_argument("--train-images", type=int, default=None, help="first N training images (smoke tests)")
    ap.add_argument("--seeds", type=int, default=1, help="repeat with random_state / seed 0 .. N-1")
    ap.add_argument("--threads", type=int, default=None, help="BLAS threads for both (threadpoolctl)")
    ap.add_argument("--json")
    a = ap.parse_args()
    if a.threads:
        from threadpoolctl import threadpool_limits  # optional: the same thread limit for both

        threadpool_limits(a.threads)
    d = load_data("mnist", a.data_dir)
    x = (d.x_train[: a.train_images] > 0.5).astype(np.float32)
    xt = (d.x_test[: a.score_images] > 0.5).astype(np.float32)
    x64 = x.astype(np.float64)
    load0 = os.getloadavg()
    res: dict = {"seeds": a.seeds, "threads": a.threads, "epochs": a.epochs, "hidden": a.hidden, "train_images": int(x.shape[0]),
                 "score_images": int(xt.shape[0]), "flips": a.flips}

    sk_times, cr_times = [], []
    per_seed = []
    for seed in range(a.seeds):
        ours = RBM(784, a.hidden, seed=seed)
        tr = CDTrainer(ours, CDSettings(k=1, persistent=True, lr=0.05, batch_size=100), seed=seed)
        sk_pll, cr_pll = [], []
        for n_iter in (1, a.epochs):
            sk = BernoulliRBM(n_components=a.hidden, learning_rate=0.05, batch_size=100, n_iter=n_iter,
                              random_state=seed)
            t0 = time.perf_counter()
            sk.fit(x64)
            sk_times.append((time.perf_counter() - t0) / n_iter)
            skr = from_sklearn(sk)
            if n_iter == 1 and seed == 0:
                own = float(sk.score_samples(xt.astype(np.float64)).mean())
                res["sklearn_score_samples_check"] = {"sklearn": own, "chainrule_formula": pll(skr, xt, 1)[0]}
            sk_pll.append(pll(skr, xt, a.flips))
            for _ in range(1 if n_iter == 1 else a.epochs - 1):
                t0 = time.perf_counter()
                tr.run_epoch(x, shuffle=False)
                cr_times.append(time.perf_counter() - t0)
            cr_pll.append(pll(ours, xt, a.flips))
            if a.epochs == 1:
                break
        per_seed.append({"seed": seed, "sklearn_pll": [m for m, _, _ in sk_pll],
                         "chainrule_pll": [m for m, _, _ in cr_pll],
                         "flip_se": {"sklearn": [s_ for _, s_, _ in sk_pll], "chainrule": [s_ for _, s_, _ in cr_pll]}})
        print(json.dumps(per_seed[-1]), flush=True)
    res["sklearn_epoch_seconds"] = sk_times
    res["chainrule_epoch_seconds"] = cr_times
    res["time_ratio_chainrule_over_sklearn"] = float(np.median(cr_times) / np.median(sk_times))
    res["pll_after_epochs"] = [1, a.epochs][: len(per_seed[0]["sklearn_pll"])]
    res["per_seed"] = per_seed
    for who in ("sklearn", "chainrule"):
        arr = np.array([p[f"{who}_pll"] for p in per_seed])
        res[f"{who}_pll_mean_over_seeds"] = arr.mean(0).tolist()
        res[f"{who}_pll_sd_over_seeds"] = (arr.std(0, ddof=1) if len(arr) > 1 else 0 * arr[0]).tolist()
    res["reconstruction_error"] = {"sklearn": from_sklearn(sk).reconstruction_error(xt),
                                   "chainrule": ours.reconstruction_error(xt)}
    res["blas"] = [(i.get("internal_api"), i.get("architecture"), i.get("num_threads")) for i in threadpool_info()]
    res["loadavg_before_after"] = [load0, os.getloadavg()]
    print(json.dumps(res, indent=1))
    if a.json:
        with open(a.json, "w") as f:
            json.dump(res, f, indent=1)
    if a.json and a.json.endswith(".json"):
        np.savez(a.json[:-5] + "_chainrule_rbm.npz", W=ours.W, b=ours.b, c=ours.c)


if __name__ == "__main__":
    main()
