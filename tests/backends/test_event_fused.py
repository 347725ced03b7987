"""The event simulator runs a conv and the single-spike LIF that it alone feeds, in the same
(channels-last) layout, as one kernel (``event_kernels.lif_kernels``' ``conv_step``: the
conv's epilogue inside the LIF's loop). Only such pairs are fused, and a fused pair gives
exactly what the separate kernels, the torch integer backend and the numpy reference give,
in each of the three ways the conv's sums are held (packed int32, packed int64, int64 with
separate fan-in counts)."""

from __future__ import annotations

import numpy as np
import pytest
from delay_multispike_cases import FMT
from test_event import assert_matches_reference, graph, lif
from test_event_layouts import mixed_layout_graph

from snn2hw.backends import event, event_plan, torch_int
from snn2hw.backends import event_kernels as K
from snn2hw.quant.qgraph import ConvNode, InputNode, LIFNode, OutputNode, QGraph

COUNTERS = ("synops", "synops_dense", "neuron_updates", "spike_counts", "peak_fanin")


def _conv_lif(message_bits: int = 0, max_spikes: int = 1, delay: int = 0, weight_exp: int = 0,
              vth: int = 20000):
    w = np.random.default_rng(4).integers(200, 256, (3, 16, 3, 3))  # sums grow with events
    conv = ConvNode("c", w, (16, 9, 9), padding=(1, 1), delay=delay, weight_exp=weight_exp)
    neuron = LIFNode("l", conv.out_shape, du=3000, dv=400, vth=vth, max_spikes=max_spikes,
                     bias_mant=np.zeros(conv.out_shape, np.int64),
                     bias_exp=np.zeros(conv.out_shape, np.int64))
    nodes = {n.name: n for n in (InputNode("in", (16, 9, 9), message_bits=message_bits),
                                 conv, neuron, OutputNode("out", conv.out_shape))}
    # graded spikes need a target that carries them
    g = QGraph(nodes, [("in", "c"), ("c", "l"), ("l", "out")], 1e-3, "loihi2", 6,
               formats=FMT).validate()
    return g, w


def test_only_a_conv_alone_feeding_a_channels_last_single_spike_lif_is_fused():
    assert event_plan.Plan(mixed_layout_graph()).fused == {"l1": "c1", "l2": "c2"}
    assert event_plan.Plan(_conv_lif()[0]).fused == {"l": "c"}
    assert event_plan.Plan(_conv_lif(max_spikes=3)[0]).fused == {}  # graded output
    assert event_plan.Plan(_conv_lif(delay=2)[0]).fused == {}  # the conv's output ring
    conv = ConvNode("c", np.ones((2, 1, 3, 3), np.int64), (1, 5, 5), padding=(1, 1))
    two = graph([InputNode("in", (1, 5, 5)), conv, lif("a", (2, 5, 5)), lif("b", (2, 5, 5))],
                [("in", "c"), ("c", "a"), ("c", "b")])
    assert event_plan.Plan(two).fused == {}  # the conv's output is read twice


def _inputs(mode: str) -> np.ndarray:
    rng = np.random.default_rng(9)
    if mode == "int32 packed":  # a few events: sum|x| * max|w| < 2^15
        return (rng.random((6, 2, 16, 9, 9)) < 0.004).astype(np.uint8)
    if mode == "int64 packed":  # every input: sums beyond 2^15, max|x| * bound < 2^31
        return np.ones((6, 2, 16, 9, 9), np.uint8)
    return rng.integers(2**15, 2**16, (6, 2, 16, 9, 9))  # max|x| * bound >= 2^31


@pytest.mark.parametrize("mode", ["int32 packed", "int64 packed", "int64"])
def test_fused_and_separate_kernels_agree_in_every_sum_mode(mode):
    g, w = _conv_lif(message_bits=16 if mode == "int64" else 0,
                     vth=100 if mode == "int32 packed" else 20000)
    x = _inputs(mode)
    bound = int(np.abs(w).max()) * 16 * 9  # the kernel's wbound
    per_sample = np.abs(x.astype(np.int64)).reshape(6, 2, -1)
    assert (per_sample.sum(axis=2).max() * int(w.max()) < 2**15) == (mode == "int32 packed")
    assert (per_sample.max() * bound < 2**31) == (mode != "int64")
    fused = event.run(g, x, record_state=True, threads=1)
    plan = event.PLANS.get(g)
    assert plan.fused == {"l": "c"}
    plan.fused = {}  # the same plan with the conv and the LIF as two kernels
    separate = event.run(g, x, record_state=True, threads=1)
    event.PLANS.clear()
    ref = torch_int.run(g, x, record_state=True)
    assert int(fused.spikes["l"].sum()) > 0
    for name, other in (("separate kernels", separate), ("torch-int", ref)):
        for field in ("spikes", "u", "v"):
            np.testing.assert_array_equal(getattr(fused, field)["l"],
                                          getattr(other, field)["l"], err_msg=f"{name} {field}")
    for c in COUNTERS:
        np.testing.assert_array_equal(getattr(fused, c)["l"], getattr(separate, c)["l"], c)
    assert_matches_reference(g, x)  # the counters against the numpy reference too


@pytest.mark.parametrize("fault", ["weight_exp", "u_sat", "decays", "lying wmax"])
def test_a_fault_in_the_fused_kernel_is_caught(fault, monkeypatch):
    mode = "int32 packed" if fault in ("weight_exp", "decays") else "int64 packed"
    # weight_exp 3: u = (sum << 3) << 6 passes 2^23, where Loihi's u wraps
    g, _ = _conv_lif(weight_exp=3 if fault == "u_sat" else 0,
                     vth=100 if mode == "int32 packed" else 20000)
    x = _inputs(mode)
    ref = torch_int.run(g, x, record_state=True)
    real = K.lif_kernels

    def broken(u_sat, v_sat, decays):
        if fault == "u_sat":  # saturate instead of wrap
            return real(not u_sat, v_sat, decays)
        if fault == "decays":  # the decay products left out of a node that decays
            return real(u_sat, v_sat, False)
        kernels = real(u_sat, v_sat, decays)

        def conv_step(*args):
            args = list(args)
            if fault == "weight_exp":
                args[11] += 1
            else:  # max|w| 0: the int32 packing is kept past its bound and wraps
                args[24] = 0
            return kernels.conv_step(*args)

        return K.LifKernels(kernels.step, conv_step)

    monkeypatch.setattr(event.K, "lif_kernels", broken)
    event.PLANS.clear()
    got = event.run(g, x, record_state=True, threads=1)
    assert event.PLANS.get(g).fused == {"l": "c"}  # the fault sat in the fused kernel
    event.PLANS.clear()
    assert not (np.array_equal(got.u["l"], ref.u["l"])
                and np.array_equal(got.v["l"], ref.v["l"])
                and np.array_equal(got.spikes["l"], ref.spikes["l"]))
