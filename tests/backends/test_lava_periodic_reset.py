"""Lava backend: the periodic state reset of LIF nodes (docs/qgraph.md "Periodic state
reset") reproduces the hand traces of ``periodic_reset_cases`` and equals the event
simulator on every spike, u and v, with several samples streamed through one network;
a node keeps Lava's ``LIFReset`` where one schedule covers both the sample boundaries and
its phase, and runs on snn2hw's ``SnnLif`` otherwise. Faults injected into either path
(phase off by one, reset after integration, only v reset) are caught."""

from __future__ import annotations

import numpy as np
import pytest
from periodic_reset_cases import (
    check,
    constant_bias,
    delays_and_recurrence,
    every_step,
    two_layers,
)

from snn2hw.backends import event
from snn2hw.backends import lava as lava_backend

pytestmark = pytest.mark.lava


def _same(case):
    """Lava == hand traces == event (spikes, u, v); returns the Lava result."""
    res = lava_backend.run(case.graph, case.x, num_steps=case.steps, record_state=True)
    check(case, res)
    ref = event.run(case.graph, case.x, num_steps=case.steps, record_state=True)
    for L in case.graph.lif_nodes:
        for key in ("spikes", "u", "v"):
            np.testing.assert_array_equal(getattr(res, key)[L.name], getattr(ref, key)[L.name],
                                          err_msg=f"{key} of '{L.name}': lava vs event")
    return res


def test_constant_bias_interval5_offset2_on_snn_lif():
    case = constant_bias()
    assert lava_backend.LavaNetwork(case.graph).own_neuron(case.graph.nodes["l"], case.steps)
    _same(case)


def test_interval1_keeps_lavas_lif_reset():
    case = every_step()
    assert not lava_backend.LavaNetwork(case.graph).own_neuron(case.graph.nodes["l"],
                                                                case.steps)
    _same(case)


def test_delays_and_a_recurrent_edge():
    _same(delays_and_recurrence())


def test_two_layers_three_samples_streamed_through_one_network():
    """N = 10 steps per sample, interval 4: a global LIFReset schedule would put sample
    1's resets at the wrong steps (its step 0 is Lava step 11); every sample restarts the
    phase."""
    res = _same(two_layers(((0, 4), (4,), (0, 4))))
    assert res.lava_steps == 30


def test_offset0_dividing_the_sample_length_runs_on_lif_reset_in_every_sample():
    case = two_layers(((0, 4), (4,)))
    g = case.graph
    g.nodes["h2"].reset_interval, g.nodes["h2"].reset_offset = 5, 0  # 5 divides N = 10
    net = lava_backend.LavaNetwork(g)
    assert not net.own_neuron(g.nodes["h2"], 10) and net.own_neuron(g.nodes["h1"], 10)
    assert lava_backend._lif_reset_schedule(g.nodes["h2"], 10) == (5, 1)
    assert lava_backend._lif_reset_schedule(g.nodes["h1"], 10) is None
    assert lava_backend._lif_reset_schedule(g.nodes["h1"], 12) == (4, 1)
    # h2 resets at steps 0 and 5 of each sample: the wave at 8 is not cut at 9 any more,
    # u = 191 after the spike at 8 makes it spike again at 9 (by hand)
    res = lava_backend.run(g, case.x, num_steps=10, record_state=True)
    assert [list(np.flatnonzero(res.spikes["h2"][:, b, 0])) for b in (0, 1)] == [[4, 8, 9],
                                                                                 [8, 9]]
    ref = event.run(g, case.x, num_steps=10, record_state=True)
    for name in ("h1", "h2"):
        for key in ("spikes", "u", "v"):
            np.testing.assert_array_equal(getattr(res, key)[name], getattr(ref, key)[name])


def test_lava_declares_periodic_reset():
    assert "periodic_reset" in lava_backend.BACKEND.features


# ----- fault injection ---------------------------------------------------------------------------
def test_snn_lif_reset_one_step_late_is_caught(monkeypatch):
    from snn2hw.backends import lava_neuron

    real = lava_neuron.PySnnLifModel._resets_now

    def late(self):
        self.time_step -= 1  # the schedule sees the previous step: one step late
        try:
            return real(self)
        finally:
            self.time_step += 1

    monkeypatch.setattr(lava_neuron.PySnnLifModel, "_resets_now", late)
    case = two_layers(((0, 4), (4,)))
    with pytest.raises(AssertionError):
        _same(case)


def test_lif_reset_phase_off_by_one_is_caught(monkeypatch):
    case = every_step()
    case.graph.nodes["l"].reset_interval = 2  # (2, 0) divides N = 6: LIFReset
    # resets at 0, 2, 4: v = 64, 128, then 128 + 64 = 192 (spike), 64, 64, 128
    case.v["l"] = [[64, 128, 0, 64, 64, 128]]
    _same(case)  # the hand trace holds ...
    monkeypatch.setattr(lava_backend, "_lif_reset_schedule", lambda node, n: (2, 0))
    with pytest.raises(AssertionError):  # ... and a LIFReset one step off breaks it
        check(case, lava_backend.run(case.graph, case.x, num_steps=6, record_state=True))


def _only_v(self):
    if self._resets_now():
        self.v[:] = 0


def _after_integration(real_run):
    def run_spk(self):
        due = self._resets_now()
        real_run(self)  # integrates (and may spike) from the old state ...
        if due:  # ... then zeroes it
            self.u[:] = 0
            self.v[:] = 0
    return run_spk


@pytest.mark.parametrize("fault", ["only_v", "after_integration"])
def test_snn_lif_reset_of_v_alone_or_after_integration_is_caught(fault, monkeypatch):
    from snn2hw.backends import lava_neuron

    model = lava_neuron.PySnnLifModel
    if fault == "only_v":
        monkeypatch.setattr(model, "_reset_state", _only_v)
    else:
        monkeypatch.setattr(model, "run_spk", _after_integration(model.run_spk))
        monkeypatch.setattr(model, "_reset_state", lambda self: None)
    case = delays_and_recurrence()
    with pytest.raises(AssertionError):
        check(case, lava_backend.run(case.graph, case.x, num_steps=case.steps,
                                     record_state=True))
