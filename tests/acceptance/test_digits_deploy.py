"""Acceptance: snn2hw's own digits models (LIF MLP, SRM MLP, conv net) train, export for
loihi and run identically on Lava, the event simulator and torch integer mode.

Training is shortened to two epochs here (the point is the deployment path, not the
accuracy; full-length figures come from benchmarks/deploy_digits.py)."""

from __future__ import annotations

import pytest

from snn2hw.common.examples import examples_dir
from snn2hw.pipeline.compare import compare
from snn2hw.pipeline.export import export
from snn2hw.training.config import load_config
from snn2hw.training.train import train

pytestmark = pytest.mark.lava
EXAMPLES = examples_dir()


@pytest.mark.parametrize("name", ["digits_lif", "digits_srm", "digits_conv"])
def test_digits_model_is_identical_on_lava_event_and_torch_int(tmp_path, name):
    cfg = load_config(EXAMPLES / f"{name}.toml")
    cfg["train"]["epochs"] = 2
    cfg["experiment"]["device"] = "cpu"
    res = train(cfg, out_dir=tmp_path / "run", progress=False)
    # The SRM model's output layer loses spikes after quantization (measured, 64 calibration
    # samples: 'srm2' 890 float -> 593 integer spikes, -33 %; the fully trained model -21 %,
    # docs/deployment-check.md "Measured"): a real cost, accepted here and checked below.
    srm = name == "digits_srm"
    exp = export(res.best_checkpoint, "loihi", tmp_path / "out", calib_samples=64,
                 accept_deviation=srm)
    print(f"{name}: {exp.check.summary()}\n{exp.check.table()}")
    if srm:
        assert exp.check.passed or "output layer 'srm2'" in exp.check.failures[0]
    else:
        assert exp.check.passed, exp.check.error()  # the deployment check, default limits
    cmp = compare(exp.qgraph_path, ["float", "torch-int", "event", "lava"], 50,
                  energy_target="loihi")
    assert cmp.samples == 50
    assert cmp.integer_equal, cmp.divergences[0].describe()
    assert cmp.accuracy["lava"] == cmp.accuracy["event"] == cmp.accuracy["torch-int"]
    assert cmp.accuracy["event"] > 0.5
    # one table: modelled chip energy for the chip simulators, measured (or why not) for torch
    assert "modelled on loihi" in cmp.energy["lava"] and "modelled on loihi" in cmp.energy["event"]
    assert "measured" in cmp.energy["torch-int"] and "energy / inference" in cmp.table()
