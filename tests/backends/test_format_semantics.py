"""Non-Loihi number formats: every integer implementation of docs/qgraph.md agrees with a
plain-Python reference written here from the docs' "Number formats" section.

Dense weight preparation (shared helper, torch-int, event, event kernel, ONNX writer) and
the LIF step (torch-int, event kernel, the event kernel fused with a conv, ONNX model through
onnxruntime) on random formats:
weight bits and clip ranges, mixed-sign LSB loss, activation shift, u/v widths and
overflow rules, decay bits, subtractive reset and the ``>=`` comparison."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from snn2hw.backends import event, event_kernels_dense, torch_int_ops
from snn2hw.exporters import onnx_int
from snn2hw.quant.formats import NumberFormats
from snn2hw.quant.qgraph import ConvNode, DenseNode, InputNode, LIFNode, OutputNode, QGraph
from snn2hw.quant.weights import effective_dense_weight


@st.composite
def formats(draw) -> NumberFormats:
    mant = draw(st.integers(2, 8))
    top = (1 << mant) - 1
    return NumberFormats(
        weight_mantissa_bits=mant,
        weight_range_mixed=(-top - 1, top),
        weight_range_excitatory=(0, top),
        weight_range_inhibitory=(-draw(st.sampled_from([top, top + 1])), 0),
        mixed_sign_lsb_loss=draw(st.booleans()),
        activation_shift=draw(st.integers(0, 6)),
        u_bits=draw(st.integers(8, 24)),
        u_overflow=draw(st.sampled_from(["wrap", "saturate"])),
        v_bits=draw(st.integers(8, 24)),
        v_overflow=draw(st.sampled_from(["wrap", "saturate"])),
        decay_bits=draw(st.integers(4, 12)),
        threshold_bits=12,
        reset=draw(st.sampled_from(["zero", "subtract"])),
        threshold_compare=draw(st.sampled_from([">", ">="])),
    )


# ----- reference (plain Python ints, from docs/qgraph.md "Number formats") -----------------


def ref_dense(w: np.ndarray, bits: int, f: NumberFormats) -> np.ndarray:
    flat = [int(x) for x in w.ravel()]
    if min(flat) >= 0:
        lo, hi, extra, inh = *f.weight_range_excitatory, 0, False
    elif max(flat) <= 0:
        lo, hi, extra, inh = *f.weight_range_inhibitory, 0, True
    else:
        lo, hi, extra, inh = *f.weight_range_mixed, int(f.mixed_sign_lsb_loss), False
    k = f.weight_mantissa_bits - bits + extra
    out = []
    for x in flat:
        x = min(max(x, lo), hi)
        out.append(-(((-x) >> k) << k) if inh else (x >> k) << k)
    return np.array(out, dtype=np.int64).reshape(w.shape)


def _rtz(x: int, k: int) -> int:
    return x >> k if x >= 0 else -((-x) >> k)


def _ovf(x: int, bits: int, rule: str) -> int:
    half = 1 << (bits - 1)
    if rule == "saturate":
        return max(-(half - 1), min(half - 1, x))
    if x > half:
        x -= 2 * half
    if x <= -half:
        x += 2 * half
    return x


def ref_lif(u: int, v: int, a: int, du: int, dv: int, b: int, vth: int, f: NumberFormats):
    s_ = 1 << f.decay_bits
    u = _ovf(_rtz(u * (s_ - (du + 1)), f.decay_bits) + (a << f.activation_shift), f.u_bits,
             f.u_overflow)
    v = _ovf(_rtz(v * (s_ - dv), f.decay_bits) + u + b, f.v_bits, f.v_overflow)
    th = vth << f.activation_shift
    s = v >= th if f.threshold_compare == ">=" else v > th
    if s:
        v = v - th if f.reset == "subtract" else 0
    return u, v, int(s)


# ----- dense weight preparation ------------------------------------------------------------


@settings(max_examples=120, deadline=None)
@given(formats(), st.integers(0, 2**31 - 1), st.sampled_from(["mixed", "exc", "inh"]))
def test_dense_preparation_agrees_with_the_reference(f, seed, mode) -> None:
    rng = np.random.default_rng(seed)
    top = (1 << f.weight_mantissa_bits) + 3
    lo, hi = {"mixed": (-top, top), "exc": (0, top), "inh": (-top, 0)}[mode]
    w = rng.integers(lo, hi + 1, size=(4, 5))
    bits = int(rng.integers(1, f.weight_mantissa_bits + 1))
    want = ref_dense(w, bits, f)
    wt, _ = event_kernels_dense.dense_prepare(
        np.ascontiguousarray(w, dtype=np.int64), bits, f.weight_mantissa_bits,
        *f.weight_range_mixed, *f.weight_range_excitatory, *f.weight_range_inhibitory,
        int(f.mixed_sign_lsb_loss))
    copies = {
        "quant.weights": effective_dense_weight(w, bits, f),
        "torch_int": torch_int_ops.prepare_dense_weight(w, bits, f),
        "event": event.dense_effective_weight(w, bits, f),
        "event kernel": wt.T.astype(np.int64),
        "onnx writer": onnx_int._prepare_dense_weight(w, bits, f),
    }
    for name, got in copies.items():
        np.testing.assert_array_equal(got, want, err_msg=name)


# ----- the LIF step -----------------------------------------------------------------------


def _lif_graph(f: NumberFormats, n: int, du: int, dv: int, vth: int, bias: np.ndarray) -> QGraph:
    nodes = {
        "in": InputNode("in", (n,), message_bits=6),
        "d": DenseNode("d", np.eye(n, dtype=np.int64), num_weight_bits=f.weight_mantissa_bits),
        "l": LIFNode("l", (n,), du=du, dv=dv, vth=vth, bias_mant=bias,
                     bias_exp=np.zeros(n, np.int64)),
        "out": OutputNode("out", (n,)),
    }
    return QGraph(nodes, [("in", "d"), ("d", "l"), ("l", "out")], 1e-3, "random", 1,
                  formats=f)


def _random_lif_case(f: NumberFormats, seed: int, n: int = 6, steps: int = 12):
    """Random LIF parameters (30 % without decay: its own compiled case in the event
    simulator), bias and input frames ``[steps, 1, n]``, and the reference's spikes
    ``[steps + 1, 1, n]`` (input frame k reaches the LIF at step k + 1: one hop)."""
    rng = np.random.default_rng(seed)
    du = int(rng.integers(-1, 1 << f.decay_bits))
    dv = int(rng.integers(0, 1 << f.decay_bits))
    if rng.random() < 0.3:
        du, dv = (1 << f.decay_bits) - 1, 0
    vth = int(rng.integers(1, 64))
    bias = rng.integers(-100, 100, n).astype(np.int64)
    x = rng.integers(0, 64, (steps, 1, n)).astype(np.int64)
    u = [0] * n
    v = [0] * n
    want = np.zeros((steps + 1, 1, n), np.uint8)
    for t in range(steps + 1):
        for i in range(n):
            a = int(x[t - 1, 0, i]) if t >= 1 else 0
            u[i], v[i], want[t, 0, i] = ref_lif(u[i], v[i], a, du, dv, int(bias[i]), vth, f)
    return du, dv, vth, bias, x, want


@settings(max_examples=60, deadline=None)
@given(formats(), st.integers(0, 2**31 - 1))
def test_lif_step_agrees_with_the_reference_on_every_backend(f, seed) -> None:
    du, dv, vth, bias, x, want = _random_lif_case(f, seed)
    g = _lif_graph(f, len(bias), du, dv, vth, bias)
    steps = x.shape[0] + 1
    got = {"torch-int": torch_int_ops_run(g, x, steps), "event": event.run(g, x, steps).spikes["l"]}
    for name, s in got.items():
        np.testing.assert_array_equal(s, want, err_msg=name)


def _conv_lif_graph(f: NumberFormats, n: int, du: int, dv: int, vth: int, bias: np.ndarray
                    ) -> QGraph:
    """The LIF step fed by a 1x1 identity conv into a (C, 1, 1) LIF: the event simulator
    runs the conv and the LIF as one fused kernel (``event_kernels_lif.lif_kernels``'
    ``conv_step``)."""
    nodes = {
        "in": InputNode("in", (n, 1, 1), message_bits=6),
        "c": ConvNode("c", np.eye(n, dtype=np.int64)[:, :, None, None], (n, 1, 1)),
        "l": LIFNode("l", (n, 1, 1), du=du, dv=dv, vth=vth, bias_mant=bias[:, None, None],
                     bias_exp=np.zeros((n, 1, 1), np.int64)),
        "out": OutputNode("out", (n, 1, 1)),
    }
    return QGraph(nodes, [("in", "c"), ("c", "l"), ("l", "out")], 1e-3, "random", 1,
                  formats=f).validate()


@settings(max_examples=60, deadline=None)
@given(formats(), st.integers(0, 2**31 - 1))
def test_fused_conv_lif_step_agrees_with_the_reference(f, seed) -> None:
    du, dv, vth, bias, x, want = _random_lif_case(f, seed)
    n, steps = len(bias), x.shape[0] + 1
    g = _conv_lif_graph(f, n, du, dv, vth, bias)
    assert event.PLANS.get(g).fused == {"l": "c"}
    got = event.run(g, x.reshape(-1, 1, n, 1, 1), steps).spikes["l"].reshape(steps, 1, n)
    np.testing.assert_array_equal(got, want)


def torch_int_ops_run(g: QGraph, x: np.ndarray, steps: int) -> np.ndarray:
    from snn2hw.backends import torch_int

    return torch_int.run(g, x, steps).spikes["l"]


def test_onnx_lif_step_agrees_with_the_reference() -> None:
    pytest.importorskip("onnxruntime")
    from snn2hw.backends import registry

    f = NumberFormats(u_bits=12, u_overflow="wrap", v_bits=10, v_overflow="wrap",
                      decay_bits=6, activation_shift=2, reset="subtract",
                      threshold_compare=">=", threshold_bits=12)
    rng = np.random.default_rng(5)
    n, steps = 6, 15
    bias = rng.integers(-50, 50, n).astype(np.int64)
    x = rng.integers(0, 64, (steps, 2, n)).astype(np.int64)
    g = _lif_graph(f, n, 10, 7, 40, bias)
    want = torch_int_ops_run(g, x, steps + 1)
    got = registry.get("onnx").run(g, x, steps + 1).spikes["l"]
    np.testing.assert_array_equal(got, want)
    # the same wrap / subtract / >= rules as the plain reference
    ref = np.zeros_like(want)
    for b in range(2):
        u, v = [0] * n, [0] * n
        for t in range(steps + 1):
            for i in range(n):
                a = int(x[t - 1, b, i]) if t >= 1 else 0
                u[i], v[i], ref[t, b, i] = ref_lif(u[i], v[i], a, 10, 7, int(bias[i]), 40, f)
    np.testing.assert_array_equal(want, ref)
    assert torch.as_tensor(want).sum() > 0
