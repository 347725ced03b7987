"""An export interrupted at random points (SIGINT and SIGTERM) never leaves a ``.qgraph``
beside a NIR file it was not made from, nor a temporary file."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from snn2hw.common.atomic_io import file_sha256
from snn2hw.nn.model import SpikingNet
from snn2hw.quant.qgraph import QGraph
from snn2hw.training.checkpoint import Checkpoint, save_checkpoint

# each trial is one export process (~2.5 s); ten reach both signals on both checkpoints
TRIALS = 10


def _checkpoint(path: Path, seed: int) -> None:
    import torch

    torch.manual_seed(seed)
    arch = {"input_shape": [1, 8, 8], "layers": [{"type": "flatten"}, {"type": "linear", "out": 32},
                                                 {"type": "neuron"},
                                            {"type": "linear", "out": 10}, {"type": "neuron"}]}
    cfg = {"model": {"layers": arch["layers"]}, "data": {"dataset": "digits"},
           "train": {"num_steps": 8}}
    save_checkpoint(path, Checkpoint(arch=arch, state_dict=SpikingNet(arch).state_dict(),
                                     config=cfg, metrics={"num_steps": 8}))


def _export(ckpt: Path, out: Path) -> subprocess.Popen:
    code = "import sys; from snn2hw.cli import main; sys.exit(main())"
    return subprocess.Popen([sys.executable, "-c", code, "export", str(ckpt), "--target",
                             "loihi", "-o", str(out), "--no-report", "--calib-samples", "16",
                             # untrained weights: the deployment check would exit 2
                             "--accept-deviation"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


@pytest.mark.slow
def test_interrupted_re_exports_never_pair_a_qgraph_with_another_nir(tmp_path):
    a, b, out = tmp_path / "model.pt", tmp_path / "other" / "model.pt", tmp_path / "out"
    b.parent.mkdir()
    _checkpoint(a, 0)
    _checkpoint(b, 1)  # same file name, different weights: a re-export over the first
    t0 = time.monotonic()
    full = _export(a, out)
    assert full.wait(120) == 0, full.stderr.read().decode()[-2000:]
    t_full = time.monotonic() - t0  # signals land anywhere inside an export of this length
    rng = np.random.default_rng(0)
    outcomes = {"interrupted": 0, "completed": 0}
    for trial in range(TRIALS):
        proc = _export(b if trial % 2 == 0 else a, out)
        time.sleep(float(rng.uniform(0.1, 0.95)) * t_full)  # import, calibrate, quantize, write
        proc.send_signal(signal.SIGINT if trial % 3 else signal.SIGTERM)
        code = proc.wait(120)
        outcomes["completed" if code == 0 else "interrupted"] += 1
        left = [p.name for p in out.iterdir() if p.name.endswith(".tmp")]
        assert not left, f"trial {trial}: temporary files left: {left}"
        qgraph = out / "model.qgraph"
        if qgraph.exists():
            g = QGraph.load(qgraph)
            assert g.metadata["nir_sha256"] == file_sha256(out / "model.nir"), trial
    print(f"\n{TRIALS} interrupted re-exports: {outcomes}")
    assert outcomes["interrupted"] >= TRIALS // 4  # the signals really hit running exports
    assert os.path.isdir(out)
