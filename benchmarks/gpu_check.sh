#!/usr/bin/env bash
# GPU verification of every CUDA path, in one run (for a lent GPU machine; see README).
# Usage: bash benchmarks/gpu_check.sh OUT_DIR     (needs torch with CUDA, snn2hw importable)
set -u
OUT=${1:-build/gpu_check}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1
SNN=(python3 -c 'import sys; from snn2hw.cli import main; sys.exit(main())')
{ nvidia-smi -L; python3 -c "import torch, numpy, numba; print('torch', torch.__version__, \
'numpy', numpy.__version__, 'numba', numba.__version__, torch.cuda.get_device_name(0))"; } \
  2>&1 | tee "$OUT/env.txt"
echo "== 1. CUDA-relevant tests"
timeout 150 python3 -m pytest -p no:cacheprovider -p no:warnings --no-header -rs \
  tests/nn tests/backends/test_torch_int.py tests/backends/test_registry.py \
  tests/backends/test_torch_int_delays_multispike.py tests/backends/test_torch_int_periodic_reset.py \
  tests/nir/test_nir_executor.py tests/pipeline/test_simulate.py tests/pipeline/test_measure.py \
  2>&1 | tail -8 | tee "$OUT/pytest.txt"
echo "== 2. fused LIF on CUDA vs CPU numba (SKIP_FUSED=1 skips it)"
[ "${SKIP_FUSED:-0}" = 1 ] || timeout 100 python3 benchmarks/gpu_check.py --json "$OUT/gpu_check.json" 2>&1 | tail -40 | tee "$OUT/gpu_check.txt"
echo "== 3. train on CUDA -> export -> compare (torch-int on CUDA vs event) -> measured energy"
for cfg in digits_lif digits_conv; do
  /usr/bin/time -f "train $cfg: %e s wall" timeout 90 "${SNN[@]}" train "$cfg" \
    --device cuda --epochs 3 --out "build/gpu/$cfg" --quiet 2>&1 | tail -3
  timeout 45 "${SNN[@]}" export "build/gpu/$cfg/best.pt" --target loihi -o "build/gpu/$cfg/export" 2>&1 | tail -3
  timeout 45 "${SNN[@]}" compare "build/gpu/$cfg/export" --backends float,torch-int,event --samples 100 \
    --device cuda --energy loihi 2>&1 | tail -15
  echo "compare exit: $?"
done
timeout 45 "${SNN[@]}" energy build/gpu/digits_lif/export --measure --device cuda --samples 200 --json \
  > "$OUT/energy.json" 2>&1; echo "energy exit: $?"; head -c 3000 "$OUT/energy.json"
echo "== 4. DDP on CUDA with NCCL under torchrun (one rank per GPU), then a sharded compare"
NGPU=$(python3 -c "import torch; print(torch.cuda.device_count())")
timeout 120 python3 -m torch.distributed.run --standalone --nproc-per-node "$NGPU" -m snn2hw.cli \
  train digits_lif --device cuda --epochs 2 --out build/gpu/ddp --quiet 2>&1 | tail -4
echo "torchrun train exit: $?"
timeout 90 "${SNN[@]}" compare build/gpu/digits_lif/export --backends torch-int,event --samples 100 \
  --device cuda --workers 2 --no-report 2>&1 | tail -4
echo "sharded compare exit: $?"
