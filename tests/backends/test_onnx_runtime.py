"""The onnxruntime backend (snn2hw.backends.onnx_runtime): the integer ONNX model run by
onnxruntime equals torch integer mode bit for bit (every LIF, every step, u and v
included), as a step model in the runner's time loop and as a Scan model (also under the
ONNX reference evaluator); the module-level ``run`` like the other backends; refusals."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
import torch
from onnx_graphs import (
    assert_onnx_matches_torch_int,
    binary,
    conv_graph,
    dense_two_layer_graph,
    make_graph,
    recurrent_graph,
    residual_graph,
)
from qgraph_builders import VTH_MAX, dense, lif

from snn2hw.backends import onnx_runtime
from snn2hw.backends.onnx_runtime import OnnxIntRunner
from snn2hw.backends.torch_int import run as torch_int_run
from snn2hw.common.errors import GraphError
from snn2hw.exporters.onnx_int import SCAN_FORMAT, export_qgraph_onnx
from snn2hw.quant.qgraph import ConvNode, InputNode


@pytest.mark.parametrize("linear_dtype", ["auto", "int64", "float64"])
def test_dense_two_layer_matches_torch_int(tmp_path, linear_dtype):
    g = dense_two_layer_graph()
    x = np.random.default_rng(10).integers(0, 16, (10, 7, 12))
    info, _, ref = assert_onnx_matches_torch_int(g, x, tmp_path, linear_dtype=linear_dtype,
                                                 min_spikes=50)
    assert set(info.linear_dtypes.values()) == (
        {"float32"} if linear_dtype == "auto" else {linear_dtype}
    )
    assert ref.spikes["o"].sum() > 5


@pytest.mark.parametrize("linear_dtype", ["auto", "int64"])
def test_conv_sumpool_flatten_dense_matches_torch_int(tmp_path, linear_dtype):
    g = conv_graph()
    x = np.random.default_rng(11).integers(0, 8, (5, 3, 2, 9, 9))
    info, _, ref = assert_onnx_matches_torch_int(g, x, tmp_path, min_spikes=50,
                                                 linear_dtype=linear_dtype)
    assert all(ref.spikes[k].sum() > 0 for k in ("L1", "L2", "L3"))
    assert set(info.linear_dtypes) == {"c1", "d", "c2"}


def test_conv_wraps_to_24_bits_like_torch_int(tmp_path):
    # 12-bit payloads, weight_exp=7: partial sums far beyond 2^23 (float64 path), then wrap24
    rng = np.random.default_rng(12)
    w = rng.integers(-256, 256, (2, 1, 3, 3))
    g = make_graph(
        [InputNode("x", (1, 5, 5), message_bits=12),
         ConvNode("c", w, (1, 5, 5), weight_exp=7, padding=(1, 1)),
         lif("L", (2, 5, 5), du=4095, dv=4095, vth=1000)],
        [("x", "c"), ("c", "L")], "L", 3)
    x = rng.integers(0, 4096, (3, 4, 1, 5, 5))
    info, got, _ = assert_onnx_matches_torch_int(g, x, tmp_path)
    assert info.linear_dtypes == {"c": "float64"}
    raw = torch.nn.functional.conv2d(torch.tensor(x[0], dtype=torch.float64),
                                     torch.tensor(w, dtype=torch.float64), padding=1) * 2**7
    assert raw.abs().max() > 2**26  # the wrap is exercised, not just present
    assert np.abs(got.u["L"][1]).max() <= 2**23 * 64  # wrap24(conv) << 6, one u correction


def test_recurrent_graph_matches_torch_int(tmp_path):
    g = recurrent_graph()
    x = binary(np.random.default_rng(13), (12, 8, 20))
    assert_onnx_matches_torch_int(g, x, tmp_path, num_steps=20, min_spikes=100)


def test_residual_graph_matches_torch_int(tmp_path):
    g = residual_graph()
    x = binary(np.random.default_rng(14), (8, 6, 8), p=0.6)
    _, _, ref = assert_onnx_matches_torch_int(g, x, tmp_path, min_spikes=50)
    assert all(ref.spikes[k].sum() > 0 for k in ("a", "b", "c"))


def test_wrap_and_saturation_edges_match_torch_int(tmp_path):
    # du=-1 (no current decay) and big graded drive walk u across +-2^23 (wrap); dv=0 lets
    # v pile up into the +-(2^23 - 1) clip; vth near the top makes spikes rare but present.
    rng = np.random.default_rng(15)
    g = make_graph(
        [InputNode("x", (6,), message_bits=8),
         dense("d", rng.choice([-255, -253, 251, 255], (8, 6)), weight_exp=3),
         lif("L", 8, du=-1, dv=0, vth=VTH_MAX - 3, bias_mant=-4096, bias_exp=7)],
        [("x", "d"), ("d", "L")], "L", 40)
    x = rng.integers(0, 256, (40, 4, 6))
    _, got, _ = assert_onnx_matches_torch_int(g, x, tmp_path)
    u, v = got.u["L"], got.v["L"]
    assert u.max() > 2**23 - 2**21 and u.min() < -(2**23) + 2**21  # near both wrap edges
    assert v.min() == -(2**23 - 1) and v.max() > 2**22  # negative saturation reached


def test_scan_time_loop_model_matches_torch_int_in_onnxruntime_and_onnx_reference(tmp_path):
    # The Scan model wraps the same step; the ONNX reference evaluator (the spec's own
    # executable semantics, independent of onnxruntime's kernels) must agree as well.
    from onnx.reference import ReferenceEvaluator

    rng = np.random.default_rng(17)
    cases = [(conv_graph(), rng.integers(0, 8, (5, 2, 2, 9, 9))),
             (recurrent_graph(), binary(rng, (12, 3, 20)))]
    for g, x in cases:
        path = tmp_path / "scan.onnx"
        info = export_qgraph_onnx(g, path, time_loop=True)
        assert info.format == SCAN_FORMAT and list(info.inputs) == ["frames"]
        runner = OnnxIntRunner(path)
        n = runner.default_num_steps()
        for steps in (None, 3, n + 4):  # default, fewer steps than frames, trailing zeros
            ref = torch_int_run(g, x, steps).spikes
            got = runner.run(x, steps)
            for name in ref:
                assert got[name].dtype == np.uint8
                np.testing.assert_array_equal(got[name], ref[name], err_msg=name)
        frames = np.zeros((n, *x.shape[1:]), np.int64)
        frames[: len(x)] = x
        out = ReferenceEvaluator(onnx.load(path)).run(None, {"frames": frames})
        ref = torch_int_run(g, x).spikes
        for name, o in zip(info.outputs, out, strict=True):
            np.testing.assert_array_equal(o, ref[name.removesuffix(".spikes")], err_msg=name)


def test_default_num_steps_is_num_steps_plus_depth(tmp_path):
    g = dense_two_layer_graph()
    export_qgraph_onnx(g, tmp_path / "m.onnx")
    runner = OnnxIntRunner(tmp_path / "m.onnx")
    spikes = runner.run(np.zeros((3, 2, 12), np.int64))
    assert runner.default_num_steps() == g.num_steps + g.depth() == 12
    assert {k: v.shape for k, v in spikes.items()} == {"h": (12, 2, 24), "o": (12, 2, 6)}


def test_bad_inputs_are_refused(tmp_path):
    export_qgraph_onnx(dense_two_layer_graph(), tmp_path / "m.onnx")
    runner = OnnxIntRunner(tmp_path / "m.onnx")
    with pytest.raises(GraphError, match=r"must have shape \[F, B, 12\]"):
        runner.run(np.zeros((3, 2, 11), np.int64))
    with pytest.raises(GraphError, match=r"must lie in 0\.\.15"):
        runner.run(np.full((3, 2, 12), 16))
    with pytest.raises(GraphError, match="must be integers"):
        runner.run(np.zeros((3, 2, 12), np.float32))
    with pytest.raises(GraphError, match="num_steps must be >= 1"):
        runner.run(np.zeros((3, 2, 12), np.int64), 0)


def test_runner_refuses_a_missing_file_and_a_foreign_model(tmp_path):
    with pytest.raises(GraphError, match="ONNX model not found"):
        OnnxIntRunner(tmp_path / "none.onnx")
    node = onnx.helper.make_node("Identity", ["x"], ["y"])
    vi = onnx.helper.make_tensor_value_info
    g = onnx.helper.make_graph([node], "g", [vi("x", onnx.TensorProto.INT64, [1])],
                               [vi("y", onnx.TensorProto.INT64, [1])])
    onnx.save(onnx.helper.make_model(g, opset_imports=[onnx.helper.make_opsetid("", 17)],
                                     ir_version=8), tmp_path / "other.onnx")
    with pytest.raises(GraphError, match="not a snn2hw integer ONNX model"):
        OnnxIntRunner(tmp_path / "other.onnx")


def test_module_run_matches_torch_int_and_leaves_no_file(tmp_path, monkeypatch):
    # run(graph, inputs, num_steps, record_state), as the other integer backends take it.
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    g = residual_graph()
    x = binary(np.random.default_rng(19), (8, 3, 8), p=0.6)
    for steps, record in ((None, True), (5, False)):
        got = onnx_runtime.run(g, x, steps, record)
        ref = torch_int_run(g, x, steps, record_state=record)
        assert set(got.spikes) == set(ref.spikes)
        for name in ref.spikes:
            np.testing.assert_array_equal(got.spikes[name], ref.spikes[name], err_msg=name)
            if record:
                np.testing.assert_array_equal(got.u[name], ref.u[name])
                np.testing.assert_array_equal(got.v[name], ref.v[name])
        assert (got.u is None) == (not record) and got.wall_s > 0
    assert list(tmp_path.iterdir()) == []  # the temporary model is removed


def test_backend_imports_no_other_backend():
    import subprocess
    import sys

    code = ("import sys, snn2hw.backends.onnx_runtime; "
            "print(sorted(m for m in sys.modules if m.startswith('snn2hw.') and m.split('.')[1] "
            "not in ('backends', 'exporters', 'quant', 'common') "
            "or m.startswith('snn2hw.backends.') and m not in "
            "('snn2hw.backends.onnx_runtime', 'snn2hw.backends.base') "
            "or m.startswith('snn2hw.exporters.') and m != 'snn2hw.exporters.onnx_int'))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.strip()
    assert out == "[]"
