#!/usr/bin/env bash
# Issue-14 GPU figures on a lent GPU, in one run: the fused LIF (W1: Linear(4096) + LIF,
# T = 500, B = 16, forward + backward) against SpikingJelly's fastest CUDA LIF and snnTorch,
# then torch-int on the N-MNIST CNN at T = 300.
# Usage: bash benchmarks/gpu_perf.sh OUT_DIR   (torch with CUDA; snnTorch/SpikingJelly optional)
set -u
OUT=${1:-build/gpu_perf}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1 PYTHONPATH=$PWD
nvidia-smi -L
python3 -c "import torch, importlib.util as u; print('torch', torch.__version__, 'cuda', \
torch.version.cuda, 'triton', u.find_spec('triton') is not None)" | tee "$OUT/env.txt"
echo "== fused LIF, W1 n = 4096 on CUDA"
timeout "${LIF_TIMEOUT:-240}" python3 benchmarks/bench_lif.py --device cuda --sizes 4096 --T 500 \
  --B 16 --reps 5 --contenders "${LIF_CONTENDERS:-snn2hw-fused,snntorch-leaky-loop,spikingjelly}" \
  --json "$OUT/lif_cuda.json" 2>&1 | tail -25 | tee "$OUT/lif_cuda.txt"
echo "== torch-int CNN, T = 300 on CUDA"
timeout "${TINT_TIMEOUT:-120}" python3 benchmarks/bench_torch_int.py --device cuda --steps 300 \
  --batches 1 64 256 --skip-mlp --json "$OUT/tint_t300.json" 2>&1 | tail -12 | tee "$OUT/tint_t300.txt"
