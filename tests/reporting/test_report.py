"""Deployment report: a real (tiny) pipeline end to end, "not run" sections, file refs."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

from snn2hw.common.errors import Snn2hwError
from snn2hw.pipeline.energy import energy_for_graph
from snn2hw.pipeline.simulate import run_backend
from snn2hw.quant.qgraph import DenseNode, InputNode, LIFNode, OutputNode, QGraph
from snn2hw.reporting.report import write_report


def tiny_graph() -> QGraph:
    rng = np.random.default_rng(0)

    def lif(name: str, n: int) -> LIFNode:
        z = np.zeros(n, dtype=np.int64)
        return LIFNode(name, (n,), du=4095, dv=400, vth=60, bias_mant=z, bias_exp=z.copy())

    nodes = {
        "in": InputNode("in", (12,)),
        "fc1": DenseNode("fc1", rng.integers(-20, 60, (16, 12)) * 2),
        "lif1": lif("lif1", 16),
        "fc2": DenseNode("fc2", rng.integers(-20, 60, (4, 16)) * 2),
        "lif2": lif("lif2", 4),
        "out": OutputNode("out", (4,)),
    }
    edges = [("in", "fc1"), ("fc1", "lif1"), ("lif1", "fc2"), ("fc2", "lif2"),
             ("lif2", "out")]
    return QGraph(nodes, edges, dt=1e-3, target="loihi", num_steps=8)


def file_refs(page: str) -> list[str]:
    return re.findall(r'(?:src|href)="([^"]*)"', page)


def check_refs(index: Path) -> None:
    """index.html references no network asset and only files that exist."""
    page = index.read_text(encoding="utf-8")
    for ref in file_refs(page):
        if ref.startswith(("data:image/png;base64,", "#")):
            continue
        assert not re.match(r"[a-z]+://", ref), ref
        assert (index.parent / ref).is_file(), ref
    readme = (index.parent / "README.md").read_text(encoding="utf-8")
    for ref in re.findall(r"!\[[^\]]*\]\(([^)]+)\)", readme):
        assert (index.parent / ref).is_file(), ref


@pytest.fixture(scope="module")
def pipeline():
    g = tiny_graph()
    x = (np.random.default_rng(1).random((8, 6, 12)) < 0.5).astype(np.int64)
    run = run_backend("event", g, x)
    rep1, _, _ = energy_for_graph(g, "loihi", run=run, inputs=x)
    rep2, _, _ = energy_for_graph(g, "loihi2", run=run, inputs=x)
    return g, run, [rep1, rep2]


def write_fake_artifacts(folder: Path, graph: QGraph) -> tuple[Path, Path]:
    """export.json / compare.json in the formats export.py and compare.py write."""
    from snn2hw.chip.mapping import map_to_cores
    from snn2hw.chip.targets import load_target

    mapping = map_to_cores(graph, load_target("loihi"))
    export = {
        "source": "runs/tiny/best.pt", "target": "loihi", "dt": 0.001, "convention": "snn2hw",
        "assumptions": ["dt = 0.001 s from the graph metadata"],
        "input_format": {"message_bits": 0, "unit": 1.0},
        "float_accuracy": 0.91, "float_rates": {"lif1": 0.1, "lif2": 0.05},
        "quantization": {"layers": [
            {"name": "lif1", "nir_type": "LIF", "shape": [16], "vth": 60, "du": 4095,
             "dv": 400, "weight_exps": [0], "max_weight": 118, "zero_weight_fraction": 0.02,
             "limited_by": "weights"}]},
        "resources": mapping.to_dict(),
    }
    compare = {
        "backends": ["float", "torch-int", "event"], "samples": 6,
        "agreement": {"torch-int": {"lif1": 1.0, "lif2": 1.0},
                      "event": {"lif1": 1.0, "lif2": 1.0}},
        "accuracy": {"torch-int": 0.83, "event": 0.83, "float": 0.86},
        "wall_s": {"torch-int": 0.2, "event": 0.1, "float": 0.01},
        "samples_per_s": {"torch-int": 30.0, "event": 60.0, "float": 600.0},
        "integer_backends_equal": True, "divergences": [],
        "float_agreement": {"lif1": 0.97, "lif2": 0.99},
    }
    e, c = folder / "export.json", folder / "compare.json"
    e.write_text(json.dumps(export))
    c.write_text(json.dumps(compare))
    return e, c


def test_full_report_from_a_real_event_run(tmp_path, pipeline) -> None:
    g, run, reps = pipeline
    exp, cmp_ = write_fake_artifacts(tmp_path, g)
    index = write_report(tmp_path, export_json=exp, compare_json=cmp_, energy=reps, graph=g,
                         run=run)
    assert index == tmp_path / "report" / "index.html"
    folder = index.parent
    pngs = {p.name for p in folder.glob("*.png")}
    assert {"raster.png", "rates.png", "synops.png", "energy_breakdown.png",
            "accuracy.png"} <= pngs
    assert not list(folder.glob(".*.tmp"))  # atomic writes left nothing behind
    for p in folder.glob("*.png"):
        assert p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and p.stat().st_size > 2000
    page = index.read_text(encoding="utf-8")
    md = (folder / "README.md").read_text(encoding="utf-8")
    check_refs(index)
    assert page.count("data:image/png;base64,") == len(pngs)  # self-contained
    for text in ("Accuracy: float versus quantized", "Backend comparison", "Spiking activity",
                 "Energy and latency", "Resources", "Quantization", "What you are looking at",
                 "Target loihi2", "No per-operation energy is published for loihi2",
                 "pre-silicon", "modelled", "measured"):
        assert text in page and text in md, text
    assert "not run" not in md  # every input was given
    assert "0.9100" in md and "0.8300" in md  # float vs quantized accuracies
    # the same tables in both renderings
    assert md.count("\n|---") == page.count("<table>")


def test_missing_inputs_say_not_run(tmp_path, pipeline) -> None:
    g, run, _ = pipeline
    index = write_report(tmp_path, export_json=tmp_path / "nope" / "export.json",
                         compare_json=None, energy=None, graph=g, run=run)
    md = (index.parent / "README.md").read_text(encoding="utf-8")
    check_refs(index)
    sections = md.split("\n## ")
    by_title = {s.splitlines()[0]: s for s in sections[1:]}
    for title in ("Accuracy: float versus quantized", "Backend comparison",
                  "Energy and latency", "Resources", "Quantization"):
        assert "not run" in by_title[title], title
    assert "does not exist" in by_title["Resources"]
    assert (index.parent / "raster.png").is_file()  # what was given is still plotted


def test_report_with_nothing_given(tmp_path) -> None:
    index = write_report(tmp_path)
    check_refs(index)
    md = (index.parent / "README.md").read_text(encoding="utf-8")
    assert md.count("not run") >= 5
    assert not list(index.parent.glob("*.png"))


def test_energy_only_report_uses_the_estimate_for_activity(tmp_path, pipeline) -> None:
    _, _, reps = pipeline
    index = write_report(tmp_path, energy=reps[0])
    check_refs(index)
    folder = index.parent
    assert (folder / "synops.png").is_file() and (folder / "energy_breakdown.png").is_file()
    md = (folder / "README.md").read_text(encoding="utf-8")
    assert "Spike raster not run" in md


def test_corrupt_json_is_an_error(tmp_path) -> None:
    bad = tmp_path / "compare.json"
    bad.write_text("{not json")
    with pytest.raises(Snn2hwError, match="compare.json"):
        write_report(tmp_path, compare_json=bad)


def test_an_output_folder_named_report_is_not_nested(tmp_path) -> None:
    path = write_report(tmp_path / "report")
    assert path == tmp_path / "report" / "index.html"
    assert not (tmp_path / "report" / "report").exists()
    assert write_report(tmp_path / "elsewhere") == tmp_path / "elsewhere" / "report" / "index.html"
