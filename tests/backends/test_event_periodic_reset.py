"""Event simulator: the periodic state reset of LIF nodes (docs/qgraph.md "Periodic state
reset") reproduces traces worked out by hand, and the tests see the faults a wrong
implementation would make (phase off by one, reset after integration, only v reset)."""

from __future__ import annotations

import numpy as np
import pytest
from periodic_reset_cases import (
    check as check_by_hand,
)
from periodic_reset_cases import (
    constant_bias,
    delays_and_recurrence,
    every_step,
    two_layers,
)

from snn2hw.backends import event

CASES = {
    "constant_bias_interval5_offset2": constant_bias,
    "two_layers_offsets0_1": two_layers,
    "interval1": every_step,
    "delays_and_recurrent_edge": delays_and_recurrence,
    "three_samples": lambda: two_layers(((0, 4), (4,), (0, 4))),
}


def _run(case):
    return event.run(case.graph, case.x, num_steps=case.steps, record_state=True)


@pytest.mark.parametrize("name", list(CASES))
def test_event_periodic_reset_matches_the_hand_traces(name):
    case = CASES[name]()
    check_by_hand(case, _run(case))


def test_event_declares_periodic_reset():
    assert "periodic_reset" in event.BACKEND.features


def test_without_the_reset_the_traces_differ():
    case = constant_bias()
    case.graph.nodes["l"].reset_interval = case.graph.nodes["l"].reset_offset = 0
    res = _run(case)
    assert list(np.flatnonzero(res.spikes["l"][:, 0, 0])) == [2, 5, 8, 11]
    with pytest.raises(AssertionError):
        check_by_hand(constant_bias(), res)


# ----- fault injection: each wrong semantics must be caught by the hand traces ----------------
def _due(node, n, shift=0):
    interval = int(node.reset_interval)
    return interval > 0 and n % interval == (int(node.reset_offset) + shift) % interval


def _phase_off_by_one(node, n, u, v):
    if _due(node, n, shift=1):
        u.fill(0)
        v.fill(0)


def _only_v(node, n, u, v):
    if _due(node, n):
        v.fill(0)


ALL = ["constant_bias_interval5_offset2", "two_layers_offsets0_1", "interval1",
       "delays_and_recurrent_edge", "three_samples"]
WITH_U = ["two_layers_offsets0_1", "delays_and_recurrent_edge", "three_samples"]
ONE_LIF = ["constant_bias_interval5_offset2", "interval1", "delays_and_recurrent_edge"]


@pytest.mark.parametrize("name", [n for n in ALL if n != "interval1"])  # no phase at 1
def test_a_reset_one_step_late_is_caught(name, monkeypatch):
    monkeypatch.setattr(event, "_reset_state", _phase_off_by_one)
    case = CASES[name]()
    with pytest.raises(AssertionError):
        check_by_hand(case, _run(case))


@pytest.mark.parametrize("name", WITH_U)
def test_a_reset_of_v_alone_is_caught(name, monkeypatch):
    """(In the bias-only cases u is always 0, so only the cases with input can see it.)"""
    monkeypatch.setattr(event, "_reset_state", _only_v)
    case = CASES[name]()
    with pytest.raises(AssertionError):
        check_by_hand(case, _run(case))


@pytest.mark.parametrize("name", ONE_LIF)
def test_a_reset_after_integration_is_caught(name, monkeypatch):
    """The step integrates (and may spike) from the old state, then u and v are zeroed.
    One LIF per graph: the k-th call of the LIF kernel is step k."""
    case = CASES[name]()
    node = case.graph.lif_nodes[0]
    real, calls = event._lif_step, []

    def late(lif, a, cnt, u, v, *rest):
        out = real(lif, a, cnt, u, v, *rest)
        if _due(node, len(calls)):
            u.fill(0)
            v.fill(0)
        calls.append(1)
        return out

    monkeypatch.setattr(event, "_reset_state", lambda *args: None)
    monkeypatch.setattr(event, "_lif_step", late)
    with pytest.raises(AssertionError):
        check_by_hand(case, _run(case))
