"""Small graphs with synaptic delays and multi-spike LIF output (docs/qgraph.md "Synaptic
delays", "Multi-spike output"), and a plain numpy reference of those sections, shared by
the event and Lava tests (imported as a plain module: pytest puts this folder on
sys.path). The reference is written from the docs alone and shares no code with any
backend: it recomputes every LIF's input from the whole history of source outputs.
"""

from __future__ import annotations

import dataclasses

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
from snn2hw.quant.weights import effective_dense_weight

# Loihi's arithmetic with Loihi 2's delays (0..63) and graded spikes
LOIHI2 = dataclasses.replace(LOIHI_FORMATS, max_synaptic_delay=63, max_message_bits=24)
QUIET = 131071  # the highest vth: keeps a neuron silent while its u is read


def formats(reset: str = "zero", compare: str = ">") -> NumberFormats:
    return dataclasses.replace(LOIHI2, reset=reset, threshold_compare=compare)


def lif(name, shape, du=4095, dv=4095, vth=QUIET, bias_mant=0, bias_exp=0,
        max_spikes=1) -> LIFNode:
    shape = (shape,) if isinstance(shape, int) else tuple(shape)
    return LIFNode(
        name, shape, du=du, dv=dv, vth=vth,
        bias_mant=np.broadcast_to(np.asarray(bias_mant, np.int64), shape).copy(),
        bias_exp=np.broadcast_to(np.asarray(bias_exp, np.int64), shape).copy(),
        max_spikes=max_spikes,
    )


def dense(name, w, weight_exp=0, delay=0) -> DenseNode:
    if not isinstance(delay, int):
        delay = np.asarray(delay, np.int64)
    return DenseNode(name, np.asarray(w, np.int64), weight_exp, 8, delay=delay)


def make(nodes, edges, out=None, num_steps=4, fmt: NumberFormats = LOIHI2) -> QGraph:
    """A validated graph (target ``loihi2``) with an output node on ``out`` (default:
    the last LIF)."""
    nodes = list(nodes)
    if out is None:
        out = [n for n in nodes if isinstance(n, LIFNode)][-1].name
    src = next(n for n in nodes if n.name == out)
    nodes.append(OutputNode("out", tuple(src.shape)))
    return QGraph({n.name: n for n in nodes}, [*edges, (out, "out")], 1e-3, "loihi2",
                  num_steps, formats=fmt).validate()


def frames(steps: int, batch: int, n: int, on: dict[tuple[int, int], list[int]]) -> np.ndarray:
    """Binary frames ``[steps, batch, n]`` with ``on[(step, sample)]`` the active inputs."""
    x = np.zeros((steps, batch, n), np.int64)
    for (t, b), idx in on.items():
        x[t, b, idx] = 1
    return x


# ----- the reference ---------------------------------------------------------------------------
def _shift(x, e):
    return x << e if e >= 0 else x >> -e


def _rtz(x, k):
    return np.sign(x) * (np.abs(x) >> k)


def _conv(node: ConvNode, x: np.ndarray) -> np.ndarray:
    """PyTorch cross-correlation of one sample ``x`` (C, H, W) by explicit loops."""
    w = np.asarray(node.weight, np.int64)
    c_out, cig = w.shape[:2]
    c, h, wd = node.input_shape
    _, oh, ow = node.out_shape
    (sy, sx), (py, px), (dy, dx) = node.stride, node.padding, node.dilation
    cog = c_out // node.groups
    y = np.zeros((c_out, oh, ow), np.int64)
    for o in range(c_out):
        for ci in range(cig):
            ch = (o // cog) * cig + ci
            for ky in range(w.shape[2]):
                for kx in range(w.shape[3]):
                    for i in range(oh):
                        for j in range(ow):
                            yy, xx = i * sy - py + ky * dy, j * sx - px + kx * dx
                            if 0 <= yy < h and 0 <= xx < wd:
                                y[o, i, j] += w[o, ci, ky, kx] * x[ch, yy, xx]
    return y


def _pool(node: SumPoolNode, x: np.ndarray) -> np.ndarray:
    c, h, w = node.input_shape
    _, oh, ow = node.out_shape
    (kh, kw), (sy, sx), (py, px) = node.kernel_size, node.stride, node.padding
    y = np.zeros((c, oh, ow), np.int64)
    for i in range(oh):
        for j in range(ow):
            for a in range(kh):
                for b in range(kw):
                    yy, xx = i * sy - py + a, j * sx - px + b
                    if 0 <= yy < h and 0 <= xx < w:
                        y[:, i, j] += x[:, yy, xx]
    return y


def reference(g: QGraph, x: np.ndarray, num_steps: int | None = None):
    """docs/qgraph.md executed literally: spikes (payloads), u, v per LIF ``[N, B, n]``.

    The value of a path's last operator at arrival step n is built backwards: an operator
    at step t reads its input at ``t - delay`` (per synapse for a dense delay array), and a
    source's output at step m reaches the first operator at step ``m + 1``."""
    f = g.formats
    n_steps = g.num_steps + g.depth() if num_steps is None else num_steps
    batch = x.shape[1]
    lifs = g.lif_nodes
    out = {L.name: np.zeros((n_steps, batch, int(np.prod(L.shape))), np.int64) for L in lifs}
    u_rec = {k: np.zeros_like(v) for k, v in out.items()}
    v_rec = {k: np.zeros_like(v) for k, v in out.items()}
    state = {L.name: (np.zeros((batch, out[L.name].shape[2]), np.int64),) * 2 for L in lifs}

    def source(name: str, m: int, b: int) -> np.ndarray:
        node = g.nodes[name]
        if m < 0:
            return np.zeros(int(np.prod(node.shape)), np.int64)
        if isinstance(node, InputNode):
            return (x[m, b].reshape(-1).astype(np.int64) if m < x.shape[0]
                    else np.zeros(int(np.prod(node.shape)), np.int64))
        return out[name][m, b]

    def value(path: list[str], k: int, t: int, b: int) -> np.ndarray:
        """Output (flat) of ``path[k]`` at step t; ``path[0]`` is the source."""
        if k == 0:
            return source(path[0], t - 1, b)
        op = g.nodes[path[k]]
        if isinstance(op, FlattenNode):
            return value(path, k - 1, t, b)
        if isinstance(op, SumPoolNode):
            return _pool(op, value(path, k - 1, t, b).reshape(op.input_shape)).ravel()
        if isinstance(op, ConvNode):
            xin = value(path, k - 1, t - int(op.delay), b).reshape(op.input_shape)
            y = _shift(_conv(op, xin), int(op.weight_exp))
            return (((y + 2**23) % 2**24) - 2**23).ravel()
        assert isinstance(op, DenseNode)
        w = effective_dense_weight(op.weight, op.num_weight_bits, f)
        d = np.broadcast_to(np.asarray(op.delay, np.int64), w.shape)
        acc = np.zeros(w.shape[0], np.int64)
        for i in range(w.shape[0]):
            for j in range(w.shape[1]):
                acc[i] += w[i, j] * value(path, k - 1, t - int(d[i, j]), b)[j]
        return _shift(acc, int(op.weight_exp))  # one floor shift of the arrival sum

    th_sh, db = f.activation_shift, f.decay_bits
    for n in range(n_steps):
        for L in lifs:
            u, v = state[L.name]
            a = np.zeros_like(u)
            for path in g.synapse_paths(L.name):
                for b in range(batch):
                    a[b] += value(path, len(path) - 1, n, b)
            bias = (np.asarray(L.bias_mant, np.int64) << np.asarray(L.bias_exp, np.int64))
            u = _rtz(u * ((1 << db) - (L.du + 1)), db) + (a << th_sh)
            u = np.where(u > 2**23, u - 2**24, u)
            u = np.where(u <= -(2**23), u + 2**24, u)
            v = np.clip(_rtz(v * ((1 << db) - L.dv), db) + u + bias.ravel(),
                        -(2**23 - 1), 2**23 - 1)
            th = L.vth << th_sh
            if L.max_spikes == 1:
                s = (v >= th) if f.threshold_compare == ">=" else (v > th)
                cnt = s.astype(np.int64)
            elif f.threshold_compare == ">=":
                cnt = np.where(v >= th, np.minimum(L.max_spikes, v // max(th, 1)), 0)
            else:
                cnt = np.where(v > th, np.minimum(L.max_spikes, (v - 1) // max(th, 1)), 0)
            v = v - cnt * th if f.reset == "subtract" else np.where(cnt > 0, 0, v)
            state[L.name] = (u, v)
            out[L.name][n], u_rec[L.name][n], v_rec[L.name][n] = cnt, u, v
    return out, u_rec, v_rec


def assert_reference(g: QGraph, x: np.ndarray, res, num_steps: int | None = None) -> None:
    """``res`` (a SimResult with state) equals :func:`reference` on spikes, u and v."""
    spk, u, v = reference(g, x, num_steps)
    for L in g.lif_nodes:
        n, b = spk[L.name].shape[:2]
        for key, want in (("spikes", spk), ("u", u), ("v", v)):
            got = getattr(res, key)[L.name].reshape(n, b, -1)
            np.testing.assert_array_equal(got, want[L.name], err_msg=f"{key} of {L.name}")


# ----- the graphs of the tests (each pins one rule; the Lava tests rerun them) ------------
def mixed_delays(weight_exp: int = -1) -> tuple[QGraph, np.ndarray]:
    """in(2) -> fc (W = [[3, 5], [10, 20]], D = [[0, 1], [0, 2]], weight_exp -1) -> l.

    Sample 0: input 1 at frame 0, input 0 at frame 1: both products of row 0 arrive at step
    2, so a[2] = (3 + 5) >> 1 = 4 (separate shifts would give 1 + 2 = 3). Row 1 sees
    10 at step 2 (frame 1 + 1) and 20 at step 3 (frame 0 + 1 + 2): (10 >> 1) = 5, 10.
    Sample 1: nothing, then both inputs at frame 2."""
    g = make([InputNode("in", (2,)),
              dense("fc", [[3, 5], [10, 20]], weight_exp, [[0, 1], [0, 2]]),
              lif("l", 2)], [("in", "fc"), ("fc", "l")], num_steps=3)
    return g, frames(3, 2, 2, {(0, 0): [1], (1, 0): [0], (2, 1): [0, 1]})


def conv_delay() -> tuple[QGraph, np.ndarray]:
    """in(1, 3, 3) -> conv (2x2 ones, weight 3, delay 2) -> l(1, 2, 2): a spike at (0, 0)
    in frame 0 reaches output (0, 0) with 3 at step 3 only."""
    conv = ConvNode("c", np.full((1, 1, 2, 2), 3, np.int64), (1, 3, 3), delay=2)
    g = make([InputNode("in", (1, 3, 3)), conv, lif("l", (1, 2, 2))],
             [("in", "c"), ("c", "l")], num_steps=2)
    x = np.zeros((2, 1, 1, 3, 3), np.int64)
    x[0, 0, 0, 0, 0] = 1
    x[1, 0, 0, 1, 1] = 1  # the centre: all four outputs at step 4
    return g, x


def chained_delays(f3_delay=((0, 3), (0, 0), (0, 0))) -> tuple[QGraph, np.ndarray]:
    """Two paths into l, each a chain of delayed operators:
    in(2) -> f1 (delay 1) -> f2 (delay 2) -> l: frame 0 arrives at 0 + 1 + 3 = step 4;
    in(2) -> conv 1x1 (delay 1) -> flatten -> f3 (delay [[0, 3]]) -> l: input 0 at step
    0 + 1 + 1 = 2, input 1 at step 0 + 1 + 1 + 3 = 5."""
    conv = ConvNode("c", np.full((1, 1, 1, 1), 2, np.int64), (1, 1, 2), delay=1)
    nodes = [InputNode("in", (1, 1, 2)), FlattenNode("fl0", (1, 1, 2)),
             dense("f1", [[1, 2], [3, 4]], 0, 1), dense("f2", [[1, 0], [0, 1], [1, 1]], 1, 2),
             conv, FlattenNode("fl", (1, 1, 2)),
             dense("f3", [[5, 7], [0, 0], [0, 0]], 0,
                   f3_delay if isinstance(f3_delay, int) else np.array(f3_delay)),
             lif("l", 3)]
    edges = [("in", "fl0"), ("fl0", "f1"), ("f1", "f2"), ("f2", "l"), ("in", "c"), ("c", "fl"),
             ("fl", "f3"), ("f3", "l")]
    g = make(nodes, edges, num_steps=2)
    x = np.zeros((2, 1, 1, 1, 2), np.int64)
    x[0, 0, 0, 0, 0] = 1
    return g, x


def recurrent_delay() -> tuple[QGraph, np.ndarray]:
    """in -> fc -> h, and h -> rec (delay 2) -> h: the frame-0 spike makes h spike at step
    1, and each spike of h returns at step + 3, so h spikes at 1, 4, 7, 10."""
    g = make([InputNode("in", (1,)), dense("fc", [[100]]),
              lif("h", 1, vth=50), dense("rec", [[100]], 0, 2)],
             [("in", "fc"), ("fc", "h"), ("h", "rec"), ("rec", "h")], num_steps=11)
    return g, frames(11, 1, 1, {(0, 0): [0]})


def multi_spike(reset: str, compare: str) -> tuple[QGraph, np.ndarray]:
    """Graded input (8 bits) -> fc (16 x identity) -> h (vth 16: TH = 1024, max_spikes 3,
    du 4095 so u = a << 6 = 1024 x, dv 0 so v keeps what the reset leaves) -> g (weights
    10, 20, 40 on h's payloads) -> o (silent; its u shows the graded input).

    Frame 0 puts v = 1, 2, 7 thresholds on h at step 1 (exact ties), frame 1 one more
    threshold on neuron 0 at step 2. Under ">": counts 0, 1, 3 (7 capped); under ">=":
    1, 2, 3. "zero" clears v of a neuron that emitted, "subtract" leaves v - n TH."""
    g = make([InputNode("in", (3,), message_bits=8), dense("fc", np.eye(3, dtype=np.int64) * 16),
              lif("h", 3, dv=0, vth=16, max_spikes=3), dense("g", [[10, 20, 40]]),
              lif("o", 1)],
             [("in", "fc"), ("fc", "h"), ("h", "g"), ("g", "o")], num_steps=3,
             fmt=formats(reset, compare))
    x = np.zeros((3, 1, 3), np.int64)
    x[0, 0] = [1, 2, 7]
    x[1, 0] = [1, 0, 0]
    return g, x
