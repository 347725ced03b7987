"""Energy / latency estimator on hand-made activity (plain data, no simulator): SNN-paper
convention, hand-computed breakdowns, sources, Loihi 2 without energy, missing counters,
optional static / per-op latency constants."""

from __future__ import annotations

import dataclasses
import json
import re

import numpy as np
import pytest

from snn2hw.chip.energy import (
    LayerCounts,
    RunActivity,
    estimate_energy,
    snn_convention_energy,
)
from snn2hw.chip.mapping import map_to_cores
from snn2hw.chip.targets import Target, load_target
from snn2hw.common.errors import Snn2hwError
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


def hand_run() -> RunActivity:
    """3 steps, 2 samples; counters chosen by hand (summed over the batch)."""
    l1 = np.zeros((3, 2, 3), dtype=np.uint8)
    l1[1, 0] = [1, 0, 1]
    l1[1, 1] = [0, 0, 1]
    l1[2, 0] = [1, 1, 0]
    l1[2, 1] = [0, 0, 1]  # per neuron over steps and samples: 2, 1, 3
    l2 = np.zeros((3, 2, 2), dtype=np.uint8)
    l2[2, 0] = [1, 0]
    return RunActivity("event", {
        # SynOps 24 -> 12 per inference; active updates 16 -> 8
        "l1": LayerCounts(l1, synops=np.array([0, 8, 4]), synops_dense=np.array([0, 8, 4]),
                          neuron_updates=np.array([0, 4, 6]), macs_dense=12),
        "l2": LayerCounts(l2, synops=np.array([0, 6, 6]), synops_dense=np.array([0, 6, 8]),
                          neuron_updates=np.array([0, 2, 4]), macs_dense=6),
    })


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


def test_run_without_counters_asks_for_the_event_backend(loihi: Target) -> None:
    g = tiny_graph()
    run = RunActivity("torch-int", {k: LayerCounts(c.spikes) for k, c in hand_run().layers.items()})
    with pytest.raises(Snn2hwError, match="counter 'synops' for layer 'l1'.*backend 'torch-int'"):
        estimate_energy(g, loihi, run, map_to_cores(g, loihi))


def test_mapping_for_another_target_is_refused(loihi: Target) -> None:
    g = tiny_graph()
    with pytest.raises(Snn2hwError, match="mapping was made for target 'loihi2'"):
        estimate_energy(g, loihi, hand_run(), map_to_cores(g, load_target("loihi2")))


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


def test_missing_macs_counter_asks_for_the_event_backend(loihi: Target) -> None:
    g = tiny_graph()
    act = hand_run()
    act.layers["l2"] = dataclasses.replace(act.layers["l2"], macs_dense=None)
    with pytest.raises(Snn2hwError, match="no 'macs_dense' counter for 'l2'.*'event' backend"):
        estimate_energy(g, loihi, act, map_to_cores(g, loihi))


def test_chip_energy_imports_no_backend_and_no_pipeline() -> None:
    """Activity arrives as data: importing the chip package loads no simulator."""
    import subprocess
    import sys

    code = ("import sys, snn2hw.chip.energy\n"
            "bad = [m for m in sys.modules if m.startswith(('snn2hw.backends', "
            "'snn2hw.pipeline'))]\n"
            "assert not bad, bad\n")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_number_formatting_lives_in_common() -> None:
    from snn2hw.chip.energy import format_energy, format_time
    from snn2hw.common import formatting

    assert format_energy is formatting.format_energy and format_time is formatting.format_time
    assert formatting.format_energy(1234.5) == "1.23 nJ"
    assert formatting.format_energy(None) == "not given"
    assert formatting.format_time(1234) == "1.23 µs"
    assert formatting.format_count(1234.0) == "1,234"
    assert formatting.format_count(0.12345) == "0.1235"
