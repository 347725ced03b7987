"""Energy stage: target errors before any simulation, the event run's counters turned into
plain activity data, real event runs against a hand count, energy.json/.md."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

from snn2hw.chip.energy import estimate_energy, write_energy
from snn2hw.chip.mapping import map_to_cores
from snn2hw.chip.targets import Target, load_target, targets_dir
from snn2hw.common.errors import Snn2hwError, TargetError
from snn2hw.pipeline.energy import activity_from_run, energy_for_graph, energy_for_targets
from snn2hw.pipeline.simulate import BackendRun, run_backend
from snn2hw.quant.qgraph import DenseNode, InputNode, LIFNode, OutputNode, QGraph


@pytest.fixture(scope="module")
def loihi() -> Target:
    return load_target("loihi")


def lif(name: str, n: int, vth: int = 100) -> LIFNode:
    z = np.zeros(n, dtype=np.int64)
    return LIFNode(name, (n,), du=4095, dv=0, vth=vth, bias_mant=z, bias_exp=z.copy())


def tiny_graph(w1: np.ndarray | None = None) -> QGraph:
    """in(4) -> w1 -> l1(3) -> w2 -> l2(2) -> out; all weights non-zero by default."""
    w1 = np.full((3, 4), 40, dtype=np.int64) if w1 is None else w1
    nodes = {
        "in": InputNode("in", (4,)),
        "w1": DenseNode("w1", w1),
        "l1": lif("l1", 3),
        "w2": DenseNode("w2", np.full((2, 3), 60, dtype=np.int64)),
        "l2": lif("l2", 2),
        "out": OutputNode("out", (2,)),
    }
    edges = [("in", "w1"), ("w1", "l1"), ("l1", "w2"), ("w2", "l2"), ("l2", "out")]
    return QGraph(nodes, edges, dt=1e-3, target="loihi", num_steps=2)


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
    with pytest.raises(AssertionError, match="simulated"):  # the patch is the one called
        energy_for_targets(tiny_graph(), ["loihi"], inputs=np.ones((2, 1, 4), dtype=np.int64))


def test_activity_from_run_carries_the_event_counters_as_data() -> None:
    g = tiny_graph()
    x = np.ones((3, 2, 4), dtype=np.int64)
    run = run_backend("event", g, x)
    act = activity_from_run(run)
    assert act.source == "event" and set(act.layers) == {"l1", "l2"}
    for name, counts in act.layers.items():
        assert counts.spikes is run.spikes[name]
        for key in ("synops", "synops_dense", "neuron_updates"):
            assert np.array_equal(act.counter(name, key), run.stats[key][name])
        assert counts.macs_dense == run.stats["macs_dense"][name]
    spikes_only = activity_from_run(BackendRun("torch-int", run.spikes))
    assert spikes_only.layers["l1"].synops is None
    with pytest.raises(Snn2hwError, match="'event' backend.*'torch-int' records spikes only"):
        energy_for_graph(g, "loihi", run=BackendRun("torch-int", run.spikes), inputs=x)


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
    direct = estimate_energy(g, loihi, activity_from_run(run), map_to_cores(g, loihi), inputs=x)
    assert direct.to_dict() == rep.to_dict()  # the stage adds nothing but the run
    reps, run2 = energy_for_targets(g, ["loihi", "loihi2"], inputs=x)
    assert reps[0].to_dict()["activity"] == rep.to_dict()["activity"]  # same counts
    assert np.array_equal(run2.spikes["l1"], run.spikes["l1"])
    rep2 = reps[1]
    paths = write_energy([rep, rep2], tmp_path)
    data = json.loads(paths["json"].read_text())
    assert [d["target"] for d in data] == ["loihi", "loihi2"]
    assert data[1]["energy"]["total_pj"] is None
    assert "# Energy and latency estimate: loihi2" in paths["md"].read_text()
