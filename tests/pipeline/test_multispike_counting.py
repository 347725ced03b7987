"""Spike statistics and energy count events, not payloads: a multi-spike neuron's count
travels as one graded message (docs/qgraph.md "Outputs a backend returns")."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from snn2hw.chip.energy.estimator import estimate_energy
from snn2hw.chip.mapping import map_to_cores
from snn2hw.chip.targets import load_target
from snn2hw.pipeline.energy import activity_from_run
from snn2hw.pipeline.simulate import layer_summary, run_backend
from snn2hw.quant.qgraph import DenseNode, InputNode, LIFNode, OutputNode, QGraph


def _graph() -> QGraph:
    tgt = load_target("loihi2")
    fmt = dataclasses.replace(tgt.number_formats, max_message_bits=max(
        tgt.number_formats.max_message_bits, 3))
    z = np.zeros(1, np.int64)
    nodes = [InputNode("in", (1,)), DenseNode("fc", np.array([[255]])),
             LIFNode("lif", (1,), du=4095, dv=4095, vth=1, bias_mant=z, bias_exp=z.copy(),
                     max_spikes=7),
             OutputNode("out", (1,))]
    return QGraph({n.name: n for n in nodes}, [("in", "fc"), ("fc", "lif"), ("lif", "out")],
                  1e-3, "loihi2", 4, formats=fmt).validate()


@pytest.mark.parametrize("backend", ["torch-int", "event"])
def test_layer_summary_counts_events_of_a_multi_spike_neuron(backend):
    g = _graph()
    run = run_backend(backend, g, np.ones((4, 1, 1), np.int64))
    s = run.spikes["lif"][:, 0, 0]
    assert s.max() == 7  # every active step emits the capped count
    row = layer_summary(g, run)["lif"]
    assert row["spikes_per_sample"] == np.count_nonzero(s) == 4


def test_energy_counts_one_message_per_multi_spike_event():
    g = _graph()
    tgt = load_target("loihi2")
    run = run_backend("event", g, np.ones((4, 1, 1), np.int64))
    rep = estimate_energy(g, tgt, activity_from_run(run), map_to_cores(g, tgt),
                          inputs=np.ones((4, 1, 1), np.int64))
    assert rep.spikes == 4
