"""Overhead of the GradientFlow callback at its default interval (issue 3, acceptance 4).

    python benchmarks/flow_overhead.py ../shared/data/mnist [repeats]

Trains MNIST 784-256-128-10 ReLU (SGD lr 0.1, batch 128) for one epoch with and without the
callback, interleaving the two (alternating which goes first), and prints the median times and
their ratio. The callback's own time is also measured directly with cProfile, which is steadier
than the end-to-end difference on a shared machine.
"""

from __future__ import annotations

import cProfile
import pstats
import statistics
import sys
import time

import chainrule as cr
from chainrule.io import load_mnist
from chainrule.train.flow import GradientFlow


def main() -> None:
    d = load_mnist(sys.argv[1] if len(sys.argv) > 1 else None)
    repeats = int(sys.argv[2]) if len(sys.argv) > 2 else 12
    times: dict[str, list[float]] = {"off": [], "on": []}
    for rep in range(repeats):
        for mode in ("off", "on") if rep % 2 == 0 else ("on", "off"):
            net = cr.mlp([784, 256, 128, 10], "relu", seed=0)
            cbs = [GradientFlow(warn=False)] if mode == "on" else []
            t0 = time.perf_counter()
            cr.fit(net, d.x_train, d.y_train, lr=0.1, epochs=1, progress=False, callbacks=cbs)
            times[mode].append(time.perf_counter() - t0)
    on, off = statistics.median(times["on"]), statistics.median(times["off"])
    print(f"end to end: median fit {off:.3f} s without, {on:.3f} s with the callback: ratio {on / off:.3f}")

    net = cr.mlp([784, 256, 128, 10], "relu", seed=0)
    flow = GradientFlow(warn=False)
    prof = cProfile.Profile()
    prof.enable()
    t0 = time.perf_counter()
    cr.fit(net, d.x_train, d.y_train, lr=0.1, epochs=1, progress=False, callbacks=[flow])
    total = time.perf_counter() - t0
    prof.disable()
    stats = pstats.Stats(prof).stats  # type: ignore[attr-defined]
    own = sum(
        v[3] for k, v in stats.items() if k[0].endswith("flow.py") and k[2] in ("on_step", "on_train_begin")
    )
    print(
        f"direct: the callback took {own:.4f} s of {total:.3f} s = {100 * own / total:.1f}% (interval {flow.interval})"
    )


if __name__ == "__main__":
    main()
