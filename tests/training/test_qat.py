"""QAT quantizes in memory exactly as export does, writes its checkpoint once, and the
training package stays below pipeline/backends/chip in the layering."""

import ast
from pathlib import Path

import nir
import numpy as np
import pytest
import torch

import snn2hw.training.qat as qat_mod
from snn2hw.chip.targets import load_target
from snn2hw.pipeline.export import export
from snn2hw.quant.bounds import limits_from_formats
from snn2hw.quant.qgraph import QGraph
from snn2hw.training.checkpoint import load_checkpoint
from snn2hw.training.config import validate_config
from snn2hw.training.qgrid import grid_entries, quantize_model
from snn2hw.training.runtime import load_config_dataset
from snn2hw.training.train import train

_LOIHI = load_target("loihi")
# What pipeline.finetune passes: the target's formats and chip limits, as export uses them.
LOIHI_RULES = {"formats": _LOIHI.number_formats,
               "chip_limits": limits_from_formats(_LOIHI.raw["formats"])}

MLP_NORM = {  # SRM neurons and a norm folded into the first weights
    "experiment": {"name": "qat_mlp", "seed": 0, "device": "cpu"},
    "data": {"dataset": "digits", "batch_size": 64},
    "model": {
        "neuron": {"kind": "srm", "tau_syn": 2.0, "tau_mem": 8.0, "threshold": 1.0},
        "layers": [
            {"type": "flatten"},
            {"type": "linear", "out": 32, "bias": False},
            {"type": "norm"},
            {"type": "neuron"},
            {"type": "linear", "out": 10},
            {"type": "neuron"},
        ],
    },
    "train": {"epochs": 1, "num_steps": 4, "lr": 0.005},
}
CONV = {
    "experiment": {"name": "qat_conv", "seed": 0, "device": "cpu"},
    "data": {"dataset": "digits", "batch_size": 64},
    "model": {
        "layers": [
            {"type": "conv", "out": 4, "kernel": 3, "padding": 1},
            {"type": "neuron"},
            {"type": "sumpool", "kernel": 2},
            {"type": "flatten"},
            {"type": "linear", "out": 10},
            {"type": "neuron"},
        ]
    },
    "train": {"epochs": 1, "num_steps": 4, "lr": 0.005},
}


@pytest.fixture(scope="module", params=[MLP_NORM, CONV], ids=["mlp_norm", "conv"])
def trained(request, tmp_path_factory):
    out = tmp_path_factory.mktemp(request.param["experiment"]["name"])
    return train(validate_config(request.param), out_dir=out, progress=False).checkpoint


def _grid_from_export_files(exp, model):
    """The grid as the old QAT read it back from export's NIR file and report."""
    graph = nir.read(str(exp.nir_path))
    meta = {name: getattr(node, "metadata", {}) or {} for name, node in graph.nodes.items()}
    rows = {}
    for layer in exp.report["quantization"]["layers"]:
        for path in layer["paths"]:
            mod = meta.get(path["weighted"], {}).get("snn2hw_layer")
            mod = mod.decode() if isinstance(mod, bytes) else mod
            if mod:
                rows[f"{mod}.weight"] = torch.tensor(path["row_factor"], dtype=torch.float32)
    norm = getattr(model.layers, "2", None)
    if norm is not None and type(norm).__name__ == "TemporalNorm":
        rows["layers.1.weight"] = rows["layers.1.weight"] * norm.affine()[0].detach().float()
    return rows


def test_qat_grid_equals_export_grid(trained, tmp_path):
    """Per layer: weight exponents, row factors, thresholds, decays, biases, integer weights."""
    exp = export(trained, "loihi", tmp_path / "export")
    ck = load_checkpoint(trained)
    cfg = validate_config(ck.config)
    model = ck.build_model().eval()
    mq = quantize_model(model, ck.arch, cfg, load_config_dataset(cfg), target="loihi",
                        num_steps=int(ck.metrics["num_steps"]), **LOIHI_RULES)
    ours = mq.result.to_dict()["layers"]
    theirs = exp.report["quantization"]["layers"]
    assert [lr["name"] for lr in ours] == [lr["name"] for lr in theirs] and ours
    for a, b in zip(ours, theirs, strict=True):
        for key in ("vth", "du", "dv", "weight_exps", "max_weight", "limited_by", "paths"):
            assert a[key] == b[key], (a["name"], key)
    assert mq.result.input_scale == exp.report["quantization"]["input_scale"]
    qg = QGraph.load(exp.qgraph_path)
    assert set(mq.result.graph.nodes) == set(qg.nodes)
    for name, node in qg.nodes.items():
        mine = mq.result.graph.nodes[name]
        for key, val in vars(node).items():
            other = getattr(mine, key)
            if isinstance(val, np.ndarray):
                assert np.array_equal(val, other), (name, key)
            else:
                assert val == other, (name, key)
    expected = _grid_from_export_files(exp, model)
    assert {g.param for g in mq.grid} == set(expected)
    for g in mq.grid:
        assert torch.equal(g.row_factor, expected[g.param]), g.param


def test_grid_entries_skip_nodes_without_a_module(trained):
    ck = load_checkpoint(trained)
    cfg = validate_config(ck.config)
    model = ck.build_model().eval()
    mq = quantize_model(model, ck.arch, cfg, load_config_dataset(cfg), target="loihi",
                        num_steps=int(ck.metrics["num_steps"]), **LOIHI_RULES)
    for node in mq.graph.nodes.values():
        if isinstance(node.metadata, dict):
            node.metadata.pop("snn2hw_layer", None)
    assert grid_entries(mq.result, mq.graph, model) == []


def test_finetune_runs_no_export_and_writes_its_checkpoint_once(trained, tmp_path, monkeypatch):
    import snn2hw.pipeline.export as export_mod

    def no_export(*a, **k):
        raise AssertionError("QAT must not run the export pipeline")

    monkeypatch.setattr(export_mod, "export", no_export)
    writes = []
    real_save = qat_mod.save_checkpoint
    monkeypatch.setattr(qat_mod, "save_checkpoint",
                        lambda p, ck: (writes.append(Path(p)), real_save(p, ck)))
    calls = []

    def int_acc(path, target, samples):
        calls.append((Path(path), target, samples, Path(path).exists()))
        return 0.5

    out = tmp_path / "qat.pt"
    res = qat_mod.finetune(trained, "loihi", out, epochs=2, progress=False,
                           int_eval_samples=7, integer_accuracy=int_acc)
    assert writes == [out]
    assert calls == [(Path(trained), "loihi", 7, True), (out, "loihi", 7, True)]
    assert res.ptq_accuracy == res.qat_accuracy == 0.5
    assert [h["epoch"] for h in res.history] == [1, 2]
    assert all(np.isfinite(h["loss"]) for h in res.history)
    meta = load_checkpoint(out).metrics["qat"]
    assert meta["target"] == "loihi" and meta["history"] == res.history


def test_finetune_without_integer_accuracy_reports_nan(trained, tmp_path):
    res = qat_mod.finetune(trained, "loihi", tmp_path / "q.pt", epochs=1, progress=False)
    assert np.isnan(res.ptq_accuracy) and np.isnan(res.qat_accuracy)
    assert 0.0 <= res.float_accuracy <= 1.0 and (tmp_path / "q.pt").is_file()


FORBIDDEN = ("snn2hw.backends", "snn2hw.pipeline", "snn2hw.chip", "snn2hw.reporting",
             "snn2hw.exporters", "snn2hw.cli")


def test_training_imports_only_lower_layers():
    root = Path(qat_mod.__file__).parent
    for path in sorted(root.glob("*.py")):
        tree = ast.parse(path.read_text())
        assert ast.get_docstring(tree), f"{path.name}: module docstring"
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            for name in names:
                assert not name.startswith(FORBIDDEN), f"{path.name} imports {name}"
        assert len(path.read_text().splitlines()) <= 500, path.name


def test_cli_finetune_reports_integer_accuracies(trained, tmp_path):
    import json

    from click.testing import CliRunner

    from snn2hw.cli import main

    out = tmp_path / "qat.pt"
    r = CliRunner().invoke(main, ["finetune", str(trained), "--target", "loihi", "-o", str(out),
                                  "--epochs", "1", "--device", "cpu", "--quiet", "--json"])
    assert r.exit_code == 0, r.output
    data = json.loads(r.output)
    assert 0.0 < data["ptq_accuracy"] <= 1.0 and 0.0 < data["qat_accuracy"] <= 1.0
    assert load_checkpoint(out).metrics["qat"]["epochs"] == 1
