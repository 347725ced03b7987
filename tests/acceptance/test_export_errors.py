"""Acceptance: export refuses what the target cannot hold, with one line naming the layer."""

from __future__ import annotations

import numpy as np
from click.testing import CliRunner

from snn2hw.cli import main
from snn2hw.nir import write_nir
from snn2hw.nn.model import SpikingNet


def _nir(tmp_path, n_in: int):
    model = SpikingNet({"input_shape": [n_in], "layers": [{"type": "linear", "out": 4},
                                                           {"type": "neuron"}]})
    path = tmp_path / "wide.nir"
    write_nir(model, path, dt=1e-3)
    frames = (np.random.default_rng(0).random((4, 2, n_in)) < 0.1).astype(np.float32)
    np.save(tmp_path / "x.npy", frames)
    return path


def test_a_layer_over_the_fan_in_limit_ends_export_with_the_overflow(tmp_path):
    path = _nir(tmp_path, 5000)
    r = CliRunner().invoke(main, ["export", str(path), "--inputs", str(tmp_path / "x.npy"),
                                  "-o", str(tmp_path / "out"), "--no-report"])
    assert r.exit_code == 1 and r.output.startswith("error: ") and r.output.count("\n") == 1
    assert "lif1" in r.output and "4096" in r.output and "over by" in r.output
    assert not (tmp_path / "out" / "wide.qgraph").exists()  # nothing half-written


def test_unknown_target_lists_the_known_ones(tmp_path):
    path = _nir(tmp_path, 8)
    r = CliRunner().invoke(main, ["export", str(path), "--inputs", str(tmp_path / "x.npy"),
                                  "--target", "truenorth", "-o", str(tmp_path / "out")])
    assert r.exit_code == 1 and "loihi" in r.output and "loihi2" in r.output
    assert not (tmp_path / "out").exists()  # a failed export leaves no empty folder behind


def test_a_failed_export_into_an_existing_folder_keeps_the_folder(tmp_path):
    path = _nir(tmp_path, 8)
    (tmp_path / "out").mkdir()
    r = CliRunner().invoke(main, ["export", str(path), "--inputs", str(tmp_path / "x.npy"),
                                  "--target", "truenorth", "-o", str(tmp_path / "out")])
    assert r.exit_code == 1 and (tmp_path / "out").is_dir()
