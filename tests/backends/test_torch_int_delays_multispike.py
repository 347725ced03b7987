"""Torch integer mode executes synaptic delays and multi-spike output exactly as
docs/qgraph.md writes them: hand-computed cases (tests/backends/delay_multispike_cases.py)
and a random recurrent graph against an independent numpy loop."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from delay_multispike_cases import (
    ALL_CASES,
    check,
    count_above_255,
    random_dense_graph,
    reference_run,
    without_feature,
)

from snn2hw.backends import registry
from snn2hw.backends.torch_int import TorchIntNetwork, lif_step, run
from snn2hw.quant.formats import LOIHI_FORMATS


@pytest.mark.parametrize("make", ALL_CASES, ids=lambda m: m().name)
def test_hand_computed_case(make):
    case = make()
    res = run(case.graph, case.frames, case.num_steps, record_state=True)
    check(case, res.spikes, res.u, res.v)


@pytest.mark.parametrize("make", ALL_CASES, ids=lambda m: m().name)
def test_expectation_depends_on_the_feature(make):
    """The same graph without its delays (or with max_spikes 1) misses the expectation,
    so each case fails when the feature is ignored."""
    case = make()
    res = run(without_feature(case), case.frames, case.num_steps, record_state=True)
    with pytest.raises(AssertionError):
        check(case, res.spikes, res.u, res.v)


@pytest.mark.parametrize(("reset", "compare"),
                         [("zero", ">"), ("subtract", ">"), ("zero", ">="), ("subtract", ">=")])
def test_random_recurrent_graph_matches_independent_numpy_loop(reset, compare):
    g = random_dense_graph(3, reset, compare)
    rng = np.random.default_rng(7)
    x = rng.integers(0, 4, (8, 3, 6))  # batch of 3 independent samples
    res = run(g, x, record_state=True)
    n = res.spikes["O"].shape[0]
    assert n == g.num_steps + g.depth() == 8 + (3 + 1) + (2 + 1)
    ref = reference_run(g, x, n)
    for name in ("H", "O"):
        np.testing.assert_array_equal(res.spikes[name], ref["spikes"][name])
        np.testing.assert_array_equal(res.u[name], ref["u"][name])
        np.testing.assert_array_equal(res.v[name], ref["v"][name])
    assert res.spikes["H"].max() > 1 and res.spikes["O"].max() >= 1  # counts do occur
    # samples are independent: the second sample alone gives its slice of the batch
    solo = run(g, x[:, 1:2], record_state=True)
    np.testing.assert_array_equal(solo.spikes["H"], res.spikes["H"][:, 1:2])


def test_counts_above_255_are_recorded_as_int32_and_bound_the_next_operator():
    case = count_above_255()
    net = TorchIntNetwork(case.graph)
    res = net.run(case.frames, case.num_steps, record_state=True)
    assert res.spikes["L1"].dtype == np.int32 and res.spikes["L2"].dtype == np.uint8
    # an input value of 300 (> 256) is not exact under TF32/bf16 operand rounding
    assert net.op_dtypes["d2"] == "float64"
    small = dataclasses.replace(case.graph.nodes["L1"], max_spikes=3)
    g = case.graph
    nodes = {**g.nodes, "L1": small}
    g3 = dataclasses.replace(g, nodes=nodes).validate()
    assert TorchIntNetwork(g3).op_dtypes["d2"] == "float32"


def test_lif_step_multi_spike_ties_and_cap_on_tensors():
    v_in = torch.tensor([63, 64, 65, 128, 129, 1000], dtype=torch.int64)
    zero = torch.zeros_like(v_in)
    for compare, want in ((">=", [0, 1, 1, 2, 2, 3]), (">", [0, 0, 1, 1, 2, 3])):
        f = dataclasses.replace(LOIHI_FORMATS, threshold_compare=compare, reset="subtract")
        # dv = 0 keeps v; du = 4095 and a = 0 keep u at 0: v_new = v_in
        _, v, n = lif_step(zero, v_in, 0, 4095, 0, 0, 1, f, max_spikes=3)
        assert n.tolist() == want
        assert v.tolist() == (v_in - 64 * n).tolist()


def test_backend_declares_both_features():
    assert {"delay", "multi_spike"} <= registry.get("torch-int").features


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_matches_cpu_with_delays_and_counts():
    g = random_dense_graph(5, "subtract", ">=")
    x = np.random.default_rng(1).integers(0, 4, (8, 16, 6))
    cpu = run(g, x, record_state=True)
    gpu = run(g, x, device="cuda", record_state=True)
    for name in ("H", "O"):
        np.testing.assert_array_equal(cpu.spikes[name], gpu.spikes[name])
        np.testing.assert_array_equal(cpu.v[name], gpu.v[name])
