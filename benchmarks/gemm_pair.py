"""The MLP step's eight GEMMs (784-256-128-10, 128 rows, float32, one BLAS thread), timed alone and
as two processes at once, in interleaved rounds: does a compute-bound step slow down when the
second core is busy? (docs/distributed.md, "Why a lone step is faster than either of two")

    python benchmarks/gemm_pair.py [--rounds 7]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time

import numpy as np


def work(n: int = 128, reps: int = 400) -> float:
    """ms per step of the forward (3), ∂E/∂W (3) and δ (2) GEMMs, outputs preallocated."""
    rng = np.random.default_rng(0)
    x = rng.random((n, 784), dtype=np.float32)
    w1, w2, w3 = (rng.random(s, dtype=np.float32) for s in ((784, 256), (256, 128), (128, 10)))
    a1, a2, a3 = (np.empty((n, k), np.float32) for k in (256, 128, 10))
    g1, g2, g3 = np.empty_like(w1), np.empty_like(w2), np.empty_like(w3)
    d1, d2 = np.empty_like(a1), np.empty_like(a2)
    t0 = time.perf_counter()
    for _ in range(reps):
        np.matmul(x, w1, out=a1)
        np.matmul(a1, w2, out=a2)
        np.matmul(a2, w3, out=a3)
        np.matmul(a2.T, a3, out=g3)
        np.matmul(a3, w3.T, out=d2)
        np.matmul(a1.T, d2, out=g2)
        np.matmul(d2, w2.T, out=d1)
        np.matmul(x.T, d1, out=g1)
    return (time.perf_counter() - t0) / reps * 1e3


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rounds", type=int, default=7)
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.worker:
        print(work())
        return 0
    env = {k: v for k, v in os.environ.items() if k not in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")}
    env.update({"OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"})
    cmd = [sys.executable, __file__, "--worker"]
    alone, pair = [], []
    for _ in range(args.rounds):
        alone.append(float(subprocess.run(cmd, capture_output=True, text=True, env=env, check=True).stdout))
        procs = [subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, env=env) for _ in range(2)]
        pair.append(max(float(q.communicate()[0]) for q in procs))
    a, b = statistics.median(alone), statistics.median(pair)
    print(
        f"GEMMs of one MLP step, 128 rows: alone {a:.3f} ms, two processes at once {b:.3f} ms (slower of the two); ratio {b / a:.3f}"
    )
    print(f"rounds alone {[round(v, 3) for v in alone]}; two at once {[round(v, 3) for v in pair]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
