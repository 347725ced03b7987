"""Resource mapping, connectivity: conv fan-in geometry, groups, composed operator chains
(snn2hw.chip.mapping.connectivity)."""

from __future__ import annotations

import numpy as np
import pytest
from mapping_graphs import chain, dense, lif

from snn2hw.chip.mapping import connectivity, fan_in_counts, map_to_cores
from snn2hw.chip.targets import Target, load_target
from snn2hw.quant.qgraph import (
    ConvNode,
    FlattenNode,
    InputNode,
    OutputNode,
    QGraph,
    SumPoolNode,
)


@pytest.fixture(scope="module")
def loihi() -> Target:
    return load_target("loihi")


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
