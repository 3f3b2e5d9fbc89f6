"""Summarise ``chainrule bench`` JSON results and check them against the issue's acceptance bars.

Usage::

    python benchmarks/summarize.py RESULT.json [...]

Each file holds the JSON object ``chainrule bench`` prints (its last line). The bars checked:

* CPU, 784-256-128-10 at batch 128: chainrule ≤ 0.75 × torch eager; test accuracy within 0.5 points
  of torch's; peak training RSS ≤ torch's;
* GPU, batch 128: the best backend ≤ 0.7 × torch autograd + CUDA graph; the CuPy backend ≤ 0.35 ×
  torch eager;
* GPU, 784-4096-4096-10 at batch 1024: chainrule ≤ 1.0 × the faster torch;
* GPU: the CPU reference run agrees in first-epoch loss to 1e-4.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any


def _load(path: str) -> dict[str, Any]:
    lines = [ln for ln in Path(path).read_text().splitlines() if ln.strip().startswith("{")]
    if not lines:
        raise SystemExit(f"{path}: no JSON object found")
    return json.loads(lines[-1])


def checks(r: dict[str, Any]) -> list[tuple[str, bool]]:
    """``(description, passed)`` for every acceptance bar that applies to result ``r``."""
    cfg, ratios, out = r["config"], r["ratios"], []
    cpu = r["device"] == "cpu"
    layers, batch = cfg["layers"], cfg["batch_size"]
    if cpu and layers == [784, 256, 128, 10] and batch == 128 and "chainrule/torch_eager" in ratios:
        out.append(
            (
                f"CPU time ratio {ratios['chainrule/torch_eager']} ≤ 0.75",
                ratios["chainrule/torch_eager"] <= 0.75,
            )
        )
        gap = r.get("test_accuracy_gap_points")
        if gap is not None:
            out.append((f"accuracy gap {gap} points within ±0.5", abs(gap) <= 0.5))
        mem = r.get("peak_memory_ratio_chainrule/torch_eager")
        if mem is not None:
            out.append((f"peak memory ratio {mem} ≤ 1", mem <= 1.0))
    if not cpu:
        if batch == 128 and "chainrule/torch_cuda_graph" in ratios and r["backend"].startswith("torch"):
            v = ratios["chainrule/torch_cuda_graph"]
            out.append((f"GPU b128 vs torch+graph {v} ≤ 0.7", v <= 0.7))
        if batch == 128 and r["backend"].startswith("cupy") and "chainrule/torch_eager" in ratios:
            v = ratios["chainrule/torch_eager"]
            out.append((f"CuPy b128 vs torch eager {v} ≤ 0.35", v <= 0.35))
        if layers == [784, 4096, 4096, 10] and batch == 1024:
            med = r["median_epoch_seconds"]
            best = min(med[k] for k in ("torch_eager", "torch_cuda_graph") if k in med)
            v = round(med["chainrule"] / best, 4)
            out.append((f"wide b1024 vs fastest torch {v} ≤ 1.0", v <= 1.0))
        ref = r.get("cpu_reference")
        if ref is not None:
            out.append((f"CPU/GPU epoch-1 loss diff {ref['abs_diff']:.2e} ≤ 1e-4", ref["abs_diff"] <= 1e-4))
    return out


def main(argv: list[str]) -> int:
    if not argv:
        print(__doc__)
        return 2
    failed = 0
    for path in argv:
        r = _load(path)
        cfg = r["config"]
        print(
            f"== {path}: {r['device']} {r['backend']} ({r['runner']}), layers {cfg['layers']}, batch {cfg['batch_size']}"
        )
        for name, sec in r["median_epoch_seconds"].items():
            acc = r.get("test_accuracy", {}).get(name)
            mem = r.get("peak_memory", {}).get(name, {})
            peak = mem.get("peak_rss_training_mb")
            dev = mem.get("device_peak_allocated_mb") or mem.get("device_pool_total_mb")
            extra = f"  peak RSS {peak} MB" if peak is not None else ""
            extra += f"  device {dev} MB" if dev is not None else ""
            print(f"   {name:18s} median {sec:.4f} s/epoch  test acc {acc}{extra}")
        for k, v in r["ratios"].items():
            print(f"   ratio {k} = {v}")
        for what, ok in checks(r):
            failed += not ok
            print(f"   [{'ok' if ok else 'FAIL'}] {what}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
