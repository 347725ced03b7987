"""``snn2hw simulate --inputs``: user frames are checked against the graph's input and every
frame runs (the drain steps after it included)."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "backends"))
from qgraph_builders import dense, lif, make_graph  # noqa: E402

from snn2hw.cli import main  # noqa: E402
from snn2hw.common.errors import GraphError  # noqa: E402
from snn2hw.pipeline.simulate import integer_samples, simulate_artifact  # noqa: E402
from snn2hw.quant.inputs import check_integer_frames  # noqa: E402
from snn2hw.quant.qgraph import InputNode  # noqa: E402


def _graph(bits: int = 0):
    w = np.full((3, 4), 40, np.int64)
    g = make_graph([InputNode("in", (4,), message_bits=bits), dense("d", w), lif("l", 3, vth=60)],
                   [("in", "d"), ("d", "l")], num_steps=5)
    return g


@pytest.fixture
def saved(tmp_path: Path) -> Path:
    path = tmp_path / "g.qgraph"
    _graph().save(path)
    return path


def test_out_of_range_binary_frame_is_refused_naming_value_index_and_range(tmp_path, saved):
    x = np.zeros((6, 2, 4), np.int64)
    x[3, 1, 2] = 2
    np.save(tmp_path / "x.npy", x)
    r = CliRunner().invoke(main, ["simulate", str(saved), "--inputs", str(tmp_path / "x.npy")])
    assert r.exit_code != 0 and "Traceback" not in r.output
    assert "value 2 at index [3, 1, 2]" in r.output and "0..1" in r.output
    assert "--clip-inputs" in r.output


def test_clip_inputs_accepts_and_clips(tmp_path, saved):
    x = np.zeros((6, 2, 4), np.int64)
    x[:, :, 0] = 5
    np.save(tmp_path / "x.npy", x)
    smp = integer_samples(_graph(), tmp_path / "x.npy", None, clip=True)
    assert smp.ints.max() == 1 and smp.ints[:, :, 0].min() == 1


def test_non_integer_and_nan_values_are_refused_even_with_clip():
    with pytest.raises(GraphError, match=r"0\.5 at index \[0, 0, 1\]"):
        check_integer_frames(np.array([[[0, 0.5]]]), 0, clip=True)
    with pytest.raises(GraphError, match="nan"):
        check_integer_frames(np.array([[[np.nan, 1.0]]]), 8, clip=True)
    assert check_integer_frames(np.array([[[0, 255]]]), 8).tolist() == [[[0, 255]]]
    with pytest.raises(GraphError, match="value 256"):
        check_integer_frames(np.array([[[0, 256]]]), 8)


def test_frames_of_the_wrong_shape_are_refused(tmp_path, saved):
    np.save(tmp_path / "x.npy", np.zeros((6, 2, 5), np.int64))
    with pytest.raises(Exception, match=r"graph's input is \[4\]"):
        simulate_artifact(saved, "event", 2, inputs_file=str(tmp_path / "x.npy"))


def test_every_given_frame_runs_not_only_the_exported_steps(tmp_path, saved):
    """The graph was exported with 5 steps; 40 frames of input must all reach the output."""
    g = _graph()
    x = np.zeros((40, 1, 4), np.int64)
    x[30:] = 1  # input only after the exported T: silently dropped before
    np.save(tmp_path / "x.npy", x)
    res = simulate_artifact(saved, "event", 1, inputs_file=str(tmp_path / "x.npy"))
    assert res.layers["l"]["spikes_per_sample"] > 0
    assert g.num_steps == 5


def test_a_run_over_the_memory_budget_is_refused_before_allocating(tmp_path, saved,
                                                                   monkeypatch):
    from snn2hw.common.errors import ResourceError

    x = np.ones((40, 64, 4), np.int64)
    np.save(tmp_path / "x.npy", x)
    monkeypatch.setenv("SNN2HW_MEMORY_BUDGET", str(1000))  # 41 steps x 64 x 3 > 1000 bytes
    with pytest.raises(ResourceError, match=r"over the .* budget; use --samples 8 or fewer"):
        simulate_artifact(saved, "event", 64, inputs_file=str(tmp_path / "x.npy"))
    monkeypatch.setenv("SNN2HW_MEMORY_BUDGET", str(10**9))
    assert simulate_artifact(saved, "event", 64, inputs_file=str(tmp_path / "x.npy")).samples
