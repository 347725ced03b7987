"""The keyword-spotting paper check: synthetic activity on the Blouw et al. 2018 network
against the published Loihi figure.

The modelled figure is recomputed here by hand: from the synthesized spikes alone (not the
synthesizer's counters), the mapping's core placement written out, and the Loihi Table 2
constants as literals (checked against snn2hw/chip/targets/data/loihi.toml), then compared with the
library's figure to 1e-9 relative (float summation order only: everything is determined by
the seed). The headline numbers are also pinned as literals (README: 3.35 uJ, 37 uJ)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from snn2hw.chip.energy import kws_graph, kws_sanity_check
from snn2hw.chip.energy.kws import KWS_STEPS, _synthetic_run
from snn2hw.chip.mapping import map_to_cores
from snn2hw.chip.targets import load_baselines, load_target

# Davies et al. 2018, Table 2 (0.75 V, pre-silicon), pJ
SYNOP_PJ, ACTIVE_PJ, INACTIVE_PJ = 23.6, 81.0, 52.0
WITHIN_TILE_PJ, HOP_EW_PJ, HOP_NS_PJ = 1.7, 3.0, 4.0
REL = 1e-9  # same arithmetic, different summation order


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


def _by_hand(rates: dict[str, float], samples: int, seed: int = 0) -> dict[str, float]:
    """Energy per inference (pJ) of the keyword spotter from the synthesized spikes, written
    out term by term (snn2hw.chip.energy.estimator; docs/sources.md "Energy and latency model"):

    - every synapse exists (weights even and non-zero, so the mixed-sign truncation keeps
      them), and a spike at step t reaches the next layer at step t + 1: over the 10 steps
      SynOps = sum over source layers of (its spikes at steps 0..8) x (fan-out = size of
      the next layer: 256, 256, 29);
    - a neuron update is active from the first step a neuron received an event, i.e. from
      the step after its source layer first spiked in that sample (all-to-all); inactive =
      neurons x steps - active;
    - routing, from the placement (5 cores, 4 per tile: l1 on cores 0-1, l2 on cores 2-3,
      all in tile (0, 0), out_lif on core 4 in tile (1, 0)): an l1 spike is delivered to both
      l2 cores within its tile (2 x 1.7 pJ); an l2 spike crosses one east-west tile hop to
      core 4 (3.0 pJ); out_lif spikes go nowhere; input spikes are injected from off the
      mesh (no energy);
    - E = SynOps x 23.6 + active x 81 + inactive x 52 + l1 spikes x 2 x 1.7
          + l2 spikes x 3.0 (no static term: Table 2 gives none).
    """
    g = kws_graph(seed)
    act, ints = _synthetic_run(g, rates, KWS_STEPS, samples, seed)
    spikes = {"in": ints != 0, **{k: act.layers[k].spikes != 0 for k in ("l1", "l2", "out_lif")}}
    chain = [("in", "l1", 256), ("l1", "l2", 256), ("l2", "out_lif", 29)]
    synops = active = 0.0
    for src, _dst, n_dst in chain:
        s = spikes[src]  # [steps, samples, neurons]
        synops += s[: KWS_STEPS - 1].sum() * n_dst
        fired = s.any(axis=2)  # [steps, samples]
        for b in range(samples):
            t = np.flatnonzero(fired[:, b])
            if t.size and t[0] + 1 < KWS_STEPS:
                active += (KWS_STEPS - (t[0] + 1)) * n_dst
    total_neurons = 256 + 256 + 29
    synops /= samples
    active /= samples
    inactive = total_neurons * KWS_STEPS - active
    l1 = spikes["l1"].sum() / samples
    l2 = spikes["l2"].sum() / samples
    pj = (synops * SYNOP_PJ + active * ACTIVE_PJ + inactive * INACTIVE_PJ
          + l1 * 2 * WITHIN_TILE_PJ + l2 * HOP_EW_PJ)
    return {"pj": pj, "synops": synops, "active": active, "inactive": inactive,
            "spikes": l1 + l2 + spikes["out_lif"].sum() / samples,
            "routing_pj": l1 * 2 * WITHIN_TILE_PJ + l2 * HOP_EW_PJ}


def test_the_constants_and_placement_the_hand_formula_assumes():
    e = load_target("loihi").energy
    assert [e[k].value for k in ("synop_pj", "neuron_update_active_pj",
                                 "neuron_update_inactive_pj", "spike_within_tile_pj",
                                 "hop_ew_pj", "hop_ns_pj")] == [
        SYNOP_PJ, ACTIVE_PJ, INACTIVE_PJ, WITHIN_TILE_PJ, HOP_EW_PJ, HOP_NS_PJ]
    assert not [k for k in e if k.startswith("static")]
    m = map_to_cores(kws_graph(0), load_target("loihi"))
    assert m.total_cores == 5 and m.cores_per_tile == 4
    assert {k: [c.core for c in v.cores] for k, v in m.layers.items()} == {
        "l1": [0, 1], "l2": [2, 3], "out_lif": [4]}
    assert [tuple(int(a[0]) for a in m.position(np.array([c]))) for c in range(5)] == [
        (0, 0)] * 4 + [(1, 0)]


@pytest.mark.parametrize("samples", [2, 8])
def test_kws_modelled_energy_equals_the_hand_formula(samples):
    r = kws_sanity_check(samples=samples)
    want = _by_hand(r["rates_assumed"], samples)
    act = r["activity_per_inference"]
    assert act["synops"] == pytest.approx(want["synops"], rel=REL)
    assert act["neuron_updates_active"] == pytest.approx(want["active"], rel=REL)
    assert act["neuron_updates_inactive"] == pytest.approx(want["inactive"], rel=REL)
    assert act["spikes"] == pytest.approx(want["spikes"], rel=REL)
    assert r["modelled_breakdown_pj"]["routing"] == pytest.approx(want["routing_pj"], rel=REL)
    assert r["modelled_mj"] == pytest.approx(want["pj"] * 1e-9, rel=REL)
    # the bound: every neuron spikes every step (no randomness left): by hand exactly
    full = _by_hand(dict.fromkeys(r["rates_assumed"], 1.0), samples)
    assert full["synops"] == 9 * (390 * 256 + 256 * 256 + 256 * 29)
    assert full["active"] == 9 * (256 + 256 + 29) and full["inactive"] == 256 + 256 + 29
    assert r["modelled_all_spiking_mj"] == pytest.approx(full["pj"] * 1e-9, rel=REL)


def test_kws_headline_numbers():
    """The README's figures (default arguments: 8 samples, seed 0). Deterministic, so the
    tolerance is float summation order only (1e-9 relative)."""
    r = kws_sanity_check()
    assert r["modelled_mj"] == pytest.approx(3.349467175e-3, rel=REL)  # 3.35 uJ
    assert r["modelled_all_spiking_mj"] == pytest.approx(3.7141625e-2, rel=REL)  # 37 uJ
    assert r["ratio_modelled_over_published"] == pytest.approx(3.349467175e-3 / 0.27, rel=REL)
    # bound by hand: 9 steps x 172,800 SynOps (390 x 256 + 256 x 256 + 256 x 29) x 23.6
    #   + 9 x 541 x 81 (active) + 541 x 52 (step 0, inactive)
    #   + 256 x 10 x 2 x 1.7 (l1, within tile) + 256 x 10 x 3.0 (l2, one hop) = 37,141,625 pJ
    assert (9 * 172800 * 23.6 + 9 * 541 * 81 + 541 * 52 + 2560 * 3.4 + 2560 * 3.0
            == pytest.approx(37_141_625, rel=REL))
