"""Energy / latency estimator: SNN-paper convention, hand-computed breakdowns, sources,
Loihi 2 without energy, target errors, real event runs, the keyword-spotting check."""

from __future__ import annotations

import dataclasses
import json
import re

import numpy as np
import pytest

from snn2hw.chip.energy import (
    energy_for_graph,
    energy_for_targets,
    estimate_energy,
    kws_sanity_check,
    measure_torch_paths,
    snn_convention_energy,
    write_energy,
)
from snn2hw.chip.mapping import map_to_cores
from snn2hw.chip.targets import Target, load_baselines, load_target, targets_dir
from snn2hw.common.errors import Snn2hwError, TargetError
from snn2hw.pipeline.simulate import BackendRun, run_backend
from snn2hw.quant.qgraph import DenseNode, InputNode, LIFNode, OutputNode, QGraph


@pytest.fixture(scope="module")
def loihi() -> Target:
    return load_target("loihi")


def lif(name: str, n: int, vth: int = 100) -> LIFNode:
    z = np.zeros(n, dtype=np.int64)
    return LIFNode(name, (n,), du=4095, dv=0, vth=vth, bias_mant=z, bias_exp=z.copy())


def tiny_graph(w1: np.ndarray | None = None, w2: np.ndarray | None = None) -> QGraph:
    """in(4) -> w1 -> l1(3) -> w2 -> l2(2) -> out; all weights non-zero by default."""
    w1 = np.full((3, 4), 40, dtype=np.int64) if w1 is None else w1
    w2 = np.full((2, 3), 60, dtype=np.int64) if w2 is None else w2
    nodes = {
        "in": InputNode("in", (4,)),
        "w1": DenseNode("w1", w1),
        "l1": lif("l1", 3),
        "w2": DenseNode("w2", w2),
        "l2": lif("l2", 2),
        "out": OutputNode("out", (2,)),
    }
    edges = [("in", "w1"), ("w1", "l1"), ("l1", "w2"), ("w2", "l2"), ("l2", "out")]
    return QGraph(nodes, edges, dt=1e-3, target="loihi", num_steps=2)


def small_mesh(target: Target) -> Target:
    """2 neurons per core, 1 core per tile, 4 cores per chip (a 2 x 2 tile grid): cores
    0, 1, 2 sit at tiles (0, 0), (1, 0), (1, 1) in snake order."""
    res = dataclasses.replace(target.resources, neurons_per_core=2, cores_per_tile=1,
                              cores_per_chip=4)
    return dataclasses.replace(target, resources=res)


def hand_run() -> BackendRun:
    """3 steps, 2 samples; counters chosen by hand (summed over the batch)."""
    l1 = np.zeros((3, 2, 3), dtype=np.uint8)
    l1[1, 0] = [1, 0, 1]
    l1[1, 1] = [0, 0, 1]
    l1[2, 0] = [1, 1, 0]
    l1[2, 1] = [0, 0, 1]  # per neuron over steps and samples: 2, 1, 3
    l2 = np.zeros((3, 2, 2), dtype=np.uint8)
    l2[2, 0] = [1, 0]
    stats = {
        "synops": {"l1": np.array([0, 8, 4]), "l2": np.array([0, 6, 6])},  # 24 -> 12/inf.
        "synops_dense": {"l1": np.array([0, 8, 4]), "l2": np.array([0, 6, 8])},
        "neuron_updates": {"l1": np.array([0, 4, 6]), "l2": np.array([0, 2, 4])},  # 16 -> 8
        "spike_counts": {"l1": np.array([0, 3, 3]), "l2": np.array([0, 0, 1])},
        "macs_dense": {"l1": 12, "l2": 6},
        "peak_fanin": {"l1": 4, "l2": 3},
    }
    return BackendRun("event", {"l1": l1, "l2": l2}, stats=stats)


def test_snn_convention_reproduces_hand_example_exactly() -> None:
    c = snn_convention_energy(1000, 500)
    # 1000 SynOps x 0.9 pJ = 900 pJ; 500 MACs x 4.6 pJ = 2300 pJ (Horowitz-based convention)
    assert c.snn_pj == 900.0
    assert c.ann_pj == 2300.0
    assert c.ratio == pytest.approx(2300 / 900)
    assert (c.e_ac.value, c.e_mac.value) == (0.9, 4.6)
    assert "Horowitz" in c.e_ac.source and "Horowitz" in c.e_mac.source
    d = c.to_dict()
    assert d["snn_pj"] == 900.0 and d["ann_pj"] == 2300.0 and d["kind"] == "modelled"


def test_breakdown_equals_hand_computed_totals(loihi: Target) -> None:
    g = tiny_graph()
    tgt = small_mesh(loihi)
    m = map_to_cores(g, tgt)
    assert [(c.core, c.start, c.stop) for c in m.layers["l1"].cores] == [(0, 0, 2), (1, 2, 3)]
    assert [(c.core, c.start, c.stop) for c in m.layers["l2"].cores] == [(2, 0, 2)]
    inputs = np.ones((3, 2, 4), dtype=np.int64)  # frames 0, 1 reach l1 within 3 steps
    rep = estimate_energy(g, tgt, hand_run(), m, inputs=inputs)

    assert (rep.samples, rep.steps, rep.cores) == (2, 3, 3)
    assert rep.synops == 12  # (8 + 4 + 6 + 6) / 2
    assert rep.updates_active == 8  # (4 + 6 + 2 + 4) / 2
    assert rep.updates_inactive == 7  # (3 + 2) neurons x 3 steps - 8
    assert rep.spikes == 3.5  # (6 + 1) / 2
    traffic = {t.source: t for t in rep.traffic}
    # input: 2 frames x 2 samples x 4 values, each to l1's 2 cores -> 32 deliveries / 2
    assert (traffic["in"].spikes, traffic["in"].deliveries) == (8, 16)
    assert not traffic["in"].on_mesh and traffic["in"].hops_ew == 0
    # l1 -> l2 (core 2 at tile (1, 1)): neurons 0, 1 on core 0 at (0, 0): 1 E-W + 1 N-S hop;
    # neuron 2 on core 1 at (1, 0): 1 N-S hop. 3 spikes from core 0, 3 from core 1.
    t1 = traffic["l1"]
    assert (t1.deliveries, t1.within_tile, t1.hops_ew, t1.hops_ns) == (3, 0, 1.5, 3)
    assert traffic["l2"].deliveries == 0  # the output layer's spikes leave the mesh

    synaptic = 12 * 23.6
    neuron = 8 * 81.0 + 7 * 52.0
    routing = 0 * 1.7 + 1.5 * 3.0 + 3 * 4.0
    bd = rep.breakdown_pj
    assert bd["synaptic"] == pytest.approx(synaptic)
    assert bd["neuron"] == pytest.approx(neuron)
    assert bd["routing"] == pytest.approx(routing)
    assert bd["static"] is None  # Loihi's Table 2 gives no static power: "not given"
    assert rep.total_pj == pytest.approx(synaptic + neuron + routing)  # 1311.7 pJ
    assert rep.total_pj == pytest.approx(1311.7)

    # latency: per (step, sample) the longest route used; core 0 -> 2: 4.1 + 6.5 ns,
    # core 1 -> 2: 6.5 ns. Step 1: sample 0 uses both (10.6), sample 1 only core 1 (6.5).
    lat = rep.latency
    assert lat.routing_ns_per_step == pytest.approx([0.0, 8.55, 8.55])
    assert lat.per_inference_ns == pytest.approx(17.1)
    assert lat.compute_ns_per_step is None  # Table 2 has no per-synop / per-update latency
    assert "not included" in lat.covers
    # busiest core (most operations, no per-op latencies): l1's core 0 holds 2/3 of l1's
    # fan-in and neurons: 6 x 2/3 SynOps + 5 x 2/3 updates = 7.3 per inference; l2's single
    # core 2 does 6 SynOps + 3 updates = 9, so it is the busiest
    assert lat.busiest_core["core"] == 2 and lat.busiest_core["layer"] == "l2"
    assert lat.busiest_core["synops_per_step"] == pytest.approx(6 / 3)
    assert lat.busiest_core["updates_per_step"] == pytest.approx(3 / 3)

    # ANN baselines: 18 MACs per forward pass; dense SNN: 18 x 3 steps
    base = {r.name: r for r in rep.baselines}
    assert rep.macs_per_forward == 18
    ann = base["equivalent ANN, one forward pass, SNN-paper E_MAC"]
    assert ann.energy_pj == pytest.approx(18 * 4.6) and ann.kind == "modelled"
    dense = base["SNN dense, time-stepped on conventional HW, int8 mult + add"]
    assert dense.energy_pj == pytest.approx(18 * 3 * (0.2 + 0.03))
    assert rep.convention.snn_pj == pytest.approx(12 * 0.9)
    measured = [r for r in rep.baselines if r.kind == "measured"]
    assert measured and measured[0].energy_pj is None  # nothing measured was passed
    json.dumps(rep.to_dict(), default=float)


def test_every_printed_constant_has_a_source_and_pre_silicon_is_labelled(
        loihi: Target) -> None:
    g = tiny_graph()
    tgt = small_mesh(loihi)
    rep = estimate_energy(g, tgt, hand_run(), map_to_cores(g, tgt))
    md = rep.markdown()
    consts = rep.constants + rep.latency.constants + rep.baseline_constants
    consts += [rep.convention.e_ac, rep.convention.e_mac]
    assert len(consts) >= 16
    for c in consts:
        assert c.source.strip()
        assert c.source in md, c.name
        assert f"| {c.name} | {c.value:g} | {c.unit} |" in md
    # every constant printed in the energy table appears in the constants table
    for row in re.findall(r"^\| (?:synaptic|neuron|routing|learning) \|.*$", md, re.M):
        value = row.split("|")[4].strip()  # "23.6 pJ"
        assert any(f"{c.value:g} {c.unit}" == value for c in consts), row
    assert rep.pre_silicon
    assert "pre-silicon" in md.split("## Energy per inference")[1].split("##")[0]
    assert "Modelled energy per inference" in md and "pre-silicon" in md.splitlines()[4]
    d = rep.to_dict()
    assert d["energy"]["pre_silicon"] is True and d["energy"]["static"] == "not given"
    assert all(c["source"] for c in d["energy"]["constants"])
    assert "not given" in md  # static power is "not given", not 0


def test_loihi2_reports_activity_but_no_energy_number() -> None:
    tgt = load_target("loihi2")
    g = tiny_graph()
    rep = estimate_energy(g, tgt, hand_run(), map_to_cores(g, tgt))
    assert not rep.energy_available
    assert rep.total_pj is None and all(v is None for v in rep.breakdown_pj.values())
    assert rep.terms == [] and rep.constants == []
    assert rep.synops == 12 and rep.updates_active == 8  # activity is still reported
    md = rep.markdown()
    assert "No per-operation energy is published for loihi2" in md
    assert "no energy figure" in md
    target_part = md.split("## Baselines")[0]  # the SNN-paper baselines still carry pJ
    for invented in ("23.6", "81 pJ", "52 pJ", "1.7 pJ", "Table 2"):
        assert invented not in target_part
    assert "Latency on loihi2: not available" in md
    d = rep.to_dict()
    assert d["energy"]["available"] is False and d["energy"]["total_pj"] is None
    assert d["latency"]["per_inference_ns"] is None
    own = next(b for b in rep.baselines if b.group == "target")
    assert own.energy_pj is None and "not estimated" in own.basis
    assert any(b.energy_pj for b in rep.baselines if b.group == "ann")


def test_target_missing_synop_energy_names_the_key(tmp_path) -> None:
    text = (targets_dir() / "loihi.toml").read_text()
    cut = re.sub(r"\[energy\.synop_pj\]\n(?:[^\[].*\n)*", "", text)
    assert "[energy.synop_pj]" not in cut
    bad = tmp_path / "loihi_nosynop.toml"
    bad.write_text(cut)
    with pytest.raises(TargetError, match=r"energy\.synop_pj"):
        energy_for_graph(tiny_graph(), bad, inputs=np.ones((2, 1, 4), dtype=np.int64))


def test_unknown_target_lists_known_ones() -> None:
    with pytest.raises(TargetError, match=r"unknown target 'loihi9'.*loihi, loihi2"):
        energy_for_graph(tiny_graph(), "loihi9", inputs=np.ones((2, 1, 4), dtype=np.int64))


def test_all_targets_are_checked_before_simulating(monkeypatch) -> None:
    import snn2hw.pipeline.simulate as sim

    def boom(*a, **k):  # pragma: no cover - must not be reached
        raise AssertionError("simulated before checking the targets")

    monkeypatch.setattr(sim, "run_backend", boom)
    with pytest.raises(TargetError, match="unknown target 'nope'"):
        energy_for_targets(tiny_graph(), ["loihi", "nope"],
                           inputs=np.ones((2, 1, 4), dtype=np.int64))


def test_run_without_counters_asks_for_the_event_backend(loihi: Target) -> None:
    g = tiny_graph()
    run = BackendRun("torch-int", hand_run().spikes)
    with pytest.raises(Snn2hwError, match="event"):
        estimate_energy(g, loihi, run, map_to_cores(g, loihi))


def test_mapping_for_another_target_is_refused(loihi: Target) -> None:
    g = tiny_graph()
    with pytest.raises(Snn2hwError, match="mapping was made for target 'loihi2'"):
        estimate_energy(g, loihi, hand_run(), map_to_cores(g, load_target("loihi2")))


def test_real_event_run_counts_match_a_hand_count(loihi: Target, tmp_path) -> None:
    rng = np.random.default_rng(3)
    w1 = np.full((3, 4), 40, dtype=np.int64)
    w1[0, 1] = 0  # one missing synapse: SynOps (non-zero) < dense count
    g = tiny_graph(w1=w1)
    g.num_steps = 6  # the run lasts num_steps + depth() steps
    x = (rng.random((6, 5, 4)) < 0.6).astype(np.int64)
    rep, run, ints = energy_for_graph(g, loihi, inputs=x)
    n = run.spikes["l1"].shape[0]  # 6 frames + depth 2 = 8 steps
    assert n == 8 and rep.steps == 8 and rep.samples == 5
    # l1 SynOps: every input event reaches 3 neurons, minus the zero weight (input 1 -> l1[0])
    used = x[: n - 1]
    hand = used.sum() * 3 - used[..., 1].sum()
    assert rep.layers[0].synops == pytest.approx(hand / 5)
    assert rep.layers[0].synops_dense == pytest.approx(used.sum() * 3 / 5)
    # l2 SynOps: each l1 spike reaches 2 neurons
    assert rep.layers[1].synops == pytest.approx(run.spikes["l1"].sum() * 2 / 5)
    assert rep.total_pj and rep.total_pj > 0
    reps, run2 = energy_for_targets(g, ["loihi", "loihi2"], inputs=x)
    assert reps[0].to_dict()["activity"] == rep.to_dict()["activity"]  # same counts
    assert np.array_equal(run2.spikes["l1"], run.spikes["l1"])
    rep2 = reps[1]
    paths = write_energy([rep, rep2], tmp_path)
    data = json.loads(paths["json"].read_text())
    assert [d["target"] for d in data] == ["loihi", "loihi2"]
    assert data[1]["energy"]["total_pj"] is None
    assert "# Energy and latency estimate: loihi2" in paths["md"].read_text()


def test_measure_torch_paths_cpu_reports_wall_time_not_energy(loihi: Target) -> None:
    g = tiny_graph()
    x = np.ones((3, 4, 4), dtype=np.int64)
    m = measure_torch_paths(g, x, "cpu", repeats=1)
    assert m["kind"] == "measured" and not m["energy_measured"]
    assert "not measured" in m["energy_note"]
    p = m["paths"]["torch-int"]
    assert p["wall_s_per_inference"] > 0 and "energy_j_per_inference" not in p
    run = run_backend("event", g, x)
    rep = estimate_energy(g, loihi, run, map_to_cores(g, loihi), measured=m, inputs=x)
    row = next(r for r in rep.baselines if r.kind == "measured")
    assert row.wall_s == p["wall_s_per_inference"] and row.energy_pj is None
    md = rep.markdown()
    assert "not measured" in md and "energy (measured)" in md and "energy (modelled)" in md


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


def test_optional_static_and_per_op_latency_constants_are_used(loihi: Target) -> None:
    """A target giving static energy and per-op latencies gets them in the model."""
    from snn2hw.chip.targets import Constant

    tgt = small_mesh(loihi)
    static = Constant("static_per_core_step_pj", 10.0, "test constant", "pJ", assumption=True)
    syn_ns = Constant("synop_ns", 1.0, "test constant", "ns", assumption=True)
    neu_ns = Constant("neuron_update_ns", 10.0, "test constant", "ns", assumption=True)
    tgt = dataclasses.replace(
        tgt,
        energy=dataclasses.replace(tgt.energy, constants={**tgt.energy.constants,
                                                          static.name: static}),
        latency=dataclasses.replace(tgt.latency, constants={**tgt.latency.constants,
                                                            syn_ns.name: syn_ns,
                                                            neu_ns.name: neu_ns}),
    )
    g = tiny_graph()
    rep = estimate_energy(g, tgt, hand_run(), map_to_cores(g, tgt))
    assert rep.breakdown_pj["static"] == pytest.approx(3 * 3 * 10.0)  # cores x steps x 10
    assert rep.total_pj == pytest.approx(1311.7 + 90.0)
    # per step, busiest core: l1 core 0 (2/3 of l1) step 1: 4*2/3*1 + 2*2/3*10 = 16;
    # step 2: l2 core 2: 3*1 + 2*10 = 23 (beats core 0's 21.3)
    lat = rep.latency
    assert lat.compute_ns_per_step == pytest.approx([0.0, 16.0, 23.0])
    assert lat.per_inference_ns == pytest.approx(39.0 + 17.1)
    assert lat.busiest_core["core"] == 0  # most modelled time over the run: 37.3 vs 36 ns
    assert "per-op latencies" in lat.covers
    md = rep.markdown()
    assert "static_per_core_step_pj" in md and "assumption" in md
