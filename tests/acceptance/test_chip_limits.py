"""Acceptance: every example model and the NIR-paper graphs, exported for ``loihi``, keep
their proven worst case inside the Loihi 1 chip's limits (docs/loihi-edges.md): per
layer the worst-case synaptic input sum ``|a << 6|`` against the 2^21 accumulator,
``u`` and ``u + bias`` against 24 bits, and no negative weight exponent where the chip's
per-synapse shift and Lava's shift of the sum could differ.

PTQ enforces the limits (the ``chip_*`` keys in snn2hw/chip/targets/data/loihi.toml drive
:func:`snn2hw.quant.ptq.quantize`). Before it did, graded 8-bit input into 64 pixels summed
far past 2^21, and the NIR-paper CNN and RNN reached 2.2-9.6x 2^21 with binary input (PTQ
sized vth from calibration data, not from the worst case).

The digits models train for one epoch on CPU (the point is the bound, not accuracy;
``-s`` prints the per-layer table and the event-simulator accuracy). The mnist5k
examples are left out: their data set and training take minutes.
"""

from __future__ import annotations

import numpy as np
import pytest

from snn2hw.chip.targets import load_target
from snn2hw.common.examples import examples_dir
from snn2hw.pipeline.export import export
from snn2hw.pipeline.samples import SampleSpec
from snn2hw.quant.bounds import bounds_table, layer_bounds, limits_from_formats
from snn2hw.quant.qgraph import QGraph
from snn2hw.training.config import load_config
from snn2hw.training.train import train

EXAMPLES = examples_dir()

def test_loihi_declares_the_chip_limits():
    assert limits_from_formats(load_target("loihi").raw["formats"]) is not None


# Before PTQ enforced the limits these were outside (digits_lif's graded input: |q| 5.4x
# 2^21 in lif1; digits_srm: weight_exp -6, edge rule 4, and |q| 2.0x in srm2).
DIGITS = ["digits_lif", "digits_srm", "digits_conv", "digits_spikeseq", "digits_resnet"]


def _report(name: str, g: QGraph) -> list:
    bounds = layer_bounds(g)
    print()
    print(bounds_table(bounds, f"{name} (input: {g.input_node.message_bits or 'binary'} bits)"))
    return bounds


def _assert_inside(bounds) -> None:
    bad = {b.name: b.violations() for b in bounds if not b.ok}
    assert not bad, bad


@pytest.mark.slow
@pytest.mark.parametrize("name", DIGITS)
def test_example_model_worst_case_inside_chip_limits(tmp_path, name):
    cfg = load_config(EXAMPLES / f"{name}.toml")
    cfg["train"]["epochs"] = 1
    cfg["experiment"]["device"] = "cpu"
    res = train(cfg, out_dir=tmp_path / "run", progress=False)
    exp = export(res.best_checkpoint, "loihi", tmp_path / "out", calib_samples=64)
    _assert_inside(_report(name, QGraph.load(exp.qgraph_path)))


def _nir_paper(tmp_path, nir_file, frames, convention, dt=None):
    inputs = tmp_path / "inputs.npy"
    np.save(inputs, frames.astype(np.float32))
    # Sinabs' subtract / >= / several spikes per step: Loihi 1 has none of them
    approx = ("reset", "threshold", "spikes") if convention == "sinabs" else ()
    res = export(nir_file, "loihi", tmp_path / "out", dt=dt, convention=convention,
                 approximate=approx,
                 spec=SampleSpec(inputs_file=str(inputs)), calib_samples=frames.shape[1])
    return QGraph.load(res.qgraph_path)


def test_nir_paper_norse_lif_inside_chip_limits(tmp_path, external):
    csv = np.loadtxt(external / "nir-paper/01_lif/lif_exact.csv", delimiter=",")
    g = _nir_paper(tmp_path, external / "nir-paper/01_lif/lif_norse.nir",
                   csv[:, 0].reshape(-1, 1, 1), "norse:tau=seconds", dt=1e-4)
    _assert_inside(_report("nir-paper 01_lif (norse)", g))


# before enforcement: |q| 2.2x 2^21 (lif2), u + bias 1.08x 2^23
def test_nir_paper_snntorch_braille_rnn_inside_chip_limits(tmp_path, external):
    x = np.load(external / "nir-paper/03_rnn/braille_test0_input_T256x12.npy")
    g = _nir_paper(tmp_path, external / "nir-paper/03_rnn/braille_noDelay_bias_zero.nir",
                   x.reshape(256, 1, 12), "snntorch:reset=zero,reset_delay=false")
    _assert_inside(_report("nir-paper 03_rnn (snnTorch braille)", g))


# before enforcement: |q| up to 9.6x 2^21, u + bias 2.4x 2^23 (binary input, weight_exp 4-6)
def test_nir_paper_sinabs_cnn_inside_chip_limits(tmp_path, external):
    from snn2hw.data import make_synthetic_events

    x, _ = make_synthetic_events(4, n_frames=12, seed=3)
    g = _nir_paper(tmp_path, external / "nir-paper/02_cnn/cnn_sinabs.nir",
                   np.ascontiguousarray(x.transpose(1, 0, 2, 3, 4)), "sinabs")
    _assert_inside(_report("nir-paper 02_cnn (sinabs)", g))
