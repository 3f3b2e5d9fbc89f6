#!/usr/bin/env bash
# GPU checks and figures for chainrule, for a machine with a CUDA GPU (H100/H200 class).
#
#   bash benchmarks/gpu_bench.sh [MNIST_DIR]
#
# 1. runs the GPU tests (tests/test_gpu.py, marked gpu);
# 2. runs `chainrule bench` for the issue's GPU figures, each contestant side by side in one run:
#    batch 128 (torch backend = hand-written step in a CUDA graph; CuPy backend), batch 1024, and the
#    wide 784-4096-4096-10 net at batch 1024;
# 3. prints a summary with the acceptance bars (benchmarks/summarize.py).
# Results land in benchmarks/results/ (or $OUT). Needs torch with CUDA; CuPy is installed if missing.
set -euo pipefail
cd "$(dirname "$0")/.."

MNIST_DIR=${1:-${CHAINRULE_DATA:-../shared/data/mnist}}
OUT=${OUT:-benchmarks/results}
EPOCHS=${EPOCHS:-5}
mkdir -p "$OUT"
unset OPENBLAS_CORETYPE OPENBLAS_L2_SIZE  # measure library defaults

python - <<'PY'
import torch
assert torch.cuda.is_available(), "torch sees no CUDA GPU"
print("GPU:", torch.cuda.get_device_name(), "| torch", torch.__version__)
PY
if ! python -c "import cupy" 2>/dev/null; then
  echo "installing CuPy (chainrule[cuda])"
  pip install -q "cupy-cuda12x>=13" || echo "CuPy could not be installed: its runs will be skipped"
fi

python -m pytest -m gpu -q tests/test_gpu.py 2>&1 | tee "$OUT/gpu_tests.txt"

run() {  # run NAME ARGS...: one bench, its JSON object to $OUT/NAME.json
  local name=$1
  shift
  echo "== chainrule bench $*" >&2
  python -m chainrule bench --device cuda --data mnist --data-dir "$MNIST_DIR" --epochs "$EPOCHS" --quiet "$@" \
    | tail -n 1 >"$OUT/$name.json"
}

run gpu_b128_torch --backend torch --batch-size 128
if python -c "import cupy" 2>/dev/null; then
  run gpu_b128_cupy --backend cupy --batch-size 128 --no-plain
fi
run gpu_b1024_torch --backend torch --batch-size 1024 --no-plain
run gpu_wide_b1024_torch --backend torch --layers 784,4096,4096,10 --batch-size 1024 --no-plain
if python -c "import cupy" 2>/dev/null; then
  run gpu_b1024_cupy --backend cupy --batch-size 1024 --no-plain
  run gpu_wide_b1024_cupy --backend cupy --layers 784,4096,4096,10 --batch-size 1024 --no-plain
fi

python benchmarks/summarize.py "$OUT"/gpu_*.json
