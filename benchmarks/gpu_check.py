"""GPU verification: every CUDA path of snn2hw checked against its CPU reference, with timings.

Run on a machine with a CUDA GPU (``bash benchmarks/gpu_check.sh``); prints one line per
check and writes a JSON summary. Checks:

1. fused LIF on CUDA (``compiled`` = torch.compile/Triton, ``torch`` loop) vs the CPU numba
   kernel: spikes equal, gradients within float tolerance; fwd+bwd time per backend.
The torch integer mode, the float executor and NVML measurement are checked by the
CUDA tests and by the train -> export -> compare/energy run in ``gpu_check.sh``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import traceback
from pathlib import Path
from typing import Any

import torch
from bench_report import write_json


def _time(fn, reps: int = 5) -> float:
    fn()
    torch.cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(reps):
        fn()
    torch.cuda.synchronize()
    return (time.perf_counter() - t0) / reps * 1e3


def check_fused_lif() -> dict[str, Any]:
    from snn2hw.nn.fused import lif_multistep

    out: dict[str, Any] = {}
    torch.manual_seed(0)
    for reset in ("hard", "subtract"):
        x_cpu = torch.randn(100, 16, 512) * 2.0
        kw = dict(alpha=0.8, beta=0.9, vth=1.0, reset=reset)

        def run(x, backend, kw=kw):
            x = x.clone().requires_grad_(True)
            s = lif_multistep(x, backend=backend, **kw)
            (s * torch.linspace(0, 1, s.shape[-1], device=s.device)).sum().backward()
            return s.detach().cpu(), x.grad.detach().cpu()

        s_ref, g_ref = run(x_cpu, "numba")
        for backend in ("torch", "compiled"):
            s, g = run(x_cpu.cuda(), backend)
            spikes_equal = bool(torch.equal(s, s_ref))
            gerr = float((g - g_ref).abs().max() / (g_ref.abs().max() + 1e-12))
            ms = _time(lambda b=backend, xc=x_cpu: run(xc.cuda(), b))
            out[f"{reset}/{backend}"] = {"spikes_equal_cpu": spikes_equal,
                                         "spike_mismatches": int((s != s_ref).sum()),
                                         "grad_rel_err": gerr, "fwd_bwd_ms": ms}
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--json", type=Path, default=None)
    args = p.parse_args(argv)
    if not torch.cuda.is_available():
        print("no CUDA device: nothing to check")
        return 1
    doc: dict[str, Any] = {"gpu": torch.cuda.get_device_name(0), "torch": torch.__version__}
    ok = True
    for name, fn in (("fused_lif", check_fused_lif),):
        t0 = time.perf_counter()
        try:
            doc[name] = fn()
        except Exception:  # report and go on: one broken path must not hide the others
            doc[name] = {"error": traceback.format_exc()}
            ok = False
        print(f"== {name} ({time.perf_counter() - t0:.1f} s)")
        print(json.dumps(doc[name], indent=1, default=str)[:4000])
    if args.json:
        write_json(args.json, doc, indent=2, default=str)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
