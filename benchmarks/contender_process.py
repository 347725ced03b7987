"""Running one benchmark contender in a fresh interpreter, as bench_lif.py and
bench_training.py do: the parent starts ``python SCRIPT --worker SPEC_JSON`` with the
thread variables set from ``spec["threads"]``, and the child prints one ``RESULT {json}``
line. Imported by those scripts (run as ``python benchmarks/...``, so this folder is on
``sys.path``)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any


def spawn(script: str | Path, spec: dict[str, Any], timeout: float,
          env_extra: dict[str, str] | None = None) -> dict[str, Any]:
    """The worker's ``RESULT`` dict; a timeout or a crash becomes ``{"error": ...}``."""
    env = dict(os.environ)
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
        env[var] = str(spec["threads"])
    env.update(env_extra or {})
    env.setdefault("PYTHONWARNINGS", "ignore")
    cmd = [sys.executable, str(Path(script).resolve()), "--worker", json.dumps(spec)]
    try:
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout:.0f} s"}
    for line in reversed(proc.stdout.splitlines()):
        if line.startswith("RESULT "):
            return json.loads(line[len("RESULT "):])
    tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["no output"]
    return {"error": f"exit {proc.returncode}: {tail[0][:300]}"}


def loadavg() -> list[float] | None:
    """1/5/15-minute load averages (to judge how noisy a shared machine was)."""
    try:
        return [round(v, 2) for v in os.getloadavg()]
    except OSError:
        return None
