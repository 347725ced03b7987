"""Periodic state reset (docs/qgraph.md "Periodic state reset") for the torch-int and ONNX
tests: hand-computed small graphs, an independent numpy loop of the docs, and the three
faults the tests must catch. A plain module (pytest puts tests/backends on sys.path; the
exporter tests reach it through tests/exporters/conftest.py). Shares no code with any
backend: the weight preparation and the LIF step below are written from the docs.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import numpy as np

from snn2hw.quant.formats import LOIHI_FORMATS, NumberFormats
from snn2hw.quant.qgraph import DenseNode, InputNode, LIFNode, OutputNode, QGraph

# Loihi's arithmetic, with Loihi 2's synaptic delays and graded spikes allowed
LOIHI2 = dataclasses.replace(LOIHI_FORMATS, max_synaptic_delay=63, max_message_bits=24)
QUIET = 131071  # the highest vth: the neuron never spikes, its u and v are read
FAULTS = ("phase_off_by_one", "reset_after_integration", "only_v_reset")


def lif(name: str, n: int, *, du: int, dv: int, vth: int = QUIET, bias: int = 0,
        interval: int = 0, offset: int = 0, max_spikes: int = 1) -> LIFNode:
    return LIFNode(name, (n,), du=du, dv=dv, vth=vth,
                   bias_mant=np.full(n, bias, np.int64), bias_exp=np.zeros(n, np.int64),
                   max_spikes=max_spikes, reset_interval=interval, reset_offset=offset)


def dense(name: str, w, weight_exp: int = 0, delay=0) -> DenseNode:
    if not isinstance(delay, int):
        delay = np.asarray(delay, np.int64)
    return DenseNode(name, np.asarray(w, np.int64), weight_exp, 8, delay=delay)


def graph(nodes: list, edges: list, out: str, num_steps: int,
          fmt: NumberFormats = LOIHI2) -> QGraph:
    n_out = next(n for n in nodes if n.name == out).shape
    nodes = [*nodes, OutputNode("out", tuple(n_out))]
    return QGraph({n.name: n for n in nodes}, [*edges, (out, "out")], 1e-3, "loihi2",
                  num_steps, formats=fmt).validate()


@dataclass
class Case:
    """A graph, its frames ``[F, B, n_in]``, the steps to run and the expected ``spikes``,
    ``u``, ``v`` per LIF, each ``[N, B, n]`` (a LIF left out is not checked)."""

    name: str
    graph: QGraph
    frames: np.ndarray
    num_steps: int
    expect: dict[str, dict[str, np.ndarray]] = field(default_factory=dict)


def _col(*samples: list[int]) -> np.ndarray:
    """Per-sample traces of a one-neuron LIF as ``[N, B, 1]``."""
    return np.stack([np.asarray(s, np.int64) for s in samples], axis=1)[..., None]


def _hot(n: int, *steps: int) -> list[int]:
    return [1 if t in steps else 0 for t in range(n)]


def bias_interval5_offset2() -> Case:
    """in -> fc [[1]] -> L (du -1: u never decays; dv 0: v never decays; bias 3; silent),
    reset_interval 5, reset_offset 2, input 1 every frame (a = 1 from step 1 on):
    u = u + 64 a, v = v + u + 3, and steps 2 and 7 start from u = v = 0::

        n  0  1   2   3   4   5   6   7   8   9  10  11
        u  0 64  64 128 192 256 320  64 128 192 256 320
        v  3 70  67 198 393 652 975  67 198 393 652 975
    """
    g = graph([InputNode("in", (1,)), dense("fc", [[1]]),
               lif("L", 1, du=-1, dv=0, bias=3, interval=5, offset=2)],
              [("in", "fc"), ("fc", "L")], "L", num_steps=12)
    u = [0, 64, 64, 128, 192, 256, 320, 64, 128, 192, 256, 320]
    v = [3, 70, 67, 198, 393, 652, 975, 67, 198, 393, 652, 975]
    return Case("bias_interval5_offset2", g, np.ones((12, 1, 1), np.int64), 12,
                {"L": {"u": _col(u), "v": _col(v), "spikes": _col([0] * 12)}})


def two_layers_offsets_0_and_1() -> Case:
    """lava-dl netx's layer timing: in -> fc1 -> L1 (interval 3, offset 0) -> fc2 -> L2
    (interval 3, offset 1), input 1 every frame, weights [[1]].

    L1: du 4095 (u = a << 6 = 64 from step 1), dv 0, vth 2 (TH = 128, '>'), reset to 0.
    Resets at 0, 3, 6, 9, 12 restart its climb 64, 128, 192 > TH: spikes at 5, 8, 11
    (without them: 3, 6, 9, 12). L2: du -1, dv 0, bias 5, silent; L1's spikes arrive at
    6, 9, 12 (u = 64); resets at 1, 4, 7, 10, 13::

        n    0  1  2  3  4  5  6  7  8  9 10 11 12 13
        v1   0 64 128 64 128 0 64 128 0 64 128 0 64 128
        u2   0  0  0  0  0  0 64  0  0 64  0  0 64  0
        v2   5  5 10 15  5 10 79  5 10 79  5 10 79  5
    """
    g = graph([InputNode("in", (1,)), dense("fc1", [[1]]),
               lif("L1", 1, du=4095, dv=0, vth=2, interval=3, offset=0), dense("fc2", [[1]]),
               lif("L2", 1, du=-1, dv=0, bias=5, interval=3, offset=1)],
              [("in", "fc1"), ("fc1", "L1"), ("L1", "fc2"), ("fc2", "L2")], "L2",
              num_steps=14)
    n = 14
    return Case("two_layers_offsets_0_and_1", g, np.ones((n, 1, 1), np.int64), n, {
        "L1": {"spikes": _col(_hot(n, 5, 8, 11)), "u": _col([0] + [64] * 13),
               "v": _col([0, 64, 128, 64, 128, 0, 64, 128, 0, 64, 128, 0, 64, 128])},
        "L2": {"spikes": _col([0] * n),
               "u": _col([0, 0, 0, 0, 0, 0, 64, 0, 0, 64, 0, 0, 64, 0]),
               "v": _col([5, 5, 10, 15, 5, 10, 79, 5, 10, 79, 5, 10, 79, 5])},
    })


def interval_1_every_step() -> Case:
    """reset_interval 1: every step starts from rest. in -> fc [[1]] -> L (du -1, dv 0,
    bias 3, vth 1: TH = 64), input 1 every frame: step 0 gives u 0, v 3; every later step
    u = 64, v = 67 > 64, a spike and v = 0 (without the reset u would climb 64 n)."""
    n = 6
    g = graph([InputNode("in", (1,)), dense("fc", [[1]]),
               lif("L", 1, du=-1, dv=0, vth=1, bias=3, interval=1)],
              [("in", "fc"), ("fc", "L")], "L", num_steps=n)
    return Case("interval_1_every_step", g, np.ones((n, 1, 1), np.int64), n,
                {"L": {"spikes": _col([0] + [1] * 5), "u": _col([0] + [64] * 5),
                       "v": _col([3] + [0] * 5)}})


def delays_and_recurrent_edge() -> Case:
    """The reset clears u and v, not what is in flight on delayed or recurrent paths.

    in -> fc [[30]] (delay 2) -> h, h -> rec [[40]] (delay 1) -> h; h: du 4095 (u = a << 6,
    so 1920 per input arrival, 2560 per recurrent one), dv 0, vth 50 (TH 3200), reset_interval
    4, offset 3 (resets at 3, 7, 11). Frame m arrives at m + 3, a spike of h at step m
    returns at m + 2. Sample 0: frames 0, 1, 5 arrive at 3 (after the reset at 3), 4
    (3840 > TH: spike), 8; the spike's echo at 6 (2560) is cleared at 7, so the arrival
    at 8 stays below TH (without the reset 2560 + 1920 would spike). Sample 1: frames 2, 3
    arrive at 5, 6 (spike), the echo at 8, held until the reset at 11."""
    g = graph([InputNode("in", (1,)), dense("fc", [[30]], delay=2),
               lif("h", 1, du=4095, dv=0, vth=50, interval=4, offset=3),
               dense("rec", [[40]], delay=1)],
              [("in", "fc"), ("fc", "h"), ("h", "rec"), ("rec", "h")], "h", num_steps=6)
    x = np.zeros((6, 2, 1), np.int64)
    x[[0, 1, 5], 0] = 1
    x[[2, 3], 1] = 1
    n = 13
    return Case("delays_and_recurrent_edge", g, x, n, {"h": {
        "spikes": _col(_hot(n, 4), _hot(n, 6)),
        "u": _col([0, 0, 0, 1920, 1920, 0, 2560, 0, 1920, 0, 0, 0, 0],
                  [0, 0, 0, 0, 0, 1920, 1920, 0, 2560, 0, 0, 0, 0]),
        "v": _col([0, 0, 0, 1920, 0, 0, 2560, 0, 1920, 1920, 1920, 0, 0],
                  [0, 0, 0, 0, 0, 1920, 0, 0, 2560, 2560, 2560, 0, 0]),
    }})


HAND_CASES = (bias_interval5_offset2, two_layers_offsets_0_and_1, interval_1_every_step,
              delays_and_recurrent_edge)


def check(case: Case, spikes: dict, u: dict | None, v: dict | None) -> None:
    """Every expected trace of ``case`` equals the run's (AssertionError otherwise)."""
    got = {"spikes": spikes, "u": u, "v": v}
    for name, traces in case.expect.items():
        for key, want in traces.items():
            assert got[key] is not None, f"{case.name}: no {key} recorded"
            have = np.asarray(got[key][name]).reshape(want.shape)
            np.testing.assert_array_equal(have, want, err_msg=f"{case.name}: {key} of {name}")


# ----- random graphs and the independent loop ----------------------------------------------
def random_graph(reset: str, compare: str, seed: int = 3) -> QGraph:
    """in(6) -> f1 (per-synapse delays 0..3, mixed weights, weight_exp -1) -> H(8,
    multi-spike 3, reset_interval 5 offset 2); H -> rec (delays 0..2) -> H; H -> f2
    (delay 1) -> O(4, reset_interval 3 offset 1), in the given reset and comparison."""
    rng = np.random.default_rng(seed)
    fmt = dataclasses.replace(LOIHI2, reset=reset, threshold_compare=compare)
    h = lif("H", 8, du=300, dv=200, vth=60, bias=0, interval=5, offset=2, max_spikes=3)
    h.bias_mant = rng.integers(-40, 200, 8)
    o = lif("O", 4, du=1500, dv=300, vth=120, interval=3, offset=1)
    nodes = [InputNode("in", (6,), message_bits=2),
             dense("f1", rng.integers(-60, 120, (8, 6)), -1, rng.integers(0, 4, (8, 6))),
             h, dense("rec", rng.integers(-50, 50, (8, 8)), 0, rng.integers(0, 3, (8, 8))),
             dense("f2", rng.integers(-40, 60, (4, 8)), 0, 1), o]
    edges = [("in", "f1"), ("f1", "H"), ("H", "rec"), ("rec", "H"), ("H", "f2"), ("f2", "O")]
    return graph(nodes, edges, "O", num_steps=12, fmt=fmt)


def _prepare(w: np.ndarray, bits: int, f: NumberFormats) -> np.ndarray:
    """docs/qgraph.md "Dense weight preparation": sign mode, clip, LSB truncation."""
    w = np.asarray(w, np.int64)
    k = f.weight_mantissa_bits - bits
    if w.min() >= 0:
        return (np.clip(w, *f.weight_range_excitatory) >> k) << k
    if w.max() <= 0:
        return -((-np.clip(w, *f.weight_range_inhibitory) >> k) << k)
    k += int(f.mixed_sign_lsb_loss)
    return (np.clip(w, *f.weight_range_mixed) >> k) << k


def _ovf(x: np.ndarray, bits: int, rule: str) -> np.ndarray:
    half = 2 ** (bits - 1)
    if rule == "saturate":
        return np.clip(x, -(half - 1), half - 1)
    x = np.where(x > half, x - 2 * half, x)
    return np.where(x <= -half, x + 2 * half, x)


def _rtz(x: np.ndarray, k: int) -> np.ndarray:
    return np.sign(x) * (np.abs(x) >> k)


def reference(g: QGraph, x: np.ndarray, n_steps: int, fault: str | None = None
              ) -> dict[str, dict[str, np.ndarray]]:
    """docs/qgraph.md for graphs whose paths are ``source -> dense -> lif``, one neuron at
    a time: ``{"spikes"|"u"|"v": {lif: [N, B, n]}}``. ``fault`` runs one of :data:`FAULTS`
    instead of the docs' periodic reset (the phase one step late, the zeroing after the
    step, only ``v`` zeroed)."""
    f = g.formats
    batch = x.shape[1]
    lifs = g.lif_nodes
    rec = {k: {L.name: np.zeros((n_steps, batch, int(np.prod(L.shape))), np.int64)
               for L in lifs} for k in ("spikes", "u", "v")}
    state = {L.name: [np.zeros((batch, int(np.prod(L.shape))), np.int64)] * 2 for L in lifs}

    def emitted(src: str, m: int) -> np.ndarray:
        node = g.nodes[src]
        size = int(np.prod(node.shape))
        if m < 0 or (isinstance(node, InputNode) and m >= x.shape[0]):
            return np.zeros((batch, size), np.int64)
        return x[m].reshape(batch, -1).astype(np.int64) if isinstance(node, InputNode) \
            else rec["spikes"][src][m]

    sh, db = f.activation_shift, f.decay_bits
    for n in range(n_steps):
        for L in lifs:
            a = np.zeros_like(state[L.name][0])
            for path in g.synapse_paths(L.name):
                assert len(path) == 2, "reference handles source -> dense -> lif only"
                op = g.nodes[path[1]]
                w = _prepare(op.weight, op.num_weight_bits, f)
                d = np.broadcast_to(np.asarray(op.delay, np.int64), w.shape)
                acc = np.zeros((batch, w.shape[0]), np.int64)
                for i in range(w.shape[0]):
                    for j in range(w.shape[1]):
                        acc[:, i] += w[i, j] * emitted(path[0], n - 1 - int(d[i, j]))[:, j]
                e = int(op.weight_exp)
                a += acc << e if e >= 0 else acc >> -e
            u, v = state[L.name]
            phase = n + 1 if fault == "phase_off_by_one" else n
            due = L.reset_interval > 0 and phase % L.reset_interval == L.reset_offset
            if due and fault != "reset_after_integration":
                v = np.zeros_like(v)
                if fault != "only_v_reset":
                    u = np.zeros_like(u)
            bias = np.asarray(L.bias_mant, np.int64) << np.asarray(L.bias_exp, np.int64)
            u = _ovf(_rtz(u * (2**db - (L.du + 1)), db) + (a << sh), f.u_bits, f.u_overflow)
            v = _ovf(_rtz(v * (2**db - L.dv), db) + u + bias.reshape(-1), f.v_bits,
                     f.v_overflow)
            th = L.vth << sh
            num = v if f.threshold_compare == ">=" else v - 1
            cnt = np.minimum(np.maximum(num, 0) // th, L.max_spikes)
            v = v - cnt * th if f.reset == "subtract" else np.where(cnt > 0, 0, v)
            if due and fault == "reset_after_integration":
                u, v = np.zeros_like(u), np.zeros_like(v)
            state[L.name] = [u, v]
            rec["spikes"][L.name][n], rec["u"][L.name][n], rec["v"][L.name][n] = cnt, u, v
    return rec


def assert_matches(want: dict, spikes: dict, u: dict | None, v: dict | None) -> None:
    """A run's spikes (and u, v when given) equal :func:`reference`'s."""
    got = {"spikes": spikes, "u": u, "v": v}
    for key, per_lif in want.items():
        if got[key] is None:
            continue
        for name, trace in per_lif.items():
            np.testing.assert_array_equal(np.asarray(got[key][name]).reshape(trace.shape),
                                          trace, err_msg=f"{key} of {name}")
