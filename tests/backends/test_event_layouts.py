"""The event simulator keeps conv/sumpool outputs and the LIFs they feed channels-last
(``snn2hw.backends.event`` "Layouts"), spike records included: no strided conversion or
reordering per step. Every combination a
graph can make must still give the C-order results of docs/qgraph.md, checked against the
torch integer backend (an independent implementation) on one graph that mixes them:
dense and conv terms into one LIF, identity paths from a channels-last LIF into a 1-D and a
channels-last LIF, a conv straight into a 1-D LIF, pool -> conv, pool -> flatten -> dense,
a dense reading a channels-last LIF's spike record (which keeps its state's layout)."""

from __future__ import annotations

import numpy as np
import pytest
from qgraph_builders import lif

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


def _w(rng, shape, lo=-40, hi=90):
    return rng.integers(lo, hi, shape).astype(np.int64)


def mixed_layout_graph() -> QGraph:
    rng = np.random.default_rng(11)

    def conv(name, c_out, shape, k=3, pad=1):
        return ConvNode(name, _w(rng, (c_out, shape[0], k, k)), shape, padding=(pad, pad))

    n: dict = {
        "in": InputNode("in", (2, 6, 6)),
        "c1": conv("c1", 4, (2, 6, 6)),
        "l1": lif("l1", (4, 6, 6), du=4095, dv=0, vth=60),
        # pool -> conv: a channels-last operator output read by a conv
        "p1": SumPoolNode("p1", (4, 6, 6), (2, 2), (2, 2)),
        "c2": conv("c2", 4, (4, 3, 3)),
        "l2": lif("l2", (4, 3, 3), du=3000, dv=100, vth=40),
        # a conv term and a dense term into one (C, H, W) LIF: it stays in C order
        "f2": FlattenNode("f2", (4, 3, 3)),
        "d3": DenseNode("d3", _w(rng, (36, 36))),
        "p3": SumPoolNode("p3", (4, 6, 6), (2, 2), (2, 2)),
        "c3": conv("c3", 4, (4, 3, 3)),
        "l3": lif("l3", (4, 3, 3), du=4095, dv=0, vth=50),
        # identity paths: (C, H, W) LIF -> 1-D LIF, and -> a channels-last LIF
        "f4": FlattenNode("f4", (4, 6, 6)),
        "l4": lif("l4", (144,), du=4095, dv=200, vth=1),
        "c5": conv("c5", 4, (2, 6, 6)),
        "l5": lif("l5", (4, 6, 6), du=4095, dv=0, vth=70),
        # a conv straight into a 1-D LIF (same size, no flatten)
        "c6": conv("c6", 2, (4, 6, 6)),
        "l6": lif("l6", (72,), du=2000, dv=0, vth=80),
        # pool -> flatten -> dense: the dense reads a channels-last output
        "p7": SumPoolNode("p7", (4, 6, 6), (3, 3), (3, 3)),
        "f7": FlattenNode("f7", (4, 2, 2)),
        "d7": DenseNode("d7", _w(rng, (10, 16))),
        "l7": lif("l7", (10,), du=4095, dv=0, vth=30),
        "out": OutputNode("out", (10,)),
    }
    edges = [("in", "c1"), ("c1", "l1"), ("l1", "p1"), ("p1", "c2"), ("c2", "l2"),
             ("l2", "f2"), ("f2", "d3"), ("d3", "l3"), ("l1", "p3"), ("p3", "c3"),
             ("c3", "l3"), ("l1", "f4"), ("f4", "l4"), ("in", "c5"), ("c5", "l5"),
             ("l1", "l5"), ("l1", "c6"), ("c6", "l6"), ("l1", "p7"), ("p7", "f7"),
             ("f7", "d7"), ("d7", "l7"), ("l7", "out")]
    return QGraph(n, edges, 1e-3, "loihi", 8).validate()


def _inputs() -> np.ndarray:
    return (np.random.default_rng(5).random((8, 3, 2, 6, 6)) < 0.3).astype(np.uint8)


def _assert_same(a, b) -> None:
    for k in b.spikes:
        np.testing.assert_array_equal(a.spikes[k], b.spikes[k], err_msg=f"spikes {k}")
        np.testing.assert_array_equal(a.u[k], b.u[k], err_msg=f"u {k}")
        np.testing.assert_array_equal(a.v[k], b.v[k], err_msg=f"v {k}")


def test_layouts_follow_what_each_lif_is_fed():
    plan = event_plan.Plan(mixed_layout_graph())
    hwc = plan.hwc
    assert hwc["c1"] and hwc["l1"] and hwc["p1"] and hwc["c2"] and hwc["l2"]
    assert not hwc["l3"] and not hwc["c3"]  # a dense term keeps l3 (and c3) in C order
    assert hwc["p3"]  # read by c3, not a term: channels-last
    assert not hwc["l4"] and hwc["l5"] and hwc["c5"]
    assert not hwc["l6"] and not hwc["c6"]  # a 1-D LIF
    assert hwc["p7"] and not hwc["l7"]
    # identity paths gather only between different layouts
    gathers = {k.split("\0")[-1]: op.gather for k, op in plan.ops.items()
               if isinstance(op, event_ops.IdentityOp)}
    assert gathers["l5"] is None  # channels-last l1 -> channels-last l5
    assert gathers["l4"] is not None  # channels-last l1 -> 1-D l4


def test_spike_records_of_channels_last_lifs_are_returned_as_views():
    ev = event.run(mixed_layout_graph(), _inputs(), 14, threads=1)
    assert not ev.spikes["l1"].flags.c_contiguous  # stored (H, W, C): a transposed view
    assert ev.spikes["l1"].shape == (14, 3, 4, 6, 6)
    assert ev.spikes["l7"].flags.c_contiguous


def test_mixed_layouts_give_the_c_order_results_of_the_torch_backend():
    g, x = mixed_layout_graph(), _inputs()
    ev = event.run(g, x, 14, record_state=True, threads=1)
    ref = torch_int.run(g, x, 14, record_state=True)
    assert all(int(ev.spikes[k].sum()) > 0 for k in ev.spikes)  # every LIF takes part
    _assert_same(ev, ref)


def test_a_lost_channels_last_order_is_caught(monkeypatch):
    g, x = mixed_layout_graph(), _inputs()
    ref = torch_int.run(g, x, 14, record_state=True)
    # the fault: channels-last positions taken for (C, H, W) ones (no reordering)
    def identity(shape):
        return np.arange(int(np.prod(shape)), dtype=np.int64)

    for module in (event_ops, event_plan):  # the operators' tables and the plan's gathers
        monkeypatch.setattr(module, "chw_order", identity)
    event.PLANS.clear()
    with pytest.raises(AssertionError):
        _assert_same(event.run(g, x, 14, record_state=True, threads=1), ref)
    event.PLANS.clear()


def test_a_missing_identity_gather_is_caught(monkeypatch):
    g, x = mixed_layout_graph(), _inputs()
    ref = torch_int.run(g, x, 14, record_state=True)
    # the fault: channels-last l1 read in C order by the identity path into l4
    monkeypatch.setattr(event_plan, "identity_gather", lambda *a: None)
    event.PLANS.clear()
    with pytest.raises(AssertionError, match="l4"):
        _assert_same(event.run(g, x, 14, record_state=True, threads=1), ref)
    event.PLANS.clear()


def test_a_lif_kept_channels_last_beside_a_dense_term_is_caught(monkeypatch):
    g, x = mixed_layout_graph(), _inputs()
    ref = torch_int.run(g, x, 14, record_state=True)
    real = event_plan.layouts

    def wrong(op_nodes, lif_paths):  # the fault: ignore that l3 has a dense term
        hwc = real(op_nodes, lif_paths)
        hwc["l3"] = hwc["c3"] = True
        return hwc

    monkeypatch.setattr(event_plan, "layouts", wrong)
    event.PLANS.clear()
    with pytest.raises(AssertionError):
        _assert_same(event.run(g, x, 14, record_state=True, threads=1), ref)
    event.PLANS.clear()


@pytest.mark.parametrize("reader", ["conv", "sumpool"])
@pytest.mark.parametrize("source", ["lif", "conv"])
def test_a_channels_last_value_read_through_a_flatten_in_another_shape(reader, source):
    """A flatten lets a conv or sumpool read a channels-last value of the same size as its
    input but of another (C, H, W) shape (validation only compares sizes): the reader must
    take the stored positions in the source's shape, then the C-order index in its own."""
    rng = np.random.default_rng(3)
    s1, s2 = (2, 3, 4), (4, 3, 2)
    n: dict = {"in": InputNode("in", (1, 3, 4)),
               "c1": ConvNode("c1", _w(rng, (2, 1, 3, 3), -20, 60), (1, 3, 4),
                              padding=(1, 1)),
               "l1": lif("l1", s1, du=4095, dv=0, vth=30),
               "f": FlattenNode("f", s1)}
    n["r"] = (ConvNode("r", _w(rng, (3, 4, 1, 1), -20, 60), s2) if reader == "conv"
              else SumPoolNode("r", s2, (1, 1), (1, 1)))
    n["l2"] = lif("l2", tuple(n["r"].out_shape), du=4095, dv=0)
    n["out"] = OutputNode("out", n["l2"].shape)
    edges = [("in", "c1"), ("c1", "l1"), ("l1" if source == "lif" else "c1", "f"),
             ("f", "r"), ("r", "l2"), ("l2", "out")]
    g = QGraph(n, edges, 1e-3, "loihi", 5).validate()
    x = (rng.random((5, 2, 1, 3, 4)) < 0.5).astype(np.uint8)
    ev = event.run(g, x, 8, record_state=True, threads=1)
    assert event.PLANS.get(g).hwc["l1"] and event.PLANS.get(g).hwc["c1"]
    assert int(ev.spikes["l1"].sum()) > 0
    _assert_same(ev, torch_int.run(g, x, 8, record_state=True))
