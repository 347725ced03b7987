"""The integer ONNX writer (snn2hw.exporters.onnx_int): the shift, decay, wrap and clip
semantics pinned against docs/qgraph.md on single steps of the raw model, the model file
(checker, metadata, I/O names), the documented driving loop, and refusals. Bit-for-bit runs
against torch integer mode are in tests/backends/test_onnx_runtime.py."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx_graphs import (
    assert_onnx_matches_torch_int,
    binary,
    dense_two_layer_graph,
    make_graph,
    recurrent_graph,
    residual_graph,
)
from qgraph_builders import dense, lif

from snn2hw.backends.torch_int import run as torch_int_run
from snn2hw.common.errors import ConfigError, GraphError
from snn2hw.exporters.onnx_int import (
    MIN_OPSET,
    STEP_FORMAT,
    check_opset,
    export_qgraph_onnx,
)
from snn2hw.quant.qgraph import InputNode


def step_session(graph, tmp_path):
    """A raw onnxruntime session on the exported step model, for driving single steps."""
    path = tmp_path / "one.onnx"
    export_qgraph_onnx(graph, path)
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])


def zero_feed(sess, batch=1):
    return {i.name: np.zeros((batch, *i.shape[1:]), np.int64) for i in sess.get_inputs()}


def test_opset_13_and_newer_give_the_same_spikes(tmp_path):
    g = residual_graph()
    x = binary(np.random.default_rng(16), (8, 3, 8), p=0.6)
    for opset in (13, 21):
        assert_onnx_matches_torch_int(g, x, tmp_path, opset=opset)


def test_floor_shift_of_negative_sum_acc_minus3_exp_minus1_is_minus2(tmp_path):
    g = make_graph([InputNode("x", (1,), message_bits=2), dense("d", [[-1]], weight_exp=-1),
                    lif("L", 1)], [("x", "d"), ("d", "L")], "L")
    sess = step_session(g, tmp_path)
    feed = zero_feed(sess)
    feed["x.s_prev"] = np.array([[3]])  # acc = -1 * 3 = -3; floor(-3 / 2) = -2 (rtz: -1)
    u = sess.run(["L.u_next"], feed)[0]
    assert u.tolist() == [[-2 * 64]]  # du=4095: u = a << 6


def test_floor_shift_matches_numpy_for_every_negative_and_positive_sum(tmp_path):
    w = [[-1], [-3], [-7], [1], [5]]  # mixed, 8 bits: k = 1 -> [-2, -4, -8, 0, 4]
    g = make_graph([InputNode("x", (1,), message_bits=4), dense("d", w, weight_exp=-2),
                    lif("L", 5)], [("x", "d"), ("d", "L")], "L")
    sess = step_session(g, tmp_path)
    xs = np.arange(16)
    feed = zero_feed(sess, batch=16)
    feed["x.s_prev"] = xs[:, None]
    a = sess.run(["L.u_next"], feed)[0] // 64
    w_prep = np.array([-2, -4, -8, 0, 4])
    np.testing.assert_array_equal(a, (xs[:, None] * w_prep[None, :]) >> 2)  # numpy >>: floor
    assert a[3].tolist() == [-2, -3, -6, 0, 3]  # -6/4 -> -2, -12/4 -> -3, -24/4 -> -6


def test_decay_rounds_toward_zero_rtz_minus5_times_4095(tmp_path):
    # u = -5, du = 0: rtz(-5 * 4095, 12) = -(20475 >> 12) = -4 (a floor would give -5);
    # v = -5, dv = 1: rtz(-5 * 4095, 12) + u_new = -4 + -4.
    g = make_graph([InputNode("x", (1,)), dense("d", [[1], [1]]), lif("L", 2, du=0, dv=1)],
                   [("x", "d"), ("d", "L")], "L")
    sess = step_session(g, tmp_path)
    feed = zero_feed(sess)
    feed["L.u"] = np.array([[-5, 5]])
    feed["L.v"] = np.array([[-5, 5]])
    u, v = sess.run(["L.u_next", "L.v_next"], feed)
    assert u.tolist() == [[-4, 4]]
    assert v.tolist() == [[-8, 8]]


def test_u_wrap_keeps_plus_2_23_and_v_clips(tmp_path):
    g = make_graph([InputNode("x", (1,)), dense("d", [[1]] * 4), lif("L", 4, du=-1, dv=0)],
                   [("x", "d"), ("d", "L")], "L")
    sess = step_session(g, tmp_path)
    feed = zero_feed(sess)
    feed["L.u"] = np.array([[2**23, 2**23 + 1, -(2**23) + 1, -(2**23)]])
    feed["L.v"] = np.array([[2**23, 0, -(2**24), 0]])
    u, v = sess.run(["L.u_next", "L.v_next"], feed)
    # > 2^23 wraps down, exactly +2^23 is kept, <= -2^23 wraps up (so -2^23 -> +2^23)
    assert u.tolist() == [[2**23, -(2**23) + 1, -(2**23) + 1, 2**23]]
    # v = v + u, clipped to +-(2^23 - 1); vth << 6 < 2^23 - 1 so the first one spikes
    assert v.tolist() == [[0, -(2**23) + 1, -(2**23) + 1, 0]]


def test_checker_and_metadata(tmp_path):
    g = recurrent_graph()
    path = tmp_path / "m.onnx"
    info = export_qgraph_onnx(g, path, opset=17)
    model = onnx.load(path)
    onnx.checker.check_model(model, full_check=True)
    assert model.opset_import[0].version == 17
    meta = {p.key: p.value for p in model.metadata_props}
    assert meta["format"] == STEP_FORMAT and meta["version"] == "1"
    assert int(meta["num_steps"]) == g.num_steps and int(meta["depth"]) == g.depth()
    assert float(meta["dt"]) == g.dt and meta["target"] == "loihi"
    assert json.loads(meta["node_names"]) == list(g.nodes)
    assert json.loads(meta["lif_nodes"]) == ["h", "o"]
    assert json.loads(meta["outputs"]) == {"out": "o"}
    assert json.loads(meta["state"]) == info.state
    names_in = [i.name for i in model.graph.input]
    names_out = [o.name for o in model.graph.output]
    assert names_in == ["x", "h.u", "h.v", "o.u", "o.v", "x.s_prev", "h.s_prev", "o.s_prev"]
    assert names_out == ["h.u_next", "h.v_next", "h.s", "o.u_next", "o.v_next", "o.s", "x.s"]
    for vi in [*model.graph.input, *model.graph.output]:
        assert vi.type.tensor_type.elem_type == onnx.TensorProto.INT64
        assert vi.type.tensor_type.shape.dim[0].dim_param == "B"
    assert [p.name for p in tmp_path.iterdir()] == ["m.onnx"]  # no temp file left behind


def test_the_driving_loop_in_docs_onnx_md_runs_and_matches(tmp_path, monkeypatch):
    doc = (Path(__file__).parents[2] / "docs" / "onnx.md").read_text()
    code = doc.split("```python\n", 1)[1].split("```", 1)[0]
    assert len(code.strip().splitlines()) <= 20
    g = recurrent_graph()
    monkeypatch.chdir(tmp_path)
    export_qgraph_onnx(g, "net.step.onnx")
    frames = binary(np.random.default_rng(18), (12, 4, 20))
    ns = {"frames": frames}
    exec(compile(code, "docs/onnx.md", "exec"), ns)
    ref = torch_int_run(g, frames).spikes
    for name in ref:
        np.testing.assert_array_equal(np.stack(ns["spikes"][name]), ref[name])


def test_unsupported_node_kind_is_named(tmp_path):
    @dataclass
    class DelayNode:
        name: str
        kind: str = "delay"

    g = recurrent_graph()
    g.nodes["dly"] = DelayNode("dly")
    with pytest.raises(GraphError, match=r"ONNX export of node 'dly' \(delay\) is not supported;"
                                         r" supported: input, dense, conv"):
        export_qgraph_onnx(g, tmp_path / "m.onnx")
    assert not (tmp_path / "m.onnx").exists()


def test_bad_export_arguments_are_refused(tmp_path):
    g = dense_two_layer_graph()
    with pytest.raises(ConfigError, match="opset 9 unsupported"):
        export_qgraph_onnx(g, tmp_path / "m.onnx", opset=9)
    with pytest.raises(ConfigError, match="linear_dtype 'int32' unknown"):
        export_qgraph_onnx(g, tmp_path / "m.onnx", linear_dtype="int32")
    wide = make_graph([InputNode("x", (3,), message_bits=12), dense("d", [[1, 2, 3]]),
                       lif("L", 1)], [("x", "d"), ("d", "L")], "L")
    with pytest.raises(GraphError, match="linear_dtype='float32' is not provably exact"):
        export_qgraph_onnx(wide, tmp_path / "m.onnx", linear_dtype="float32")  # inputs > 256
    assert not (tmp_path / "m.onnx").exists()
    assert check_opset(MIN_OPSET) == MIN_OPSET == 13
    with pytest.raises(ConfigError, match="opset 12 unsupported"):
        check_opset(12)


def test_the_writer_imports_neither_torch_nor_onnxruntime_nor_a_backend():
    # The writer is a lower layer than the backends and the float path (module doc).
    import subprocess
    import sys

    code = ("import sys, snn2hw.exporters.onnx_int; "
            "bad = [m for m in sys.modules if m in ('torch', 'onnxruntime') "
            "or m.startswith('snn2hw.backends')]; print(bad)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.strip()
    assert out == "[]"
