"""Event-driven reference simulator (snn2hw.backends.event) against docs/qgraph.md.

Three kinds of checks: values pinned by hand from docs/qgraph.md, a plain
time-stepped numpy reference (written here, sharing no code with the simulator) on random
graphs, and the activity counters against hand counts.
"""

from __future__ import annotations

import subprocess
import sys
from dataclasses import replace

import numpy as np
import pytest
from scipy.signal import correlate

from snn2hw.backends import event, event_kernels_dense, event_ops, event_plan
from snn2hw.common.errors import GraphError
from snn2hw.quant.formats import LOIHI_FORMATS
from snn2hw.quant.qgraph import (
    ConvNode,
    DenseNode,
    FlattenNode,
    InputNode,
    LIFNode,
    OutputNode,
    QGraph,
    SumPoolNode,
)

VTH_OFF = 131071  # highest legal vth: keeps neurons quiet while we read u and v


# ---------------------------------------------------------------------------------- builders
def lif(name, shape, du=4095, dv=0, vth=VTH_OFF, bias_mant=0, bias_exp=0) -> LIFNode:
    shape = tuple(shape)
    bm = np.broadcast_to(np.asarray(bias_mant, dtype=np.int64), shape).copy()
    be = np.broadcast_to(np.asarray(bias_exp, dtype=np.int64), shape).copy()
    return LIFNode(name, shape, du=du, dv=dv, vth=vth, bias_mant=bm, bias_exp=be)


def graph(nodes: list, edges: list[tuple[str, str]], num_steps: int = 4) -> QGraph:
    """Nodes in the given (topological) order; adds an output node on the last LIF."""
    d = {n.name: n for n in nodes}
    last = [n for n in nodes if isinstance(n, LIFNode)][-1]
    d["out"] = OutputNode("out", last.shape)
    return QGraph(d, [*edges, (last.name, "out")], dt=1e-3, target="loihi",
                  num_steps=num_steps).validate()


def dense_probe(weight, weight_exp=0, num_weight_bits=8, message_bits=0, **lif_kw) -> QGraph:
    """in -> dense -> lif, with a plain LIF (du=4095) so u == a << 6 at every step."""
    w = np.asarray(weight, dtype=np.int64)
    return graph(
        [InputNode("in", (w.shape[1],), message_bits=message_bits),
         DenseNode("fc", w, weight_exp=weight_exp, num_weight_bits=num_weight_bits),
         lif("l", (w.shape[0],), **lif_kw)],
        [("in", "fc"), ("fc", "l")],
    )


def frames(*rows) -> np.ndarray:
    """Time-major frames [F, 1, N] for one sample."""
    return np.asarray(rows, dtype=np.int64)[:, None, :]


def activation(g: QGraph, x: np.ndarray, layer: str = "l") -> np.ndarray:
    """The activation a that ``layer`` integrated at each step, read back as u >> 6 from a
    du=4095 LIF (u = a << 6 exactly while |a| < 2^17)."""
    r = event.run(g, x, record_state=True)
    u = r.u[layer]
    assert np.all(u % 64 == 0)
    return u // 64


# ------------------------------------------------------------- independent numpy reference
def ref_weight(w: np.ndarray, bits: int) -> np.ndarray:
    """docs/qgraph.md "Dense weight preparation", written with floor division instead of shifts."""
    w = np.asarray(w, dtype=np.int64)
    if w.min(initial=0) >= 0:
        return (np.clip(w, 0, 255) // 2 ** (8 - bits)) * 2 ** (8 - bits)
    if w.max(initial=0) <= 0:
        return -((np.clip(-w, 0, 255) // 2 ** (8 - bits)) * 2 ** (8 - bits))
    k = 9 - bits
    return (np.clip(w, -256, 255) // 2**k) * 2**k


def ref_shift(x: np.ndarray, e: int) -> np.ndarray:
    return x * 2**e if e >= 0 else np.floor_divide(x, 2 ** (-e))


def ref_wrap24(x: np.ndarray) -> np.ndarray:
    return np.mod(x + 2**23, 2**24) - 2**23


def ref_conv(x, w, stride=(1, 1), padding=(0, 0), dilation=(1, 1), groups=1) -> np.ndarray:
    """PyTorch conv2d (cross-correlation) on one sample [C, H, W], explicit tap loops."""
    c_out, cig, kh, kw = w.shape
    xp = np.pad(x, ((0, 0), (padding[0], padding[0]), (padding[1], padding[1])))
    h_out = (xp.shape[1] - dilation[0] * (kh - 1) - 1) // stride[0] + 1
    w_out = (xp.shape[2] - dilation[1] * (kw - 1) - 1) // stride[1] + 1
    cog = c_out // groups
    out = np.zeros((c_out, h_out, w_out), dtype=np.int64)
    for co in range(c_out):
        g = co // cog
        for ky in range(kh):
            for kx in range(kw):
                y0, x0 = ky * dilation[0], kx * dilation[1]
                patch = xp[g * cig:(g + 1) * cig,
                           y0:y0 + stride[0] * (h_out - 1) + 1:stride[0],
                           x0:x0 + stride[1] * (w_out - 1) + 1:stride[1]]
                out[co] += np.tensordot(w[co, :, ky, kx].astype(np.int64), patch, axes=1)
    return out


def ref_pool(x, k, stride, padding) -> np.ndarray:
    c = x.shape[0]
    return ref_conv(x, np.ones((c, 1, *k), dtype=np.int64), stride, padding, groups=c)


def ref_apply(g: QGraph, name: str, x: np.ndarray):
    """One operator on one sample; returns (value, fan-in counts, synops, dense synops)."""
    node = g.nodes[name]
    ev = (x != 0).astype(np.int64)
    if isinstance(node, FlattenNode):
        return x.reshape(-1), None, 0, 0
    if isinstance(node, DenseNode):
        wp = ref_weight(node.weight, node.num_weight_bits)
        xf, evf = x.reshape(-1), ev.reshape(-1)
        cnt = (wp != 0).astype(np.int64) @ evf
        return ref_shift(wp @ xf, node.weight_exp), cnt, cnt.sum(), evf.sum() * wp.shape[0]
    if isinstance(node, ConvNode):
        xs, es = x.reshape(node.input_shape), ev.reshape(node.input_shape)
        geo = dict(stride=node.stride, padding=node.padding, dilation=node.dilation,
                   groups=node.groups)
        val = ref_wrap24(ref_shift(ref_conv(xs, node.weight, **geo), node.weight_exp))
        cnt = ref_conv(es, (node.weight != 0).astype(np.int64), **geo)
        dense = ref_conv(es, np.ones_like(node.weight), **geo)
        return val, cnt, cnt.sum(), dense.sum()
    if isinstance(node, SumPoolNode):
        xs, es = x.reshape(node.input_shape), ev.reshape(node.input_shape)
        cnt = ref_pool(es, node.kernel_size, node.stride, node.padding)
        return ref_pool(xs, node.kernel_size, node.stride, node.padding), cnt, cnt.sum(), \
            cnt.sum()
    raise AssertionError(node)


def ref_run(g: QGraph, x: np.ndarray, n_steps: int) -> dict:
    """docs/qgraph.md executed literally: dense time-stepped loop, one sample at a time."""
    f, b = x.shape[:2]
    lifs = g.lif_nodes
    res: dict = {k: {} for k in ("s", "u", "v", "syn", "syn_dense", "upd", "peak")}
    for L in lifs:
        for k in ("s", "u", "v"):
            res[k][L.name] = np.zeros((n_steps, b, *L.shape), dtype=np.int64)
        for k in ("syn", "syn_dense", "upd"):
            res[k][L.name] = np.zeros(n_steps, dtype=np.int64)
        res["peak"][L.name] = 0
    for s in range(b):
        u = {L.name: np.zeros(L.shape, dtype=np.int64) for L in lifs}
        v = {L.name: np.zeros(L.shape, dtype=np.int64) for L in lifs}
        out = {L.name: np.zeros(L.shape, dtype=np.int64) for L in lifs}
        inp = g.input_node
        out[inp.name] = np.zeros(inp.shape, dtype=np.int64)
        for n in range(n_steps):
            new = {}
            for L in lifs:
                a = np.zeros(L.shape, dtype=np.int64)
                cnt = np.zeros(L.shape, dtype=np.int64)
                for path in g.synapse_paths(L.name):
                    val = out[path[0]]
                    c_last = (val != 0).astype(np.int64)  # identity path: weight-1 synapses
                    for op in path[1:]:
                        val, c, syn, syn_d = ref_apply(g, op, val)
                        if c is not None:
                            c_last = c
                        res["syn"][L.name][n] += syn
                        res["syn_dense"][L.name][n] += syn_d
                    if len(path) == 1:
                        res["syn"][L.name][n] += c_last.sum()
                        res["syn_dense"][L.name][n] += c_last.sum()
                    a += val.reshape(L.shape)
                    cnt += c_last.reshape(L.shape)
                res["peak"][L.name] = max(res["peak"][L.name], int(cnt.max()))
                bias = L.bias_mant.astype(np.int64) * 2 ** L.bias_exp.astype(np.int64)
                uu, vv = u[L.name], v[L.name]
                res["upd"][L.name][n] += np.sum((a != 0) | (uu != 0) | (vv != 0) | (bias != 0))
                p = uu * (4096 - (L.du + 1))
                uu = np.sign(p) * (np.abs(p) // 4096) + a * 64
                uu = np.where(uu > 2**23, uu - 2**24, uu)
                uu = np.where(uu <= -(2**23), uu + 2**24, uu)
                p = vv * (4096 - L.dv)
                vv = np.clip(np.sign(p) * (np.abs(p) // 4096) + uu + bias, 1 - 2**23, 2**23 - 1)
                spk = vv > L.vth * 64
                vv = np.where(spk, 0, vv)
                u[L.name], v[L.name], new[L.name] = uu, vv, spk.astype(np.int64)
                res["s"][L.name][n, s] = spk
                res["u"][L.name][n, s] = uu
                res["v"][L.name][n, s] = vv
            out.update(new)
            out[inp.name] = x[n, s] if n < f else np.zeros(inp.shape, dtype=np.int64)
    return res


def assert_matches_reference(g: QGraph, x: np.ndarray, n_steps: int | None = None) -> None:
    n_steps = g.num_steps + g.depth() if n_steps is None else n_steps
    r = event.run(g, x, num_steps=n_steps, record_state=True)
    ref = ref_run(g, x, n_steps)
    for L in g.lif_nodes:
        name = L.name
        np.testing.assert_array_equal(r.u[name], ref["u"][name], err_msg=f"u of {name}")
        np.testing.assert_array_equal(r.v[name], ref["v"][name], err_msg=f"v of {name}")
        np.testing.assert_array_equal(r.spikes[name], ref["s"][name], err_msg=f"s of {name}")
        np.testing.assert_array_equal(r.synops[name], ref["syn"][name], err_msg=name)
        np.testing.assert_array_equal(r.synops_dense[name], ref["syn_dense"][name], name)
        np.testing.assert_array_equal(r.neuron_updates[name], ref["upd"][name], name)
        assert r.peak_fanin[name] == ref["peak"][name], name
        np.testing.assert_array_equal(
            r.spike_counts[name], ref["s"][name].reshape(n_steps, -1).sum(axis=1)
        )
        assert r.spikes[name].dtype == np.uint8 and r.u[name].dtype == np.int64


def test_reference_conv_matches_scipy_correlate():
    """The test's own conv reference agrees with scipy on the plain (groups=1) case."""
    rng = np.random.default_rng(0)
    x = rng.integers(-5, 6, (3, 7, 6))
    w = rng.integers(-9, 10, (4, 3, 3, 2))
    want = np.stack([correlate(x, w[co], mode="valid")[0] for co in range(4)])
    np.testing.assert_array_equal(ref_conv(x, w), want)


# ------------------------------------------------------- pins (docs/qgraph.md): dense weights
def test_mixed_dense_weights_lose_lowest_bit_7_and_minus7_act_as_6_and_minus8():
    np.testing.assert_array_equal(event.dense_effective_weight(np.array([[7, -7]]), 8),
                                  [[6, -8]])
    g = dense_probe([[7, -7]])
    a = activation(g, frames([1, 0], [0, 1], [1, 1]))
    np.testing.assert_array_equal(a[1:4, 0, 0], [6, -8, -2])


@pytest.mark.parametrize(
    ("w", "bits", "want"),
    [
        ([[255, 3, 100, 0]], 6, [[252, 0, 100, 0]]),  # excitatory: k = 2, floor
        ([[-256, -5, -3, 0]], 6, [[-252, -4, 0, 0]]),  # inhibitory: clip -255, trunc of -W
        ([[-5, 5, 255, -256]], 6, [[-8, 0, 248, -256]]),  # mixed: k = 3, floor
        ([[0, 0]], 1, [[0, 0]]),  # all-zero counts as excitatory
    ],
)
def test_sign_mode_clip_and_truncation_with_fewer_weight_bits(w, bits, want):
    np.testing.assert_array_equal(event.dense_effective_weight(np.array(w), bits), want)
    g = dense_probe(np.array(w), num_weight_bits=bits)
    x = np.eye(len(w[0]), dtype=np.int64)[:, None, :]  # frame j: only input j spikes
    a = activation(g, x)
    np.testing.assert_array_equal(a[1:len(w[0]) + 1, 0, 0], want[0])


def test_simulator_weight_preparation_matches_floor_division_reference():
    rng = np.random.default_rng(1)
    for bits in range(1, 9):
        for lo, hi in ((0, 256), (-256, 1), (-256, 256)):
            w = rng.integers(lo, hi, (7, 9))
            np.testing.assert_array_equal(event.dense_effective_weight(w, bits),
                                          ref_weight(w, bits), err_msg=f"{bits} {lo} {hi}")
            # the numba preparation (transposed int16 W' + non-zeros per column) agrees
            wt, nnz_col = event_kernels_dense.dense_prepare(w.astype(np.int64), bits)
            np.testing.assert_array_equal(wt.T, ref_weight(w, bits))
            np.testing.assert_array_equal(nnz_col, (ref_weight(w, bits) != 0).sum(axis=0))


@pytest.mark.parametrize(
    ("w", "exp", "x", "want"),
    [
        ([[-3, -3]], -1, [1, 1], -3),  # floor of the SUM -6/2; a sum of floors gives -4
        ([[-3, -3]], -1, [1, 0], -2),  # floor(-3 / 2) = -2, not rtz's -1
        ([[3, 3]], -1, [1, 1], 3),  # floor of the SUM 6/2; a sum of floors gives 2
        ([[-3, -3]], -2, [1, 1], -2),  # floor(-6 / 4)
        ([[5]], 3, [1], 40),
        ([[5, 7]], -1, [1, 1], 6),
    ],
)
def test_dense_weight_exp_shifts_the_sum_with_floor(w, exp, x, want):
    a = activation(dense_probe(w, weight_exp=exp), frames(x))
    assert a[1, 0, 0] == want


def test_graded_payload_multiplies_the_weight_column():
    a = activation(dense_probe([[6, -8], [2, 0]], message_bits=4), frames([3, 5]))
    np.testing.assert_array_equal(a[1, 0], [3 * 6 - 5 * 8, 6])


# ---------------------------------------------------------- pins (docs/qgraph.md): LIF step
def test_du_zero_current_decays_by_4095_over_4096_toward_zero():
    # du = 0 -> factor 4096 - (0 + 1) = 4095 (the hidden +1): rtz(640*4095, 12) = 639, ...
    r = event.run(dense_probe([[10]], du=0), frames([1]), num_steps=5, record_state=True)
    np.testing.assert_array_equal(r.u["l"][:, 0, 0], [0, 640, 639, 638, 637])
    r = event.run(dense_probe([[-10]], du=0), frames([1]), num_steps=4, record_state=True)
    np.testing.assert_array_equal(r.u["l"][:, 0, 0], [0, -640, -639, -638])  # rtz, not floor


def test_du_minus_one_keeps_current_and_dv_leaks_voltage_with_rtz():
    r = event.run(dense_probe([[1]], du=-1, dv=2048), frames([1]), num_steps=4,
                  record_state=True)
    np.testing.assert_array_equal(r.u["l"][:, 0, 0], [0, 64, 64, 64])
    np.testing.assert_array_equal(r.v["l"][:, 0, 0], [0, 64, 96, 112])  # v/2 + 64


def test_threshold_is_strict_and_reset_zeroes_v_but_not_u():
    vth = 10
    g = dense_probe([[vth], [vth]], du=-1, dv=4095, vth=vth, bias_mant=[0, 1])
    r = event.run(g, frames([1]), num_steps=3, record_state=True)
    # neuron 0: v == vth << 6 exactly -> no spike; neuron 1: v = (vth << 6) + 1 -> spike
    np.testing.assert_array_equal(r.v["l"][1, 0], [vth * 64, 0])
    np.testing.assert_array_equal(r.spikes["l"][1, 0], [0, 1])
    np.testing.assert_array_equal(r.u["l"][1:, 0, 1], [vth * 64, vth * 64])  # u survives
    # dv = 4095 leaves rtz(v/4096) = 0, so v = u + b again: neuron 1 keeps spiking
    np.testing.assert_array_equal(r.spikes["l"][:, 0, 1], [0, 1, 1])


def test_u_of_plus_2_pow_23_is_kept_and_one_more_wraps_negative():
    # du = 0: u1 = rtz(64*a0*4095, 12) + 64*a1; a0 = 64k makes the decay exact (4095k)
    def u_after(w, a0, a1):
        g = dense_probe([[w]], du=0, message_bits=24)
        r = event.run(g, frames([a0], [a1]), num_steps=3, record_state=True)
        return int(r.u["l"][2, 0, 0])

    assert u_after(1, 64 * 64, 126977) == 2**23  # 4095*64 + 64*126977 = 2^23: kept
    assert u_after(1, 64 * 63, 127041) == 2**23 + 1 - 2**24  # 2^23 + 1 wraps
    assert u_after(-1, 64 * 63, 127041) == 2**24 - 2**23 - 1  # -(2^23 + 1) wraps up
    assert u_after(-1, 64 * 64, 126977) == 2**23  # -2^23 wraps to +2^23 (<= -2^23)


def test_v_saturates_at_minus_2_pow_23_plus_1():
    g = dense_probe([[-1]], du=-1, dv=0, message_bits=24)
    r = event.run(g, frames([131071]), num_steps=4, record_state=True)
    np.testing.assert_array_equal(r.v["l"][:, 0, 0], [0, -8388544, -(2**23 - 1), -(2**23 - 1)])


def test_positive_v_saturation_still_spikes_and_resets():
    # Positive saturation is not visible in v: 2^23 - 1 exceeds any legal vth << 6
    # (<= 2^23 - 64), so a saturated neuron always spikes and is reset.
    g = dense_probe([[255]], weight_exp=7, du=-1, dv=0, vth=VTH_OFF, message_bits=8)
    r = event.run(g, frames([3]), num_steps=3, record_state=True)
    assert r.v["l"][1, 0, 0] == 255 * 3 * 128 * 64  # below threshold
    assert r.spikes["l"][2, 0, 0] == 1 and r.v["l"][2, 0, 0] == 0  # 2u > 2^23 - 1 -> clip


def test_bias_mant_shifted_by_bias_exp_is_added_every_step():
    g = graph([InputNode("in", (1,)), DenseNode("fc", np.zeros((2, 1), np.int64)),
               lif("l", (2,), dv=0, vth=1, bias_mant=[3, -1], bias_exp=[2, 0])],
              [("in", "fc"), ("fc", "l")])
    r = event.run(g, np.zeros((1, 1, 1), np.int64), num_steps=8, record_state=True)
    np.testing.assert_array_equal(r.v["l"][:, 0, 0], [12, 24, 36, 48, 60, 0, 12, 24])
    np.testing.assert_array_equal(r.spikes["l"][:, 0, 0], [0, 0, 0, 0, 0, 1, 0, 0])  # 72 > 64
    np.testing.assert_array_equal(r.v["l"][:, 0, 1], -np.arange(1, 9))
    # bias non-zero: every update is an active one
    np.testing.assert_array_equal(r.neuron_updates["l"], np.full(8, 2))


# ------------------------------------------------------------------------------ timing pins
def feed_forward_chain(depth: int) -> QGraph:
    nodes: list = [InputNode("in", (3,))]
    edges = []
    prev = "in"
    for i in range(1, depth + 1):
        nodes += [DenseNode(f"fc{i}", np.eye(3, dtype=np.int64) * 2),
                  lif(f"l{i}", (3,), dv=4095, vth=1)]
        edges += [(prev, f"fc{i}"), (f"fc{i}", f"l{i}")]
        prev = f"l{i}"
    return graph(nodes, edges, num_steps=5)


def test_frame_k_reaches_layer_l_at_step_k_plus_l():
    g = feed_forward_chain(3)
    assert g.depth() == 3
    x = np.zeros((5, 1, 3), np.int64)
    x[0, 0, 0] = x[2, 0, 1] = x[4, 0, 2] = 1
    r = event.run(g, x)
    assert r.spikes["l1"].shape == (8, 1, 3)  # default num_steps = num_steps + depth
    for layer in (1, 2, 3):
        s = r.spikes[f"l{layer}"][:, 0]
        for k, neuron in ((0, 0), (2, 1), (4, 2)):
            want = np.zeros(8, np.uint8)
            want[k + layer] = 1
            np.testing.assert_array_equal(s[:, neuron], want, err_msg=f"l{layer} frame {k}")


def test_recurrent_edge_delivers_one_step_later_and_self_sustains():
    g = graph(
        [InputNode("in", (2,)), DenseNode("fc", np.array([[2, 0], [0, 2]])),
         lif("l", (2,), dv=4095, vth=1), DenseNode("rec", np.array([[0, 0], [2, 0]]))],
        [("in", "fc"), ("fc", "l"), ("l", "rec"), ("rec", "l")],
    )
    r = event.run(g, frames([1, 0]), num_steps=5, record_state=True)
    # neuron 0 fires at 1 (frame 0); neuron 1 hears it through `rec` at step 2
    np.testing.assert_array_equal(r.spikes["l"][:, 0, 0], [0, 1, 0, 0, 0])
    np.testing.assert_array_equal(r.spikes["l"][:, 0, 1], [0, 0, 1, 0, 0])
    g2 = graph(
        [InputNode("in", (1,)), DenseNode("fc", np.array([[2]])),
         lif("l", (1,), dv=4095, vth=1), DenseNode("rec", np.array([[2]]))],
        [("in", "fc"), ("fc", "l"), ("l", "rec"), ("rec", "l")],
    )
    r = event.run(g2, frames([1]), num_steps=6)
    np.testing.assert_array_equal(r.spikes["l"][:, 0, 0], [0, 1, 1, 1, 1, 1])


def test_residual_paths_sum_into_one_lif_with_their_own_delays():
    g = graph(
        [InputNode("in", (1,)), DenseNode("fa", np.array([[2]])), lif("l1", (1,), vth=1),
         DenseNode("fb", np.array([[3]])), DenseNode("skip", np.array([[5]])), lif("l2", (1,))],
        [("in", "fa"), ("fa", "l1"), ("l1", "fb"), ("fb", "l2"), ("in", "skip"),
         ("skip", "l2")],
    )
    a = activation(g, frames([1], [0], [1]), layer="l2")
    # skip delivers frame k at k+1; the l1 route at k+2; both at once at step 3
    np.testing.assert_array_equal(a[:, 0, 0], [0, 5, 3, 5, 3, 0])


def test_identity_path_of_flatten_only_passes_values_through():
    g = graph(
        [InputNode("in", (2, 2), message_bits=3), FlattenNode("flat", (2, 2)), lif("l", (4,))],
        [("in", "flat"), ("flat", "l")],
    )
    r = event.run(g, np.array([[[[0, 5], [7, 1]]]]), num_steps=2, record_state=True)
    np.testing.assert_array_equal(r.u["l"][1, 0] // 64, [0, 5, 7, 1])
    np.testing.assert_array_equal(r.synops["l"], [0, 3])
    assert r.peak_fanin["l"] == 1 and r.macs_dense["l"] == 4


# ---------------------------------------------------------------------------- conv / pooling
CONV_CASES = [
    dict(c=3, hw=(7, 6), c_out=4, k=(3, 3), stride=(1, 1), padding=(0, 0), dilation=(1, 1),
         groups=1),
    dict(c=4, hw=(8, 8), c_out=6, k=(3, 2), stride=(2, 1), padding=(1, 2), dilation=(1, 2),
         groups=2),
    dict(c=2, hw=(9, 7), c_out=2, k=(2, 3), stride=(3, 2), padding=(2, 1), dilation=(2, 1),
         groups=2),
    dict(c=6, hw=(5, 5), c_out=3, k=(1, 1), stride=(2, 2), padding=(0, 1), dilation=(1, 1),
         groups=3),
    dict(c=1, hw=(4, 4), c_out=2, k=(5, 5), stride=(1, 1), padding=(3, 3), dilation=(1, 1),
         groups=1),
    # one group, column dilation 1, column stride > 1: the kernel rows as strided runs
    dict(c=2, hw=(11, 12), c_out=5, k=(5, 5), stride=(2, 2), padding=(1, 1), dilation=(1, 1),
         groups=1),
    dict(c=3, hw=(9, 10), c_out=4, k=(3, 4), stride=(1, 3), padding=(0, 2), dilation=(2, 1),
         groups=1),
]


@pytest.mark.parametrize("case", CONV_CASES)
@pytest.mark.parametrize("weight_exp", [0, -2, 2])
def test_conv_matches_explicit_loop_reference(case, weight_exp):
    rng = np.random.default_rng(len(str(case)) + weight_exp)
    c, (h, w) = case["c"], case["hw"]
    wt = rng.integers(-20, 21, (case["c_out"], c // case["groups"], *case["k"]))
    wt[rng.random(wt.shape) < 0.3] = 0
    geo = {k: case[k] for k in ("stride", "padding", "dilation", "groups")}
    conv = ConvNode("conv", wt, (c, h, w), weight_exp=weight_exp, **geo)
    g = graph([InputNode("in", (c, h, w), message_bits=3), conv, lif("l", conv.out_shape)],
              [("in", "conv"), ("conv", "l")])
    x = rng.integers(0, 8, (2, 3, c, h, w)) * (rng.random((2, 3, c, h, w)) < 0.4)
    a = activation(g, x)
    for s in range(3):
        want = ref_shift(ref_conv(x[0, s], wt, **geo), weight_exp)
        np.testing.assert_array_equal(a[1, s], want)
    assert_matches_reference(g, x)


def test_conv_output_wraps_to_signed_24_bits_after_the_shift():
    conv = ConvNode("conv", np.ones((1, 1, 1, 1), np.int64), (1, 1, 1), weight_exp=7)
    g = graph([InputNode("in", (1, 1, 1), message_bits=24), conv, lif("l", (1, 1, 1))],
              [("in", "conv"), ("conv", "l")])
    # (2^17 + 3) << 7 = 2^24 + 384 -> 384; (2^17 - 1) << 7 = 2^24 - 128 -> -128
    a = activation(g, np.array([2**17 + 3, 2**17 - 1])[:, None, None, None, None])
    np.testing.assert_array_equal(a[1:3, 0, 0, 0, 0], [384, -128])


def test_large_conv_accumulation_wraps_like_the_reference():
    rng = np.random.default_rng(3)
    wt = rng.integers(200, 256, (2, 16, 3, 3)) * rng.choice([-1, 1], (2, 16, 3, 3))
    conv = ConvNode("conv", wt, (16, 4, 4), weight_exp=3, padding=(1, 1))
    g = graph([InputNode("in", (16, 4, 4), message_bits=16), conv,
               lif("l", conv.out_shape, du=100, dv=30, vth=5000)],
              [("in", "conv"), ("conv", "l")])
    x = rng.integers(2**15, 2**16, (3, 2, 16, 4, 4))
    raw = ref_shift(ref_conv(x[0, 0], wt, padding=(1, 1)), 3)
    assert np.abs(raw).max() > 2**26  # really beyond 24 bits
    assert_matches_reference(g, x)


def test_sumpool_windows_sum_exactly_with_padding_and_stride():
    pool = SumPoolNode("pool", (2, 5, 6), kernel_size=(2, 3), stride=(2, 2), padding=(1, 1))
    g = graph([InputNode("in", (2, 5, 6), message_bits=4), pool, lif("l", pool.out_shape)],
              [("in", "pool"), ("pool", "l")])
    rng = np.random.default_rng(4)
    x = rng.integers(0, 16, (2, 2, 2, 5, 6)) * (rng.random((2, 2, 2, 5, 6)) < 0.5)
    a = activation(g, x)
    for s in range(2):
        np.testing.assert_array_equal(
            a[1, s], ref_pool(x[0, s], (2, 3), (2, 2), (1, 1)))
    assert_matches_reference(g, x)


@pytest.mark.parametrize("k, stride, pad, single", [
    ((2, 2), (2, 2), (0, 0), True),  # the last row and column lie in no window
    ((2, 2), (3, 3), (1, 1), True),  # gaps between windows, padding
    ((1, 2), (1, 2), (0, 0), True),
    ((3, 2), (2, 2), (1, 0), False),  # overlapping rows: an input in two windows
])
def test_sumpool_with_one_window_per_input_matches_the_reference(k, stride, pad, single):
    """A pool whose windows do not overlap looks each event's window up directly
    (``PoolOp.dst``); the others loop over the memberships. Both against the reference on
    graded inputs, the pool read by a conv and directly by a LIF (with fan-in counts)."""
    pool = SumPoolNode("pool", (3, 5, 6), kernel_size=k, stride=stride, padding=pad)
    conv = ConvNode("c", np.full((1, 3, 1, 1), 2), pool.out_shape)
    for tail in ("conv", "lif"):
        if tail == "conv":  # a channels-last pool output read by a conv
            g = graph([InputNode("in", (3, 5, 6), message_bits=3), pool, conv,
                       lif("l", conv.out_shape)],
                      [("in", "pool"), ("pool", "c"), ("c", "l")])
        else:  # read by a LIF: fan-in counts too
            g = graph([InputNode("in", (3, 5, 6), message_bits=3), pool,
                       lif("l", pool.out_shape)], [("in", "pool"), ("pool", "l")])
        rng = np.random.default_rng(5)
        x = rng.integers(0, 8, (4, 2, 3, 5, 6)) * (rng.random((4, 2, 3, 5, 6)) < 0.6)
        assert (event_plan.PLANS.get(g).ops["pool"].dst.size > 0) == single
        assert_matches_reference(g, x)


@pytest.mark.parametrize("window, message_bits, narrow",
                         [(2, 0, True), (15, 0, True), (16, 0, False), (10, 2, False)])
def test_pool_rows_are_bytes_only_where_the_window_sums_fit(window, message_bits, narrow):
    """A pool of 0/1 values over windows of at most 255 entries keeps uint8 rows; all ones
    in a 16 x 16 window sum to 256 and graded inputs can pass 255: those rows stay int64.
    Checked through a conv reading the pool (the sums reach u) against the reference."""
    pool = SumPoolNode("pool", (1, 16, 16), kernel_size=(window, window),
                       stride=(window, window))
    conv = ConvNode("c", np.full((1, 1, 1, 1), 2), pool.out_shape)
    g = graph([InputNode("in", (1, 16, 16), message_bits=message_bits), pool, conv,
               lif("l", conv.out_shape)],
              [("in", "pool"), ("pool", "c"), ("c", "l")], num_steps=3)
    x = np.full((3, 2, 1, 16, 16), 3 if message_bits else 1)
    x[1, 1] = 0
    plan = event_plan.PLANS.get(g)
    assert (plan.ops["pool"].out_dtype == np.uint8) == narrow
    assert_matches_reference(g, x)
    a = activation(g, x)
    assert a.max() == 2 * window * window * (3 if message_bits else 1)  # the whole sum


# -------------------------------------------------------- random graphs vs numpy reference
def rand_dense(rng, name, n_out, n_in, sign, density, bits, exp) -> DenseNode:
    if sign == "exc":
        w = rng.integers(0, 256, (n_out, n_in))
    elif sign == "inh":
        w = -rng.integers(0, 256, (n_out, n_in))
    else:
        w = rng.integers(-256, 256, (n_out, n_in))
    w[rng.random(w.shape) >= density] = 0
    return DenseNode(name, w, weight_exp=exp, num_weight_bits=bits)


def rand_lif(rng, name, shape, vth_hi=60) -> LIFNode:
    return lif(name, shape, du=int(rng.choice([-1, 0, 300, 4095])),
               dv=int(rng.choice([0, 200, 4095])), vth=int(rng.integers(0, vth_hi)),
               bias_mant=rng.integers(-30, 30, shape), bias_exp=rng.integers(0, 3, shape))


@pytest.mark.parametrize("seed", range(4))
def test_random_mlp_with_recurrence_and_residual_matches_reference(seed):
    """Covers both dense layouts (CSR when sparse, columns when dense) and both fan-in
    count modes, all sign modes, weight bits and exponents, graded and binary input."""
    rng = np.random.default_rng(seed)
    graded = seed % 2 == 1
    densities = [(0.1, 0.97, 0.6), (0.97, 0.5, 0.1), (0.3, 1.0, 0.2), (0.6, 0.05, 1.0)][seed]
    signs = [("mix", "exc", "inh"), ("mix", "inh", "mix"), ("exc", "inh", "mix"),
             ("mix", "mix", "exc")][seed]
    nodes = [
        InputNode("in", (2, 3, 4), message_bits=3 if graded else 0),
        FlattenNode("flat", (2, 3, 4)),
        rand_dense(rng, "fc1", 20, 24, signs[0], densities[0], int(rng.integers(3, 9)),
                   int(rng.integers(-3, 2))),
        rand_lif(rng, "l1", (20,)),
        rand_dense(rng, "rec", 20, 20, signs[1], densities[1], 8, -2),
        rand_dense(rng, "fc2", 7, 20, signs[2], densities[2], int(rng.integers(4, 9)), 0),
        rand_dense(rng, "skip", 7, 24, "mix", 0.5, 8, -3),
        rand_lif(rng, "l2", (7,)),
    ]
    edges = [("in", "flat"), ("flat", "fc1"), ("fc1", "l1"), ("l1", "rec"), ("rec", "l1"),
             ("l1", "fc2"), ("fc2", "l2"), ("flat", "skip"), ("skip", "l2")]
    g = graph(nodes, edges, num_steps=12)
    p = 0.3 if not graded else 0.5
    x = (rng.random((12, 3, 2, 3, 4)) < p) * (rng.integers(1, 8, (12, 3, 2, 3, 4)) if graded
                                               else 1)
    assert_matches_reference(g, x)
    r = event.run(g, x)
    assert r.spike_counts["l1"].sum() > 0 and r.spike_counts["l2"].sum() > 0


def random_conv_pool_net(seed: int) -> tuple[QGraph, np.ndarray]:
    """lif -> sumpool -> conv -> lif, conv with groups/dilation, lif -> flatten -> dense,
    and its input frames."""
    rng = np.random.default_rng(100 + seed)
    c1 = ConvNode("c1", rng.integers(-40, 60, (4, 2, 3, 3)), (2, 8, 8), padding=(1, 1),
                  weight_exp=int(rng.integers(-1, 2)))
    pool = SumPoolNode("pool", (4, 8, 8), kernel_size=(2, 2), stride=(2, 2))
    c2 = ConvNode("c2", rng.integers(-60, 80, (6, 2, 3, 3)), (4, 4, 4), padding=(2, 2),
                  dilation=(2, 2), stride=(1, 1), groups=2, weight_exp=-1)
    shape2 = c2.out_shape
    n2 = int(np.prod(shape2))
    nodes = [
        InputNode("in", (2, 8, 8), message_bits=0 if seed != 1 else 2),
        c1, rand_lif(rng, "l1", c1.out_shape, 40),
        pool, c2, rand_lif(rng, "l2", shape2, 40),
        FlattenNode("flat", shape2),
        rand_dense(rng, "fc", 5, n2, "mix", 0.7, 8, 0),
        rand_lif(rng, "l3", (5,), 30),
    ]
    edges = [("in", "c1"), ("c1", "l1"), ("l1", "pool"), ("pool", "c2"), ("c2", "l2"),
             ("l2", "flat"), ("flat", "fc"), ("fc", "l3")]
    g = graph(nodes, edges, num_steps=6)
    hi = 2 if seed != 1 else 4
    x = rng.integers(0, hi, (6, 2, 2, 8, 8)) * (rng.random((6, 2, 2, 8, 8)) < 0.3)
    return g, x


@pytest.mark.parametrize("seed", range(3))
def test_random_conv_pool_net_matches_reference(seed):
    g, x = random_conv_pool_net(seed)
    assert_matches_reference(g, x)
    r = event.run(g, x)
    assert all(r.spike_counts[n].sum() > 0 for n in ("l1", "l2", "l3"))


@pytest.mark.parametrize("threads", [1, 2])
def test_every_entry_of_the_spike_records_is_written(monkeypatch, threads):
    """The records start uninitialized (``event._spike_record``): filled with a value no
    LIF sends, a run must still give the results of a run on zeroed records (the fused
    conv + LIF, the single-spike and multi-spike steps, step by step and in chunks)."""
    g, x = random_conv_pool_net(0)
    nodes = dict(g.nodes, l3=replace(g.nodes["l3"], max_spikes=3))  # the multi-spike step
    g = QGraph(nodes, list(g.edges), g.dt, "loihi2", g.num_steps,
               formats=replace(LOIHI_FORMATS, max_message_bits=24)).validate()
    g2, x2 = random_conv_pool_net(1)
    want = [event.run(g, x, threads=threads), event.run(g2, x2, threads=threads),
            event.run(g, x, record_state=True)]
    monkeypatch.setattr(event, "_spike_record",
                        lambda shape, dtype: np.full(shape, 0xA5, dtype=dtype))
    got = [event.run(g, x, threads=threads), event.run(g2, x2, threads=threads),
           event.run(g, x, record_state=True)]
    for w, r in zip(want, got, strict=True):
        for name in w.spikes:
            np.testing.assert_array_equal(r.spikes[name], w.spikes[name], err_msg=name)
            assert r.spikes[name].max(initial=0) < 0xA5


def test_big_weights_and_exponents_exercise_u_wrap_and_v_clip_like_the_reference():
    rng = np.random.default_rng(9)
    g = graph(
        [InputNode("in", (30,)), rand_dense(rng, "fc", 12, 30, "mix", 0.9, 8, 7),
         lif("l", (12,), du=0, dv=0, vth=VTH_OFF),
         rand_dense(rng, "fc2", 4, 12, "exc", 1.0, 8, 7), lif("l2", (4,), du=-1, vth=VTH_OFF)],
        [("in", "fc"), ("fc", "l"), ("l", "fc2"), ("fc2", "l2")], num_steps=10,
    )
    x = (rng.random((10, 2, 30)) < 0.5).astype(np.int64)
    assert_matches_reference(g, x)
    r = event.run(g, x, record_state=True)
    assert np.abs(r.v["l"]).max() == 2**23 - 1  # saturation happened
    assert np.abs(r.u["l"]).max() > 2**22


def test_sparse_csr_and_dense_column_layouts_give_identical_results(monkeypatch):
    rng = np.random.default_rng(11)
    g = graph([InputNode("in", (40,), message_bits=2),
               rand_dense(rng, "fc", 30, 40, "mix", 0.5, 7, -1), rand_lif(rng, "l", (30,)),
               rand_dense(rng, "fc2", 6, 30, "inh", 0.5, 8, 1), rand_lif(rng, "l2", (6,))],
              [("in", "fc"), ("fc", "l"), ("l", "fc2"), ("fc2", "l2")], num_steps=8)
    x = rng.integers(0, 4, (8, 2, 40)) * (rng.random((8, 2, 40)) < 0.4)
    runs = []
    for threshold in (0.0, 1.1):  # every matrix in column layout, then every one in CSR
        monkeypatch.setattr(event_ops, "COLUMN_DENSITY", threshold)
        runs.append(event.run(g, x, record_state=True))
    for field in ("spikes", "u", "v", "synops", "synops_dense", "neuron_updates"):
        for name in ("l", "l2"):
            np.testing.assert_array_equal(getattr(runs[0], field)[name],
                                          getattr(runs[1], field)[name], err_msg=field)
    assert runs[0].peak_fanin == runs[1].peak_fanin
    assert_matches_reference(g, x)


@pytest.mark.parametrize("threshold", [0.0, 1.1])  # dense column layout / CSR layout
def test_chained_operators_pass_signed_graded_values_along_the_path(monkeypatch, threshold):
    """in -> dense -> dense -> lif, in -> conv -> dense (no flatten) -> lif and
    in -> dense -> conv -> sumpool -> lif: intermediate values are signed integers."""
    monkeypatch.setattr(event_ops, "COLUMN_DENSITY", threshold)
    rng = np.random.default_rng(21)
    conv_a = ConvNode("ca", rng.integers(-30, 30, (3, 2, 3, 3)), (2, 5, 5), padding=(1, 1),
                      weight_exp=-1)
    conv_b = ConvNode("cb", rng.integers(-30, 30, (2, 1, 2, 2)), (1, 4, 4), stride=(2, 2),
                      weight_exp=2)
    pool = SumPoolNode("pool", (2, 2, 2), kernel_size=(2, 2), stride=(1, 1), padding=(1, 1))
    n_pool = int(np.prod(pool.out_shape))
    g = graph(
        [InputNode("in", (2, 5, 5), message_bits=2), FlattenNode("flat", (2, 5, 5)),
         rand_dense(rng, "d1", 12, 50, "mix", 0.6, 8, -1),
         rand_dense(rng, "d2", 6, 12, "mix", 0.8, 7, 0),
         conv_a, rand_dense(rng, "d3", 6, 75, "exc", 0.3, 8, -4),
         rand_dense(rng, "d4", 16, 50, "mix", 0.7, 8, 0), conv_b, pool,
         rand_dense(rng, "d5", 6, n_pool, "mix", 0.9, 8, -2),
         lif("l", (6,), du=200, dv=300, vth=40)],
        [("in", "flat"), ("flat", "d1"), ("d1", "d2"), ("d2", "l"),
         ("in", "ca"), ("ca", "d3"), ("d3", "l"),
         ("flat", "d4"), ("d4", "cb"), ("cb", "pool"), ("pool", "d5"), ("d5", "l")],
        num_steps=5,
    )
    x = rng.integers(0, 4, (5, 2, 2, 5, 5)) * (rng.random((5, 2, 2, 5, 5)) < 0.5)
    assert_matches_reference(g, x)


def test_one_operator_feeding_two_lifs_is_applied_for_both():
    w = np.array([[4, -2, 0], [0, 6, 2]])
    g = graph([InputNode("in", (3,)), DenseNode("fc", w), lif("a", (2,), du=0, vth=3),
               lif("b", (2,), dv=100, vth=1), DenseNode("fc2", np.array([[2, 2], [2, 0]])),
               DenseNode("fc3", np.array([[0, 4], [-2, 2]])), lif("c", (2,))],
              [("in", "fc"), ("fc", "a"), ("fc", "b"), ("a", "fc2"), ("fc2", "c"),
               ("b", "fc3"), ("fc3", "c")], num_steps=6)
    x = (np.random.default_rng(2).random((6, 2, 3)) < 0.6).astype(np.int64)
    assert_matches_reference(g, x)
    r = event.run(g, x)
    assert r.spike_counts["a"].sum() > 0 and r.spike_counts["b"].sum() > 0
    np.testing.assert_array_equal(r.synops["a"], r.synops["b"])  # same events, twice


# ------------------------------------------------------------------------- activity counters
def test_synops_hand_count_on_a_tiny_dense_graph():
    # mixed weights, 8 bits: 1 truncates to 0 -> W' = [[6, 0, -8], [0, 2, 4]]
    g = dense_probe([[7, 1, -7], [0, 2, 4]])
    x = np.array([[[1, 1, 0], [1, 0, 1]],  # frame 0: sample 0 {0, 1}, sample 1 {0, 2}
                  [[0, 0, 0], [0, 1, 0]]])  # frame 1: sample 1 {1}
    r = event.run(g, x, num_steps=3, record_state=True)
    # step 1: sample 0 -> col0 (1 nz) + col1 (1 nz: W'[0,1] truncated away) = 2;
    #         sample 1 -> col0 (1) + col2 (2) = 3
    np.testing.assert_array_equal(r.synops["l"], [0, 5, 1])
    np.testing.assert_array_equal(r.synops_dense["l"], [0, 8, 2])  # 4 spikes x N_out=2
    assert np.all(r.synops_dense["l"] >= r.synops["l"])
    assert r.macs_dense["l"] == 6
    assert r.peak_fanin["l"] == 2  # sample 1, neuron 0 and 1 at step 1: {0, 2} and {2}
    # neuron_updates: step 1 both samples' neurons get a != 0 except sample 0 neuron 1 gets
    # W'[1,0] + W'[1,1] = 2 != 0 -> all 4 active; step 2: u, v non-zero everywhere -> 4
    np.testing.assert_array_equal(r.neuron_updates["l"], [0, 4, 4])


def test_zero_weight_synapses_are_not_counted_in_synops():
    g = dense_probe(np.zeros((5, 4), np.int64))
    r = event.run(g, np.ones((2, 3, 4), np.int64), num_steps=3)
    np.testing.assert_array_equal(r.synops["l"], [0, 0, 0])
    np.testing.assert_array_equal(r.synops_dense["l"], [0, 60, 60])
    assert r.peak_fanin["l"] == 0
    np.testing.assert_array_equal(r.neuron_updates["l"], [0, 0, 0])


def test_graded_payload_counts_once_per_nonzero_synapse():
    g = dense_probe([[2, 4], [0, 6]], message_bits=8)
    r = event.run(g, frames([200, 3]), num_steps=2)
    np.testing.assert_array_equal(r.synops["l"], [0, 3])


def test_conv_and_sumpool_counters_by_hand():
    # 1 input channel 3x3, 2 output channels, 3x3 kernel, padding 1: a spike in the corner
    # reaches 4 output positions per channel; in the centre 9.
    w = np.ones((2, 1, 3, 3), np.int64)
    w[1, 0, 0, 0] = 0  # one zero tap in channel 1
    conv = ConvNode("conv", w, (1, 3, 3), padding=(1, 1))
    g = graph([InputNode("in", (1, 3, 3)), conv, lif("l", (2, 3, 3))],
              [("in", "conv"), ("conv", "l")])
    x = np.zeros((2, 1, 1, 3, 3), np.int64)
    x[0, 0, 0, 0, 0] = 1  # corner (0, 0): outputs (oy, ox) in {0, 1}^2 via taps (1-oy, 1-ox)
    x[1, 0, 0, 1, 1] = 1  # centre: all 9 taps, one of them zero in channel 1
    r = event.run(g, x, num_steps=3)
    np.testing.assert_array_equal(r.synops_dense["l"], [0, 8, 18])
    np.testing.assert_array_equal(r.synops["l"], [0, 7, 17])  # the corner uses tap (0, 0)
    assert r.macs_dense["l"] == 2 * 3 * 3 * 1 * 3 * 3
    assert r.peak_fanin["l"] == 1
    pool = SumPoolNode("pool", (1, 4, 4), kernel_size=(2, 2), stride=(1, 1))
    g = graph([InputNode("in", (1, 4, 4)), pool, lif("l", pool.out_shape)],
              [("in", "pool"), ("pool", "l")])
    x = np.zeros((1, 1, 1, 4, 4), np.int64)
    x[0, 0, 0, 1, 1] = x[0, 0, 0, 1, 2] = 1  # each inside 4 windows; window (1,1) has both
    r = event.run(g, x, num_steps=2)
    np.testing.assert_array_equal(r.synops["l"], [0, 8])
    assert r.peak_fanin["l"] == 2 and r.macs_dense["l"] == 9 * 4


def test_counters_of_lif_sumpool_conv_path_add_both_operators():
    pool = SumPoolNode("pool", (1, 2, 2), kernel_size=(2, 2), stride=(2, 2))
    conv = ConvNode("conv", np.array([[[[3]]], [[[0]]]]), (1, 1, 1))
    g = graph([InputNode("in", (1, 2, 2)), FlattenNode("f", (1, 2, 2)),
               DenseNode("fc", np.eye(4, dtype=np.int64) * 2), lif("l1", (1, 2, 2), vth=1,
                                                                   dv=4095),
               pool, conv, lif("l2", (2, 1, 1))],
              [("in", "f"), ("f", "fc"), ("fc", "l1"), ("l1", "pool"), ("pool", "conv"),
               ("conv", "l2")])
    r = event.run(g, np.array([[[[[1, 1], [0, 1]]]]]), num_steps=3, record_state=True)
    # l1 spikes 3 neurons at step 1; at step 2: 3 pool memberships + 1 conv event (nz tap)
    np.testing.assert_array_equal(r.synops["l2"], [0, 0, 4])
    np.testing.assert_array_equal(r.synops_dense["l2"], [0, 0, 5])
    assert r.peak_fanin["l2"] == 1
    assert r.u["l2"][2, 0, 0, 0, 0] == 3 * 3 * 64


def test_spike_counts_and_predictions_take_lowest_index_on_ties():
    g = dense_probe(np.eye(3, dtype=np.int64) * 2, vth=1, dv=4095)
    x = np.zeros((3, 2, 3), np.int64)
    x[:, 0, 2] = 1  # sample 0: neuron 2 fires 3 times
    x[0, 1, 1] = x[0, 1, 2] = 1  # sample 1: tie between 1 and 2
    r = event.run(g, x)
    np.testing.assert_array_equal(r.predictions(g), [2, 1])
    np.testing.assert_array_equal(r.spike_counts["l"], [0, 3, 1, 1, 0])
    assert r.u is None and r.v is None


# ------------------------------------------------------------------------------- bad inputs
@pytest.mark.parametrize(
    ("x", "message"),
    [
        (np.zeros((2, 1, 4)), "integer"),
        (np.zeros((2, 4), np.int64), "shape"),
        (np.zeros((2, 1, 5), np.int64), "shape"),
        (np.full((2, 1, 3), -1), "negative"),
        (np.full((2, 1, 3), 2), "binary"),
    ],
)
def test_bad_binary_input_raises_graph_error(x, message):
    g = dense_probe(np.ones((2, 3), np.int64))
    with pytest.raises(GraphError, match=message):
        event.run(g, x)


def test_graded_value_out_of_range_raises_graph_error():
    g = dense_probe(np.ones((2, 3), np.int64), message_bits=4)
    event.run(g, np.full((1, 1, 3), 15))  # 15 < 2^4 is fine
    with pytest.raises(GraphError, match="2\\*\\*4"):
        event.run(g, np.full((1, 1, 3), 16))


def test_negative_num_steps_raises_graph_error():
    with pytest.raises(GraphError, match="num_steps"):
        event.run(dense_probe([[1]]), frames([1]), num_steps=-1)


def test_module_never_imports_torch():
    code = ("import sys, numpy as np; from snn2hw.backends import event; "
            "event.warmup(); assert 'torch' not in sys.modules, 'torch imported'")
    subprocess.run([sys.executable, "-c", code], check=True)


def _graded_conv_case() -> tuple[QGraph, np.ndarray]:
    """Large 16-bit graded events into a conv of large positive weights: the interior sums
    pass 2^31 (so the simulator must count fan-in on its unpacked path)."""
    rng = np.random.default_rng(3)
    wt = rng.integers(240, 256, (2, 16, 3, 3))
    conv = ConvNode("conv", wt, (16, 4, 4), weight_exp=3, padding=(1, 1))
    g = graph([InputNode("in", (16, 4, 4), message_bits=16), conv,
               lif("l", conv.out_shape, du=100, dv=30, vth=5000)],
              [("in", "conv"), ("conv", "l")])
    x = rng.integers(2**16 - 2**10, 2**16, (3, 2, 16, 4, 4))
    assert int(ref_conv(x[0, 0], wt, padding=(1, 1)).max()) >= 2**31
    return g, x


def test_binary_input_shortcut_is_taken_only_for_binary_sources():
    g, _ = _graded_conv_case()
    assert not event.PLANS.get(g).ops["conv"].binary_input  # 16-bit payloads
    g.nodes["in"].message_bits = 0
    assert event.PLANS.get(g).ops["conv"].binary_input  # binary input: no scan needed
    g.nodes["in"].message_bits = 16
    assert not event.PLANS.get(g).ops["conv"].binary_input  # re-prepared after the change


def test_binary_shortcut_on_graded_input_would_corrupt_the_fanin_counts(monkeypatch):
    # The packed sum keeps values right modulo 2^32 (so the 24-bit wrapped output too),
    # but counts riding above bit 32 are corrupted once |sum| >= 2^31.
    g, x = _graded_conv_case()
    good = event.run(g, x, 4, threads=1)
    assert_matches_reference(g, x)
    event.PLANS.clear()
    monkeypatch.setattr(event_plan, "binary_source", lambda graph, key: True)  # the fault
    bad = event.run(g, x, 4, threads=1)
    event.PLANS.clear()
    assert good.counters.peak_fanin["l"] == 144  # 16 channels x 3 x 3 taps, all non-zero
    assert bad.counters.peak_fanin["l"] != good.counters.peak_fanin["l"]


@pytest.mark.parametrize("hwc_out", [False, True])
@pytest.mark.parametrize("stride", [1, 2])
def test_conv_int32_packed_sums_hold_until_their_bound_and_int64_takes_over(hwc_out, stride):
    # few events: sum|x| * max|w| < 2^15, the sums run packed in int32; every input
    # active: 16 x 3 x 3 taps of ~230 per output, sums beyond 2^15: int64
    rng = np.random.default_rng(stride)
    w = rng.integers(200, 256, (3, 16, 3, 3))  # no cancelling: sums grow with the events
    node = ConvNode("conv", w, (16, 9, 9), stride=(stride, stride), padding=(1, 1))
    c_out, h_out, w_out = node.out_shape
    sparse = np.zeros((1, 16, 9, 9), np.uint8)
    sparse[0, 0, 4, 4] = sparse[0, 11, 2, 5] = 1  # 2 events: 2 * 255 < 2^15
    dense = np.ones((1, 16, 9, 9), np.uint8)
    for x, narrow in ((sparse, True), (dense, False)):
        assert (int(x.sum()) * int(w.max()) < 2**15) == narrow
        full = ref_conv(x[0].astype(np.int64), w, (stride, stride), (1, 1))
        assert (np.abs(full).max() < 2**15) == narrow  # the dense sums need int64
        want = ref_wrap24(full)
        op = event_ops.ConvOp(node, hwc_in=False, hwc_out=hwc_out)
        op.binary_input = True
        op.alloc(1)
        op.apply(x.reshape(1, -1), True, np.zeros((1, 2), np.int64), 0)
        got = op.out[0]
        if hwc_out:  # channels-last -> (C, H, W)
            got = got.reshape(h_out, w_out, c_out).transpose(2, 0, 1)
        np.testing.assert_array_equal(got.reshape(c_out, h_out, w_out), want)
        if not narrow:  # fault: a max|w| that lies (0) keeps the int32 packing: it wraps
            op.geom = op.geom.copy()
            op.geom[11] = 0  # max|w| (event_kernels_conv.conv_scatter's geom)
            op.alloc(1)  # the kernel's arguments are bound per run
            op.apply(x.reshape(1, -1), True, np.zeros((1, 2), np.int64), 1)
            bad = op.out[0]
            if hwc_out:
                bad = bad.reshape(h_out, w_out, c_out).transpose(2, 0, 1)
            assert not np.array_equal(bad.reshape(c_out, h_out, w_out), want)
