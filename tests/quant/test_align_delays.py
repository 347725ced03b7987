"""Merge-point alignment at export (snn2hw.quant.align_delays): which delays are inserted,
that the aligned integer graph sums exactly what the float model's timing sums, the
misalignment report on a target without delays, and refusals above the target's limit.

Execution uses the small independent reference in ``delay_reference.py`` (no backend on
this branch executes delays); the torch-int cost test runs once torch-int declares the
"delay" feature."""

from __future__ import annotations

import dataclasses

import nir
import numpy as np
import pytest
import torch
from delay_reference import run_reference

from snn2hw.chip.targets import load_target
from snn2hw.common.errors import QuantizationError
from snn2hw.nir.discretize import CONVENTIONS
from snn2hw.nir.executor import NIRNet
from snn2hw.quant.align_delays import aligned_twin, layer_shifts, plan_alignment
from snn2hw.quant.ptq import quantize
from snn2hw.quant.qgraph import ConvNode, DenseNode, QGraph

DT = 1e-3
N = 6


def skip_chain(depth: int, seed: int = 0) -> nir.NIRGraph:
    """in -> fc1 -> lif1 -> ... -> lif<depth>, plus a skip lif1 -> skip -> lif<depth>:
    the residual add of a ResNet block when depth = 3. No biases, no leak bias."""
    rng = np.random.default_rng(seed)
    ones = np.ones(N)

    def lif() -> nir.LIF:
        return nir.LIF(tau=20 * DT * ones, r=20 * ones, v_leak=0 * ones,
                       v_threshold=1.0 * ones, v_reset=0 * ones)

    nodes: dict[str, nir.NIRNode] = {"in": nir.Input(np.array([N]))}
    edges = []
    prev = "in"
    for k in range(1, depth + 1):
        nodes[f"fc{k}"] = nir.Affine(rng.normal(0.25, 0.5, (N, N)), np.zeros(N))
        nodes[f"lif{k}"] = lif()
        edges += [(prev, f"fc{k}"), (f"fc{k}", f"lif{k}")]
        prev = f"lif{k}"
    nodes["skip"] = nir.Affine(rng.normal(0.3, 0.5, (N, N)), np.zeros(N))
    edges += [("lif1", "skip"), ("skip", f"lif{depth}"), (prev, "out")]
    nodes["out"] = nir.Output(np.array([N]))
    return nir.NIRGraph(nodes, edges)


def quantized(graph: nir.NIRGraph, formats, steps: int = 12, seed: int = 1) -> QGraph:
    net = NIRNet(graph, DT, CONVENTIONS["snn2hw"]).double()
    x = (torch.rand(steps, 16, N, generator=torch.Generator().manual_seed(seed)) < 0.5)
    with torch.no_grad():
        _, rec = net(x.double(), record=True)
    return quantize(graph, net.discrete_neurons(), dict(rec), dt=DT, target="t",
                    num_steps=steps, formats=formats).graph


def delays(g: QGraph) -> dict[str, int]:
    return {n: int(np.max(v.delay)) for n, v in g.nodes.items()
            if isinstance(v, (DenseNode, ConvNode))}


def frames(steps: int = 12, batch: int = 8, seed: int = 3) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 2, (steps, batch, N))


def test_residual_skip_gets_the_hop_difference_on_loihi2():
    g = quantized(skip_chain(3), load_target("loihi2").number_formats)
    d = delays(g)
    assert d["lif3.p1.skip"] == 1  # lif1 -> lif3 is one hop shorter than lif1 -> lif2 -> lif3
    assert {k: v for k, v in d.items() if k != "lif3.p1.skip"} == dict.fromkeys(
        [k for k in d if k != "lif3.p1.skip"], 0)
    assert layer_shifts(g) == {"input": 0, "lif1": 1, "lif2": 2, "lif3": 3}
    assert g.metadata["alignment"]["applied"] is True
    assert g.depth() == 3  # the delay rides on the shorter path: the run is no longer


def test_aligned_graph_sums_what_the_float_timing_sums():
    """Chip rule on the aligned graph == float timing (no hop) shifted by each layer's
    shift, on every spike; the same graph without the delays (loihi) does not."""
    aligned = quantized(skip_chain(4), load_target("loihi2").number_formats)
    float_timing = dataclasses.replace(aligned, nodes={
        k: dataclasses.replace(v, delay=0) if isinstance(v, (DenseNode, ConvNode)) else v
        for k, v in aligned.nodes.items()})
    x = frames()
    steps = x.shape[0] + aligned.depth()
    chip = run_reference(aligned, x, steps, hop=1)
    ref = run_reference(float_timing, x, steps, hop=0)
    shifts = layer_shifts(aligned)
    for lif, s in chip.items():
        k = shifts[lif]
        assert not s[:k].any()
        np.testing.assert_array_equal(s[k:], ref[lif][: steps - k], err_msg=lif)
    assert ref["lif4"].any()
    unaligned = run_reference(float_timing, x, steps, hop=1)  # what loihi runs
    assert not np.array_equal(unaligned["lif4"][4:], ref["lif4"][: steps - 4])


def test_loihi_reports_the_misaligned_merge_instead_of_inserting():
    g = quantized(skip_chain(3), load_target("loihi").number_formats)
    assert set(delays(g).values()) == {0}
    al = plan_alignment(g)
    assert al.merge_nodes == ["lif3"]
    rec = g.metadata["alignment"]
    assert rec["applied"] is False and rec["merge_nodes"] == ["lif3"]
    [p] = [p for p in rec["paths"] if p["chip_delay"]]
    assert (p["lif"], p["source"], p["chip_delay"]) == ("lif3", "lif1", 1)
    twin = aligned_twin(g, al)  # what the cost is measured on
    assert delays(twin)["lif3.p1.skip"] == 1 and twin.formats.max_synaptic_delay == 1


def test_alignment_above_the_targets_limit_is_refused_naming_layer_delay_and_limit():
    fmts = dataclasses.replace(load_target("loihi2").number_formats, max_synaptic_delay=2)
    quantized(skip_chain(4), fmts)  # needs 2: fits
    with pytest.raises(QuantizationError, match=r"layer 'lif5'.*delay of 3 steps.*limit is 2"):
        quantized(skip_chain(5), fmts)


def test_misalignment_cost_is_measured_with_torch_int():
    from snn2hw.pipeline.delay_report import misalignment_cost

    g = quantized(skip_chain(4), load_target("loihi").number_formats)
    x = frames(batch=32)
    twin = aligned_twin(g, plan_alignment(g))
    ref = run_reference(twin, x, x.shape[0] + twin.depth())
    labels = ref["lif4"].sum(0).argmax(-1)  # the aligned graph's own decisions
    cost = misalignment_cost(g, x, labels)
    assert cost["measured"] and cost["aligned_accuracy"] == 1.0
    assert cost["cost"] == pytest.approx(1.0 - cost["deployed_accuracy"])


def test_export_note_says_which_delays_were_inserted_or_what_is_misaligned():
    from snn2hw.pipeline.delay_report import delay_markdown, delay_section

    g2 = quantized(skip_chain(3), load_target("loihi2").number_formats)
    text = "\n".join(delay_markdown(delay_section(g2, None, None)))
    assert "delay 1 on 'lif3.p1.skip' (path from 'lif1'" in text
    assert "target limit 63 steps" in text
    g1 = quantized(skip_chain(3), load_target("loihi").number_formats)
    al = plan_alignment(g1)
    sec = {"lines": al.describe(), "applied": False, "target_max_delay": 0,
           "cost": {"measured": True, "samples": 10, "deployed_accuracy": 0.8,
                    "aligned_accuracy": 0.9, "cost": 0.1}}
    text = "\n".join(delay_markdown(sec))
    assert "'lif3': the path from 'lif1' ('lif3.p1.skip') arrives 1 step(s) early" in text
    assert "+10.00 pp from alignment" in text and "hop_delays = true" in text
    no_skip = quantized(skip_chain(1), load_target("loihi2").number_formats)
    assert "none needed" in "\n".join(delay_markdown(delay_section(no_skip, None, None)))
