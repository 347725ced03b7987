"""The event simulator runs a graph without recurrence, operator delays or periodic resets
several steps per kernel call (``event_plan.Plan.schedule``, event.py "Steps in chunks"):
each operator and LIF after everything it reads, each LIF's state carried from one step's
rows to the next inside its kernel. The results must be those of one step at a time, at
every chunk size (including one that does not divide the run), with the batch split
across threads, against the numpy reference and torch-int; a wrong order or a source read
one step off is caught. Operator rows allocated without zeroing are written before they are
read."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from delay_multispike_cases import FMT
from delay_multispike_cases import dense as delay_dense
from delay_multispike_cases import lif as ms_lif
from test_event import graph, lif, rand_dense, rand_lif, ref_run
from test_event_layouts import mixed_layout_graph

from snn2hw.backends import event, event_ops, event_plan, torch_int
from snn2hw.quant.qgraph import (
    ConvNode,
    DenseNode,
    FlattenNode,
    InputNode,
    OutputNode,
    QGraph,
    SumPoolNode,
)

COUNTERS = ("synops", "synops_dense", "neuron_updates", "spike_counts", "peak_fanin")
CHUNKS = (1, 3, 64)  # step by step, one that leaves a remainder, the whole run at once


def _conv_pool_net(seed: int) -> QGraph:
    """in -> conv -> lif -> pool -> conv (groups, dilation) -> lif -> flatten -> dense ->
    lif, plus a dense skip from the first LIF into the last (a LIF with two paths)."""
    rng = np.random.default_rng(200 + seed)
    c1 = ConvNode("c1", rng.integers(-40, 60, (4, 2, 3, 3)), (2, 8, 8), padding=(1, 1),
                  stride=(1 + seed % 2, 1 + seed % 2))
    shape1 = c1.out_shape
    pool = SumPoolNode("pool", shape1, kernel_size=(2, 2), stride=(2, 2))
    c2 = ConvNode("c2", rng.integers(-60, 80, (6, 2, 3, 3)), pool.out_shape, padding=(2, 2),
                  dilation=(2, 2), groups=2, weight_exp=-1)
    n2 = int(np.prod(c2.out_shape))
    n1 = int(np.prod(shape1))
    nodes = [
        InputNode("in", (2, 8, 8), message_bits=2 if seed == 1 else 0),
        c1, rand_lif(rng, "l1", shape1, 40), pool, c2, rand_lif(rng, "l2", c2.out_shape, 40),
        FlattenNode("flat", c2.out_shape), rand_dense(rng, "fc", 5, n2, "mix", 0.7, 8, 0),
        FlattenNode("flat1", shape1), rand_dense(rng, "skip", 5, n1, "exc", 0.1, 8, -1),
        rand_lif(rng, "l3", (5,), 30),
    ]
    edges = [("in", "c1"), ("c1", "l1"), ("l1", "pool"), ("pool", "c2"), ("c2", "l2"),
             ("l2", "flat"), ("flat", "fc"), ("fc", "l3"), ("l1", "flat1"),
             ("flat1", "skip"), ("skip", "l3")]
    return graph(nodes, edges, num_steps=7)


def _inputs(g: QGraph, seed: int, batch: int = 3) -> np.ndarray:
    rng = np.random.default_rng(seed)
    shape = (g.num_steps, batch, *g.input_node.shape)
    hi = 1 << int(g.input_node.message_bits) if int(g.input_node.message_bits) else 2
    return rng.integers(0, hi, shape) * (rng.random(shape) < 0.3)


def _runs(g: QGraph, x: np.ndarray, n_steps: int, monkeypatch, threads: int = 1) -> dict:
    runs = {}
    for chunk in CHUNKS:
        monkeypatch.setattr(event_plan, "CHUNK_MAX", chunk)
        runs[chunk] = event.run(g, x, num_steps=n_steps, threads=threads)
    return runs


def _assert_same(a, b, g: QGraph, what: str) -> None:
    for L in g.lif_nodes:
        np.testing.assert_array_equal(a.spikes[L.name], b.spikes[L.name], f"{what} {L.name}")
        for c in COUNTERS:
            np.testing.assert_array_equal(getattr(a, c)[L.name], getattr(b, c)[L.name],
                                          f"{what} {L.name} {c}")


def _assert_reference(r, ref: dict, g: QGraph, what: str, counters: bool = True) -> None:
    """``r`` against the numpy reference: spikes, and the counters where ``counters``
    (the reference counts no events on a path made only of flattens)."""
    for L in g.lif_nodes:
        n = L.name
        np.testing.assert_array_equal(r.spikes[n], ref["s"][n], f"{what} spikes {n}")
        if not counters:
            continue
        np.testing.assert_array_equal(r.synops[n], ref["syn"][n], f"{what} synops {n}")
        np.testing.assert_array_equal(r.synops_dense[n], ref["syn_dense"][n], f"{what} {n}")
        np.testing.assert_array_equal(r.neuron_updates[n], ref["upd"][n], f"{what} {n}")
        assert r.peak_fanin[n] == ref["peak"][n], f"{what} peak {n}"


def _chain(delay, num_steps: int = 4) -> QGraph:
    """in -> dense (``delay``: one for every synapse, or per synapse) -> lif."""
    nodes = [InputNode("in", (2,)), delay_dense("fc", np.eye(2, dtype=np.int64) * 64,
                                                delay=delay),
             ms_lif("l", 2, vth=1), OutputNode("out", (2,))]
    return QGraph({n.name: n for n in nodes}, [("in", "fc"), ("fc", "l"), ("l", "out")],
                  1e-3, "loihi2", num_steps, formats=FMT).validate()


def _position(order: list[tuple[str, str]]) -> dict[str, int]:
    return {key: i for i, (_, key) in enumerate(order)}


def test_a_feedforward_graph_is_scheduled_after_what_each_part_reads():
    g = mixed_layout_graph()
    plan = event_plan.Plan(g)
    order, stepwise = plan.schedule()
    assert not stepwise and plan.chunk_steps(batch=2, n_steps=100) > 1
    at = _position(order)
    fused = set(plan.fused.values())
    assert {k for k in plan.ops if k not in fused} | {L.node.name for L in plan.lifs} == set(at)
    for key in plan.ops:
        if key in fused:
            continue
        src = plan.op_input[key]
        if src in at:  # an operator or a LIF: before its reader
            assert at[src] < at[key], (src, key)
    for L in plan.lifs:
        reads = ([plan.op_input[plan.fused[L.node.name]]] if L.node.name in plan.fused
                 else L.terms)
        assert all(at[k] < at[L.node.name] for k in reads if k in at), L.node.name


def test_recurrence_operator_delays_and_periodic_resets_go_step_by_step():
    recurrent = graph(
        [InputNode("in", (2,)), DenseNode("fc", np.array([[2, 0], [0, 2]])),
         lif("l", (2,), dv=4095, vth=1), DenseNode("rec", np.array([[0, 0], [2, 0]]))],
        [("in", "fc"), ("fc", "l"), ("l", "rec"), ("rec", "l")])
    resets = _chain(0)
    resets.nodes["l"].reset_interval = 2
    for g in (recurrent, _chain(2), _chain(np.array([[0, 1], [2, 3]])), resets):
        assert event_plan.Plan(g).schedule()[1], g.nodes["l"]
    assert not event_plan.Plan(_chain(0)).schedule()[1]


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("case", ["mixed layouts", "conv pool net 0", "conv pool net 1"])
def test_chunked_runs_match_the_reference_at_every_chunk_size(case, threads, monkeypatch):
    g = mixed_layout_graph() if case == "mixed layouts" else _conv_pool_net(int(case[-1]))
    x = _inputs(g, 7)
    n_steps = g.num_steps + g.depth() + 4  # 3 does not divide it
    assert n_steps % 3 != 0
    ref = ref_run(g, x, n_steps)
    runs = _runs(g, x, n_steps, monkeypatch, threads)
    for chunk, r in runs.items():
        # the mixed graph has identity paths (flatten only): counters against chunk 1
        _assert_reference(r, ref, g, f"chunk {chunk}", counters=case != "mixed layouts")
        _assert_same(r, runs[1], g, f"chunk {chunk}")
    assert all(int(r.spike_counts[L.name].sum()) > 0 for L in g.lif_nodes)
    event.PLANS.clear()


def test_chunked_multi_spike_and_graded_inputs_match_torch_int(monkeypatch):
    rng = np.random.default_rng(3)
    f = dataclasses.replace(FMT, max_message_bits=8)
    nodes = [InputNode("in", (12,), message_bits=3),
             delay_dense("fa", rng.integers(0, 200, (9, 12))),
             ms_lif("l1", 9, vth=300, max_spikes=5),
             delay_dense("fb", rng.integers(-100, 200, (4, 9))),
             ms_lif("l2", 4, dv=100, vth=900, max_spikes=3), OutputNode("out", (4,))]
    g = QGraph({n.name: n for n in nodes},
               [("in", "fa"), ("fa", "l1"), ("l1", "fb"), ("fb", "l2"), ("l2", "out")],
               1e-3, "loihi2", 9, formats=f).validate()
    x = rng.integers(0, 8, (9, 4, 12)) * (rng.random((9, 4, 12)) < 0.5)
    n_steps = 13
    ref = torch_int.run(g, x, num_steps=n_steps)
    runs = _runs(g, x, n_steps, monkeypatch)
    for chunk, r in runs.items():
        for name in ("l1", "l2"):
            np.testing.assert_array_equal(r.spikes[name], ref.spikes[name], f"{chunk} {name}")
        _assert_same(r, runs[1], g, f"chunk {chunk}")
    assert int(runs[3].spikes["l1"].max()) > 1  # graded payloads did flow
    event.PLANS.clear()


def test_a_schedule_in_the_wrong_order_is_caught(monkeypatch):
    g = mixed_layout_graph()
    x = _inputs(g, 7)
    n_steps = g.num_steps + g.depth() + 4
    ref = ref_run(g, x, n_steps)
    real = event_plan.Plan.schedule
    monkeypatch.setattr(event_plan.Plan, "schedule",
                        lambda self: (real(self)[0][::-1], False))  # readers first
    event.PLANS.clear()
    with pytest.raises(AssertionError):
        _assert_reference(event.run(g, x, num_steps=n_steps), ref, g, "reversed", False)
    event.PLANS.clear()


def test_a_source_read_one_step_late_is_caught(monkeypatch):
    g = _conv_pool_net(0)
    x = _inputs(g, 7)
    n_steps = g.num_steps + g.depth() + 4
    ref = ref_run(g, x, n_steps)
    real = event._rows
    monkeypatch.setattr(event, "_rows", lambda values, m0, m1, zero:
                        real(values, m0 + 1, m1 + 1, zero))
    with pytest.raises(AssertionError):
        _assert_reference(event.run(g, x, num_steps=n_steps), ref, g, "late")
    event.PLANS.clear()


class _PoisonedNumpy:
    """numpy, except that ``empty`` returns arrays full of -7 (not zeros by chance)."""

    def __getattr__(self, name: str):
        return getattr(np, name)

    @staticmethod
    def empty(shape, dtype=float):
        a = np.empty(shape, dtype)
        a.fill(-7)
        return a


@pytest.mark.parametrize("case", ["mixed layouts", "conv pool net 1"])
def test_operator_rows_are_written_before_they_are_read(case, monkeypatch):
    # the operators' output rows are allocated without zeroing (event_ops.Op.alloc): with
    # poison in them, results must still be the reference's
    g = mixed_layout_graph() if case == "mixed layouts" else _conv_pool_net(1)
    x = _inputs(g, 7)
    n_steps = g.num_steps + g.depth() + 4
    ref = ref_run(g, x, n_steps)
    monkeypatch.setattr(event_ops, "np", _PoisonedNumpy())
    for chunk in CHUNKS:
        monkeypatch.setattr(event_plan, "CHUNK_MAX", chunk)
        r = event.run(g, x, num_steps=n_steps, threads=1)
        _assert_reference(r, ref, g, f"chunk {chunk}", counters=case != "mixed layouts")
    event.PLANS.clear()


def test_poison_in_rows_read_before_written_is_caught(monkeypatch):
    # a delay's ring slots ARE read before anything arrives: poisoned (as if allocated
    # without zeroing), the run must differ from the reference
    g = _chain(2, num_steps=5)
    x = (np.arange(20).reshape(5, 2, 2) % 3 == 0).astype(np.uint8)
    ref = torch_int.run(g, x, num_steps=9, record_state=True)
    real = event_ops.Op.alloc

    def poisoned(self, rows):
        real(self, rows)
        self.ring.fill(-7)

    assert np.array_equal(event.run(g, x, num_steps=9, record_state=True).u["l"], ref.u["l"])
    monkeypatch.setattr(event_ops.Op, "alloc", poisoned)
    got = event.run(g, x, num_steps=9, record_state=True).u["l"]
    assert not np.array_equal(got, ref.u["l"])
    event.PLANS.clear()
