"""The keyword-spotting paper check: synthetic activity on the Blouw et al. 2018 network
against the published Loihi figure."""

from __future__ import annotations

import json

import numpy as np
import pytest

from snn2hw.chip.energy import kws_graph, kws_sanity_check
from snn2hw.chip.energy.kws import _synthetic_run
from snn2hw.chip.targets import load_baselines


def test_kws_sanity_check_against_published_loihi_figure() -> None:
    r = kws_sanity_check(samples=2)
    assert r["network"]["sizes"] == [390, 256, 256, 29]
    assert r["published_mj"] == 0.27 and "1812.01739" in r["published_source"]
    assert r["steps_per_inference"] == 10 and r["pre_silicon"]
    # per-operation model of the neuro-cores only: far below the system measurement,
    # even when every neuron spikes every step
    assert 0 < r["ratio_modelled_over_published"] < r["ratio_all_spiking_over_published"] < 1
    assert r["modelled_mj"] == pytest.approx(r["ratio_modelled_over_published"] * 0.27)
    assert any("dynamic" in s for s in r["reasons"])
    assert "0.27 mJ" in r["summary"] and "ratio" in r["summary"]
    assert any("static" in s.lower() for s in r["reasons"])
    json.dumps(r, default=float)
    assert load_baselines()["measured"]["loihi_kws_mj"].value == r["published_mj"]


def test_synthetic_activity_counts_every_synapse_of_the_kws_network() -> None:
    """All-ones rates: every source spikes every step, so from step 1 on each layer gets
    every synapse's event (the weights are built to survive the chip's truncation)."""
    g = kws_graph(sizes=(6, 4, 3))
    act, ints = _synthetic_run(g, dict.fromkeys(["in", "l1", "out_lif"], 1.0), 3, 2, seed=0)
    assert act.source == "synthetic" and ints.shape == (3, 2, 6) and ints.min() == 1
    l1 = act.layers["l1"]
    assert l1.macs_dense == 24
    assert list(l1.synops) == [0, 2 * 24, 2 * 24]  # 2 samples, one-step hop delay
    assert list(l1.synops_dense) == list(l1.synops)
    assert list(l1.neuron_updates) == [0, 2 * 4, 2 * 4]
    assert np.array_equal(act.counter("out_lif", "synops"), [0.0, 2 * 12, 2 * 12])
