"""Every backend refuses a graph made for a chip with limits whose proven worst case could
cross them, naming the layer and the limit (docs/loihi-edges.md)."""

from __future__ import annotations

import numpy as np
import pytest
from qgraph_builders import dense, lif, make_graph

from snn2hw.backends import registry
from snn2hw.chip.targets import load_target
from snn2hw.quant.bounds import ChipLimitError, limits_from_formats, limits_to_metadata
from snn2hw.quant.qgraph import InputNode

LIMITS = limits_to_metadata(limits_from_formats(load_target("loihi").raw["formats"]))


def _graph(weight: int):
    g = make_graph([InputNode("in", (64,)), dense("d", np.full((4, 64), weight)),
                    lif("hidden", 4, vth=1000)], [("in", "d"), ("d", "hidden")])
    g.metadata["chip_limits"] = dict(LIMITS)
    return g


@pytest.mark.parametrize("backend", registry.names())
def test_a_graph_past_the_accumulator_limit_is_refused_naming_the_layer(backend):
    if backend not in registry.available():
        pytest.skip(f"{backend} not installed")
    x = np.ones((3, 1, 64), np.int64)
    # 64 inputs x 255 << 6 = 1,044,480 < 2^21 with binary input: inside
    registry.get(backend).run(_graph(255), x)
    bad = _graph(255)
    bad.nodes["d"].weight_exp = 2  # x4: 4,177,920 > 2^21 - 1
    with pytest.raises(ChipLimitError, match="hidden"):
        registry.get(backend).run(bad, x)


def test_the_same_graph_without_chip_limits_runs():
    g = _graph(255)
    g.nodes["d"].weight_exp = 2
    del g.metadata["chip_limits"]
    registry.get("event").run(g, np.ones((3, 1, 64), np.int64))


def test_chip_limits_written_into_a_graph_after_a_run_are_enforced_on_the_next():
    """The event simulator's prepared-plan cache fingerprints the chip limits in the
    metadata (and only them: other metadata does not prepare the graph again)."""
    from snn2hw.backends import event

    g = _graph(255)
    g.nodes["d"].weight_exp = 2
    limits = g.metadata.pop("chip_limits")
    x = np.ones((3, 1, 64), np.int64)
    event.run(g, x)
    before = event.PLANS.preparations
    g.metadata["notes"] = ["a note a run does not read"]
    event.run(g, x)
    assert event.PLANS.preparations == before
    g.metadata["chip_limits"] = limits
    with pytest.raises(ChipLimitError, match="hidden"):
        event.run(g, x)
