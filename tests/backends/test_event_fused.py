"""The event simulator runs a conv and the single-spike LIF that it alone feeds, in the same
(channels-last) layout, as one kernel (``event_kernels_lif.lif_kernels``' ``conv_step``: the
conv's epilogue inside the LIF's loop). Only such pairs are fused, and a fused pair gives
exactly what the separate kernels, the torch integer backend and the numpy reference give,
in each of the three ways the conv's sums are held (packed int32, packed int64, int64 with
separate fan-in counts). A fused LIF whose step provably stays inside 32 bits
(``event_kernels_lif.lif_narrow``) keeps int32 state and gives the same results."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from delay_multispike_cases import FMT
from test_event import assert_matches_reference, graph, lif
from test_event_layouts import mixed_layout_graph

from snn2hw.backends import event, event_plan, torch_int
from snn2hw.backends import event_kernels_lif as lif_k
from snn2hw.quant.qgraph import ConvNode, InputNode, LIFNode, OutputNode, QGraph

COUNTERS = ("synops", "synops_dense", "neuron_updates", "spike_counts", "peak_fanin")


def _conv_lif(message_bits: int = 0, max_spikes: int = 1, delay: int = 0, weight_exp: int = 0,
              vth: int = 20000, decays: bool = True):
    w = np.random.default_rng(4).integers(200, 256, (3, 16, 3, 3))  # sums grow with events
    conv = ConvNode("c", w, (16, 9, 9), padding=(1, 1), delay=delay, weight_exp=weight_exp)
    du, dv = (3000, 400) if decays else (4095, 0)  # without decay: int32 state
    neuron = LIFNode("l", conv.out_shape, du=du, dv=dv, vth=vth, max_spikes=max_spikes,
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


@pytest.mark.parametrize("decays", [True, False], ids=["int64 state", "int32 state"])
@pytest.mark.parametrize("mode", ["int32 packed", "int64 packed", "int64"])
def test_fused_and_separate_kernels_agree_in_every_sum_mode(mode, decays):
    g, w = _conv_lif(message_bits=16 if mode == "int64" else 0,
                     vth=100 if mode == "int32 packed" else 20000, decays=decays)
    x = _inputs(mode)
    bound = int(np.abs(w).max()) * 16 * 9  # the kernel's wbound
    per_sample = np.abs(x.astype(np.int64)).reshape(6, 2, -1)
    assert (per_sample.sum(axis=2).max() * int(w.max()) < 2**15) == (mode == "int32 packed")
    assert (per_sample.max() * bound < 2**31) == (mode != "int64")
    fused = event.run(g, x, record_state=True, threads=1)
    plan = event.PLANS.get(g)
    assert plan.fused == {"l": "c"}
    assert plan.lifs[0].state_dtype == (np.int64 if decays else np.int32)
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
    real = lif_k.lif_kernels

    def broken(u_sat, v_sat, decays):
        if fault == "u_sat":  # saturate instead of wrap
            return real(not u_sat, v_sat, decays)
        if fault == "decays":  # the decay products left out of a node that decays
            return real(u_sat, v_sat, False)
        kernels = real(u_sat, v_sat, decays)

        def conv_step(*args):
            args = list(args)
            if fault == "weight_exp":
                args[10] += 1
            else:  # max|w| 0: the int32 packing is kept past its bound and wraps
                args[1] = args[1].copy()  # geom, whose entry 11 is max|w|
                args[1][11] = 0
            return kernels.conv_step(*args)

        return lif_k.LifKernels(kernels.step, conv_step)

    monkeypatch.setattr(event_plan.lif_k, "lif_kernels", broken)
    event.PLANS.clear()
    got = event.run(g, x, record_state=True, threads=1)
    assert event.PLANS.get(g).fused == {"l": "c"}  # the fault sat in the fused kernel
    event.PLANS.clear()
    assert not (np.array_equal(got.u["l"], ref.u["l"])
                and np.array_equal(got.v["l"], ref.v["l"])
                and np.array_equal(got.spikes["l"], ref.spikes["l"]))


def _extreme_conv_lif(f, bias: int, sh: int = 6, inhibitory: bool = False,
                      weight_exp: int = 7, frames: int = 12) -> tuple:
    """A conv -> LIF without decay whose activations pass the 24-bit wrap of the conv, u
    passes its wrap after ``a << sh`` and v its bound, with a large bias: every correction
    of the step fires. Returns the graph and graded input frames."""
    w = np.random.default_rng(7).integers(-128, 0 if inhibitory else 128, (4, 2, 3, 3)) * 2
    conv = ConvNode("c", w, (2, 6, 6), padding=(1, 1), weight_exp=weight_exp)
    z = np.zeros(conv.out_shape, np.int64)
    neuron = LIFNode("l", conv.out_shape, du=4095, dv=0, vth=300, bias_mant=z + bias,
                     bias_exp=z.copy())
    nodes = {n.name: n for n in (InputNode("in", (2, 6, 6), message_bits=16), conv, neuron,
                                 OutputNode("out", conv.out_shape))}
    f = dataclasses.replace(f, activation_shift=sh)
    g = QGraph(nodes, [("in", "c"), ("c", "l"), ("l", "out")], 1e-3, "loihi2", 6,
               formats=f).validate()
    x = np.random.default_rng(8).integers(0, 2**16, (frames, 3, 2, 6, 6))
    return g, x


def test_int32_state_is_chosen_only_where_every_value_of_the_step_fits():
    lc = lif_k.lif_consts(4095, 0, 300, 6, 12, 24, 24, False, False)  # Loihi, no decay
    assert lif_k.lif_narrow(lc, False, True, 2**12)
    decaying = lif_k.lif_consts(3000, 400, 300, 6, 12, 24, 24, False, False)
    assert not lif_k.lif_narrow(decaying, False, True, 0)  # decay products need 64 bits
    assert not lif_k.lif_narrow(lc, False, False, 0)  # a wrapping v: |u| up to 2^29 > v_hi
    negative_th = lif_k.lif_consts(4095, 0, -1, 6, 12, 24, 24, False, False)
    assert not lif_k.lif_narrow(negative_th, False, True, 0)
    shift_8 = lif_k.lif_consts(4095, 0, 300, 8, 12, 24, 24, False, False)
    assert not lif_k.lif_narrow(shift_8, False, True, 0)  # a << 8 reaches 2^31
    # v + u + b with its bound: 3 * 2^23 + 2^29 + bias below 2^31
    edge = 2**31 - 3 * 2**23 - 2**29
    assert lif_k.lif_narrow(lc, False, True, edge - 1)
    assert not lif_k.lif_narrow(lc, False, True, edge)
    g, _ = _extreme_conv_lif(FMT, 4000)
    assert event.PLANS.get(g).lifs[0].state_dtype == np.int32
    g, _ = _extreme_conv_lif(dataclasses.replace(FMT, v_overflow="wrap"), 4000)
    assert event.PLANS.get(g).lifs[0].state_dtype == np.int64
    event.PLANS.clear()


@pytest.mark.parametrize("bias", [-4095, 0, 4095])
@pytest.mark.parametrize("u_overflow", ["wrap", "saturate"])
def test_int32_state_gives_the_int64_results_where_every_correction_fires(bias, u_overflow):
    g, x = _extreme_conv_lif(dataclasses.replace(FMT, u_overflow=u_overflow), bias)
    narrow = event.run(g, x, record_state=True, threads=1)
    assert event.PLANS.get(g).lifs[0].state_dtype == np.int32
    event.PLANS.clear()
    ref = torch_int.run(g, x, record_state=True)
    u, v = ref.u["l"], ref.v["l"]
    u_hi = 1 << (FMT.u_bits - 1)
    assert np.abs(u).max() > u_hi // 2 and np.abs(v).max() >= (1 << (FMT.v_bits - 1)) - 1
    assert int(ref.spikes["l"].sum()) > 0
    for field in ("spikes", "u", "v"):
        np.testing.assert_array_equal(getattr(narrow, field)["l"], getattr(ref, field)["l"],
                                      err_msg=field)
    if u_overflow == "wrap":  # Loihi's formats: the numpy reference (counters too)
        assert_matches_reference(g, x)


def test_int32_state_where_the_bound_fails_is_caught(monkeypatch):
    # a wrapping v takes u of up to -2^29 each step (inhibitory weights), one correction
    # of 2^24 does not bring it back, and it passes -2^31 in a few steps: with int32 state
    # forced on, the states leave the int64 ones
    g, x = _extreme_conv_lif(dataclasses.replace(FMT, v_overflow="wrap"), 0, inhibitory=True,
                             weight_exp=0, frames=30)
    assert event.PLANS.get(g).lifs[0].state_dtype == np.int64
    ref = torch_int.run(g, x, 30, record_state=True)
    monkeypatch.setattr(event_plan.lif_k, "lif_narrow", lambda *a: True)
    event.PLANS.clear()
    got = event.run(g, x, 30, record_state=True, threads=1)
    assert event.PLANS.get(g).lifs[0].state_dtype == np.int32
    event.PLANS.clear()
    assert ref.v["l"].min() < -2**31
    assert not np.array_equal(got.v["l"], ref.v["l"])
