"""ONNX export: the integer step model against torch integer mode (bit for bit, every LIF,
every step, u and v included), the shift semantics pinned against docs/qgraph.md, and the
float sequence model against the torch model it was traced from."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from qgraph_builders import VTH_MAX, dense, lif  # noqa: E402
from qgraph_builders import make_graph as build_graph  # noqa: E402

from snn2hw.backends.torch_int import run as torch_int_run
from snn2hw.common.errors import ConfigError, GraphError
from snn2hw.exporters.onnx import (
    SCAN_FORMAT,
    STEP_FORMAT,
    OnnxIntRunner,
    export_float_onnx,
    export_qgraph_onnx,
)
from snn2hw.quant.qgraph import (
    ConvNode,
    FlattenNode,
    InputNode,
    SumPoolNode,
)


# ----- graph-building helpers -----------------------------------------------------------------
def make_graph(nodes, edges, out, num_steps=6):
    return build_graph(nodes, edges, out, num_steps)


def assert_onnx_matches_torch_int(graph, x, tmp_path, *, num_steps=None, min_spikes=1,
                                  **export_kw):
    """Export, run both backends with state recording, compare every LIF bit for bit."""
    path = tmp_path / "step.onnx"
    info = export_qgraph_onnx(graph, path, **export_kw)
    got = OnnxIntRunner(path).run_full(x, num_steps, record_state=True)
    ref = torch_int_run(graph, x, num_steps, record_state=True)
    assert set(got.spikes) == {n.name for n in graph.lif_nodes}
    for name in got.spikes:
        assert got.spikes[name].dtype == np.uint8
        np.testing.assert_array_equal(got.spikes[name], ref.spikes[name], err_msg=name)
        np.testing.assert_array_equal(got.u[name], ref.u[name], err_msg=f"{name}.u")
        np.testing.assert_array_equal(got.v[name], ref.v[name], err_msg=f"{name}.v")
    total = sum(int(s.sum()) for s in ref.spikes.values())
    assert total >= min_spikes, "test graph too quiet to compare anything"
    return info, got, ref


def step_session(graph, tmp_path):
    """A raw onnxruntime session on the exported step model, for driving single steps."""
    path = tmp_path / "one.onnx"
    export_qgraph_onnx(graph, path)
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])


def zero_feed(sess, batch=1):
    return {i.name: np.zeros((batch, *i.shape[1:]), np.int64) for i in sess.get_inputs()}


# ----- test graphs -----------------------------------------------------------------------------
def dense_two_layer_graph(seed=0):
    """Graded input, mixed-sign odd weights (truncation at 7 and 8 bits), negative and
    positive weight_exp, du < 4095, dv > 0, bias with bias_exp > 0."""
    rng = np.random.default_rng(seed)
    w1 = rng.integers(-120, 121, (24, 12)) | 1  # odd: every weight loses its LSB (mixed)
    w2 = rng.integers(-255, 256, (6, 24))
    nodes = [
        InputNode("x", (12,), message_bits=4),
        dense("d1", w1, weight_exp=-3, num_weight_bits=7),
        lif("h", 24, du=700, dv=120, vth=300, bias_mant=rng.integers(-300, 300, 24),
            bias_exp=rng.integers(0, 4, 24)),
        dense("d2", w2, weight_exp=2),
        lif("o", 6, du=0, dv=40, vth=2000, bias_mant=rng.integers(-100, 100, 6), bias_exp=3),
    ]
    return make_graph(nodes, [("x", "d1"), ("d1", "h"), ("h", "d2"), ("d2", "o")], "o", 10)


def conv_graph(seed=1):
    """conv (groups, stride, padding, dilation) -> LIF -> sumpool (padding) -> flatten ->
    dense -> LIF, plus a second path input -> sumpool -> conv into another LIF."""
    rng = np.random.default_rng(seed)
    c1 = ConvNode("c1", rng.integers(-90, 120, (4, 1, 3, 3)), (2, 9, 9), weight_exp=-1,
                  stride=(2, 1), padding=(1, 2), dilation=(1, 2), groups=2)  # -> (4, 5, 9)
    p1 = SumPoolNode("p1", (4, 5, 9), kernel_size=(2, 3), stride=(2, 2), padding=(1, 1))
    fl = FlattenNode("fl", (4, 3, 5))
    d = dense("d", rng.integers(-60, 90, (10, 60)), weight_exp=1)
    p0 = SumPoolNode("p0", (2, 9, 9), kernel_size=(2, 2), stride=(1, 1))  # -> (2, 8, 8)
    c2 = ConvNode("c2", rng.integers(-40, 50, (3, 2, 3, 3)), (2, 8, 8), weight_exp=2,
                  padding=(1, 1))  # -> (3, 8, 8)
    nodes = [
        InputNode("x", (2, 9, 9), message_bits=3),
        c1, lif("L1", (4, 5, 9), du=2000, dv=500, vth=200),
        p1, fl, d, lif("L2", 10, du=3000, dv=100, vth=150),
        p0, c2, lif("L3", (3, 8, 8), du=4095, dv=1000, vth=900),
    ]
    edges = [("x", "c1"), ("c1", "L1"), ("L1", "p1"), ("p1", "fl"), ("fl", "d"), ("d", "L2"),
             ("x", "p0"), ("p0", "c2"), ("c2", "L3")]
    return make_graph(nodes, edges, "L2", 5)


def recurrent_graph(seed=2):
    rng = np.random.default_rng(seed)
    nodes = [
        InputNode("x", (20,)),
        dense("d1", rng.integers(-40, 60, (16, 20)) * 2),
        lif("h", 16, du=600, dv=300, vth=60, bias_mant=rng.integers(-50, 50, 16)),
        dense("drec", rng.integers(-30, 30, (16, 16)) * 2 + 1, weight_exp=-1),
        dense("d2", rng.integers(-60, 80, (5, 16)) * 2, weight_exp=1),
        lif("o", 5, du=100, dv=800, vth=40),
        dense("dback", rng.integers(-50, 50, (16, 5)), weight_exp=0),  # o -> h: earlier layer
    ]
    edges = [("x", "d1"), ("d1", "h"), ("h", "drec"), ("drec", "h"), ("h", "d2"), ("d2", "o"),
             ("o", "dback"), ("dback", "h")]
    return make_graph(nodes, edges, "o", 12)


def residual_graph(seed=3):
    """Two and three paths into one LIF with different hop counts, an operator shared by
    two LIFs, and an operator-free (identity) path from the input."""
    rng = np.random.default_rng(seed)
    nodes = [
        InputNode("x", (8,)),
        dense("d1", rng.integers(-80, 120, (8, 8))),
        lif("a", 8, du=1000, dv=200, vth=40),
        dense("d2", rng.integers(-80, 120, (8, 8))),  # shared: feeds b and c
        lif("b", 8, du=3000, dv=600, vth=30),
        dense("d3", rng.integers(-100, 120, (8, 8)), weight_exp=-2),
        lif("c", 8, du=500, dv=50, vth=20),
    ]
    edges = [("x", "d1"), ("d1", "a"), ("a", "d2"), ("d2", "b"), ("d2", "c"), ("b", "d3"),
             ("d3", "c"), ("x", "c")]
    return make_graph(nodes, edges, "c", 8)


def binary(rng, shape, p=0.4):
    return (rng.random(shape) < p).astype(np.uint8)


# ----- integer step model == torch integer mode -------------------------------------------------
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


def test_opset_13_and_newer_give_the_same_spikes(tmp_path):
    g = residual_graph()
    x = binary(np.random.default_rng(16), (8, 3, 8), p=0.6)
    for opset in (13, 21):
        assert_onnx_matches_torch_int(g, x, tmp_path, opset=opset)


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


# ----- shift semantics pinned against docs/qgraph.md --------------------------------------------
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


# ----- model file -------------------------------------------------------------------------------
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


def test_default_num_steps_is_num_steps_plus_depth(tmp_path):
    g = dense_two_layer_graph()
    export_qgraph_onnx(g, tmp_path / "m.onnx")
    runner = OnnxIntRunner(tmp_path / "m.onnx")
    spikes = runner.run(np.zeros((3, 2, 12), np.int64))
    assert runner.default_num_steps() == g.num_steps + g.depth() == 12
    assert {k: v.shape for k, v in spikes.items()} == {"h": (12, 2, 24), "o": (12, 2, 6)}


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


def test_bad_arguments_and_inputs_are_refused(tmp_path):
    g = dense_two_layer_graph()
    with pytest.raises(ConfigError, match="opset 9 unsupported"):
        export_qgraph_onnx(g, tmp_path / "m.onnx", opset=9)
    with pytest.raises(ConfigError, match="linear_dtype 'int32' unknown"):
        export_qgraph_onnx(g, tmp_path / "m.onnx", linear_dtype="int32")
    wide = make_graph([InputNode("x", (3,), message_bits=12), dense("d", [[1, 2, 3]]),
                       lif("L", 1)], [("x", "d"), ("d", "L")], "L")
    with pytest.raises(GraphError, match="linear_dtype='float32' is not provably exact"):
        export_qgraph_onnx(wide, tmp_path / "m.onnx", linear_dtype="float32")  # inputs > 256
    export_qgraph_onnx(g, tmp_path / "m.onnx")
    runner = OnnxIntRunner(tmp_path / "m.onnx")
    with pytest.raises(GraphError, match=r"must have shape \[F, B, 12\]"):
        runner.run(np.zeros((3, 2, 11), np.int64))
    with pytest.raises(GraphError, match=r"must lie in 0\.\.15"):
        runner.run(np.full((3, 2, 12), 16))
    with pytest.raises(GraphError, match="must be integers"):
        runner.run(np.zeros((3, 2, 12), np.float32))


# ----- float export -----------------------------------------------------------------------------
def _float_check(net, x, tmp_path: Path, batch_other: int):
    def flags():
        return [(getattr(m, "fused", None), getattr(m, "fused_ok", None), "forward" in vars(m),
                 m.training) for m in net.modules()]

    before = flags()
    info = export_float_onnx(net, x, tmp_path / "f.onnx")
    onnx.checker.check_model(onnx.load(tmp_path / "f.onnx"), full_check=True)
    assert flags() == before  # fused neurons, patched sum pools, train mode all restored
    sess = ort.InferenceSession(str(tmp_path / "f.onnx"), providers=["CPUExecutionProvider"])
    total = 0
    for xx in (x, torch.rand(x.shape[0], batch_other, *x.shape[2:]) * 2):
        y = sess.run(["spikes"], {"x": xx.numpy()})[0]
        with torch.no_grad():
            ref = net(xx).numpy()
        assert y.shape == ref.shape
        np.testing.assert_array_equal(y, ref)  # spikes exactly, float32
        total += int(ref.sum())
    assert total > 0
    return info


def test_float_export_spikingnet_mlp_equals_torch(tmp_path):
    from snn2hw.nn.model import SpikingNet

    torch.manual_seed(0)
    net = SpikingNet({
        "input_shape": [20],
        "layers": [{"type": "linear", "out": 32}, {"type": "neuron", "beta": 0.85},
                   {"type": "linear", "out": 16},
                   {"type": "neuron", "kind": "cuba", "alpha": 0.6, "reset": "subtract"},
                   {"type": "linear", "out": 5}, {"type": "neuron"}],
    })
    info = _float_check(net, torch.rand(25, 4, 20) * 2, tmp_path, batch_other=9)
    assert info.inputs == {"x": [25, "B", 20]} and info.outputs == {"spikes": [25, "B", 5]}
    assert info.metadata["model"] == "SpikingNet"


def test_float_export_conv_sumpool_spikingnet_and_its_nir_import(tmp_path):
    # torch.onnx.export drops avg_pool2d's divisor_override (sum -> average); the exporter
    # reroutes sum pools through a ones-convolution. Checked on SpikingNet and NIRNet.
    from snn2hw.nir import NIRNet, get_convention
    from snn2hw.nir.export import to_nir
    from snn2hw.nn.model import SpikingNet

    torch.manual_seed(1)
    net = SpikingNet({
        "input_shape": [1, 8, 8],
        "layers": [{"type": "conv", "out": 4, "kernel": 3, "padding": 1}, {"type": "neuron"},
                   {"type": "sumpool", "kernel": 2}, {"type": "flatten"},
                   {"type": "linear", "out": 5}, {"type": "neuron", "threshold": 0.5}],
    })
    x = torch.rand(12, 3, 1, 8, 8) * 2
    _float_check(net, x, tmp_path, batch_other=5)
    nir_net = NIRNet(to_nir(net, dt=1e-3), 1e-3, get_convention("snn2hw"))
    info = _float_check(nir_net, x, tmp_path, batch_other=5)
    assert info.metadata["model"] == "NIRNet"
