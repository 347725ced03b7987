"""Acceptance: a digits model exported for the generic low-precision target
(``snn2hw/chip/targets/data/generic4.toml``: 4-bit weights, 16-bit saturating state,
subtractive reset) runs identically on torch-int, the event simulator and ONNX, and Lava's
Loihi models refuse it naming the formats they lack.

Training is shortened to two epochs (the point is the deployment path); the measured
figures are in docs/qgraph.md ("Number formats")."""

from __future__ import annotations

import pytest

from snn2hw.backends.base import UnsupportedFormatsError
from snn2hw.chip.targets import load_target
from snn2hw.common.examples import examples_dir
from snn2hw.pipeline.compare import compare
from snn2hw.pipeline.export import export
from snn2hw.quant.qgraph import DenseNode, QGraph
from snn2hw.training.config import load_config
from snn2hw.training.train import train

EXAMPLES = examples_dir()


def test_digits_on_the_generic_target(tmp_path) -> None:
    pytest.importorskip("onnxruntime")
    cfg = load_config(EXAMPLES / "digits_lif.toml")
    cfg["train"]["epochs"] = 2
    cfg["experiment"]["device"] = "cpu"
    cfg["model"]["neuron"]["reset"] = "subtract"  # the target subtracts: train with that
    res = train(cfg, out_dir=tmp_path / "run", progress=False)
    exp = export(res.best_checkpoint, "generic4", tmp_path / "out", reset="subtract",
                 calib_samples=64)
    g = QGraph.load(exp.qgraph_path)
    assert g.target == "generic4" and g.formats == load_target("generic4").number_formats
    for node in g.nodes.values():
        if isinstance(node, DenseNode):
            assert node.num_weight_bits == 4 and -8 <= node.weight.min() <= node.weight.max() <= 7
    assert all(n.vth <= 1023 for n in g.lif_nodes)
    cmp = compare(exp.qgraph_path, ["float", "torch-int", "event", "onnx"], 50)
    assert cmp.integer_equal, cmp.divergences[0].describe()
    assert cmp.accuracy["onnx"] == cmp.accuracy["event"] == cmp.accuracy["torch-int"] > 0.5
    with pytest.raises(UnsupportedFormatsError, match="u_bits 16: Lava's PyLifModelBitAcc"):
        compare(exp.qgraph_path, ["torch-int", "lava"], 5)
