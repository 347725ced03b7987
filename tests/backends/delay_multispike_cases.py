"""Small graphs with synaptic delays and multi-spike output, each with its expected
integers worked out by hand in the comments (docs/qgraph.md "Synaptic delays", "Multi-spike
output"), plus a tiny independent numpy loop for random dense graphs. Shared by the
torch-int and ONNX tests (imported as a plain module: pytest puts this folder on sys.path).

Most observing LIFs have ``du = 4095`` (no synaptic memory: ``u = a << 6``), ``dv = 4095``
(``v = rtz(v, 12) + u``, no memory below 4096) and the largest threshold, so their ``u``
trace shows the synaptic input ``a`` of every step. Expectations ``"a"`` are compared
with ``u >> 6``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from snn2hw.quant.formats import LOIHI_FORMATS, NumberFormats
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

VTH_MAX = 131071
# Loihi's arithmetic with delays and graded spikes allowed (a Loihi-2-like target).
FMT = dataclasses.replace(LOIHI_FORMATS, max_synaptic_delay=63, max_message_bits=24)


def fmt(reset: str = "zero", compare: str = ">") -> NumberFormats:
    return dataclasses.replace(FMT, reset=reset, threshold_compare=compare)


def lif(name, shape, du=4095, dv=4095, vth=VTH_MAX, max_spikes=1) -> LIFNode:
    shape = (shape,) if isinstance(shape, int) else tuple(shape)
    z = np.zeros(shape, np.int64)
    return LIFNode(name, shape, du=du, dv=dv, vth=vth, bias_mant=z, bias_exp=z.copy(),
                   max_spikes=max_spikes)


def dense(name, w, delay=0, weight_exp=0) -> DenseNode:
    d = np.asarray(delay, np.int64) if np.ndim(delay) else int(delay)
    return DenseNode(name, np.asarray(w, np.int64), weight_exp, 8, delay=d)


def graph(nodes, edges, out, formats=FMT, num_steps=4) -> QGraph:
    nodes = list(nodes)
    src = next(n for n in nodes if n.name == out)
    nodes.append(OutputNode("out", tuple(src.shape)))
    return QGraph({n.name: n for n in nodes}, [*edges, (out, "out")], 1e-3, "loihi2",
                  num_steps, formats=formats).validate()


def steps(n, shape, at):
    """An int64 trace ``[n, B=1, *shape]`` that is zero except ``at`` = {step: values}."""
    out = np.zeros((n, 1, *np.atleast_1d(shape)), np.int64)
    for k, val in at.items():
        out[k, 0] = val
    return out


@dataclass
class Case:
    """A graph, its input frames ``[F, B, ...]``, the run length (None: the default) and
    the expected traces ``{"a" | "spikes" | "v": {lif: [N, B, *shape]}}``."""

    name: str
    graph: QGraph
    frames: np.ndarray
    num_steps: int | None
    expect: dict[str, dict[str, np.ndarray]]
    feature: str  # "delay" or "multi_spike": what the expectation depends on


# ----- synaptic delays ------------------------------------------------------------------------
def per_synapse_mixed_delays() -> Case:
    # W (mixed, even: unchanged by preparation), D per synapse; a_i[n] gets W[i,j] from an
    # input spike of frame m at n = m + 1 + D[i,j].
    w = [[2, 4, 6], [-8, 12, 10]]
    d = [[0, 1, 2], [1, 3, 0]]
    g = graph([InputNode("x", (3,)), dense("d", w, d), lif("L", 2)],
              [("x", "d"), ("d", "L")], "L", num_steps=2)
    x = np.zeros((2, 2, 3), np.int64)
    x[0, 0] = [1, 1, 1]  # sample 0: every input at frame 0
    x[1, 1] = [1, 0, 0]  # sample 1: input 0 at frame 1 only
    a = np.zeros((6, 2, 2), np.int64)
    # sample 0: neuron 0 gets 2, 4, 6 at steps 1, 2, 3; neuron 1 gets 10, -8, 12 at 1, 2, 4
    a[1:5, 0] = [[2, 10], [4, -8], [6, 0], [0, 12]]
    # sample 1: synapses from input 0 (delays 0 and 1) from frame 1: steps 2 and 3
    a[2, 1] = [2, 0]
    a[3, 1] = [0, -8]
    return Case("per_synapse_mixed_delays", g, x, 6, {"a": {"L": a}}, "delay")


def products_summed_before_shift() -> Case:
    # W = [[-3, -3]] (inhibitory, kept), weight_exp = -1, D = [[1, 0]].
    # Sample 0: x0 at frame 0 (delay 1) and x1 at frame 1 (delay 0) both arrive at step 2:
    # shift(-3 + -3, -1) = -3 (shifting each delay's product first: -2 + -2 = -4).
    # Sample 1: both at frame 0: -3 arrives alone at steps 1 and 2: floor(-3/2) = -2 each.
    g = graph([InputNode("x", (2,)), dense("d", [[-3, -3]], [[1, 0]], weight_exp=-1),
               lif("L", 1)], [("x", "d"), ("d", "L")], "L", num_steps=2)
    x = np.zeros((2, 2, 2), np.int64)
    x[0, 0] = [1, 0]
    x[1, 0] = [0, 1]
    x[0, 1] = [1, 1]
    a = np.zeros((4, 2, 1), np.int64)
    a[2, 0] = -3
    a[1, 1] = a[2, 1] = -2
    return Case("products_summed_before_shift", g, x, 4, {"a": {"L": a}}, "delay")


def sign_mode_of_the_whole_matrix() -> Case:
    # Mixed [7, -7] becomes [6, -8] (docs/qgraph.md); split by delay [[0, 1]] AFTER the
    # preparation (splitting first would make [7] excitatory and [-7] inhibitory: 7, -7).
    g = graph([InputNode("x", (2,)), dense("d", [[7, -7]], [[0, 1]]), lif("L", 1)],
              [("x", "d"), ("d", "L")], "L", num_steps=1)
    return Case("sign_mode_of_the_whole_matrix", g, np.ones((1, 1, 2), np.int64), 4,
                {"a": {"L": steps(4, 1, {1: 6, 2: -8})}}, "delay")


def scalar_dense_delay() -> Case:
    # delay 2 for every synapse: frame 0's x0 at step 3, frame 1's x1 at step 4.
    g = graph([InputNode("x", (2,)), dense("d", [[3, 5]], 2), lif("L", 1)],
              [("x", "d"), ("d", "L")], "L", num_steps=2)
    x = np.array([[[1, 0]], [[0, 1]]], np.int64)
    return Case("scalar_dense_delay", g, x, 6, {"a": {"L": steps(6, 1, {3: 3, 4: 5})}},
                "delay")


def conv_delay() -> Case:
    # conv 2x2 [[1, 2], [3, 4]] on x (3x3), delay 2: conv(x) = [[5, 5], [9, 4]] at step 3.
    x = np.array([[1, 0, 1], [0, 1, 0], [1, 1, 0]], np.int64)
    w = np.array([[[[1, 2], [3, 4]]]], np.int64)
    g = graph([InputNode("x", (1, 3, 3)), ConvNode("c", w, (1, 3, 3), delay=2),
               lif("L", (1, 2, 2))], [("x", "c"), ("c", "L")], "L", num_steps=1)
    a = steps(5, (1, 2, 2), {3: [[[5, 5], [9, 4]]]})
    return Case("conv_delay", g, x[None, None, None], 5, {"a": {"L": a}}, "delay")


def chained_ops_delays_add() -> Case:
    # x (1x4x4) -> conv 1x1 [2], delay 1 -> sumpool 2x2 -> flatten -> dense W, D -> L.
    # Ones per 2x2 block: 1, 2, 0, 3, so p = 2 * [1, 2, 0, 3] = [2, 4, 0, 6]; synapse (i, j)
    # delivers W[i,j] * p_j at step 1 + (1 + D[i,j]) for frame 0.
    x = np.zeros((1, 4, 4), np.int64)
    for r, c in [(0, 0), (0, 2), (1, 3), (2, 2), (3, 2), (3, 3)]:
        x[0, r, c] = 1
    w = [[1, 2, 3, 4], [5, 6, 7, 8]]
    d = [[0, 1, 2, 3], [3, 2, 1, 0]]
    g = graph([InputNode("x", (1, 4, 4)),
               ConvNode("c", np.array([[[[2]]]]), (1, 4, 4), delay=1),
               SumPoolNode("p", (1, 4, 4), (2, 2), (2, 2)), FlattenNode("f", (1, 2, 2)),
               dense("d", w, d), lif("L", 2)],
              [("x", "c"), ("c", "p"), ("p", "f"), ("f", "d"), ("d", "L")], "L",
              num_steps=1)
    # neuron 0: 2 (n=2), 8 (n=3), 0 (n=4), 24 (n=5); neuron 1: 48 (n=2), 0, 24 (n=4), 10 (n=5)
    a = steps(6, 2, {2: [2, 48], 3: [8, 0], 4: [0, 24], 5: [24, 10]})
    # num_steps None: default length num_steps + depth() = 1 + (1 + 3 + 1) = 6 steps
    return Case("chained_ops_delays_add", g, x[None, None], None, {"a": {"L": a}}, "delay")


def recurrent_delay() -> Case:
    # x -> [2] -> L (vth 1: spikes when v = 64 * a > 64); L -> [4], delay 2 -> L.
    # Frame 0 makes L spike at step 1; each spike returns at step n + 1 + 2 = n + 3.
    g = graph([InputNode("x", (1,)), dense("w", [[2]]), lif("L", 1, vth=1),
               dense("r", [[4]], 2)],
              [("x", "w"), ("w", "L"), ("L", "r"), ("r", "L")], "L", num_steps=1)
    s = steps(11, 1, {1: 1, 4: 1, 7: 1, 10: 1})
    return Case("recurrent_delay", g, np.ones((1, 1, 1), np.int64), 11, {"spikes": {"L": s}},
                "delay")


def default_length_covers_delays() -> Case:
    # num_steps 2, delay 3: depth 4, so 6 steps; frame 1 arrives at 1 + 1 + 3 = 5, the last.
    g = graph([InputNode("x", (1,)), dense("d", [[1]], 3), lif("L", 1)],
              [("x", "d"), ("d", "L")], "L", num_steps=2)
    return Case("default_length_covers_delays", g, np.ones((2, 1, 1), np.int64), None,
                {"a": {"L": steps(6, 1, {4: 1, 5: 1})}}, "delay")


DELAY_CASES = [per_synapse_mixed_delays, products_summed_before_shift,
               sign_mode_of_the_whole_matrix, scalar_dense_delay, conv_delay,
               chained_ops_delays_add, recurrent_delay, default_length_covers_delays]


# ----- multi-spike output ---------------------------------------------------------------------
# TH = vth << 6 = 64 for vth = 1. An identity dense from graded inputs x gives v = 64 x at
# step 1 (dv = 4095 forgets older v).
#   ">=": n = min(3, x)                          -> x = 0..5: 0 1 2 3 3 3
#   ">":  n = min(3, floor((64 x - 1) / 64))      ->           0 0 1 2 3 3
#   zero reset: v = 0 where n > 0; subtract: v = 64 x - 64 n
THRESHOLD_TABLE = {
    ("zero", ">="): ([0, 1, 2, 3, 3, 3], [0, 0, 0, 0, 0, 0]),
    ("zero", ">"): ([0, 0, 1, 2, 3, 3], [0, 64, 0, 0, 0, 0]),
    ("subtract", ">="): ([0, 1, 2, 3, 3, 3], [0, 0, 0, 0, 64, 128]),
    ("subtract", ">"): ([0, 0, 1, 2, 3, 3], [0, 64, 64, 64, 64, 128]),
}


def count_threshold_table(reset: str, compare: str) -> Case:
    n, v = THRESHOLD_TABLE[(reset, compare)]
    g = graph([InputNode("x", (6,), message_bits=3), dense("d", np.eye(6, dtype=np.int64)),
               lif("L", 6, vth=1, max_spikes=3)], [("x", "d"), ("d", "L")], "L",
              formats=fmt(reset, compare), num_steps=1)
    x = np.arange(6, dtype=np.int64)[None, None]
    return Case(f"count_table_{reset}_{compare}", g, x, 2,
                {"spikes": {"L": steps(2, 6, {1: n})}, "v": {"L": steps(2, 6, {1: v})}},
                "multi_spike")


# One input of 5 at frame 0, dv = 0 (no leak), du = 4095 (u = a << 6, then 0), max 2:
#   ">=" subtract: v 320 -> n 2, v 192; n 2, v 64; n 1, v 0; then nothing
#   ">=" zero:     v 320 -> n 2, v 0; then nothing
#   ">"  subtract: v 320 -> n 2 (floor(319/64) = 4, capped), v 192; n 2 (floor(191/64)), v 64;
#                  64 > 64 is false: no spike, v stays 64
CARRY_TABLE = {
    ("subtract", ">="): ([0, 2, 2, 1, 0], [0, 192, 64, 0, 0]),
    ("zero", ">="): ([0, 2, 0, 0, 0], [0, 0, 0, 0, 0]),
    ("subtract", ">"): ([0, 2, 2, 0, 0], [0, 192, 64, 64, 64]),
}


def capped_count_carries_over(reset: str, compare: str) -> Case:
    s, v = CARRY_TABLE[(reset, compare)]
    g = graph([InputNode("x", (1,), message_bits=3), dense("d", [[1]]),
               lif("L", 1, dv=0, vth=1, max_spikes=2)], [("x", "d"), ("d", "L")], "L",
              formats=fmt(reset, compare), num_steps=1)
    return Case(f"carry_{reset}_{compare}", g, np.full((1, 1, 1), 5, np.int64), 5,
                {"spikes": {"L": np.array(s)[:, None, None]},
                 "v": {"L": np.array(v)[:, None, None]}}, "multi_spike")


def graded_count_feeds_next_dense() -> Case:
    # L1 (">=", max 3) emits n = min(3, x) = [1, 2, 3, 3] at step 1 for x = [1, 2, 3, 4];
    # the dense [1, 2, 4, 8] reads the counts as payload: a2 = 1 + 4 + 12 + 24 = 41 at
    # step 2 (binary spikes would give 15).
    g = graph([InputNode("x", (4,), message_bits=3), dense("d1", np.eye(4, dtype=np.int64)),
               lif("L1", 4, vth=1, max_spikes=3), dense("d2", [[1, 2, 4, 8]]), lif("L2", 1)],
              [("x", "d1"), ("d1", "L1"), ("L1", "d2"), ("d2", "L2")], "L2",
              formats=fmt("zero", ">="), num_steps=1)
    x = np.array([1, 2, 3, 4], np.int64)[None, None]
    return Case("graded_count_feeds_next_dense", g, x, 4,
                {"spikes": {"L1": steps(4, 4, {1: [1, 2, 3, 3]})},
                 "a": {"L2": steps(4, 1, {2: 41})}}, "multi_spike")


def count_above_255() -> Case:
    # max_spikes 300 (9-bit payload): x = 300 gives n = 300 at step 1, and the next dense
    # [[1]] delivers 300 at step 2.
    g = graph([InputNode("x", (1,), message_bits=9), dense("d1", [[1]]),
               lif("L1", 1, vth=1, max_spikes=300), dense("d2", [[1]]), lif("L2", 1)],
              [("x", "d1"), ("d1", "L1"), ("L1", "d2"), ("d2", "L2")], "L2",
              formats=fmt("zero", ">="), num_steps=1)
    return Case("count_above_255", g, np.full((1, 1, 1), 300, np.int64), 3,
                {"spikes": {"L1": steps(3, 1, {1: 300})}, "a": {"L2": steps(3, 1, {2: 300})}},
                "multi_spike")


MULTI_SPIKE_CASES = [
    *(lambda r=r, c=c: count_threshold_table(r, c) for r, c in THRESHOLD_TABLE),
    *(lambda r=r, c=c: capped_count_carries_over(r, c) for r, c in CARRY_TABLE),
    graded_count_feeds_next_dense,
    count_above_255,
]
ALL_CASES = [*DELAY_CASES, *MULTI_SPIKE_CASES]


def check(case: Case, spikes: dict, u: dict, v: dict) -> None:
    """Assert a backend's traces equal the case's expectations (``a`` read as u >> 6)."""
    for key, per_lif in case.expect.items():
        for name, want in per_lif.items():
            got = {"spikes": spikes, "v": v, "a": u}[key][name].astype(np.int64)
            if key == "a":
                assert np.all(got % 64 == 0), f"{case.name}: u of {name} not a << 6"
                got = got >> 6
            np.testing.assert_array_equal(got, want, err_msg=f"{case.name}: {key} of {name}")


def without_feature(case: Case) -> QGraph:
    """The case's graph with its feature removed (delays 0 / max_spikes 1), to show the
    expectation depends on it."""
    nodes = []
    for n in case.graph.nodes.values():
        if case.feature == "delay" and hasattr(n, "delay"):
            n = dataclasses.replace(n, delay=0)
        if case.feature == "multi_spike" and isinstance(n, LIFNode):
            n = dataclasses.replace(n, max_spikes=1)
        nodes.append(n)
    g = case.graph
    return QGraph({n.name: n for n in nodes}, list(g.edges), g.dt, g.target, g.num_steps,
                  formats=g.formats).validate()


# ----- an independent numpy loop for random dense graphs ----------------------------------------
def random_dense_graph(seed: int, reset: str, compare: str) -> QGraph:
    """x (6) -> d1 (per-synapse delays) -> H (5, multi-spike 3, recurrent through r with
    per-synapse delays) -> d2 (delay 2) -> O (3, multi-spike 2). Weights are even and in
    range, so weight preparation leaves them unchanged."""
    rng = np.random.default_rng(seed)
    nodes = [
        InputNode("x", (6,), message_bits=2),
        dense("d1", rng.integers(-20, 40, (5, 6)) * 2, rng.integers(0, 4, (5, 6)), -1),
        lif("H", 5, du=700, dv=300, vth=2, max_spikes=3),
        dense("r", rng.integers(-20, 20, (5, 5)) * 2, rng.integers(0, 3, (5, 5))),
        dense("d2", rng.integers(-30, 60, (3, 5)) * 2, 2, 1),
        lif("O", 3, du=200, dv=900, vth=3, max_spikes=2),
    ]
    edges = [("x", "d1"), ("d1", "H"), ("H", "r"), ("r", "H"), ("H", "d2"), ("d2", "O")]
    return graph(nodes, edges, "O", formats=fmt(reset, compare), num_steps=8)


def reference_run(g: QGraph, x: np.ndarray, n_steps: int) -> dict[str, dict]:
    """docs/qgraph.md written out literally for graphs of input, dense and LIF nodes with
    unchanged weights: a_i[n] = shift(sum_j W[i,j] out_src[n-1-D[i,j]]_j, e), then the LIF
    step of the graph's formats with the multi-spike rule. Returns spikes, u, v per LIF."""
    f = g.formats
    batch = x.shape[1]
    out = {g.input_node.name: np.zeros((n_steps, batch, x.shape[2]), np.int64)}
    out[g.input_node.name][: min(n_steps, len(x))] = x[:n_steps]
    lifs = g.lif_nodes
    rec = {k: {n.name: np.zeros((n_steps, batch, n.shape[0]), np.int64) for n in lifs}
           for k in ("spikes", "u", "v")}
    for n in lifs:
        out[n.name] = rec["spikes"][n.name]
    u = {n.name: np.zeros((batch, n.shape[0]), np.int64) for n in lifs}
    v = {n.name: np.zeros((batch, n.shape[0]), np.int64) for n in lifs}
    half_u, half_v = 1 << (f.u_bits - 1), 1 << (f.v_bits - 1)
    for step in range(n_steps):
        for node in lifs:
            a = np.zeros((batch, node.shape[0]), np.int64)
            for path in g.synapse_paths(node.name):
                src, (op,) = path[0], path[1:]
                d = g.nodes[op]
                w = np.asarray(d.weight, np.int64)
                dly = np.broadcast_to(np.asarray(d.delay, np.int64), w.shape)
                acc = np.zeros((batch, w.shape[0]), np.int64)
                for i in range(w.shape[0]):
                    for j in range(w.shape[1]):
                        m = step - 1 - int(dly[i, j])
                        if m >= 0:
                            acc[:, i] += int(w[i, j]) * out[src][m, :, j]
                e = int(d.weight_exp)
                a += acc << e if e >= 0 else acc >> -e
            s_db = 1 << f.decay_bits
            uu = u[node.name] * (s_db - (node.du + 1))
            uu = np.sign(uu) * (np.abs(uu) >> f.decay_bits) + (a << f.activation_shift)
            uu = np.where(uu > half_u, uu - 2 * half_u, uu)
            uu = np.where(uu <= -half_u, uu + 2 * half_u, uu)
            vv = v[node.name] * (s_db - node.dv)
            vv = np.sign(vv) * (np.abs(vv) >> f.decay_bits) + uu
            vv = np.clip(vv, -(half_v - 1), half_v - 1)
            th = node.vth << f.activation_shift
            n_sp = np.zeros_like(vv)
            for idx in np.ndindex(vv.shape):
                val = int(vv[idx])
                if f.threshold_compare == ">=" and val >= th:
                    n_sp[idx] = min(node.max_spikes, val // th)
                elif f.threshold_compare == ">" and val > th:
                    n_sp[idx] = min(node.max_spikes, (val - 1) // th)
            vv = np.where(n_sp > 0, 0, vv) if f.reset == "zero" else vv - n_sp * th
            u[node.name], v[node.name] = uu, vv
            for k, val in (("spikes", n_sp), ("u", uu), ("v", vv)):
                rec[k][node.name][step] = val
    return rec
