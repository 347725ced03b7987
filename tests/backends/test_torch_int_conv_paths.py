"""torch-int conv: the fast formulations are used only where they are provably exact.

Two choices are made per conv operator (snn2hw/backends/torch_int_ops.py, ConvOp):
the float type (float32 only when every partial sum is below 2^24 and every operand is at
most 256 in magnitude, else float64) and the formulation (the library ``conv2d`` only where
torch dispatches to a direct-sum backend, else unfold + GEMM). The graphs here sit just
below and just over the float32 bound; forcing float32 past it must give a wrong result
that the checks detect.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from qgraph_builders import lif, make_graph

from snn2hw.backends import torch_int_ops
from snn2hw.backends.torch_int import TorchIntNetwork
from snn2hw.quant.qgraph import ConvNode, InputNode


def _conv_graph(c_in: int, w_val: int = 255, message_bits: int = 8):
    """input (c_in, 2, 2) graded -> 1x1 conv with every weight ``w_val`` -> LIF."""
    w = np.full((1, c_in, 1, 1), w_val, np.int64)
    nodes = [InputNode("in", (c_in, 2, 2), message_bits=message_bits),
             ConvNode("c", w, (c_in, 2, 2)), lif("l", (1, 2, 2))]
    return make_graph(nodes, [("in", "c"), ("c", "l")])


def _reference(x: np.ndarray, w_val: int) -> np.ndarray:
    """wrap24(conv) of the 1x1 conv above in int64: [B, 1, 2, 2]."""
    acc = x.astype(np.int64).sum(axis=1, keepdims=True) * w_val
    return ((acc + 2**23) & (2**24 - 1)) - 2**23


def _odd_sum_input(batch: int, c_in: int) -> np.ndarray:
    """Values <= 255 whose channel sum is 65795: 255 * 65795 = 2^24 + 509 (odd, so no
    float32 holds it)."""
    x = np.full((batch, c_in, 2, 2), 255, np.uint8)
    x[:, 258:] = 0
    x[:, 258] = 5
    return x


# 258 * 255 * 255 = 16,776,450 < 2^24; 259 terms give 16,841,475 > 2^24.
def test_conv_uses_float32_just_below_the_bound_and_float64_just_over():
    below = TorchIntNetwork(_conv_graph(258))
    over = TorchIntNetwork(_conv_graph(259))
    assert below._ops["c"].acc_bound < 2**24 <= over._ops["c"].acc_bound
    assert below.op_dtypes["c"] == "float32"
    assert over.op_dtypes["c"] == "float64"


def test_conv_weight_over_256_takes_float64_even_with_a_small_bound():
    # bf16/TF32 operand rounding keeps integers only up to 256 exact. Loihi's formats stop
    # at [-256, 255]; a target with a wider stored range could pass 257 (built unvalidated).
    def dtype(w_val: int) -> torch.dtype:
        node = ConvNode("c", np.full((1, 2, 1, 1), w_val, np.int64), (2, 2, 2))
        return torch_int_ops.ConvOp(node, 1, torch.device("cpu")).dtype

    assert dtype(-256) == torch.float32
    assert dtype(257) == torch.float64
    assert dtype(-257) == torch.float64


@pytest.mark.parametrize("batch", [1, 16])
@pytest.mark.parametrize("direct", [True, False])
def test_conv_just_over_the_bound_is_exact_and_forced_float32_is_detectably_wrong(
        batch, direct, monkeypatch):
    op = TorchIntNetwork(_conv_graph(259))._ops["c"]
    monkeypatch.setattr(op, "_direct_ok", lambda xf: direct)
    x = _odd_sum_input(batch, 259)
    want = _reference(x, 255)
    assert int(want[0, 0, 0, 0]) == 509
    got = op(torch.from_numpy(x)).numpy()
    assert op.last_path == ("direct" if direct else "unfold")
    np.testing.assert_array_equal(got, want)
    # fault injection: the fast type past its bound loses the odd unit
    op.dtype = torch.float32
    op.w, op.w4 = op.w.float(), op.w4.float()
    bad = op(torch.from_numpy(x)).numpy()
    assert not np.array_equal(bad, want)


def _random_conv(seed: int, groups: int, stride: int, padding: int, dilation: int):
    rng = np.random.default_rng(seed)
    c_in, c_out = 4, 6
    w = rng.integers(-256, 256, (c_out, c_in // groups, 3, 3)).astype(np.int64)
    node = ConvNode("c", w, (c_in, 9, 9), weight_exp=-2, stride=(stride, stride),
                    padding=(padding, padding), dilation=(dilation, dilation), groups=groups)
    return node, rng


@pytest.mark.parametrize(("groups", "stride", "padding", "dilation"),
                         [(1, 1, 1, 1), (2, 2, 0, 1), (1, 1, 2, 2), (2, 1, 1, 2)])
@pytest.mark.parametrize("batch", [1, 16])
def test_direct_and_unfold_formulations_agree_with_int64_conv(batch, groups, stride,
                                                               padding, dilation):
    node, rng = _random_conv(7 + batch, groups, stride, padding, dilation)
    op = torch_int_ops.ConvOp(node, 1, torch.device("cpu"))
    x = torch.from_numpy((rng.random((batch, *node.input_shape)) < 0.3).astype(np.uint8))
    acc = torch.nn.functional.conv2d(x.double(), torch.from_numpy(node.weight).double(),
                                     None, node.stride, node.padding, node.dilation,
                                     node.groups).round().long()
    want = ((acc >> 2) + 2**23 & (2**24 - 1)) - 2**23  # float64 on tiny sums: exact
    outs = {}
    for direct in (True, False):
        op._direct_ok = (lambda xf, d=direct: d)
        outs[direct] = op(x)
        assert op.last_path == ("direct" if direct else "unfold")
    torch.testing.assert_close(outs[True], want, rtol=0, atol=0)
    torch.testing.assert_close(outs[False], want, rtol=0, atol=0)


def test_direct_conv_is_refused_off_cpu_and_on_non_direct_backends(monkeypatch):
    x = torch.zeros(16, 4, 9, 9)
    w = torch.zeros(6, 4, 3, 3)
    args = ((1, 1), (1, 1), (1, 1), 1)
    if torch.backends.mkldnn.is_available():  # oneDNN (direct) takes batch 16 on CPU
        assert torch_int_ops.conv_is_direct_sum(x, w, *args)
    meta = torch.empty(16, 4, 9, 9, device="meta")
    assert not torch_int_ops.conv_is_direct_sum(meta, w.to("meta"), *args)
    for backend in ("Cudnn", "NnpackSpatial", "Xnnpack2d", "Winograd3x3Depthwise"):
        monkeypatch.setattr(torch._C, "_select_conv_backend",
                            lambda *a, b=backend: f"_ConvBackend.{b}")
        assert not torch_int_ops.conv_is_direct_sum(x, w, *args), backend
    monkeypatch.delattr(torch._C, "_select_conv_backend")
    assert not torch_int_ops.conv_is_direct_sum(x, w, *args)


def test_network_on_a_non_direct_backend_runs_unfold_and_gives_the_same_spikes(monkeypatch):
    g = _conv_graph(259)
    rng = np.random.default_rng(3)
    frames = rng.integers(0, 256, (5, 16, 259, 2, 2)).astype(np.uint8)
    fast = TorchIntNetwork(g).run(frames).spikes["l"]
    monkeypatch.setattr(torch._C, "_select_conv_backend", lambda *a: "_ConvBackend.Cudnn")
    net = TorchIntNetwork(g)
    slow = net.run(frames).spikes["l"]
    assert net._ops["c"].last_path == "unfold"
    np.testing.assert_array_equal(fast, slow)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("c_in", [258, 259])  # float32 / float64 on the GPU
def test_cuda_conv_runs_unfold_and_equals_cpu(c_in):
    g = _conv_graph(c_in)
    rng = np.random.default_rng(5)
    frames = rng.integers(0, 256, (6, 16, c_in, 2, 2)).astype(np.uint8)
    cpu = TorchIntNetwork(g).run(frames, record_state=True)
    net = TorchIntNetwork(g, device="cuda")
    gpu = net.run(frames, record_state=True)
    assert net._ops["c"].last_path == "unfold"
    np.testing.assert_array_equal(gpu.spikes["l"], cpu.spikes["l"])
    np.testing.assert_array_equal(gpu.v["l"], cpu.v["l"])
    np.testing.assert_array_equal(gpu.u["l"], cpu.u["l"])
