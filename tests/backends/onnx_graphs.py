"""Quantized test graphs for the integer ONNX model, and the bit-for-bit check of that
model (run by onnxruntime) against torch integer mode. Shared by
tests/backends/test_onnx_runtime.py and tests/exporters/test_onnx_int.py (imported as a
plain module: pytest puts this folder on sys.path; tests/exporters/conftest.py does the
same for the exporter tests)."""

from __future__ import annotations

import numpy as np
from qgraph_builders import dense, lif
from qgraph_builders import make_graph as build_graph

from snn2hw.backends.onnx_runtime import OnnxIntRunner
from snn2hw.backends.torch_int import run as torch_int_run
from snn2hw.exporters.onnx_int import export_qgraph_onnx
from snn2hw.quant.qgraph import ConvNode, FlattenNode, InputNode, SumPoolNode


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
