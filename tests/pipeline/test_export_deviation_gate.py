"""Export measures what deployment costs, and refuses a deployment that changes too much.

Every export runs the float path and torch-int on the calibration samples; ``snn2hw
export`` exits 2 (after writing every file) when an output layer's spike count changes by
more than --max-spike-change or the accuracy drops by more than --max-accuracy-drop, and
names the layers and the likely cause, unless --accept-deviation. Faults are injected into
what PTQ returns (``snn2hw.pipeline.export._quantize`` wrapped by ``monkeypatch``): a
threshold scaled up, the output neurons' weight rows swapped; a reset the target cannot
execute comes from the real ``--reset subtract`` on a Loihi target (which resets to 0).
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner
from deployment_graphs import CONVENTION, write_mlp

import snn2hw.pipeline.export as export_mod
from snn2hw.cli import main
from snn2hw.pipeline.alignment import align, hop_depths, spike_overlap
from snn2hw.pipeline.deviation import DeviationLimits, check_deployment
from snn2hw.quant.qgraph import QGraph


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    return write_mlp(tmp_path_factory.mktemp("mlp"))


def _export(files, out, *extra):
    args = ["export", str(files["nir"]), "--convention", CONVENTION, "--inputs",
            str(files["inputs"]), "--labels", str(files["labels"]), "--target", "loihi",
            "-o", str(out), "--no-report", *extra]
    return CliRunner().invoke(main, args)


def _fault(monkeypatch, change) -> None:
    """PTQ's graph altered by ``change(graph)`` before export measures and saves it."""
    real = export_mod._quantize

    def faulty(*args, **kwargs):
        qres = real(*args, **kwargs)
        change(qres.graph)
        return qres

    monkeypatch.setattr(export_mod, "_quantize", faulty)


def _scale_vth(layer: str, factor: float):
    def change(graph: QGraph) -> None:
        graph.nodes[layer].vth = int(graph.nodes[layer].vth * factor)
    return change


def test_a_correct_deployment_passes_and_the_report_shows_the_table(files, tmp_path):
    r = _export(files, tmp_path / "out")
    assert r.exit_code == 0, r.output
    rep = json.loads((tmp_path / "out" / "export.json").read_text())
    chk = rep["deployment_check"]
    assert chk["passed"] and chk["failures"] == []
    assert [lay["layer"] for lay in chk["layers"]] == ["lif1", "lif2"]
    assert [lay["hop_depth"] for lay in chk["layers"]] == [1, 2]
    assert all(lay["float_spikes"] > 0 and lay["integer_spikes"] > 0 for lay in chk["layers"])
    out = chk["layers"][1]
    assert out["output"] and abs(out["spike_change"]) <= 0.05
    assert chk["float_accuracy"] == 1.0
    assert chk["accuracy_drop_pp"] <= 1.0 or chk["accuracy_p"] >= 0.05
    md = (tmp_path / "out" / "export.md").read_text()
    assert "## Deployment check (float path vs torch-int)" in md and "passed" in md
    assert "| lif2 (output) | 2 |" in md
    assert "deployment check on 32 calibration samples" in r.output


def test_scaled_output_threshold_fails_with_exit_2_naming_the_layer_and_cause(
        files, tmp_path, monkeypatch):
    _fault(monkeypatch, _scale_vth("lif2", 1.6))
    r = _export(files, tmp_path / "out")
    assert r.exit_code == 2, r.output
    err = r.stderr if hasattr(r, "stderr") else r.output
    assert "error: deployment changes the network beyond the limits" in err
    assert "output layer 'lif2': spikes change by -" in err
    assert "deviation starts at 'lif2'" in err and "threshold / weight scale" in err
    assert "--accept-deviation" in err
    # every file is written, and the report shows the cost
    rep = json.loads((tmp_path / "out" / "export.json").read_text())
    chk = rep["deployment_check"]
    assert chk["verdict"] == "FAILED" and not chk["accepted"]
    lif2 = next(lay for lay in chk["layers"] if lay["layer"] == "lif2")
    assert lif2["spike_change"] < -0.05 and "threshold / weight scale" in lif2["causes"][0]
    assert "FAILED" in (tmp_path / "out" / "export.md").read_text()
    assert (tmp_path / "out" / "mlp.qgraph").is_file()


def test_hidden_threshold_fault_is_traced_to_where_it_starts(files, tmp_path, monkeypatch):
    _fault(monkeypatch, _scale_vth("lif1", 1.6))
    r = _export(files, tmp_path / "out")
    assert r.exit_code == 2, r.output
    chk = json.loads((tmp_path / "out" / "export.json").read_text())["deployment_check"]
    lif1, lif2 = chk["layers"]
    assert lif1["spike_change"] < -0.05 and "threshold / weight scale" in lif1["causes"][0]
    assert "inherited from upstream 'lif1'" in "; ".join(lif2["causes"])
    assert "deviation starts at 'lif1'" in r.output


def test_accept_deviation_exits_0_and_records_the_cost(files, tmp_path, monkeypatch):
    _fault(monkeypatch, _scale_vth("lif2", 1.6))
    r = _export(files, tmp_path / "out", "--accept-deviation")
    assert r.exit_code == 0, r.output
    assert "warning: deployment changes the network beyond the limits" in r.output
    chk = json.loads((tmp_path / "out" / "export.json").read_text())["deployment_check"]
    assert not chk["passed"] and chk["accepted"]
    md = (tmp_path / "out" / "export.md").read_text()
    assert "FAILED (accepted with --accept-deviation)" in md
    assert "threshold / weight scale" in md  # the table's cause column


def test_limits_are_configurable(files, tmp_path, monkeypatch):
    _fault(monkeypatch, _scale_vth("lif2", 1.6))
    r = _export(files, tmp_path / "out", "--max-spike-change", "90",
                "--max-accuracy-drop", "100")
    assert r.exit_code == 0, r.output
    chk = json.loads((tmp_path / "out" / "export.json").read_text())["deployment_check"]
    assert chk["passed"] and chk["limits"] == {"max_spike_change": 0.9,
                                               "max_accuracy_drop_pp": 100.0}


def test_json_output_carries_the_failed_check_and_exit_2(files, tmp_path, monkeypatch):
    _fault(monkeypatch, _scale_vth("lif2", 1.6))
    r = _export(files, tmp_path / "out", "--json")
    assert r.exit_code == 2
    data = json.loads(r.stdout)
    assert data["deployment_check"]["passed"] is False


def test_reset_the_target_cannot_execute_is_named_as_the_cause(files, tmp_path):
    # The float path resets by subtraction; Loihi resets to 0 (docs/qgraph.md): refused
    # outright, and with the approximation accepted, measured and failed with its cause.
    refused = _export(files, tmp_path / "refused", "--reset", "subtract")
    assert refused.exit_code == 1 and "--approximate reset" in refused.output
    r = _export(files, tmp_path / "out", "--reset", "subtract", "--approximate", "reset")
    assert r.exit_code == 2, r.output
    chk = json.loads((tmp_path / "out" / "export.json").read_text())["deployment_check"]
    for lay in chk["layers"]:
        assert lay["causes"][0].startswith("reset: the source resets by subtract, the "
                                           "target to 0")
    assert "deviation starts at 'lif1'" in r.output


def test_decisions_that_move_without_a_count_change_fail_on_accuracy(
        files, tmp_path, monkeypatch):
    # Swapping the weight rows of output neurons 0 and 1 swaps their spikes: the layer's
    # total is unchanged, the decisions between the two classes are not.
    def swap(graph: QGraph) -> None:
        d = graph.nodes["lif2.p0.fc2"]
        d.weight = d.weight[[1, 0, 2, 3]].copy()

    labels = np.load(files["labels"])
    counts = np.bincount(labels, minlength=4)
    assert counts[0] + counts[1] >= 2  # the swap moves at least two decisions
    _fault(monkeypatch, swap)
    r = _export(files, tmp_path / "out")
    assert r.exit_code == 2, r.output
    chk = json.loads((tmp_path / "out" / "export.json").read_text())["deployment_check"]
    lif2 = chk["layers"][1]
    assert abs(lif2["spike_change"]) <= 0.05  # the count gate alone would pass
    assert chk["accuracy_drop_pp"] > 1.0 and chk["accuracy_p"] < 0.05
    assert chk["samples_gained"] == 0 and chk["samples_lost"] >= 5
    assert "accuracy drops" in r.output and "decisions moved" in lif2["causes"][0]


# ----- the definitions ---------------------------------------------------------------------

def test_spike_overlap_is_zero_for_one_silent_side_and_undefined_for_two():
    a = np.array([[1, 0, 1], [0, 1, 0]])
    silent = np.zeros_like(a)
    assert spike_overlap(a, a).overlap == 1.0
    assert spike_overlap(a, silent).overlap == 0.0 and spike_overlap(silent, a).overlap == 0.0
    both = spike_overlap(silent, silent)
    assert both.overlap is None and both.cell() == "n/a" and both.to_dict()["overlap"] is None
    half = spike_overlap(a, np.array([[1, 0, 0], [0, 1, 1]]))
    assert (half.matched, half.union, half.overlap) == (2, 4, 0.5)
    # multi-spike counts: matched = sum(min), union = sum(max)
    assert spike_overlap(np.array([3, 1]), np.array([1, 1])).overlap == pytest.approx(2 / 4)


def test_alignment_shifts_integer_spikes_back_by_the_hop_depth(files, tmp_path):
    r = _export(files, tmp_path / "out")
    assert r.exit_code == 0, r.output
    g = QGraph.load(tmp_path / "out" / "mlp.qgraph")
    assert hop_depths(g) == {"lif1": 1, "lif2": 2}
    rng = np.random.default_rng(0)
    fl = {n.name: (rng.random((6, 2, *n.shape)) < 0.4).astype(np.uint8) for n in g.lif_nodes}
    ints = {k: np.concatenate([np.zeros((hop_depths(g)[k], *v.shape[1:]), np.uint8), v,
                               np.zeros((2 - hop_depths(g)[k] + 1, *v.shape[1:]), np.uint8)])
            for k, v in fl.items()}
    for name, (f, i) in align(g, fl, ints).items():
        assert spike_overlap(f, i).overlap == 1.0, name


def test_silent_network_passes_the_count_gate_but_is_warned_about(tmp_path):
    f = write_mlp(tmp_path / "silent", scale=0.0)
    r = _export(f, tmp_path / "out")
    assert r.exit_code == 0, r.output
    chk = json.loads((tmp_path / "out" / "export.json").read_text())["deployment_check"]
    assert all(lay["count_overlap"] is None for lay in chk["layers"])
    assert any("output layer 'lif2' is silent on every sample" in w for w in chk["warnings"])
    assert "warning: the output layer 'lif2' is silent" in r.output


def test_check_deployment_on_a_graph_directly(files, tmp_path):
    r = _export(files, tmp_path / "out")
    assert r.exit_code == 0, r.output
    g = QGraph.load(tmp_path / "out" / "mlp.qgraph")
    x = np.load(files["inputs"]).astype(np.int64)
    fl = {"lif1": np.zeros((x.shape[0], x.shape[1], 24), np.uint8),
          "lif2": np.zeros((x.shape[0], x.shape[1], 4), np.uint8)}
    chk = check_deployment(g, fl, x, limits=DeviationLimits(0.05, 1.0))
    # a float path that is silent where torch-int fires: every layer is "silent in float"
    assert not chk.passed and all(lay.change is None for lay in chk.layers)
    assert "the float path is silent" in chk.failures[0]


def test_the_report_page_shows_the_check_and_its_cause(files, tmp_path, monkeypatch):
    _fault(monkeypatch, _scale_vth("lif2", 1.6))
    args = ["export", str(files["nir"]), "--convention", CONVENTION, "--inputs",
            str(files["inputs"]), "--labels", str(files["labels"]), "--target", "loihi",
            "-o", str(tmp_path / "out"), "--accept-deviation"]
    r = CliRunner().invoke(main, args)
    assert r.exit_code == 0, r.output
    page = (tmp_path / "out" / "report" / "README.md").read_text()
    assert "## Deployment check" in page
    assert "Verdict: **FAILED (accepted with --accept-deviation)**" in page
    assert "| lif2 (output) | 2 |" in page and "threshold / weight scale" in page
