"""The event simulator prepares a graph's weights once and reuses them (snn2hw.backends.event
``PLANS``), and prepares again whenever the graph changed since: a stale plan would run
the old weights silently, so every kind of change is injected here and must be noticed."""

from __future__ import annotations

import copy
import dataclasses
import gc

import numpy as np
import pytest
from qgraph_builders import dense, lif, make_graph

from snn2hw.backends import event, event_kernels, event_plan
from snn2hw.common.errors import GraphError
from snn2hw.quant.qgraph import ConvNode, FlattenNode, InputNode, SumPoolNode

VTH1, VTH2 = 600, 200  # both layers fire ~30 % of steps: every change shows


def _graph():
    rng = np.random.default_rng(7)
    nodes = [
        InputNode("in", (1, 6, 6)),
        ConvNode("conv", rng.integers(-60, 120, (2, 1, 3, 3)) * 2, (1, 6, 6), padding=(1, 1)),
        lif("l1", (2, 6, 6), du=3000, dv=400, vth=VTH1),
        SumPoolNode("pool", (2, 6, 6), (2, 2), (2, 2)),
        FlattenNode("flat", (2, 3, 3)),
        dense("fc", rng.integers(-60, 60, (4, 18)) * 2),
        lif("l2", 4, du=3000, dv=400, vth=VTH2),
    ]
    edges = [("in", "conv"), ("conv", "l1"), ("l1", "pool"), ("pool", "flat"),
             ("flat", "fc"), ("fc", "l2")]
    return make_graph(nodes, edges, num_steps=12)


def _inputs(batch=3, frames=12, seed=1):
    rng = np.random.default_rng(seed)
    return (rng.random((frames, batch, 1, 6, 6)) < 0.4).astype(np.uint8)


def _spikes(res):
    return {k: v.copy() for k, v in res.spikes.items()}


def _same(a, b):
    return a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)


def test_second_run_of_the_same_graph_does_not_prepare_again():
    g, x = _graph(), _inputs()
    before = event.PLANS.preparations
    r1 = event.run(g, x)
    r2 = event.run(g, x)
    r3 = event.run(g, x[:, :1])  # another batch size: new buffers, same prepared weights
    assert event.PLANS.preparations - before == 1
    assert _same(_spikes(r1), _spikes(r2))
    assert _same({k: v[:, :1] for k, v in r1.spikes.items()}, _spikes(r3))
    assert any(v.any() for v in r1.spikes.values())
    # the backend API shares the cache: preparing and running add nothing more
    prepared = event.BACKEND.prepare(g)
    prepared.run(x)
    assert event.PLANS.preparations - before == 1
    # a copy is another graph object: prepared on its own, same spikes
    r4 = event.run(copy.deepcopy(g), x)
    assert event.PLANS.preparations - before == 2
    assert _same(_spikes(r1), _spikes(r4))


def _bump_conv_weight(g):
    g.nodes["conv"].weight[0, 0, 1, 1] += 100  # in place: same array object


def _bump_dense_weight(g):
    g.nodes["fc"].weight[:, 3] = 200


def _swap_dense_columns(g):  # same values, other order: a plain sum would not notice
    w = g.nodes["fc"].weight
    w[:, [0, 5]] = w[:, [5, 0]]


def _lower_vth(g):
    g.nodes["l2"].vth = 5


def _bias_in_place(g):
    g.nodes["l1"].bias_mant[:] = 30


def _replace_dense_node(g):
    old = g.nodes["fc"]
    g.nodes["fc"] = dataclasses.replace(old, weight=-old.weight)


def _weight_exp(g):
    g.nodes["fc"].weight_exp = 1


MUTATIONS = [_bump_conv_weight, _bump_dense_weight, _swap_dense_columns, _lower_vth,
             _bias_in_place, _replace_dense_node, _weight_exp]


@pytest.mark.parametrize("mutate", MUTATIONS, ids=lambda f: f.__name__.strip("_"))
def test_a_graph_changed_after_a_run_is_prepared_again(mutate):
    g, x = _graph(), _inputs()
    old = _spikes(event.run(g, x))
    before = event.PLANS.preparations
    mutate(g)
    fresh = _spikes(event.run(copy.deepcopy(g), x))  # ground truth: a never-seen object
    assert not _same(old, fresh), "the mutation must change the spikes for this test to bite"
    now = _spikes(event.run(g, x))
    assert event.PLANS.preparations - before == 2  # the copy and the changed graph
    assert _same(now, fresh)


def test_without_the_fingerprint_a_stale_plan_runs_the_old_weights(monkeypatch):
    """Fault injection: with a fingerprint blind to content the cache serves the plan of
    the unmutated graph, and the run silently differs from the truth."""
    g, x = _graph(), _inputs()
    monkeypatch.setattr(event_plan, "graph_fingerprint", lambda graph: ("blind",))
    old = _spikes(event.run(g, x))
    _bump_dense_weight(g)
    stale = _spikes(event.run(g, x))
    fresh = _spikes(event.run(copy.deepcopy(g), x))
    assert _same(stale, old)
    assert not _same(stale, fresh)


def test_a_change_that_breaks_the_graph_is_refused_on_the_next_run():
    g, x = _graph(), _inputs()
    event.run(g, x)
    g.nodes["fc"].weight[0, 0] = 10**6  # outside every weight range: validation must see it
    with pytest.raises(GraphError, match="fc"):
        event.run(g, x)


def test_the_cache_entry_goes_with_its_graph():
    gc.collect()  # graphs of earlier tests leave first
    g = _graph()
    event.run(g, _inputs())
    n = len(event.PLANS)
    del g
    gc.collect()
    assert len(event.PLANS) == n - 1


def test_checksum_sees_one_changed_word_and_a_swap():
    a = np.arange(1, 1001, dtype=np.uint64)
    base = event_kernels.checksum64(a)
    b = a.copy()
    b[500] += 1
    assert event_kernels.checksum64(b) != base
    c = a.copy()
    c[[10, 900]] = c[[900, 10]]
    assert event_kernels.checksum64(c) != base
    assert event_kernels.checksum64(a.copy()) == base


def test_a_cache_entry_is_forgotten_while_the_cache_lock_is_held():
    """A cached graph's finalizer runs inside garbage collection, which can start while this
    thread holds the cache lock: forgetting must not wait for that lock (a deadlock hung a
    full test run once)."""
    import threading

    from snn2hw.backends.event import PLANS

    done = threading.Event()
    with PLANS._lock:
        t = threading.Thread(target=lambda: (PLANS._forget(-1), done.set()))
        t.start()
        finished = done.wait(timeout=5)
    t.join()
    assert finished, "forgetting a plan waited for the cache lock"
