"""Resource mapping: core partition, limits, conv fan-in geometry, spike routing."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from snn2hw.chip.mapping import (
    Hops,
    connectivity,
    fan_in_counts,
    format_mapping,
    map_to_cores,
    spike_hops,
)
from snn2hw.chip.targets import Target, load_target
from snn2hw.common.errors import ResourceError
from snn2hw.quant.qgraph import (
    ConvNode,
    DenseNode,
    FlattenNode,
    InputNode,
    LIFNode,
    OutputNode,
    QGraph,
    SumPoolNode,
)


@pytest.fixture(scope="module")
def loihi() -> Target:
    return load_target("loihi")


def with_resources(target: Target, **changes: int) -> Target:
    return dataclasses.replace(target, resources=dataclasses.replace(target.resources, **changes))


def lif(name: str, shape: tuple[int, ...]) -> LIFNode:
    zeros = np.zeros(shape, dtype=np.int64)
    return LIFNode(name, shape, du=4095, dv=0, vth=100, bias_mant=zeros, bias_exp=zeros.copy())


def chain(input_shape: tuple[int, ...], layers: list[tuple[str, object]]) -> QGraph:
    """input -> (op, lif) -> (op, lif) ... -> output; ``layers`` = [(lif name, op node)]."""
    nodes: dict[str, object] = {"in": InputNode("in", input_shape)}
    edges: list[tuple[str, str]] = []
    prev = "in"
    for name, op in layers:
        nodes[op.name] = op
        edges.append((prev, op.name))
        nodes[name] = lif(name, tuple(op.out_shape))
        edges.append((op.name, name))
        prev = name
    nodes["out"] = OutputNode("out", tuple(nodes[prev].shape))
    edges.append((prev, "out"))
    return QGraph(nodes, edges, dt=1e-3, target="loihi", num_steps=4)


def dense(name: str, weight: np.ndarray) -> DenseNode:
    return DenseNode(name, np.asarray(weight, dtype=np.int64))


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


def test_conv_fan_in_follows_kernel_geometry_and_padding() -> None:
    w = np.ones((1, 1, 3, 3), dtype=np.int64)
    g = chain((1, 5, 5), [("l", ConvNode("c", w, (1, 5, 5), padding=(1, 1)))])
    expected = np.array([[4, 6, 6, 6, 4]] + [[6, 9, 9, 9, 6]] * 3 + [[4, 6, 6, 6, 4]])
    np.testing.assert_array_equal(fan_in_counts(g, "l").reshape(5, 5), expected)

    w0 = w.copy()
    w0[0, 0, 1, 1] = 0  # a zero tap is no synapse
    g0 = chain((1, 5, 5), [("l", ConvNode("c", w0, (1, 5, 5), padding=(1, 1)))])
    np.testing.assert_array_equal(fan_in_counts(g0, "l").reshape(5, 5), expected - 1)

    # stride 2, dilation 2, no padding: 7x7 input -> 2x2 output, all 9 taps inside
    g1 = chain((1, 7, 7), [("l", ConvNode("c", w, (1, 7, 7), stride=(2, 2),
                                          dilation=(2, 2)))])
    np.testing.assert_array_equal(fan_in_counts(g1, "l"), [9, 9, 9, 9])
    conn = connectivity(g1, "l").matrix
    assert sorted(conn[3].indices.tolist()) == [
        (2 + 2 * dy) * 7 + 2 + 2 * dx for dy in range(3) for dx in range(3)
    ]


def test_grouped_conv_connects_only_its_group() -> None:
    w = np.ones((4, 1, 3, 3), dtype=np.int64)  # groups=2: out 0,1 <- in 0; out 2,3 <- in 1
    g = chain((2, 3, 3), [("l", ConvNode("c", w, (2, 3, 3), groups=2))])
    conn = connectivity(g, "l").matrix  # 4 neurons (1x1 output each channel)
    assert [sorted(conn[i].indices.tolist()) for i in range(4)] == [
        list(range(9)), list(range(9)), list(range(9, 18)), list(range(9, 18))
    ]


def test_conv_layer_mapping_counts_synapses_and_axons(loihi: Target) -> None:
    w = np.ones((2, 1, 3, 3), dtype=np.int64)
    g = chain((1, 5, 5), [("l", ConvNode("c", w, (1, 5, 5), padding=(1, 1)))])
    m = map_to_cores(g, loihi)
    layer = m.layers["l"]
    per_channel = 4 * 4 + 12 * 6 + 9 * 9
    assert layer.synapses == 2 * per_channel
    assert layer.max_input_axons == 25 and layer.num_cores == 1


def test_pool_flatten_dense_chain_is_composed(loihi: Target) -> None:
    nodes = {
        "in": InputNode("in", (1, 4, 4)),
        "p": SumPoolNode("p", (1, 4, 4), (2, 2), (2, 2)),
        "f": FlattenNode("f", (1, 2, 2)),
        "d": dense("d", [[2, 0, 0, 0], [2, 2, 2, 2]]),
        "l": lif("l", (2,)),
        "out": OutputNode("out", (2,)),
    }
    edges = [("in", "p"), ("p", "f"), ("f", "d"), ("d", "l"), ("l", "out")]
    g = QGraph(nodes, edges, dt=1e-3, target="loihi", num_steps=2)
    np.testing.assert_array_equal(fan_in_counts(g, "l"), [4, 16])
    assert sorted(connectivity(g, "l").matrix[0].indices.tolist()) == [0, 1, 4, 5]
    assert map_to_cores(g, loihi).layers["l"].synapses == 20


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


def two_by_two(target: Target, **res: int) -> tuple[QGraph, Target]:
    """in(2) -> A(2) -> B(2); A0 feeds B0 and B1, A1 feeds B1."""
    g = chain((2,), [("A", dense("wa", 2 * np.eye(2, dtype=np.int64))),
                     ("B", dense("wb", [[2, 0], [2, 2]]))])
    return g, with_resources(target, **res)


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


def test_hops_on_a_hand_worked_mesh(loihi: Target) -> None:
    # 1 core per tile, 4 cores per chip -> a 2x2 tile grid in snake order:
    # core 0 (0,0), core 1 (1,0), core 2 (1,1), core 3 (0,1)
    g, t = two_by_two(loihi, neurons_per_core=1, cores_per_tile=1, cores_per_chip=4)
    m = map_to_cores(g, t)
    assert [m.layers["A"].first_core, m.layers["B"].first_core] == [0, 2]
    xs, ys = m.position(np.arange(4))
    assert list(zip(xs.tolist(), ys.tolist(), strict=True)) == [(0, 0), (1, 0), (1, 1), (0, 1)]
    assert m.hops(0, 2) == Hops(ew=1, ns=1)
    assert m.hops(1, 3) == Hops(ew=1, ns=1)
    assert m.hops(0, 3) == Hops(ew=0, ns=1)
    # A0 (3 spikes) -> cores 2, 3; A1 (5 spikes) -> core 3
    r = spike_hops(m, "A", np.array([3, 5]))
    assert r.deliveries == 3 * 2 + 5
    assert r.hops_ew == 3 * (1 + 0) + 5 * 1
    assert r.hops_ns == 3 * (1 + 1) + 5 * 1
    assert (r.within_tile, r.chip_crossings, r.source_on_mesh) == (0, 0, True)
    # external input: deliveries only (injected from off the mesh)
    r_in = spike_hops(m, "in", np.array([1, 2]))
    assert (r_in.deliveries, r_in.hops_ew, r_in.source_on_mesh) == (3, 0, False)
    # the output layer feeds no core
    assert spike_hops(m, "B", np.array([4, 4])).deliveries == 0


def test_spikes_within_one_tile_make_no_hops(loihi: Target) -> None:
    g, t = two_by_two(loihi, neurons_per_core=1, cores_per_tile=4)
    m = map_to_cores(g, t)
    r = spike_hops(m, "A", np.array([3, 5]))
    assert (r.deliveries, r.within_tile, r.hops_ew, r.hops_ns) == (11, 11, 0, 0)


def test_spikes_across_chips_are_counted(loihi: Target) -> None:
    g, t = two_by_two(loihi, neurons_per_core=1, cores_per_tile=1, cores_per_chip=2)
    m = map_to_cores(g, t)
    assert m.chips == 2
    r = spike_hops(m, "A", np.array([1, 1]))
    assert r.deliveries == 3 and r.chip_crossings == 3
    assert r.hops_ew + r.hops_ns >= 3


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
