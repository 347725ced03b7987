"""compare cannot call silence agreement.

Per layer ``snn2hw compare`` reports each backend's spikes and the spike overlap with the
reference backend (matched / union): 0 when one side is silent and the other is not, n/a
(JSON null) when both are silent, and a warning for every layer (the output first) that is
silent on every sample in some backend. A silent network therefore never shows a float
agreement of 1.000 without that warning. Faults: a network whose weights are all zero (silent
everywhere), and an ``event`` backend whose synaptic weights are zeroed (silent on
one side only, installed through ``registry.get`` as in ``fault_injection.py``).
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from deployment_graphs import CONVENTION, write_mlp

from snn2hw.backends import registry
from snn2hw.cli import main
from snn2hw.quant.qgraph import DenseNode, QGraph


def _exported(folder, scale: float) -> str:
    f = write_mlp(folder / "src", scale=scale)
    r = CliRunner().invoke(main, [
        "export", str(f["nir"]), "--convention", CONVENTION, "--inputs", str(f["inputs"]),
        "--labels", str(f["labels"]), "--target", "loihi", "-o", str(folder / "out"),
        "--no-report"])
    assert r.exit_code == 0, r.output
    return str(folder / "out" / "mlp.qgraph")


@pytest.fixture(scope="module")
def live(tmp_path_factory) -> str:
    return _exported(tmp_path_factory.mktemp("live"), 1.0)


@pytest.fixture(scope="module")
def silent(tmp_path_factory) -> str:
    return _exported(tmp_path_factory.mktemp("silent"), 0.0)


def _compare(qgraph: str, backends: str, *extra: str):
    return CliRunner().invoke(main, ["compare", qgraph, "--backends", backends,
                                     "--samples", "8", "--no-report", "--device", "cpu",
                                     *extra])


class _Unreachable:
    """The real backend with every synaptic weight zeroed (no bias here): it never fires."""

    def __init__(self, inner) -> None:
        self.inner = inner
        for attr in ("name", "node_kinds", "records_state", "uses_device", "counts_activity",
                     "splits_batches", "features"):
            if hasattr(inner, attr):
                setattr(self, attr, getattr(inner, attr))

    def prepare(self, graph: QGraph, device: str = "cpu"):
        g = copy.deepcopy(graph)
        for node in g.nodes.values():
            if isinstance(node, DenseNode):
                node.weight = np.zeros_like(node.weight)
        return self.inner.prepare(g, device)


def test_silent_network_is_warned_about_and_its_overlap_is_not_a_number(silent):
    r = _compare(silent, "float,torch-int,event")
    assert r.exit_code == 0, r.output  # the integer backends do agree: silence is a warning
    assert "warning: the output layer 'lif2' is silent on every sample in every run" in r.output
    assert "warning: layer 'lif1' is silent on every sample" in r.output
    assert "| n/a* (0) | n/a* (0) |" in r.output  # float row: no overlap claimed
    assert "| n/a (0) | n/a (0) |" in r.output  # integer rows too
    data = json.loads(_compare(silent, "float,torch-int,event", "--json").stdout)
    assert data["overlap"]["float"]["lif2"]["overlap"] is None
    assert data["overlap"]["event"]["lif1"]["overlap"] is None
    assert data["spikes"]["float"] == {"lif1": 0, "lif2": 0}
    # the old per-value agreement is 1.0 for silence; it never stands without the warning
    assert data["float_agreement"]["lif2"] == 1.0
    assert any("output layer 'lif2' is silent" in w for w in data["warnings"])
    md = Path(silent).parent / "compare.md"
    assert "**warning**: the output layer 'lif2' is silent" in md.read_text()


def test_one_silent_backend_has_overlap_zero_and_is_named(live, monkeypatch):
    real_get = registry.get
    monkeypatch.setattr(registry, "get",
                        lambda name: _Unreachable(real_get(name)) if name == "event"
                        else real_get(name))
    r = _compare(live, "torch-int,event", "--json")
    assert r.exit_code == 2  # the integer backends disagree
    data = json.loads(r.stdout)
    for layer in ("lif1", "lif2"):
        o = data["overlap"]["event"][layer]
        assert o["spikes"] == 0 and o["reference_spikes"] > 0 and o["overlap"] == 0.0
        assert data["overlap"]["torch-int"][layer]["overlap"] == 1.0
    assert data["warnings"][0].startswith(
        "the output layer 'lif2' is silent on every sample in event")


def test_live_network_has_no_warning_and_states_the_hop_depth(live):
    r = _compare(live, "float,torch-int,event")
    assert r.exit_code == 0, r.output
    assert "warning" not in r.output
    assert "hop depth: lif1 1, lif2 2" in r.output
    data = json.loads(_compare(live, "float,torch-int,event", "--json").stdout)
    assert data["hop_depth"] == {"lif1": 1, "lif2": 2} and data["warnings"] == []
    for layer in ("lif1", "lif2"):
        assert data["overlap"]["event"][layer]["overlap"] == 1.0
        assert 0.5 < data["overlap"]["float"][layer]["overlap"] <= 1.0
        assert data["spikes"]["event"][layer] == data["spikes"]["torch-int"][layer] > 0
