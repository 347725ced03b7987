"""Torch integer mode executes periodic state reset exactly as docs/qgraph.md "Periodic
state reset" writes it: hand-computed traces (tests/backends/periodic_reset_int_cases.py),
random recurrent graphs with delays and multi-spike output against an independent numpy
loop, on CPU and CUDA; the phase, order and extent of the reset injected wrong are caught."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from periodic_reset_int_cases import (
    FAULTS,
    HAND_CASES,
    assert_matches,
    check,
    random_graph,
    reference,
)

from snn2hw.backends import registry, torch_int
from snn2hw.backends.torch_int import TorchIntNetwork, lif_step, run

COMBOS = [("zero", ">"), ("subtract", ">"), ("zero", ">="), ("subtract", ">=")]
CUDA = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device here")


def _frames(g, batch=3, seed=5):
    return np.random.default_rng(seed).integers(0, 4, (g.num_steps, batch, 6))


@pytest.mark.parametrize("make", HAND_CASES, ids=lambda m: m().name)
def test_hand_computed_case(make):
    case = make()
    res = run(case.graph, case.frames, case.num_steps, record_state=True)
    check(case, res.spikes, res.u, res.v)


@pytest.mark.parametrize("make", HAND_CASES, ids=lambda m: m().name)
def test_same_graph_without_the_reset_misses_the_expectation(make):
    case = make()
    nodes = {k: dataclasses.replace(n, reset_interval=0, reset_offset=0)
             if n.kind == "lif" else n for k, n in case.graph.nodes.items()}
    plain = dataclasses.replace(case.graph, nodes=nodes).validate()
    res = run(plain, case.frames, case.num_steps, record_state=True)
    with pytest.raises(AssertionError):
        check(case, res.spikes, res.u, res.v)


@pytest.mark.parametrize(("reset", "compare"), COMBOS)
def test_random_recurrent_graph_with_delays_matches_independent_numpy_loop(reset, compare):
    g = random_graph(reset, compare)
    x = _frames(g)
    res = run(g, x, record_state=True)
    n = g.num_steps + g.depth()
    assert res.spikes["H"].shape[0] == n
    assert_matches(reference(g, x, n), res.spikes, res.u, res.v)
    assert res.spikes["H"].max() > 1 and res.spikes["O"].any()  # counts and spikes occur
    # samples are independent, every one counting steps from its own first step
    solo = run(g, x[:, 2:3], record_state=True)
    np.testing.assert_array_equal(solo.v["O"], res.v["O"][:, 2:3])


def _phase_off_by_one(monkeypatch):
    due = torch_int.reset_due
    monkeypatch.setattr(torch_int, "reset_due", lambda n, i, o: due(n + 1, i, o))


def _reset_after_integration(monkeypatch):
    def step(u, v, a, *args, from_rest=False, **kw):
        u, v, s = lif_step(u, v, a, *args, **kw)
        return (torch.zeros_like(u), torch.zeros_like(v), s) if from_rest else (u, v, s)

    monkeypatch.setattr(torch_int, "lif_step", step)


def _only_v_reset(monkeypatch):
    def step(u, v, a, *args, from_rest=False, **kw):
        return lif_step(u, torch.zeros_like(v) if from_rest else v, a, *args, **kw)

    monkeypatch.setattr(torch_int, "lif_step", step)


INJECT = {"phase_off_by_one": _phase_off_by_one,
          "reset_after_integration": _reset_after_integration,
          "only_v_reset": _only_v_reset}


@pytest.mark.parametrize("fault", FAULTS)
def test_fault_injected_into_the_backend_is_caught(fault, monkeypatch):
    INJECT[fault](monkeypatch)
    failed = []
    for make in HAND_CASES:
        case = make()
        res = run(case.graph, case.frames, case.num_steps, record_state=True)
        try:
            check(case, res.spikes, res.u, res.v)
        except AssertionError:
            failed.append(case.name)
    # interval 1 has no phase to get wrong; the delay case's u forgets every step (du 4095)
    blind = {"phase_off_by_one": {"interval_1_every_step"},
             "only_v_reset": {"delays_and_recurrent_edge"}}.get(fault, set())
    assert sorted(failed) == sorted({m().name for m in HAND_CASES} - blind)
    g = random_graph("subtract", ">=")
    x = _frames(g)
    res = run(g, x, record_state=True)
    with pytest.raises(AssertionError):
        assert_matches(reference(g, x, g.num_steps + g.depth()), res.spikes, res.u, res.v)
    # the faulty backend is exactly the numpy loop's faulty variant: the injection is the fault
    assert_matches(reference(g, x, g.num_steps + g.depth(), fault), res.spikes, res.u, res.v)


@pytest.mark.parametrize("fault", FAULTS)
def test_reference_with_the_fault_disagrees_with_the_docs_reference(fault):
    """The numpy loop's fault switch is live: each fault changes the random graph's run."""
    g = random_graph("zero", ">")
    x = _frames(g)
    n = g.num_steps + g.depth()
    bad = reference(g, x, n, fault)
    with pytest.raises(AssertionError):
        assert_matches(reference(g, x, n), bad["spikes"], bad["u"], bad["v"])


def test_lif_step_from_rest_zeroes_u_and_v_before_the_input():
    u = torch.tensor([5000, -300], dtype=torch.int64)
    v = torch.tensor([7000, 100], dtype=torch.int64)
    zero = torch.zeros_like(u)
    rested = lif_step(u, v, torch.tensor([2, 1]), 100, 200, 7, 1000, from_rest=True)
    fresh = lif_step(zero, zero, torch.tensor([2, 1]), 100, 200, 7, 1000)
    for got, want in zip(rested, fresh, strict=True):
        assert torch.equal(got, want)
    assert rested[0].tolist() == [128, 64] and rested[1].tolist() == [135, 71]


def test_backend_declares_and_runs_periodic_reset():
    backend = registry.get("torch-int")
    assert "periodic_reset" in backend.features
    case = HAND_CASES[0]()
    res = backend.run(case.graph, case.frames, case.num_steps, record_state=True)
    check(case, res.spikes, res.u, res.v)


@CUDA
@pytest.mark.parametrize(("reset", "compare"), COMBOS)
def test_cuda_matches_the_numpy_loop(reset, compare):
    g = random_graph(reset, compare)
    x = _frames(g)
    res = TorchIntNetwork(g, "cuda").run(torch.as_tensor(x).cuda(), record_state=True)
    assert res.device.startswith("cuda")
    assert_matches(reference(g, x, g.num_steps + g.depth()), res.spikes, res.u, res.v)
    for make in HAND_CASES:
        case = make()
        r = TorchIntNetwork(case.graph, "cuda").run(case.frames, case.num_steps, True)
        check(case, r.spikes, r.u, r.v)
