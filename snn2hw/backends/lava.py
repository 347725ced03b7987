"""Lava backend: run a quantized graph on Lava's bit-accurate CPU models (``fixed_pt``).

Implements docs/qgraph.md with real Lava processes, so its spikes must equal the torch
integer backend's bit for bit. Lava (lava-nc 0.10.0) is imported lazily through
:func:`snn2hw.compat.lava_py311.import_lava`; without it, :class:`LavaMissingError` says
how to install it.

Lowering (one Lava *connection* per synapse path, so every path costs exactly one step):

* each LIF node -> ``LIFReset`` (the bit-accurate ``LIF`` model plus a state reset at the
  first step of every sample), with a flat shape ``(prod(shape),)``: C-order flattening is
  then free and Flatten nodes vanish;
* a path ``source -> [flatten...] -> dense -> [flatten...]`` -> Lava ``Dense`` with the
  node's *raw* weights, ``weight_exp`` and ``num_weight_bits``: Lava itself applies the
  sign-mode clip and truncation, so the tests check the docs' rule against Lava's;
* every other path (conv, sumpool, identity, or several ops) -> its ops are composed into
  one exact integer matrix over the source's flat outputs and lowered to Lava ``Sparse``
  (explicit index mapping; keeps ``weight_exp``, unlike Lava ``Conv``). The matrix is
  re-encoded so that Lava's clip/truncation is the identity (an odd mixed-sign matrix is
  doubled and its exponent lowered by one; a matrix too wide for 8 bits is split into
  base-256 digit matrices when no floor shift follows). A composition that would change
  the arithmetic (a floor shift or a possible 24-bit wrap in the middle of a path, a wrap
  at its end, weights that cannot be encoded exactly) raises :class:`GraphError`.

Samples run back to back in ONE Lava network: the input ``RingBuffer`` holds all samples,
``N`` steps each. ``LIFReset(reset_interval=N, reset_offset=1)`` zeroes ``u``/``v`` at the
first step of each sample. Connections hold a one-step-delayed buffer, so activity at a
sample's last step would leak into the next sample's first step: LIFReset zeroes the
state *before* integrating that step's input, and zero padding cannot prevent it either
(a bias-driven LIF spikes without input). The run is therefore chunked at sample
boundaries and, where a source was active at that last step, the buffers of its
connections are zeroed with ``Var.set`` (about 1 ms per small buffer). Spikes are read in
bulk with ``Extractor``, whose buffer holds one chunk: its sends block when full, so a
longer blocking run would deadlock.

Exactness against Lava's int32 datapath: Lava computes ``a << 6`` and ``u`` in int32. With
``|a| <= 2^18`` per step, ``|u| <= 2^23`` stays invariant and nothing overflows, so Lava
equals the docs' int64 arithmetic. That bound is proven statically from the weights; where
it is not, the actual activations are recomputed from the recorded spikes after the run
and a violation raises :class:`GraphError` instead of returning inexact spikes.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import scipy.sparse as sp

from snn2hw.common.errors import GraphError
from snn2hw.compat.lava_py311 import LavaMissingError, import_lava
from snn2hw.quant.qgraph import (
    ConvNode,
    DenseNode,
    FlattenNode,
    InputNode,
    LIFNode,
    QGraph,
    SumPoolNode,
)

__all__ = ["LavaMissingError", "LavaNetwork", "LavaResult", "run"]

_A_SAFE = 1 << 18  # |a| bound under which Lava's int32 LIF datapath is exact (module doc)
_I32 = 1 << 31  # Lava's connection outputs and graded dot products are int32
_W24 = 1 << 23  # wrap24 is the identity on [-2^23, 2^23)
_EXTRACTOR_BYTES = 1 << 25  # cap on one Extractor's shared-memory buffer (float64 frames)
_CHUNK_MAX = 1024  # at most this many steps per Lava run() call


# ----- results -------------------------------------------------------------------------------
@dataclass
class LavaResult:
    """Outputs of one Lava run.

    ``spikes``: every LIF node -> uint8 ``[N, B, *shape]`` (docs/qgraph.md step indexing);
    ``u``, ``v``: int64 traces of the same shape, after each step's reset (only with
    ``record_state``); ``wall_s``: seconds for the whole call; ``build_s``: of which
    building, compiling and starting the Lava runtime; ``lava_steps``: Lava time steps run
    (``B * N``); ``buffer_resets``: connection buffers zeroed between samples.
    """

    spikes: dict[str, np.ndarray]
    u: dict[str, np.ndarray] | None
    v: dict[str, np.ndarray] | None
    wall_s: float
    build_s: float
    lava_steps: int = 0
    buffer_resets: int = 0

    def predictions(self, graph: QGraph) -> np.ndarray:
        """Class per sample ``[B]``: argmax of the output LIF's spike counts over all steps
        (ties: lowest index). Uses the graph's first output node."""
        outs = graph.output_nodes
        if not outs:
            raise GraphError("quantized graph has no output node")
        src = graph.source_of_output(outs[0].name)
        if src not in self.spikes:
            raise GraphError(f"output node '{outs[0].name}' reads '{src}', which is not a LIF node")
        spk = self.spikes[src]
        counts = spk.reshape(spk.shape[0], spk.shape[1], -1).sum(axis=0, dtype=np.int64)
        return np.argmax(counts, axis=1)  # argmax returns the first maximum


# ----- integer building blocks (docs/qgraph.md) ----------------------------------------------
def _shift(x: Any, e: int) -> Any:
    """shift(x, e): ``x << e`` or, for e < 0, the floor shift ``x >> -e``."""
    return x << e if e >= 0 else x >> -e


def _dense_effective(w: np.ndarray, num_weight_bits: int) -> np.ndarray:
    """W' of docs/qgraph.md "Dense weight preparation": clip by sign mode, then drop the
    low bits (floor on the magnitude for inhibitory matrices)."""
    w = np.asarray(w, dtype=np.int64)
    if w.size == 0 or w.min() >= 0:  # excitatory (all-zero included)
        k = 8 - num_weight_bits
        return (np.minimum(w, 255) >> k) << k
    if w.max() <= 0:  # inhibitory: truncate the magnitude
        k = 8 - num_weight_bits
        return -((np.minimum(-w, 255) >> k) << k)
    k = 9 - num_weight_bits  # mixed: the sign takes one of the 8 bits
    return (np.clip(w, -256, 255) >> k) << k


def _sumpool_matrix(node: SumPoolNode) -> sp.csr_matrix:
    """Window sums with zero padding as a (C*Ho*Wo, C*H*W) 0/1 matrix, C-order indices."""
    c, h, w = (int(s) for s in node.input_shape)
    _, oh, ow = node.out_shape
    (kh, kw), (sh, sw), (ph, pw) = node.kernel_size, node.stride, node.padding
    rows, cols = [], []
    ch = np.arange(c)[:, None, None]
    oy = np.arange(oh)[None, :, None]
    ox = np.arange(ow)[None, None, :]
    for a in range(kh):
        for b in range(kw):
            iy, ix = oy * sh - ph + a, ox * sw - pw + b
            ok = np.broadcast_to((iy >= 0) & (iy < h) & (ix >= 0) & (ix < w), (c, oh, ow))
            r = (ch * oh + oy) * ow + ox
            q = (ch * h + iy) * w + ix
            rows.append(np.broadcast_to(r, ok.shape)[ok])
            cols.append(np.broadcast_to(q, ok.shape)[ok])
    r, q = np.concatenate(rows), np.concatenate(cols)
    return sp.csr_matrix(
        (np.ones(r.size, np.int64), (r, q)), shape=(c * oh * ow, c * h * w), dtype=np.int64
    )


def _conv_matrix(node: ConvNode) -> sp.csr_matrix:
    """PyTorch cross-correlation (zero padding, groups, dilation) as a sparse
    (C_out*Ho*Wo, C_in*H*W) int64 matrix with the stored weights, C-order indices."""
    wt = np.asarray(node.weight, dtype=np.int64)
    c_out, c_in_g, kh, kw = wt.shape
    c_in, h, w = (int(s) for s in node.input_shape)
    _, oh, ow = node.out_shape
    (sh, sw), (ph, pw), (dh, dw) = node.stride, node.padding, node.dilation
    per_group = c_out // node.groups
    oy, ox = np.meshgrid(np.arange(oh), np.arange(ow), indexing="ij")
    rows, cols, vals = [], [], []
    for i in range(kh):
        for j in range(kw):
            iy, ix = oy * sh - ph + i * dh, ox * sw - pw + j * dw
            ok = (iy >= 0) & (iy < h) & (ix >= 0) & (ix < w)
            pos_out = (oy * ow + ox)[ok]  # [P]
            pos_in = (iy * w + ix)[ok]
            o, ci = np.nonzero(wt[:, :, i, j])  # only stored non-zero taps
            c = (o // per_group) * c_in_g + ci
            rows.append((o[:, None] * (oh * ow) + pos_out[None, :]).ravel())
            cols.append((c[:, None] * (h * w) + pos_in[None, :]).ravel())
            vals.append(np.repeat(wt[o, ci, i, j], pos_out.size))
    return sp.csr_matrix(
        (np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))),
        shape=(c_out * oh * ow, c_in * h * w),
        dtype=np.int64,
    )


def _row_bounds(m: sp.csr_matrix, x_max: int) -> tuple[np.ndarray, np.ndarray]:
    """Per output: smallest and largest value of ``m @ x`` for 0 <= x <= x_max."""
    pos = m.maximum(0).sum(axis=1).A1.astype(np.int64)
    neg = m.minimum(0).sum(axis=1).A1.astype(np.int64)
    return neg * x_max, pos * x_max


def _trailing_zeros(data: np.ndarray) -> int:
    """Largest j such that 2^j divides every (non-zero) entry."""
    acc = int(np.bitwise_or.reduce(np.abs(data)))
    return int((acc & -acc).bit_length() - 1)


def _encode(m: sp.csr_matrix, e: int, what: str) -> list[tuple[sp.csr_matrix, int]]:
    """Exact Lava encodings ``[(mantissa, weight_exp), ...]`` of ``x -> shift(m @ x, e)``.

    Each mantissa is left unchanged by Lava's clip + truncation at 8 bits (excitatory
    0..255, inhibitory -255..0, mixed even -256..254). ``shift((m / 2^j) @ x, e + j)`` equals
    ``shift(m @ x, e)`` whenever ``m / 2^j`` is integral (j < 0 doubles: always), because
    both floor the same rational ``(m @ x) * 2^e``. Splitting ``m`` into base-256 digit
    matrices (summed by the LIF) is exact only without a floor (e >= 0): floor(a + b) is
    not floor(a) + floor(b)."""
    m = sp.csr_matrix(m, dtype=np.int64)
    m.eliminate_zeros()
    if m.nnz == 0:
        return [(m, 0)]
    d = m.data
    tz = _trailing_zeros(d)
    if d.min() >= 0 or d.max() <= 0:
        mag = int(np.abs(d).max())
        j = max(0, mag.bit_length() - 8)  # smallest j with mag >> j <= 255
        if j <= tz:
            return [(_scaled(m, j), e + j)]
    else:
        lo, hi = int(d.min()), int(d.max())
        for j in range(-1 if tz == 0 else 0, tz):  # j <= tz - 1 keeps every mantissa even
            if _div_pow2(lo, j) >= -256 and _div_pow2(hi, j) <= 254:
                return [(_scaled(m, j), e + j)]
    if e < 0:
        raise GraphError(
            f"{what}: its composed integer weights (range [{d.min()}, {d.max()}]) do not fit "
            "Lava's 8-bit weights exactly and a floor shift follows, so they cannot be split; "
            "the Lava backend cannot run this graph exactly (use torch_int or the event backend)"
        )
    parts: list[tuple[sp.csr_matrix, int]] = []
    for sign in (1, -1):
        mag = (sign * m).maximum(0).tocsr()
        shift = 0
        while mag.nnz:
            digit = mag.copy()
            digit.data = digit.data & 255
            digit.eliminate_zeros()
            if digit.nnz:
                parts.append((sign * digit, e + shift))
            mag.data = mag.data >> 8
            mag.eliminate_zeros()
            shift += 8
    return parts


def _div_pow2(x: int, j: int) -> int:
    """x / 2^j for an x divisible by 2^j (j < 0 multiplies)."""
    return x << -j if j < 0 else x >> j


def _scaled(m: sp.csr_matrix, j: int) -> sp.csr_matrix:
    """m / 2^j entry-wise (exact: callers ensure 2^j divides every entry when j > 0)."""
    out = m.copy()
    out.data = out.data << -j if j < 0 else out.data >> j
    return out


# ----- lowering ----------------------------------------------------------------------------------
@dataclass
class _Conn:
    """One Lava connection process: ``Dense`` (raw graph weights) or ``Sparse``."""

    kind: str
    weights: Any
    weight_exp: int
    num_weight_bits: int = 8


@dataclass
class _Path:
    """A lowered synapse path: exact effective map ``shift(matrix @ x, exp)``."""

    nodes: list[str]
    source: str
    target: str
    matrix: sp.csr_matrix
    exp: int
    conns: list[_Conn] = field(default_factory=list)


@dataclass
class _Lif:
    node: LIFNode
    size: int
    paths: list[_Path] = field(default_factory=list)
    proven: bool = True  # |a| <= 2^18 statically


def _lower_path(graph: QGraph, path: list[str], target: str, x_max: int) -> _Path:
    """Compose the ops of ``path`` (source first) into one exact integer map."""
    what = f"path {' -> '.join([*path, target])}"
    src_node = graph.nodes[path[0]]
    n_src = int(np.prod(src_node.shape))
    ops = [graph.nodes[name] for name in path[1:]]
    real = [op for op in ops if not isinstance(op, FlattenNode)]
    if len(real) == 1 and isinstance(real[0], DenseNode):
        d = real[0]
        eff = sp.csr_matrix(_dense_effective(d.weight, d.num_weight_bits))
        conn = _Conn("dense", np.asarray(d.weight, np.int64), int(d.weight_exp), d.num_weight_bits)
        return _Path([*path], path[0], target, eff, int(d.weight_exp), [conn])

    m = sp.identity(n_src, dtype=np.int64, format="csr")
    exp = 0  # the path's final floor shift (only the last arithmetic op may have one)
    floored: str | None = None
    for op in ops:
        if isinstance(op, FlattenNode):
            continue  # C-order reshape: the identity on flat indices
        if floored is not None:
            raise GraphError(
                f"{what}: node '{floored}' floor-shifts (weight_exp < 0) before '{op.name}'; "
                "the rounding does not compose into one Lava connection"
            )
        if isinstance(op, SumPoolNode):
            m = (_sumpool_matrix(op) @ m).tocsr()
            continue
        if isinstance(op, DenseNode):
            m = (sp.csr_matrix(_dense_effective(op.weight, op.num_weight_bits)) @ m).tocsr()
        elif isinstance(op, ConvNode):
            m = (_conv_matrix(op) @ m).tocsr()
        else:
            raise GraphError(f"node '{op.name}' ({op.kind}) cannot sit on a synapse path")
        e = int(op.weight_exp)
        if e > 0:
            m = (m * (1 << e)).tocsr()  # a left shift is linear: fold it into the matrix
        elif e < 0:
            exp, floored = e, op.name
        if isinstance(op, ConvNode):
            lo, hi = _row_bounds(m, x_max)
            lo, hi = _shift(lo, exp), _shift(hi, exp)
            if lo.size and (lo.min() < -_W24 or hi.max() >= _W24):
                raise GraphError(
                    f"{what}: conv node '{op.name}' can produce values outside signed 24 bits "
                    f"([{lo.min()}, {hi.max()}]) where docs/qgraph.md wraps them; the Lava "
                    "backend lowers conv to Sparse, which does not wrap"
                )
    m.eliminate_zeros()
    conns = [_Conn("sparse", w, int(x)) for w, x in _encode(m, exp, what)]
    return _Path([*path], path[0], target, m, exp, conns)


def _check_path_int32(p: _Path, x_max: int, graded: bool) -> tuple[np.ndarray, np.ndarray]:
    """Static per-neuron bounds of the path output; refuse paths that overflow int32."""
    lo, hi = _row_bounds(p.matrix, x_max)
    acc = max(int(-lo.min()), int(hi.max())) if lo.size else 0
    lo_s, hi_s = _shift(lo, p.exp), _shift(hi, p.exp)
    out = max(int(-lo_s.min()), int(hi_s.max())) if lo.size else 0
    for conn in p.conns:  # re-encoded parts may accumulate larger sums before shifting
        if conn.kind != "sparse":
            continue
        c_lo, c_hi = _row_bounds(conn.weights, x_max)
        if c_lo.size:
            acc = max(acc, int(-c_lo.min()), int(c_hi.max()))
    if out >= _I32 or (graded and acc >= _I32):
        raise GraphError(
            f"path {' -> '.join([*p.nodes, p.target])}: synaptic sums can reach "
            f"{max(out, acc)}, beyond Lava's int32 connection datapath"
        )
    return lo_s, hi_s


# ----- the network ---------------------------------------------------------------------------
class LavaNetwork:
    """A quantized graph lowered once for Lava; each :meth:`run` builds ONE Lava process
    network holding all samples of the batch and streams them through it.

    Construction validates the graph, composes every synapse path into its Lava
    connection(s) (module docstring) and proves the int32 bounds; it raises
    :class:`GraphError` naming the node for graphs Lava cannot run exactly and
    :class:`LavaMissingError` when lava-nc is not installed.
    """

    def __init__(self, graph: QGraph) -> None:
        import_lava()  # fail fast with the install hint
        graph.validate()
        self.graph = graph
        self.input: InputNode = graph.input_node
        self.n_in = int(np.prod(self.input.shape))
        graded = self.input.message_bits > 0
        in_max = 1 if not graded else (1 << self.input.message_bits) - 1
        self.lifs: list[_Lif] = []
        for node in graph.lif_nodes:
            lif = _Lif(node, int(np.prod(node.shape)))
            lo_a = np.zeros(lif.size, np.int64)
            hi_a = np.zeros(lif.size, np.int64)
            for path in graph.synapse_paths(node.name):
                from_input = path[0] == self.input.name
                x_max = in_max if from_input else 1
                p = _lower_path(graph, path, node.name, x_max)
                lo, hi = _check_path_int32(p, x_max, graded and from_input)
                lo_a += lo
                hi_a += hi
                lif.paths.append(p)
            lif.proven = max(int(-lo_a.min()), int(hi_a.max())) <= _A_SAFE
            self.lifs.append(lif)

    @property
    def num_connections(self) -> int:
        """Lava connection processes per network (one per path, more for split weights)."""
        return sum(len(p.conns) for lif in self.lifs for p in lif.paths)

    def default_num_steps(self) -> int:
        """``graph.num_steps + graph.depth()``: enough to flush the last frame."""
        return int(self.graph.num_steps + self.graph.depth())

    def _check_inputs(self, inputs: Any) -> np.ndarray:
        """Validate integer frames ``[F, B, *input_shape]``; return int64 ``[F, B, n_in]``."""
        arr = np.asarray(inputs.detach().cpu() if hasattr(inputs, "detach") else inputs)
        node = self.input
        shape = tuple(int(s) for s in node.shape)
        if arr.dtype.kind not in "iub":
            raise GraphError(f"input frames must be integers, got dtype {arr.dtype}")
        if arr.ndim != 2 + len(shape) or tuple(arr.shape[2:]) != shape:
            want = ", ".join(["F", "B", *(str(s) for s in shape)])
            raise GraphError(
                f"input frames for '{node.name}' must have shape [{want}] (time-major), "
                f"got {list(arr.shape)}"
            )
        if arr.shape[0] == 0 or arr.shape[1] == 0:
            raise GraphError(f"input frames are empty: shape {list(arr.shape)}")
        x = arr.astype(np.int64).reshape(arr.shape[0], arr.shape[1], -1)
        hi = (1 << node.message_bits) - 1 if node.message_bits else 1
        if x.min() < 0 or x.max() > hi:
            raise GraphError(
                f"input node '{node.name}' (message_bits={node.message_bits}) takes values in "
                f"0..{hi}, got [{x.min()}, {x.max()}]"
            )
        return x

    def run(
        self, inputs: Any, num_steps: int | None = None, record_state: bool = False
    ) -> LavaResult:
        """Run every sample of ``inputs`` (integer frames ``[F, B, *input_shape]``) for
        ``num_steps`` steps (default ``num_steps + depth()``) in one Lava network.

        ``record_state`` also reads ``u``/``v`` traces through Lava Monitors (slow: Lava
        reads them element by element). The runtime is always stopped, also on errors."""
        t_start = time.perf_counter()
        n_steps = self.default_num_steps() if num_steps is None else int(num_steps)
        if n_steps < 1:
            raise GraphError(f"num_steps must be >= 1, got {n_steps}")
        x = self._check_inputs(inputs)
        n_frames, batch = x.shape[0], x.shape[1]

        from lava.magma.core.run_conditions import RunSteps
        from lava.magma.core.run_configs import Loihi2SimCfg
        from lava.proc.io.extractor import Extractor, PyLoihiExtractorModel

        # RingBuffer sends data[:, t-1] at Lava step t: sample b's step n is column b*N + n.
        frames = np.zeros((batch, n_steps, self.n_in), np.int32)
        k = min(n_frames, n_steps)
        frames[:, :k] = x[:k].transpose(1, 0, 2)
        data = np.ascontiguousarray(frames.reshape(batch * n_steps, self.n_in).T)

        chunk = min(n_steps, _CHUNK_MAX)
        for lif in self.lifs:  # bound each Extractor's shared-memory ring
            chunk = max(1, min(chunk, _EXTRACTOR_BYTES // (8 * lif.size)))
        net = self._build(data, n_steps, chunk, record_state)
        cfg = Loihi2SimCfg(
            select_tag="fixed_pt", exception_proc_model_map={Extractor: PyLoihiExtractorModel}
        )
        anchor = net["source"]
        spk = {lif.node.name: np.zeros((batch, n_steps, lif.size), np.uint8) for lif in self.lifs}
        resets = 0
        u_rec = v_rec = None
        try:
            anchor.create_runtime(run_cfg=cfg)
            build_s = time.perf_counter() - t_start
            for b in range(batch):
                done = 0
                while done < n_steps:
                    c = min(chunk, n_steps - done)
                    anchor.run(condition=RunSteps(num_steps=c))
                    for lif in self.lifs:
                        ex, rec = net["extractors"][lif.node.name], spk[lif.node.name][b]
                        for i in range(done, done + c):
                            rec[i] = ex.receive()
                    done += c
                if b + 1 < batch:
                    resets += self._clear_carry(net, x, spk, b, n_steps)
            if record_state:
                u_rec, v_rec = self._read_state(net, batch, n_steps)
        finally:
            anchor.stop()

        spikes = {
            lif.node.name: spk[lif.node.name]
            .transpose(1, 0, 2)
            .reshape(n_steps, batch, *lif.node.shape)
            for lif in self.lifs
        }
        self._verify_unproven(x, spikes, n_steps)
        return LavaResult(
            spikes=spikes,
            u=u_rec,
            v=v_rec,
            wall_s=time.perf_counter() - t_start,
            build_s=build_s,
            lava_steps=batch * n_steps,
            buffer_resets=resets,
        )

    # ----- helpers of run() ------------------------------------------------------------------
    def _build(self, data: np.ndarray, n_steps: int, chunk: int, record: bool) -> dict[str, Any]:
        """Create and connect the Lava processes (not yet compiled)."""
        from lava.proc.dense.process import Dense
        from lava.proc.io.extractor import Extractor
        from lava.proc.io.source import RingBuffer
        from lava.proc.lif.process import LIFReset
        from lava.proc.sparse.process import Sparse

        source = RingBuffer(data=data)
        lifs: dict[str, Any] = {}
        for lif in self.lifs:
            n = lif.node
            lifs[n.name] = LIFReset(
                shape=(lif.size,),
                du=int(n.du),
                dv=int(n.dv),
                vth=int(n.vth),
                bias_mant=np.asarray(n.bias_mant, np.int64).ravel(),
                bias_exp=np.asarray(n.bias_exp, np.int64).ravel(),
                reset_interval=n_steps,  # t % N == 1: the first step of every sample
                reset_offset=1,
                name=f"lif:{n.name}",
            )
        out_port = {self.input.name: source.s_out, **{k: p.s_out for k, p in lifs.items()}}
        conns: dict[str, list[Any]] = {}  # source -> its connection processes
        linked = _Components([self.input.name, *lifs])
        for lif in self.lifs:
            for p in lif.paths:
                bits = self.input.message_bits if p.source == self.input.name else 0
                for c in p.conns:
                    if c.kind == "dense":
                        proc = Dense(
                            weights=c.weights,
                            weight_exp=c.weight_exp,
                            num_weight_bits=c.num_weight_bits,
                            num_message_bits=bits,
                        )
                    else:
                        proc = Sparse(
                            weights=c.weights.astype(np.int32),
                            weight_exp=c.weight_exp,
                            num_weight_bits=8,
                            num_message_bits=bits,
                        )
                    out_port[p.source].connect(proc.s_in)
                    proc.a_out.connect(lifs[lif.node.name].a_in)
                    conns.setdefault(p.source, []).append(proc)
                linked.join(p.source, p.target)
        for name in linked.cut_off(self.input.name):
            # Lava compiles only what is connected to the process it runs: tie a network
            # part that never hears the input to it with an all-zero Dense.
            zero = Dense(weights=np.zeros((lifs[name].a_in.shape[0], self.n_in), np.int64))
            source.s_out.connect(zero.s_in)
            zero.a_out.connect(lifs[name].a_in)
        extractors = {}
        for name, proc in lifs.items():
            ex = Extractor(shape=proc.s_out.shape, buffer_size=chunk)
            proc.s_out.connect(ex.in_port)
            extractors[name] = ex
        monitors = {}
        if record:
            from lava.proc.monitor.process import Monitor

            total = int(data.shape[1])
            for name, proc in lifs.items():
                mu, mv = Monitor(), Monitor()
                mu.probe(proc.u, total)
                mv.probe(proc.v, total)
                monitors[name] = (mu, mv)
        return {
            "source": source,
            "lifs": lifs,
            "conns": conns,
            "extractors": extractors,
            "monitors": monitors,
        }

    def _clear_carry(
        self, net: dict[str, Any], x: np.ndarray, spk: dict[str, np.ndarray], b: int, n: int
    ) -> int:
        """Zero the buffered activation that sample ``b``'s last step would deliver to sample
        ``b + 1``'s first step (docs: ``a = 0`` at step 0). Returns buffers zeroed."""
        active = []
        if n - 1 < x.shape[0] and x[n - 1, b].any():
            active.append(self.input.name)
        active += [name for name, rec in spk.items() if rec[b, n - 1].any()]
        count = 0
        for name in active:
            for proc in net["conns"].get(name, []):
                proc.a_buff.set(np.zeros(proc.a_buff.shape))
                count += 1
        return count

    def _read_state(
        self, net: dict[str, Any], batch: int, n: int
    ) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
        u_rec, v_rec = {}, {}
        for lif in self.lifs:
            name = lif.node.name
            mu, mv = net["monitors"][name]
            proc = net["lifs"][name]
            for mon, var, out in ((mu, "u", u_rec), (mv, "v", v_rec)):
                arr = np.asarray(mon.get_data()[proc.name][var]).round().astype(np.int64)
                out[name] = (
                    arr.reshape(batch, n, lif.size)
                    .transpose(1, 0, 2)
                    .reshape(n, batch, *lif.node.shape)
                )
        return u_rec, v_rec

    def _verify_unproven(self, x: np.ndarray, spikes: dict[str, np.ndarray], n: int) -> None:
        """Where |a| <= 2^18 was not proven statically, recompute every LIF's activation
        from the recorded source activity (exact by induction over steps) and refuse the
        result if it left the range where Lava's int32 arithmetic equals the docs'."""
        batch = x.shape[1]
        for lif in self.lifs:
            if lif.proven:
                continue
            a = np.zeros(((n - 1) * batch, lif.size), np.int64)
            for p in lif.paths:
                if p.source == self.input.name:
                    src = np.zeros((n, batch, self.n_in), np.int64)
                    k = min(n, x.shape[0])
                    src[:k] = x[:k]
                else:
                    src = spikes[p.source].reshape(n, batch, -1).astype(np.int64)
                prev = src[:-1].reshape((n - 1) * batch, -1)  # step n-1 feeds step n
                a += _shift(np.asarray((p.matrix @ prev.T).T, dtype=np.int64), p.exp)
            peak = int(np.abs(a).max()) if a.size else 0
            if peak > _A_SAFE:
                raise GraphError(
                    f"node '{lif.node.name}' (lif): synaptic input reached {peak} > 2^18, where "
                    "Lava's int32 LIF arithmetic (a << 6, u) can differ from docs/qgraph.md; "
                    "reduce weights or weight_exp upstream"
                )


class _Components:
    """Tiny union-find over node names (which LIFs Lava would compile together)."""

    def __init__(self, names: list[str]) -> None:
        self.parent = {n: n for n in names}

    def find(self, n: str) -> str:
        while self.parent[n] != n:
            self.parent[n] = self.parent[self.parent[n]]
            n = self.parent[n]
        return n

    def join(self, a: str, b: str) -> None:
        self.parent[self.find(a)] = self.find(b)

    def cut_off(self, root: str) -> list[str]:
        """One representative of every component not containing ``root``."""
        seen, reps = {self.find(root)}, []
        for n in self.parent:
            r = self.find(n)
            if r not in seen:
                seen.add(r)
                reps.append(n)
        return reps


def run(
    graph: QGraph, inputs: Any, num_steps: int | None = None, record_state: bool = False
) -> LavaResult:
    """Run ``graph`` on integer frames ``[F, B, *input_shape]`` with Lava's bit-accurate
    models (docs/qgraph.md); one Lava network per call. ``num_steps`` defaults to
    ``graph.num_steps + graph.depth()``. Raises LavaMissingError without lava-nc."""
    return LavaNetwork(graph).run(inputs, num_steps, record_state)
