"""Event simulator: synaptic delays and multi-spike output (docs/qgraph.md "Synaptic
delays", "Multi-spike output") against values worked out by hand from the docs and
against the literal numpy reference of ``delay_graphs.reference``."""

from __future__ import annotations

import numpy as np
import pytest
from delay_graphs import (
    LOIHI2,
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

from snn2hw.backends import event, event_ops
from snn2hw.quant.qgraph import ConvNode, DenseNode, FlattenNode, InputNode, LIFNode, SumPoolNode


def run(g, x, **kw):
    return event.run(g, x, record_state=True, **kw)


def test_per_synapse_delays_arrive_at_n_plus_1_plus_d_and_share_one_floor_shift():
    g, x = mixed_delays()
    r = run(g, x)
    a = r.u["l"] >> 6  # du = 4095: u = a << 6 at every step
    # sample 0: row 0 = (3 + 5) >> 1 at step 2 (one shift of the arrival sum, not 1 + 2);
    # row 1: 10 >> 1 at step 2, 20 >> 1 at step 3
    np.testing.assert_array_equal(a[:, 0, 0], [0, 0, 4, 0, 0, 0])
    np.testing.assert_array_equal(a[:, 0, 1], [0, 0, 5, 10, 0, 0])
    # sample 1: both inputs at frame 2: row 0 gets 3 >> 1 at 3, 5 >> 1 at 4
    np.testing.assert_array_equal(a[:, 1, 0], [0, 0, 0, 1, 2, 0])
    np.testing.assert_array_equal(a[:, 1, 1], [0, 0, 0, 5, 0, 10])
    assert_reference(g, x, r)


def test_per_synapse_delays_in_the_sparse_layout_too(monkeypatch):
    monkeypatch.setattr(event_ops, "COLUMN_DENSITY", 2.0)  # every dense op CSR (uniform ones too)
    g, x = chained_delays()
    assert_reference(g, x, run(g, x))


def test_conv_delay_shifts_the_whole_feature_map():
    g, x = conv_delay()
    r = run(g, x)
    a = (r.u["l"] >> 6).reshape(r.u["l"].shape[0], 4)
    assert a.shape[0] == g.num_steps + 3  # default length: num_steps + 1 hop + delay 2
    np.testing.assert_array_equal(a[3], [3, 0, 0, 0])
    np.testing.assert_array_equal(a[4], [3, 3, 3, 3])
    assert not a[[0, 1, 2]].any()
    assert_reference(g, x, r)


def test_delays_along_a_path_add_up():
    g, x = chained_delays()
    r = run(g, x)
    a = r.u["l"][:, 0] >> 6
    # path f1 -> f2: W2 @ W1 @ [1, 0] = [1, 3, 4] << 1 at step 0 + 1 + 1 + 2 = 4
    # path conv -> f3: input 0 through 2 * 5 at step 2, input 1 (zero) nowhere
    want = np.zeros_like(a)
    want[2, 0] += 10
    want[4] += [2, 6, 8]
    np.testing.assert_array_equal(a, want)
    assert g.depth() == 5 and a.shape[0] == 2 + 5  # f3's longest synapse: 1 + 1 + 3
    assert_reference(g, x, r)


def test_recurrent_edge_with_delay_returns_after_delay_plus_one_steps():
    g, x = recurrent_delay()
    r = run(g, x)
    assert list(np.flatnonzero(r.spikes["h"][:, 0, 0])) == [1, 4, 7, 10]
    assert_reference(g, x, r)


# h's payloads at steps 1, 2, 3 (neurons 0, 1, 2) for each rule pair, worked out from the
# docs' formulas (delay_graphs.multi_spike explains the inputs)
MULTI = {
    ("zero", ">"): [[0, 1, 3], [1, 0, 0], [0, 0, 0]],
    ("zero", ">="): [[1, 2, 3], [1, 0, 0], [0, 0, 0]],
    ("subtract", ">"): [[0, 1, 3], [1, 0, 3], [0, 0, 0]],
    ("subtract", ">="): [[1, 2, 3], [1, 0, 3], [0, 0, 1]],
}
V_AFTER_STEP_1 = {  # v of h after step 1, in thresholds (TH = 1024)
    ("zero", ">"): [1, 0, 0], ("zero", ">="): [0, 0, 0],
    ("subtract", ">"): [1, 1, 4], ("subtract", ">="): [0, 0, 4],
}


@pytest.mark.parametrize("rules", list(MULTI))
def test_multi_spike_counts_cap_break_ties_and_reset_as_the_docs_say(rules):
    g, x = multi_spike(*rules)
    r = run(g, x)
    h = r.spikes["h"][:, 0]
    np.testing.assert_array_equal(h[1:4], MULTI[rules])
    assert not h[0].any() and not h[4:].any()
    np.testing.assert_array_equal(r.v["h"][1, 0], np.array(V_AFTER_STEP_1[rules]) * 1024)
    # the payload is graded into the next dense: o's input is 10 n0 + 20 n1 + 40 n2
    a_o = r.u["o"][:, 0, 0] >> 6
    np.testing.assert_array_equal(a_o[2:5], np.array(MULTI[rules]) @ [10, 20, 40])
    # events, not payloads: one per neuron and step with n > 0
    np.testing.assert_array_equal(r.counters.spike_counts["h"][1:4],
                                  (np.array(MULTI[rules]) > 0).sum(axis=1))
    assert_reference(g, x, r)


def test_max_spikes_one_is_the_binary_rule():
    g, x = multi_spike("subtract", ">=")
    g.nodes["h"].max_spikes = 1
    r = run(g, x)
    # binary: at most 1 each step; neuron 2 (7 thresholds) loses one TH per step
    np.testing.assert_array_equal(r.spikes["h"][1:5, 0, 2], [1, 1, 1, 1])
    np.testing.assert_array_equal(r.v["h"][1:5, 0, 2], np.array([6, 5, 4, 3]) * 1024)
    assert r.spikes["h"].max() == 1
    assert_reference(g, x, r)


def test_counters_count_events_and_synapses_at_the_step_they_are_processed():
    """h emits payload 3 (one event) into g's two non-zero synapses, one of them delayed
    by 2: synops are counted when the event is processed (step 2), the fan-in where the
    products arrive (steps 2 and 4)."""
    nodes = [InputNode("in", (1,), message_bits=4), dense("fc", [[64]]),
             lif("h", 1, vth=16, max_spikes=3), dense("g", [[5], [7], [0]], 0, [[0], [2], [0]]),
             lif("o", 3)]
    g = make(nodes, [("in", "fc"), ("fc", "h"), ("h", "g"), ("g", "o")], num_steps=1)
    x = np.full((1, 1, 1), 1, np.int64)  # a = 64: v = 4 TH -> payload 3 at step 1
    r = run(g, x)
    np.testing.assert_array_equal(r.spikes["h"][:, 0, 0], [0, 3, 0, 0, 0])
    c = r.counters
    np.testing.assert_array_equal(c.spike_counts["h"], [0, 1, 0, 0, 0])
    np.testing.assert_array_equal(c.synops["o"], [0, 0, 2, 0, 0])  # not 3 x 2: events
    np.testing.assert_array_equal(c.synops_dense["o"], [0, 0, 3, 0, 0])
    np.testing.assert_array_equal(c.synops["h"], [0, 1, 0, 0, 0])
    assert c.peak_fanin["o"] == 1
    a = r.u["o"][:, 0] >> 6
    np.testing.assert_array_equal(a[2], [15, 0, 0])
    np.testing.assert_array_equal(a[4], [0, 21, 0])
    assert_reference(g, x, r)


def test_default_run_length_covers_the_longest_delayed_path():
    g = make([InputNode("in", (1,)), dense("fc", [[200]], 0, 5), lif("l", 1, vth=10)],
             [("in", "fc"), ("fc", "l")], num_steps=1)
    r = run(g, np.ones((1, 1, 1), np.int64))
    assert r.spikes["l"].shape[0] == 1 + 6
    assert list(np.flatnonzero(r.spikes["l"][:, 0, 0])) == [6]  # the last step


def _random_graph(seed: int):
    """A random conv -> pool -> dense net with a recurrent dense and a skip, random delays
    (per synapse on dense), max_spikes, reset and comparison."""
    rng = np.random.default_rng(seed)
    fmt = formats(str(rng.choice(["zero", "subtract"])), str(rng.choice([">", ">="])))

    def lif_(name, shape):
        n = int(np.prod(shape))
        return LIFNode(name, shape, du=int(rng.integers(0, 4096)), dv=int(rng.integers(0, 4096)),
                       vth=int(rng.integers(1, 40)),
                       bias_mant=rng.integers(-30, 60, n).reshape(shape),
                       bias_exp=rng.integers(0, 3, n).reshape(shape),
                       max_spikes=int(rng.choice([1, 2, 5])))

    def dly(shape):
        return rng.integers(0, 4, shape) if rng.random() < 0.7 else int(rng.integers(0, 4))

    conv = ConvNode("c", rng.integers(-60, 90, (2, 1, 2, 2)), (1, 4, 4),
                    weight_exp=int(rng.integers(-2, 2)), delay=int(rng.integers(0, 3)))
    pool = SumPoolNode("p", (2, 3, 3), (2, 2), (1, 1))
    nodes = [InputNode("x", (1, 4, 4), message_bits=2), conv, lif_("l1", (2, 3, 3)), pool,
             FlattenNode("f", (2, 2, 2)),
             DenseNode("d", rng.integers(-100, 150, (5, 8)), int(rng.integers(-3, 3)), 8,
                       delay=dly((5, 8))),
             FlattenNode("fx", (1, 4, 4)),
             DenseNode("s", rng.integers(0, 60, (5, 16)), 0, 8, delay=dly((5, 16))),
             lif_("l2", (5,)),
             DenseNode("r", rng.integers(-80, 80, (5, 5)), int(rng.integers(-3, 1)), 8,
                       delay=dly((5, 5)))]
    edges = [("x", "c"), ("c", "l1"), ("l1", "p"), ("p", "f"), ("f", "d"), ("d", "l2"),
             ("l2", "r"), ("r", "l2"), ("x", "fx"), ("fx", "s"), ("s", "l2")]
    g = make(nodes, edges, num_steps=6, fmt=fmt)
    x = rng.integers(0, 4, (6, 2, 1, 4, 4))
    x[rng.random(x.shape) < 0.5] = 0
    return g, x


@pytest.mark.parametrize("seed", range(6))
def test_random_graphs_with_delays_and_multi_spike_match_the_reference(seed):
    g, x = _random_graph(seed)
    r = run(g, x, num_steps=g.num_steps + g.depth() + 2)
    assert_reference(g, x, r, g.num_steps + g.depth() + 2)
    assert r.spikes["l2"].any()


def test_the_reference_itself_catches_a_missing_delay():
    """The reference is not vacuous: the same graph without its delays disagrees."""
    g, x = mixed_delays()
    flat = make([InputNode("in", (2,)), dense("fc", [[3, 5], [10, 20]], -1),
                 lif("l", 2)], [("in", "fc"), ("fc", "l")], num_steps=3)
    r = run(flat, x, num_steps=6)
    with pytest.raises(AssertionError):
        assert_reference(g, x, r, 6)


def test_features_are_declared():
    assert event.BACKEND.features == {"delay", "multi_spike", "periodic_reset"}
    assert LOIHI2.max_synaptic_delay == 63


def test_a_pool_of_single_spikes_in_bytes_feeds_per_synapse_delays_like_the_reference():
    """A pool of a single-spike LIF keeps uint8 rows (``PoolOp.narrow_output``): a dense
    with per-synapse delays behind it reads them through its delay ring."""
    rng = np.random.default_rng(12)
    conv = ConvNode("c", rng.integers(-40, 80, (4, 2, 3, 3)) * 2, (2, 8, 8), padding=(1, 1))
    nodes = [InputNode("x", (2, 8, 8)), conv, lif("l1", (4, 8, 8), dv=0, vth=30),
             SumPoolNode("p", (4, 8, 8), (2, 2), (2, 2)), FlattenNode("f", (4, 4, 4)),
             dense("d", rng.integers(-60, 60, (5, 64)) * 2, delay=rng.integers(0, 4, (5, 64))),
             lif("l2", 5, dv=0, vth=40)]
    g = make(nodes, [("x", "c"), ("c", "l1"), ("l1", "p"), ("p", "f"), ("f", "d"),
                     ("d", "l2")], num_steps=10)
    plan = event.PLANS.get(g)
    assert plan.ops["p"].out_dtype == np.uint8
    assert isinstance(plan.ops["d"], event_ops.DelayDenseOp)
    x = (rng.random((10, 3, 2, 8, 8)) < 0.3).astype(np.uint8)
    n_steps = g.num_steps + g.depth() + 3
    r = run(g, x, num_steps=n_steps)
    assert_reference(g, x, r, n_steps)
    assert r.spikes["l1"].any() and r.spikes["l2"].any()
