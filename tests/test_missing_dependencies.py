"""A missing optional part gives one line naming it and the install command, exit code 1."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
from click.testing import CliRunner

sys.path.insert(0, str(Path(__file__).resolve().parent / "backends"))
from qgraph_builders import dense, lif, make_graph  # noqa: E402

import snn2hw.backends.lava as lava_backend  # noqa: E402
from snn2hw.cli import main  # noqa: E402
from snn2hw.compat.lava_py311 import INSTALL_HINT, LavaMissingError  # noqa: E402
from snn2hw.quant.qgraph import InputNode  # noqa: E402


def _saved(tmp_path: Path) -> Path:
    g = make_graph([InputNode("in", (4,)), dense("d", np.full((3, 4), 40)), lif("l", 3, vth=60)],
                   [("in", "d"), ("d", "l")])
    path = tmp_path / "g.qgraph"
    g.save(path)
    np.save(tmp_path / "x.npy", np.ones((4, 2, 4), np.int64))
    return path


def test_lava_missing_is_one_line_with_the_install_command(tmp_path, monkeypatch):
    def missing():
        raise LavaMissingError(INSTALL_HINT)

    monkeypatch.setattr(lava_backend, "import_lava", missing)
    path = _saved(tmp_path)
    r = CliRunner().invoke(main, ["simulate", str(path), "--backend", "lava",
                                  "--inputs", str(tmp_path / "x.npy")])
    assert r.exit_code == 1, r.output
    lines = [ln for ln in r.output.splitlines() if ln.strip()]
    assert len(lines) == 1 and "Lava is not installed" in lines[0]
    assert "snn2hw install-lava" in lines[0]
    assert "Traceback" not in r.output


def test_onnxruntime_missing_is_one_line(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # import fails as if not installed
    path = _saved(tmp_path)
    r = CliRunner().invoke(main, ["simulate", str(path), "--backend", "onnx",
                                  "--inputs", str(tmp_path / "x.npy")])
    assert r.exit_code == 1, r.output
    assert "pip install onnxruntime" in r.output and "Traceback" not in r.output
