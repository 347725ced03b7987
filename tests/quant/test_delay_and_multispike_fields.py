"""The quantized graph's synaptic delays and multi-spike output: validation, file round
trip, depth, and refusal by backends that do not declare them (docs/qgraph.md)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from snn2hw.backends import registry
from snn2hw.backends.base import UnsupportedNodeError, graph_features
from snn2hw.common.errors import GraphError
from snn2hw.quant.formats import LOIHI_FORMATS
from snn2hw.quant.qgraph import DenseNode, InputNode, LIFNode, OutputNode, QGraph

LOIHI2_LIKE = dataclasses.replace(LOIHI_FORMATS, max_synaptic_delay=63, max_message_bits=24)


def _graph(delay=0, max_spikes=1, formats=LOIHI2_LIKE) -> QGraph:
    w = np.array([[2, 4], [6, -8]], dtype=np.int64)
    nodes = [
        InputNode("in", (2,)),
        DenseNode("fc", w, delay=delay),
        LIFNode("lif", (2,), du=4095, dv=0, vth=1, bias_mant=np.zeros(2, np.int64),
                bias_exp=np.zeros(2, np.int64), max_spikes=max_spikes),
        OutputNode("out", (2,)),
    ]
    g = QGraph(nodes={n.name: n for n in nodes},
               edges=[("in", "fc"), ("fc", "lif"), ("lif", "out")], dt=1e-3,
               target="test", num_steps=4, formats=formats)
    return g


def test_delay_above_target_limit_is_refused_naming_node_delay_and_limit():
    with pytest.raises(GraphError, match=r"node 'fc'.*delay 64.*limit is 63"):
        _graph(delay=64).validate()
    with pytest.raises(GraphError, match=r"node 'fc'.*delay 1.*no synaptic delays"):
        _graph(delay=1, formats=LOIHI_FORMATS).validate()


def test_per_synapse_delay_array_must_match_weight_shape_and_be_non_negative():
    with pytest.raises(GraphError, match="delay has shape"):
        _graph(delay=np.zeros((3, 2), np.int64)).validate()
    with pytest.raises(GraphError, match="delay -1 is negative"):
        _graph(delay=np.array([[0, -1], [0, 0]])).validate()


def test_multi_spike_needs_graded_messages_on_the_target():
    _graph(max_spikes=7).validate()
    with pytest.raises(GraphError, match=r"node 'lif'.*max_spikes=7.*max_message_bits"):
        _graph(max_spikes=7, formats=LOIHI_FORMATS).validate()
    with pytest.raises(GraphError, match="max_spikes must be an integer >= 1"):
        _graph(max_spikes=0).validate()


def test_depth_counts_delays():
    assert _graph().depth() == 1
    assert _graph(delay=np.array([[0, 5], [2, 0]])).depth() == 6


def test_delays_and_max_spikes_survive_the_file_round_trip(tmp_path):
    d = np.array([[0, 5], [2, 0]], dtype=np.int64)
    g = _graph(delay=d, max_spikes=3).validate()
    g.save(tmp_path / "g.qgraph")
    h = QGraph.load(tmp_path / "g.qgraph")
    np.testing.assert_array_equal(h.nodes["fc"].delay, d)
    assert h.nodes["lif"].max_spikes == 3
    g2 = _graph(delay=4).validate()
    g2.save(tmp_path / "g2.qgraph")
    assert QGraph.load(tmp_path / "g2.qgraph").nodes["fc"].delay == 4


def test_graph_features_names_the_first_node_using_each():
    assert graph_features(_graph()) == {}
    assert graph_features(_graph(delay=2, max_spikes=2)) == {"delay": "fc", "multi_spike": "lif"}


@pytest.mark.parametrize("name", [n for n in registry.names() if n in registry.available()])
def test_backends_refuse_features_they_do_not_declare(name):
    backend = registry.get(name)
    for feature, g in (("delay", _graph(delay=2)), ("multi_spike", _graph(max_spikes=3))):
        if feature in backend.features:
            continue
        with pytest.raises(UnsupportedNodeError, match=f"backend '{name}' does not execute"):
            backend.run(g.validate(), np.zeros((2, 1, 2), np.int64))


@pytest.mark.parametrize("interval,offset", [(-1, 0), (0, 1), (4, 4), (4, -1)])
def test_periodic_reset_fields_out_of_range_are_refused(interval, offset):
    g = _graph()
    g.nodes["lif"].reset_interval, g.nodes["lif"].reset_offset = interval, offset
    with pytest.raises(GraphError, match=r"node 'lif'.*reset_interval"):
        g.validate()


def test_periodic_reset_fields_survive_the_file_round_trip(tmp_path):
    g = _graph()
    g.nodes["lif"].reset_interval, g.nodes["lif"].reset_offset = 17, 3
    g.validate().save(tmp_path / "r.qgraph")
    h = QGraph.load(tmp_path / "r.qgraph").nodes["lif"]
    assert (h.reset_interval, h.reset_offset) == (17, 3)
