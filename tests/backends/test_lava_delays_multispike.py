"""Lava backend: synaptic delays (``DelayDense``/``DelaySparse``) and multi-spike output
(snn2hw's own fixed-point LIF process, graded spikes between processes) equal the event
simulator and the literal reference of docs/qgraph.md on every spike, u and v, on the
graphs whose values ``test_event_delays_multispike`` pins by hand; and what Lava cannot
run exactly is refused naming the node. Lava starts slowly (seconds per network), so the
graphs are tiny."""

from __future__ import annotations

import numpy as np
import pytest
from delay_graphs import (
    assert_reference,
    chained_delays,
    conv_delay,
    dense,
    formats,
    lif,
    make,
    mixed_delays,
    multi_spike,
    recurrent_delay,
)

from snn2hw.backends import event
from snn2hw.backends import lava as lava_backend
from snn2hw.common.errors import GraphError
from snn2hw.quant.qgraph import InputNode

pytestmark = pytest.mark.lava


def same(g, x, num_steps=None, active=True):
    """Lava == event == reference on spikes, u, v; returns the Lava result."""
    ref = event.run(g, x, num_steps=num_steps, record_state=True)
    res = lava_backend.run(g, x, num_steps=num_steps, record_state=True)
    for L in g.lif_nodes:
        for key in ("spikes", "u", "v"):
            np.testing.assert_array_equal(getattr(res, key)[L.name], getattr(ref, key)[L.name],
                                          err_msg=f"{key} of '{L.name}': lava vs event")
    assert_reference(g, x, res, num_steps)
    if active:  # a silent network would agree trivially
        assert any(ref.u[L.name].any() for L in g.lif_nodes)
    return res


def test_per_synapse_delays_run_on_delay_dense():
    g, x = mixed_delays(weight_exp=0)
    res = same(g, x)
    np.testing.assert_array_equal(res.u["l"][:, 0, 0] >> 6, [0, 0, 8, 0, 0, 0])
    np.testing.assert_array_equal(res.u["l"][:, 1, 1] >> 6, [0, 0, 0, 10, 0, 20])


def test_per_synapse_delays_with_a_floor_shift_are_refused_naming_the_node():
    g, x = mixed_delays(weight_exp=-1)
    with pytest.raises(GraphError, match=r"dense node 'fc'.*weight_exp -1.*DelayDense"):
        lava_backend.run(g, x)


def test_delay_pending_at_the_end_of_a_sample_does_not_reach_the_next():
    """Run 3 steps only: sample 0's row-1 product (frame 0, delay 2) would arrive at step
    3, i.e. at sample 1's step 0 in Lava's continuous time, unless the DelayDense buffer is
    cleared at the sample boundary."""
    g, x = mixed_delays(weight_exp=0)
    assert not x[2, 0].any()  # sample 0 is silent at its last step: only the delay carries
    res = same(g, x, num_steps=3)
    assert res.buffer_resets > 0


def test_conv_delay_runs_on_delay_sparse():
    g, x = conv_delay()
    res = same(g, x)
    assert (res.u["l"][3, 0].ravel() >> 6).tolist() == [3, 0, 0, 0]


def test_composed_paths_carry_the_sum_of_their_delays():
    g, x = chained_delays(f3_delay=3)
    res = same(g, x)
    np.testing.assert_array_equal(res.u["l"][4, 0] >> 6, [2, 6, 8])


def test_per_synapse_delays_inside_a_composed_path_are_refused_naming_the_node():
    g, x = chained_delays()
    with pytest.raises(GraphError, match=r"dense node 'f3' has per-synapse delays"):
        lava_backend.run(g, x)


def test_composed_delays_beyond_lavas_63_are_refused():
    nodes = [InputNode("in", (2,)), dense("a", [[1, 1]], 0, 40), dense("b", [[1]], 0, 40),
             lif("l", 1)]
    g = make(nodes, [("in", "a"), ("a", "b"), ("b", "l")], num_steps=1)
    with pytest.raises(GraphError, match="add up to 80 steps.*at most 63"):
        lava_backend.LavaNetwork(g)


def test_recurrent_delay():
    g, x = recurrent_delay()
    res = same(g, x)
    assert list(np.flatnonzero(res.spikes["h"][:, 0, 0])) == [1, 4, 7, 10]


@pytest.mark.parametrize("rules", [("zero", ">"), ("zero", ">="), ("subtract", ">"),
                                   ("subtract", ">=")])
def test_multi_spike_payloads_ties_and_resets_on_the_own_lif_process(rules):
    g, x = multi_spike(*rules)
    net = lava_backend.LavaNetwork(g)
    assert all(net.own_neuron(L) for L in g.lif_nodes) == (rules != ("zero", ">"))
    assert net.message_bits("h") == 2  # count 3 travels as a 2-bit graded spike
    res = same(g, x)
    assert res.spikes["h"].max() == 3


def test_multi_spike_with_delays_and_several_samples():
    """A graded payload through a delayed dense with per-synapse delays, two samples."""
    nodes = [InputNode("in", (2,), message_bits=4), dense("fc", [[64, 0], [16, 48]]),
             lif("h", 2, vth=16, max_spikes=3), dense("g", [[5, 9], [7, 0], [0, 3]], 0,
                                                     [[0, 1], [2, 0], [0, 3]]),
             lif("o", 3, vth=2, max_spikes=2)]
    g = make(nodes, [("in", "fc"), ("fc", "h"), ("h", "g"), ("g", "o")], num_steps=4,
             fmt=formats("subtract", ">"))
    x = np.array([[[1, 0], [0, 3]], [[2, 1], [0, 0]], [[0, 0], [15, 15]], [[1, 1], [0, 0]]])
    res = same(g, x)
    assert res.spikes["h"].max() == 3 and res.spikes["o"].max() == 2


def test_plain_loihi_graphs_keep_lavas_own_lif_and_features_are_declared():
    g = make([InputNode("in", (1,)), dense("fc", [[100]]), lif("l", 1, vth=10)],
             [("in", "fc"), ("fc", "l")], num_steps=2, fmt=formats())
    assert not lava_backend.LavaNetwork(g).own_neuron(g.nodes["l"])
    assert lava_backend.BACKEND.features == {"delay", "multi_spike", "periodic_reset"}


def test_default_run_length_covers_delays():
    g = make([InputNode("in", (1,)), dense("fc", [[200]], 0, 5), lif("l", 1, vth=10)],
             [("in", "fc"), ("fc", "l")], num_steps=1)
    res = same(g, np.ones((1, 1, 1), np.int64))
    assert res.spikes["l"].shape[0] == 7 and res.spikes["l"][6, 0, 0] == 1


def test_unproven_int32_bound_is_checked_at_the_delayed_arrival_step():
    """1100 inputs x 255 can exceed |a| <= 2^18, so the run's activations are recomputed
    after it (no Lava run needed here): with delay 3, frame 2 arrives at step 6, outside
    a 5-step run (accepted), frame 0 at step 4 (refused)."""
    g = make([InputNode("in", (1100,)), dense("fc", np.full((1, 1100), 255), 0, 3),
              lif("l", 1)], [("in", "fc"), ("fc", "l")], num_steps=5)
    net = lava_backend.LavaNetwork(g)
    assert not net.lifs[0].proven
    silent = {"l": np.zeros((5, 1, 1), np.uint8)}
    late = np.zeros((5, 1, 1100), np.int64)
    late[2] = 1
    net._verify_unproven(late, silent, 5)  # arrives after the run: nothing to check
    early = np.zeros_like(late)
    early[0] = 1
    with pytest.raises(GraphError, match=r"node 'l'.*280500 > 2\^18"):
        net._verify_unproven(early, silent, 5)
