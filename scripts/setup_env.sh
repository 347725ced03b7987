#!/usr/bin/env bash
# Create the project-local virtual environment (.venv) and install everything snn2hw needs.
# Idempotent: re-running after a successful setup only re-checks the stamp file.
#
# Why the special steps:
#  - torch==2.13.0 is pinned here so pip takes the CPU build (a bare `torch` pulls a
#    multi-GB CUDA build). Users elsewhere may use any torch>=2.3.
#  - lava-nc 0.10.0 declares python<3.11, so it is installed with --no-deps
#    --ignore-requires-python, and its own dependencies are installed explicitly.
#    Its one Python-3.11 bug is fixed at import time by snn2hw.compat.lava_py311.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
PYTHON=${PYTHON:-python3}
STAMP="$VENV/.snn2hw-setup"
want="$(cat pyproject.toml scripts/setup_env.sh | sha256sum | cut -d' ' -f1)"
if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$want" ]; then
  exit 0
fi
if [ ! -x "$VENV/bin/python" ]; then
  echo "[setup] creating $VENV"
  "$PYTHON" -m venv "$VENV"
fi
PIP="$VENV/bin/python -m pip"
export PIP_DISABLE_PIP_VERSION_CHECK=1
echo "[setup] installing torch (CPU build) and lava-nc's dependencies (about 2 minutes on a new machine)"
$PIP install -q "torch==2.13.0" "numpy>=1.24,<2" "scipy<1.15" "networkx<=2.8.7" \
  "asteval>=0.9.31,<0.10" "scikit-learn>=1.5"
echo "[setup] installing lava-nc 0.10.0 (--no-deps --ignore-requires-python)"
$PIP install -q --no-deps --ignore-requires-python "lava-nc==0.10.0"
echo "[setup] installing snn2hw (editable) with test extras"
$PIP install -q -e ".[test]"
echo "[setup] installing interop test peers (snnTorch, Norse, SpikingJelly, Sinabs, Rockpool, NIRTorch) without their deps"
# --no-deps: their declared dependencies would pull a CUDA torch; they run on the torch above.
# pbr (Sinabs' version) and loguru (SpikingJelly's logger) are the small pure-Python
# packages they import; matplotlib, tqdm, scipy and requests are already there.
$PIP install -q --no-deps "snntorch==1.0.0" "nirtorch==2.6" "norse==1.1.0" \
  "spikingjelly==2.0.0" "sinabs==3.1.3" "rockpool==3.1.0" "pbr==7.1.3" "loguru==0.7.3"
echo "[setup] installing Triton 3.9.0 without its deps (the fused LIF's GPU kernels; on CPU the tests run them in its interpreter; a 273 MiB wheel)"
$PIP install -q --no-deps "triton==3.9.0"
echo "[setup] installing lava-dl 0.6.0 (netx reference for tests/netx; --no-deps --ignore-requires-python)"
$PIP install -q --no-deps --ignore-requires-python "lava-dl==0.6.0"
echo "[setup] installing nengo-loihi (Loihi 1 emulator, tests/crosscheck) without its deps"
$PIP install -q --no-deps "nengo==4.1.0" "nengo-loihi==1.1.0"
echo "$want" > "$STAMP"
echo "[setup] done: $VENV"
