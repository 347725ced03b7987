"""How the distributed tests start processes: the README's single-node ``torchrun`` form,
run as ``python -m torch.distributed.run`` (torchrun's own module) with this interpreter,
so the tests need no installed console script; every process is held to one thread (the
test machine has two cores)."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

#: The launcher prefix the README's "Running on several machines" section documents.
SINGLE_NODE = "torchrun --standalone --nproc-per-node 2 -m snn2hw.cli"


def env(**extra: str) -> dict[str, str]:
    """The test process's environment, one thread per process, this worktree importable."""
    e = {**os.environ, "OMP_NUM_THREADS": "1", "NUMBA_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
         "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    e.update(extra)
    return e


def readme_commands() -> list[str]:
    """Every ``torchrun`` command line of the README's "Running on several machines"."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    m = re.search(r"^## Running on several machines\n(.*?)(?=^## )", text, re.S | re.M)
    assert m, "README.md has no '## Running on several machines' section"
    return [line.strip() for line in m.group(1).splitlines()
            if line.strip().startswith("torchrun ")]


def torchrun(args: list[str], *, timeout: float = 120, **extra: str
             ) -> subprocess.CompletedProcess:
    """``SINGLE_NODE`` + ``args``, with torchrun replaced by its module."""
    cmd = shlex.split(SINGLE_NODE)
    cmd = [sys.executable, "-m", "torch.distributed.run", *cmd[1:], *args]
    return subprocess.run(cmd, cwd=ROOT, env=env(**extra), capture_output=True, text=True,
                          timeout=timeout)


def cli(args: list[str], *, timeout: float = 120, **extra: str) -> subprocess.CompletedProcess:
    """``python -m snn2hw.cli`` + ``args`` in one process."""
    return subprocess.run([sys.executable, "-m", "snn2hw.cli", *args], cwd=ROOT,
                          env=env(**extra), capture_output=True, text=True, timeout=timeout)


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def two_machines(readme_line: str, args: list[str], *, timeout: float = 150
                 ) -> list[subprocess.CompletedProcess]:
    """The README's multi-machine ``torchrun`` line as two launchers on this machine (one
    process each): its options up to ``-m snn2hw.cli``, with ``--nproc-per-node 1`` and the
    rendezvous endpoint on localhost, then ``args``."""
    opts = shlex.split(readme_line.split(" -m snn2hw.cli ")[0])[1:]
    opts[opts.index("--nproc-per-node") + 1] = "1"
    opts[opts.index("--rdzv-endpoint") + 1] = f"127.0.0.1:{free_port()}"
    cmd = [sys.executable, "-m", "torch.distributed.run", *opts, "-m", "snn2hw.cli", *args]
    procs = [subprocess.Popen(cmd, cwd=ROOT, env=env(), stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for _ in range(2)]
    out = []
    for p in procs:
        try:
            stdout, stderr = p.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            for q in procs:
                q.kill()
            raise
        out.append(subprocess.CompletedProcess(cmd, p.returncode, stdout, stderr))
    return out
