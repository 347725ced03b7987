"""Acceptance: real third-party NIR graphs (tests/reference_data/nir-paper) go through the
whole deployment path: import -> quantize for loihi -> Lava, event simulator and torch
integer mode agree spike for spike."""

from __future__ import annotations

import numpy as np
import pytest

from snn2hw.pipeline.compare import compare
from snn2hw.pipeline.export import export
from snn2hw.pipeline.samples import SampleSpec

pytestmark = pytest.mark.lava


def _export_and_compare(tmp_path, nir_file, frames, convention, dt=None, labels=None,
                        backends=("torch-int", "event", "lava"), calib=None,
                        accept_deviation=False):
    inputs = tmp_path / "inputs.npy"
    np.save(inputs, frames.astype(np.float32))
    spec_kw = {"inputs_file": str(inputs)}
    if labels is not None:
        lab = tmp_path / "labels.npy"
        np.save(lab, labels)
        spec_kw["labels_file"] = str(lab)
    # Sinabs' subtract / >= / several spikes per step: Loihi 1 has none of them
    approx = ("reset", "threshold", "spikes") if convention == "sinabs" else ()
    res = export(nir_file, "loihi", tmp_path / "out", dt=dt, convention=convention,
                 approximate=approx,
                 spec=SampleSpec(**spec_kw), calib_samples=calib or frames.shape[1],
                 accept_deviation=accept_deviation)
    print(f"{nir_file.name}: {res.check.summary()}\n{res.check.table()}")
    # the deployment check with default limits, unless the test accepts a measured cost
    assert res.check.passed or accept_deviation, res.check.error()
    cmp = compare(res.qgraph_path, ["float", *backends], frames.shape[1])
    return res, cmp


def test_norse_lif_graph_quantized_runs_identically_on_three_integer_backends(tmp_path, external):
    csv = np.loadtxt(external / "nir-paper/01_lif/lif_exact.csv", delimiter=",")
    frames = csv[:, 0].reshape(-1, 1, 1)
    res, cmp = _export_and_compare(tmp_path, external / "nir-paper/01_lif/lif_norse.nir",
                                   frames, "norse:tau=seconds", dt=1e-4)
    assert cmp.integer_equal, cmp.divergences[0].describe()
    spikes = {b: np.flatnonzero(r.spikes["1"][:, 0, 0]).tolist() for b, r in cmp.runs.items()}
    assert spikes["lava"] == spikes["event"] == spikes["torch-int"]
    # the float path spikes at the exact solution's steps; the chip one hop later, and the
    # quantized decay (dv = round(4096 * 0.04) = 164) keeps every spike within a step of it
    assert [s - 1 for s in spikes["lava"]] == pytest.approx([460, 510, 710, 760], abs=1)


def test_snntorch_braille_recurrent_graph_three_integer_backends_agree(tmp_path, external):
    x = np.load(external / "nir-paper/03_rnn/braille_test0_input_T256x12.npy")
    res, cmp = _export_and_compare(
        tmp_path, external / "nir-paper/03_rnn/braille_noDelay_bias_zero.nir",
        x.reshape(256, 1, 12), "snntorch:reset=zero,reset_delay=false", labels=np.array([1]))
    assert cmp.integer_equal, cmp.divergences[0].describe()
    assert cmp.accuracy["float"] == 1.0  # the float path predicts class 1
    assert cmp.accuracy["lava"] == cmp.accuracy["event"] == cmp.accuracy["torch-int"] == 1.0
    ref = np.load(external / "nir-paper/03_rnn/snntorch_activity_noDelay_bias_zero.npy")
    hidden = cmp.runs["torch-int"].spikes["lif1.lif"][:, 0]
    # integer spikes shifted back by the one-step hop delay, against snnTorch's activity
    diff = int(np.abs(hidden[1 : 1 + 256].astype(int) - ref.astype(int)).sum())
    print(f"braille: {int(ref.sum())} snnTorch hidden spikes, {diff} differ after quantization")
    # Most differences are early: the CUBA layer's synaptic (Affine) biases become a
    # steady-state membrane bias on Loihi, which skips the current's rise over the first
    # steps; the recurrence then carries the timing shift forward. Keeping the proven worst
    # case inside Loihi 1's limits (docs/loihi-edges.md) lowers vth and adds about 30 more
    # (105 before the chip limits were enforced, 133 with them; snnTorch has 119 spikes).
    assert diff <= 140


def test_sinabs_cnn_fits_loihi_and_three_integer_backends_agree(tmp_path, external):
    from snn2hw.data import make_synthetic_events

    x, _ = make_synthetic_events(4, n_frames=12, seed=3)
    frames = np.ascontiguousarray(x.transpose(1, 0, 2, 3, 4))
    res, cmp = _export_and_compare(tmp_path, external / "nir-paper/02_cnn/cnn_sinabs.nir",
                                   frames, "sinabs", accept_deviation=True)
    assert res.report["resources"]["total_cores"] >= 5
    # Sinabs resets by subtraction, Loihi to 0: the deployment check measures the cost
    # (output '12': 27 float spikes, 19 integer, -29.6 %) and names the reset as the cause;
    # `snn2hw export` exits 2 on this graph unless --accept-deviation.
    chk = res.check
    assert not chk.passed and chk.accepted
    assert chk.layer("12").change < -0.05
    assert all(lay.causes[0].startswith("reset: the source resets by subtract")
               for lay in chk.layers)
    assert cmp.integer_equal, cmp.divergences[0].describe()
    assert any(r.spikes[k].any() for r in cmp.runs.values() for k in r.spikes)
