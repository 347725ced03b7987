"""Delay memory in the resource model (snn2hw.chip.mapping.delays): per-synapse delay
fields count into synaptic memory (and its limit), delayed neurons' accumulator slots are
reported per core; a graph without delays costs neither."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from mapping_graphs import chain, dense, with_resources

from snn2hw.chip.mapping import format_mapping, map_to_cores
from snn2hw.chip.mapping.delays import ACCUMULATOR_BITS
from snn2hw.chip.targets import Target, load_target
from snn2hw.quant.qgraph import QGraph


@pytest.fixture(scope="module")
def loihi2() -> Target:
    return load_target("loihi2")


def graph(loihi2: Target, d1, d2) -> QGraph:
    """in(4) -> fc1 (8x4, all synapses) -> A(8) -> fc2 (3x8) -> B(3), with delays d1, d2."""
    g = chain((4,), [("A", dataclasses.replace(dense("w1", np.full((8, 4), 2)), delay=d1)),
                     ("B", dataclasses.replace(dense("w2", np.full((3, 8), 2)), delay=d2))])
    return dataclasses.replace(g, target="loihi2", formats=loihi2.number_formats).validate()


def test_per_synapse_delays_add_delay_bits_to_every_synapse(loihi2: Target) -> None:
    per_syn = np.arange(32).reshape(8, 4) % 5  # delays 0..4, differing per synapse
    m = map_to_cores(graph(loihi2, per_syn, 3), loihi2)
    base = loihi2.bits_per_synapse
    a, b = m.layers["A"].cores[0], m.layers["B"].cores[0]
    assert a.synaptic_memory_bits == 32 * (base + 6)  # 0..63 needs 6 bits per synapse
    assert b.synaptic_memory_bits == 24 * base  # one delay for the whole op: no field
    assert a.delay_buffer_bits == 8 * 4 * ACCUMULATOR_BITS  # 4 extra slots per neuron
    assert b.delay_buffer_bits == 3 * 3 * ACCUMULATOR_BITS
    assert m.layers["A"].max_delay == 4 and m.to_dict()["layers"][1]["max_delay"] == 3
    assert "Synaptic delays: A up to 4 steps" in format_mapping(m)


def test_no_delays_cost_no_delay_memory(loihi2: Target) -> None:
    m = map_to_cores(graph(loihi2, 0, 0), loihi2)
    for lm in m.layers.values():
        assert lm.max_delay == 0 and lm.total_delay_buffer_bits == 0
    assert m.layers["A"].cores[0].synaptic_memory_bits == 32 * loihi2.bits_per_synapse
    assert "Synaptic delays" not in format_mapping(m)


def test_delay_bits_count_against_the_synaptic_memory_limit(loihi2: Target) -> None:
    per_syn = np.arange(32).reshape(8, 4) % 5
    # room for exactly the 32 synapses without delay fields: with them, A needs more cores
    tgt = with_resources(loihi2, synaptic_memory_bits_per_core=32 * loihi2.bits_per_synapse)
    assert len(map_to_cores(graph(tgt, 0, 0), tgt).layers["A"].cores) == 1
    m = map_to_cores(graph(tgt, per_syn, 0), tgt)
    assert len(m.layers["A"].cores) > 1 and m.layers["A"].limited_by == "synaptic_memory"
