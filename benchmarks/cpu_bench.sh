#!/usr/bin/env bash
# The CPU figure of the issue: 784-256-128-10 ReLU, softmax-CE, SGD lr 0.1, batch 128, float32,
# 5 epochs, 2 threads, default backend (NumPy), side by side with PyTorch eager in one run.
#
#   bash benchmarks/cpu_bench.sh [MNIST_DIR]
#
# Prints the summary with the acceptance bars; the JSON object goes to benchmarks/results/cpu.json.
set -euo pipefail
cd "$(dirname "$0")/.."

MNIST_DIR=${1:-${CHAINRULE_DATA:-../shared/data/mnist}}
OUT=${OUT:-benchmarks/results}
mkdir -p "$OUT"
unset OPENBLAS_CORETYPE OPENBLAS_L2_SIZE  # measure library defaults
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null || echo n/a)" >&2
python -m chainrule bench --data mnist --data-dir "$MNIST_DIR" --threads 2 --epochs 5 --quiet \
  | tail -n 1 >"$OUT/cpu.json"
python benchmarks/summarize.py "$OUT/cpu.json"
