#!/usr/bin/env bash
# torch-int on a lent GPU: CUDA tests of the conv formulations, then the CNN/MLP benchmark.
# Usage: bash benchmarks/gpu_torch_int.sh OUT_DIR [QGRAPH]   (QGRAPH: an exported CNN graph)
set -u
OUT=${1:-build/gpu_torch_int}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1 PYTHONPATH=$PWD
nvidia-smi -L
timeout 60 python3 -m pytest -p no:cacheprovider -p no:warnings -q -rs \
  tests/backends/test_torch_int_conv_paths.py tests/backends/test_torch_int.py -k "cuda" \
  2>&1 | tail -5 | tee "$OUT/pytest.txt"
Q=()
[ -n "${2:-}" ] && Q=(--qgraph "$2")
timeout 60 python3 benchmarks/bench_torch_int.py --device cuda "${Q[@]}" --json "$OUT/bench_t30.json" \
  2>&1 | tee "$OUT/bench_t30.txt"
timeout 40 python3 benchmarks/bench_torch_int.py --device cuda "${Q[@]}" --steps 300 --batches 1 64 \
  --skip-mlp --json "$OUT/bench_t300.json" 2>&1 | tee "$OUT/bench_t300.txt"
