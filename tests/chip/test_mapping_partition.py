"""Resource mapping, partition: cores under each limit, refusals, output-axon re-splits,
the mapping's table and JSON (snn2hw.chip.mapping.partition, .result, .summary)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from mapping_graphs import chain, dense, lif, two_by_two, with_resources

import snn2hw.chip.mapping as mapping_pkg
from snn2hw.chip.mapping import connectivity, fan_in_counts, format_mapping, map_to_cores
from snn2hw.chip.targets import Target, load_target
from snn2hw.common.errors import ResourceError
from snn2hw.quant.qgraph import ConvNode, InputNode, OutputNode, QGraph


@pytest.fixture(scope="module")
def loihi() -> Target:
    return load_target("loihi")


def test_dense_64_128_10_fits_two_cores_with_exact_counts(loihi: Target) -> None:
    w1 = np.full((128, 64), 2)
    w1[5, :10] = 0  # neuron 5 of fc1 has 54 inputs
    w2 = np.where(np.arange(10 * 128).reshape(10, 128) % 2, 4, -4)
    w2[0, 0] = 1  # mixed-sign matrix: Lava truncates the LSB, so this synapse is 0 on chip
    g = chain((64,), [("fc1", dense("w1", w1)), ("fc2", dense("w2", w2))])
    m = map_to_cores(g, loihi)

    fc1, fc2 = m.layers["fc1"], m.layers["fc2"]
    assert (fc1.num_cores, fc1.neurons_per_core, fc1.first_core) == (1, [128], 0)
    assert fc1.max_input_axons == 64 and fc1.max_fan_in == 64
    assert fc1.synapses == 128 * 64 - 10
    assert fc1.max_synaptic_memory_bits == (128 * 64 - 10) * 18
    assert fc1.max_output_axons == 128  # every fc1 neuron reaches the one fc2 core
    assert (fc2.num_cores, fc2.neurons_per_core, fc2.first_core) == (1, [10], 1)
    assert fc2.max_input_axons == 128
    assert fc2.synapses == 10 * 128 - 1
    assert fc2.total_synaptic_memory_bits == (10 * 128 - 1) * 18
    assert fc2.max_output_axons == 0  # the output layer feeds no core
    assert (m.total_cores, m.chips) == (2, 1)
    assert fc1.limited_by == "" and fc2.limited_by == ""
    np.testing.assert_array_equal(
        fan_in_counts(g, "fc1"), [54 if i == 5 else 64 for i in range(128)]
    )


def test_3000_neuron_layer_splits_into_cores_of_1024(loihi: Target) -> None:
    g = chain((16,), [("fc1", dense("w1", np.ones((3000, 16)))),
                      ("fc2", dense("w2", np.ones((10, 3000))))])
    m = map_to_cores(g, loihi)
    fc1 = m.layers["fc1"]
    assert fc1.neurons_per_core == [1024, 1024, 952]
    assert [c.core for c in fc1.cores] == [0, 1, 2]
    assert [(c.start, c.stop) for c in fc1.cores] == [(0, 1024), (1024, 2048), (2048, 3000)]
    assert fc1.limited_by == "neurons"
    assert [c.output_axons for c in fc1.cores] == [1024, 1024, 952]
    assert m.layers["fc2"].max_input_axons == 3000
    assert m.layers["fc2"].first_core == 3
    assert m.total_cores == 4 and m.chips == 1
    np.testing.assert_array_equal(fc1.core_of(np.array([0, 1023, 1024, 2999])), [0, 0, 1, 2])


def test_input_axon_limit_closes_cores_greedily(loihi: Target) -> None:
    g = chain((8,), [("fc1", dense("w1", 2 * np.eye(8, dtype=np.int64)))])
    m = map_to_cores(g, with_resources(loihi, input_axons_per_core=3))
    fc1 = m.layers["fc1"]
    assert fc1.neurons_per_core == [3, 3, 2]
    assert [c.input_axons for c in fc1.cores] == [3, 3, 2]
    assert fc1.limited_by == "input_axons"


def test_synaptic_memory_limit_closes_cores(loihi: Target) -> None:
    # 10 synapses x 18 bits = 180 bits per neuron; 400 bits hold 2 neurons
    g = chain((10,), [("fc1", dense("w1", np.ones((5, 10))))])
    m = map_to_cores(g, with_resources(loihi, synaptic_memory_bits_per_core=400))
    fc1 = m.layers["fc1"]
    assert fc1.neurons_per_core == [2, 2, 1]
    assert fc1.max_synaptic_memory_bits == 360
    assert fc1.limited_by == "synaptic_memory"


def test_one_neuron_with_too_many_inputs_is_refused(loihi: Target) -> None:
    g = chain((5000,), [("fc1", dense("w1", np.ones((2, 5000))))])
    with pytest.raises(ResourceError) as err:
        map_to_cores(g, loihi)
    assert str(err.value) == (
        "layer 'fc1': one neuron (index 0) needs 5000 input axons, a core has 4096 (over by 904)"
    )


def test_one_neuron_with_too_much_synaptic_memory_is_refused(loihi: Target) -> None:
    g = chain((64,), [("fc1", dense("w1", np.ones((2, 64))))])
    with pytest.raises(ResourceError, match=(
        r"layer 'fc1': one neuron \(index 0\) needs 64 synapses x 18 bits = 1152 bits of "
        r"synaptic memory, a core has 1000 \(over by 152\)"
    )):
        map_to_cores(g, with_resources(loihi, synaptic_memory_bits_per_core=1000))


def test_model_needing_too_many_chips_is_refused(loihi: Target) -> None:
    g = chain((16,), [("fc0", dense("w0", np.ones((10, 16)))),
                      ("fc1", dense("w1", np.ones((3000, 10))))])
    small = with_resources(loihi, cores_per_chip=2, max_chips=1)
    with pytest.raises(ResourceError) as err:
        map_to_cores(g, small)
    msg = str(err.value)
    assert msg.startswith("layer 'fc1' brings the model to 4 cores = 2 chips of 2 cores")
    assert "at most 1 chip(s) (over by 1 chip(s))" in msg


def test_large_layer_is_partitioned_in_one_pass_then_refused(loihi: Target) -> None:
    # 200k neurons with fan-in 1 -> 196 cores = 2 chips of 128; the target allows 1
    conv = ConvNode("c", np.ones((2, 1, 1, 1), dtype=np.int64), (1, 250, 400))
    g = chain((1, 250, 400), [("l", conv)])
    with pytest.raises(ResourceError, match=r"layer 'l' brings the model to 196 cores = 2 chips"
                                            r" .* \(over by 1 chip\(s\)\)"):
        map_to_cores(g, with_resources(loihi, max_chips=1))


def test_conv_layer_mapping_counts_synapses_and_axons(loihi: Target) -> None:
    w = np.ones((2, 1, 3, 3), dtype=np.int64)
    g = chain((1, 5, 5), [("l", ConvNode("c", w, (1, 5, 5), padding=(1, 1)))])
    m = map_to_cores(g, loihi)
    layer = m.layers["l"]
    per_channel = 4 * 4 + 12 * 6 + 9 * 9
    assert layer.synapses == 2 * per_channel
    assert layer.max_input_axons == 25 and layer.num_cores == 1


def test_recurrent_layer_counts_both_sources(loihi: Target) -> None:
    nodes = {
        "in": InputNode("in", (64,)),
        "w": dense("w", np.ones((128, 64))),
        "fc1": lif("fc1", (128,)),
        "rec": dense("rec", np.ones((128, 128))),
        "out": OutputNode("out", (128,)),
    }
    edges = [("in", "w"), ("w", "fc1"), ("fc1", "rec"), ("rec", "fc1"), ("fc1", "out")]
    g = QGraph(nodes, edges, dt=1e-3, target="loihi", num_steps=2)
    m = map_to_cores(g, loihi)
    fc1 = m.layers["fc1"]
    assert fc1.max_input_axons == 64 + 128
    assert fc1.max_output_axons == 128  # each neuron reaches its own core
    blocks = connectivity(g, "fc1").sources
    assert [(b.name, b.offset, b.size, b.on_mesh) for b in blocks] == [
        ("in", 0, 64, False), ("fc1", 64, 128, True)
    ]


def test_output_axon_limit_resplits_the_source_layer(loihi: Target) -> None:
    # B splits on memory (B1 needs 2 synapses); A as one core would need 2 + 1 = 3
    # output axons, so A is re-split into two cores.
    g, t = two_by_two(loihi, synaptic_memory_bits_per_core=36, output_axons_per_core=2)
    m = map_to_cores(g, t)
    assert m.layers["B"].neurons_per_core == [1, 1]
    assert m.layers["A"].neurons_per_core == [1, 1]
    assert [c.output_axons for c in m.layers["A"].cores] == [2, 1]
    assert m.layers["A"].limited_by == "output_axons"
    assert m.iterations == 2
    g, t = two_by_two(loihi, synaptic_memory_bits_per_core=36, output_axons_per_core=1)
    with pytest.raises(ResourceError, match=r"layer 'A': one neuron \(index 0\) reaches 2 cores"
                                            r" and needs 2 output axons, a core has 1 "
                                            r"\(over by 1\)"):
        map_to_cores(g, t)


def test_mapping_report_and_json(loihi: Target) -> None:
    g = chain((16,), [("fc1", dense("w1", np.ones((3000, 16)))),
                      ("fc2", dense("w2", np.ones((10, 3000))))])
    m = map_to_cores(g, loihi)
    text = format_mapping(m)
    assert "fc1" in text and "fc2" in text and "4 cores on 1 chip" in text
    assert "18 bits per non-zero synapse" in text
    d = json.loads(json.dumps(m.to_dict()))
    assert d["total_cores"] == 4 and d["chips"] == 1
    assert d["layers"][0]["per_core"]["neurons"] == [1024, 1024, 952]
    assert d["limits_per_core"]["neurons"] == 1024


def test_package_keeps_every_name_the_module_exported() -> None:
    # snn2hw/chip/mapping.py became a package; callers import from snn2hw.chip.mapping
    names = ("Connectivity", "CoreUse", "Hops", "LayerMapping", "Mapping", "SourceBlock",
             "SpikeRouting", "connectivity", "fan_in_counts", "format_mapping", "map_to_cores",
             "spike_hops")
    assert sorted(mapping_pkg.__all__) == sorted(names)
    for name in names:
        assert getattr(mapping_pkg, name).__module__.startswith("snn2hw.chip.mapping."), name
