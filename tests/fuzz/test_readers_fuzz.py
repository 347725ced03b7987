"""Mutation fuzzing of the file readers: every mutated ``.qgraph``, ``.nir`` and checkpoint
either loads or is refused with a one-line snn2hw error; never another exception or a hang.

Each reader gets ``CASES`` deterministic mutations of a real file (bit flips, byte runs
overwritten with random or boundary bytes, truncation, insertion, duplicated chunks). The
figures (inputs tried, crashes, slowest rejection) are printed with ``pytest -s``.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "quant"))
from qgraph_samples import two_layer_dense_graph  # noqa: E402

from snn2hw.common.errors import Snn2hwError  # noqa: E402
from snn2hw.nir import read_nir  # noqa: E402
from snn2hw.quant.qgraph import QGraph  # noqa: E402
from snn2hw.training.checkpoint import load_checkpoint  # noqa: E402

CASES = 400
BOUNDARY = [b"\x00", b"\xff", b"\x7f", b"\x80", b"\xff\xff\xff\x7f", b"\x00\x00\x00\x80"]


def mutate(data: bytes, rng: np.random.Generator) -> bytes:
    """One random structural mutation of ``data``."""
    b = bytearray(data)
    kind = int(rng.integers(6))
    pos = int(rng.integers(len(b)))
    if kind == 0:  # flip 1-8 bits
        for _ in range(int(rng.integers(1, 9))):
            i = int(rng.integers(len(b)))
            b[i] ^= 1 << int(rng.integers(8))
    elif kind == 1:  # overwrite a run with random bytes
        n = int(rng.integers(1, 64))
        b[pos:pos + n] = rng.integers(0, 256, size=min(n, len(b) - pos), dtype=np.uint8).tobytes()
    elif kind == 2:  # overwrite with a boundary value (sizes, counts, offsets)
        v = BOUNDARY[int(rng.integers(len(BOUNDARY)))]
        b[pos:pos + len(v)] = v
    elif kind == 3:  # truncate
        b = b[:pos]
    elif kind == 4:  # insert random bytes
        b[pos:pos] = rng.integers(0, 256, size=int(rng.integers(1, 32)), dtype=np.uint8).tobytes()
    else:  # duplicate a chunk
        n = int(rng.integers(1, 256))
        b[pos:pos] = b[pos:pos + n]
    return bytes(b)


def fuzz(reader, original: Path, tmp_path: Path, seed: int) -> dict[str, float]:
    data = original.read_bytes()
    rng = np.random.default_rng(seed)
    loaded = refused = 0
    slowest = 0.0
    crashes: list[str] = []
    path = tmp_path / f"fuzzed{original.suffix}"
    for case in range(CASES):
        path.write_bytes(mutate(data, rng))
        t0 = time.perf_counter()
        try:
            reader(path)
            loaded += 1
        except Snn2hwError as exc:
            refused += 1
            if "\n" in str(exc).strip():
                crashes.append(f"case {case}: multi-line message {str(exc)[:200]!r}")
            slowest = max(slowest, time.perf_counter() - t0)
        except Exception as exc:  # noqa: BLE001 - what the fuzzer looks for
            crashes.append(f"case {case}: {type(exc).__name__}: {str(exc)[:200]}")
    print(f"\n{original.name}: {CASES} inputs, {loaded} loaded, {refused} refused, "
          f"{len(crashes)} crashes, slowest rejection {slowest * 1e3:.1f} ms")
    assert not crashes, "\n".join(crashes[:10])
    return {"loaded": loaded, "refused": refused, "slowest_s": slowest}


@pytest.mark.slow
def test_mutated_qgraph_files_load_or_are_refused_in_one_line(tmp_path):
    src = tmp_path / "g.qgraph"
    two_layer_dense_graph().save(src)
    out = fuzz(QGraph.load, src, tmp_path, seed=1)
    assert out["refused"] > CASES // 2  # the mutations really break files


@pytest.mark.slow
def test_mutated_nir_files_load_or_are_refused_in_one_line(tmp_path, external):
    from snn2hw.nir import analyze

    src = external / "nir-paper" / "03_rnn" / "braille_noDelay_bias_zero.nir"
    out = fuzz(lambda p: analyze(read_nir(p)), src, tmp_path, seed=2)
    assert out["refused"] > 0


@pytest.mark.slow
@pytest.mark.parametrize("suffix", [".pt", ".safetensors"])
def test_mutated_checkpoints_load_or_are_refused_in_one_line(tmp_path, suffix):
    from snn2hw.nn.model import SpikingNet
    from snn2hw.training.checkpoint import Checkpoint, save_checkpoint

    arch = {"input_shape": [8], "layers": [{"type": "linear", "out": 6}, {"type": "neuron"},
                                           {"type": "linear", "out": 3}, {"type": "neuron"}]}
    torch.manual_seed(0)
    src = tmp_path / f"m{suffix}"
    save_checkpoint(src, Checkpoint(arch=arch, state_dict=SpikingNet(arch).state_dict(),
                                    metrics={"num_steps": 4}))

    def load_and_build(path: Path) -> None:
        load_checkpoint(path).build_model(str(path))

    out = fuzz(load_and_build, src, tmp_path, seed=3)
    assert out["refused"] > 0
