"""Acceptance: `snn2hw export --target onnx` on a trained model writes an integer ONNX step
model whose spikes equal torch integer mode's on the test samples, and a float ONNX model
equal to the float path; `compare` and `simulate` accept the onnx backend."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import torch
from click.testing import CliRunner

from snn2hw.cli import main
from snn2hw.common.examples import examples_dir
from snn2hw.nir import NIRNet, read_nir, resolve_timing
from snn2hw.pipeline.compare import compare
from snn2hw.pipeline.simulate import graph_samples
from snn2hw.quant.qgraph import QGraph
from snn2hw.training.config import load_config
from snn2hw.training.train import train

EXAMPLES = examples_dir()


def test_onnx_export_of_a_trained_conv_net_matches_torch_int_and_float(tmp_path):
    cfg = load_config(EXAMPLES / "digits_conv.toml")
    cfg["train"]["epochs"] = 1
    cfg["experiment"]["device"] = "cpu"
    ck = train(cfg, out_dir=tmp_path / "run", progress=False).best_checkpoint
    out = tmp_path / "onnx"
    r = CliRunner().invoke(main, ["export", str(ck), "--target", "onnx", "-o", str(out),
                                  "--no-report", "--json"])
    assert r.exit_code == 0, r.output
    report = json.loads(r.output)
    int_path, float_path = Path(report["onnx"]["integer_step_model"]), Path(
        report["onnx"]["float_model"])
    human = CliRunner().invoke(main, ["export", str(ck), "--target", "onnx", "-o", str(out),
                                      "--no-report"])
    assert human.exit_code == 0 and str(int_path) in human.output  # lists the .onnx files
    assert str(float_path) in human.output
    for p in (int_path, float_path):
        onnx.checker.check_model(onnx.load(str(p)), full_check=True)
    qg = out / "best.qgraph"
    cmp = compare(qg, ["torch-int", "onnx"], 60)
    assert cmp.integer_equal and cmp.accuracy["onnx"] == cmp.accuracy["torch-int"]
    # float model: onnxruntime == the float NIR path on the same test frames
    g = QGraph.load(qg)
    frames = graph_samples(g, 8).frames
    nir_graph = read_nir(out / "best.nir")
    dt, conv, _ = resolve_timing(nir_graph)
    with torch.no_grad():
        ref = NIRNet(nir_graph, dt, conv).eval()(frames).numpy()
    sess = ort.InferenceSession(str(float_path), providers=["CPUExecutionProvider"])
    got = sess.run(None, {sess.get_inputs()[0].name: frames.numpy()})[0]
    assert np.array_equal(got, ref)
