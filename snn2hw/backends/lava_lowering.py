"""Lowering of a quantized graph to Lava connections, for :mod:`snn2hw.backends.lava`.

Holds the exact integer matrices of the synaptic operators (dense W', conv, sumpool over
C-order flat indices), their composition along a synapse path, the re-encoding of a
composed matrix into Lava's 8-bit weights (:func:`lower_path`; the rules are in the
docstring of :mod:`snn2hw.backends.lava`) and the static int32 bounds of a lowered path
(:func:`check_path_int32`), and the synaptic delays of a path (docs/qgraph.md "Synaptic
delays"): Lava's ``DelayDense``/``DelaySparse`` deliver a delay ``d`` at ``t + 1 + d``,
exactly the arrival step of the docs, so a path's delays are passed through unchanged
(docs/lava.md "Synaptic delays: DelayDense and DelaySparse"). Split from ``lava.py`` (which
keeps the Lava process network and its run) to keep each module readable; it is part of
the same backend and needs no lava-nc.

May import: numpy, scipy, ``snn2hw.common``, ``snn2hw.quant``. Never another backend
(torch_int, event, onnx) nor pipeline, chip, training, reporting or cli.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import scipy.sparse as sp

from snn2hw.common.errors import GraphError
from snn2hw.quant.qgraph import (
    ConvNode,
    DenseNode,
    FlattenNode,
    LIFNode,
    QGraph,
    SumPoolNode,
)

__all__ = ["LAVA_MAX_DELAY", "LoweredLif", "check_path_int32", "lower_path", "shift"]

_I32 = 1 << 31  # Lava's connection outputs and graded dot products are int32
_W24 = 1 << 23  # wrap24 is the identity on [-2^23, 2^23)
LAVA_MAX_DELAY = 63  # DelayDense / DelaySparse refuse longer delays (Loihi 2's 6 bits)


# ----- integer building blocks (docs/qgraph.md) ----------------------------------------------
def shift(x: Any, e: int) -> Any:
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
    """One Lava connection process: ``Dense`` (raw graph weights) or ``Sparse``; with a
    non-zero ``delays`` (an int, or a per-synapse int array of the weights' shape) Lava's
    ``DelayDense`` / ``DelaySparse``."""

    kind: str
    weights: Any
    weight_exp: int
    num_weight_bits: int = 8
    delays: Any = 0

    @property
    def max_delay(self) -> int:
        d = np.asarray(self.delays)
        return int(d.max()) if d.size else 0


@dataclass
class _Path:
    """A lowered synapse path: exact effective map ``shift(sum_d parts[d] @ x[n-1-d],
    exp)`` at arrival step n, with ``parts`` the matrix split by total delay (one entry,
    ``{delay: matrix}``, unless a dense has per-synapse delays)."""

    nodes: list[str]
    source: str
    target: str
    matrix: sp.csr_matrix
    exp: int
    conns: list[_Conn] = field(default_factory=list)
    parts: dict[int, sp.csr_matrix] = field(default_factory=dict)

    @property
    def max_delay(self) -> int:
        return max(self.parts, default=0)


@dataclass
class LoweredLif:
    node: LIFNode
    size: int
    paths: list[_Path] = field(default_factory=list)
    proven: bool = True  # |a| <= 2^18 statically


def _uniform_delay(op: Any, what: str) -> int:
    """The delay of every synapse of ``op`` on a composed path; per-synapse delays of
    different lengths cannot be composed with other operators into one matrix."""
    d = np.asarray(getattr(op, "delay", 0), dtype=np.int64)
    if d.size and int(d.min()) != int(d.max()):
        raise GraphError(
            f"{what}: dense node '{op.name}' has per-synapse delays of different lengths "
            "on a path with other operators; the Lava backend lowers such a path to one "
            "Sparse/DelaySparse matrix, which holds one delay per entry, so it cannot run "
            "it (use the event backend, or give the node one delay)"
        )
    return int(d.flat[0]) if d.size else 0


def _direct_dense(d: DenseNode, path: list[str], target: str, what: str) -> _Path:
    """``source -> [flatten] -> dense``: Lava ``Dense`` (``DelayDense`` with delays) on the
    node's raw weights, so Lava's own weight preparation runs."""
    eff = sp.csr_matrix(_dense_effective(d.weight, d.num_weight_bits))
    e = int(d.weight_exp)
    delays = np.asarray(d.delay, dtype=np.int64)
    if delays.ndim == 0 or int(delays.min()) == int(delays.max()):
        uniform = int(delays.flat[0]) if delays.size else 0
        conn = _Conn("dense", np.asarray(d.weight, np.int64), e, d.num_weight_bits, uniform)
        return _Path([*path], path[0], target, eff, e, [conn], {uniform: eff})
    if e < 0:
        # PyDelayDenseModelBitAcc floor-shifts the products of each send step per delay
        # before adding them into the arrival slot; docs/qgraph.md shifts the sum of one
        # arrival step once. The two differ as soon as a floor is taken (e < 0).
        raise GraphError(
            f"{what}: dense node '{d.name}' has per-synapse delays of different lengths and "
            f"weight_exp {e} < 0; Lava's DelayDense floor-shifts the products of each "
            "delay separately, docs/qgraph.md the sum of one arrival step, so the Lava "
            "backend cannot run it exactly (use the event backend, or weight_exp >= 0)"
        )
    dense_eff = eff.toarray()
    parts = {int(k): sp.csr_matrix(np.where(delays == k, dense_eff, 0))
             for k in np.unique(delays)}
    conn = _Conn("dense", np.asarray(d.weight, np.int64), e, d.num_weight_bits, delays)
    return _Path([*path], path[0], target, eff, e, [conn], parts)


def lower_path(graph: QGraph, path: list[str], target: str, x_max: int) -> _Path:
    """Compose the ops of ``path`` (source first) into one exact integer map, with the
    path's synaptic delays (their sum along the path)."""
    what = f"path {' -> '.join([*path, target])}"
    src_node = graph.nodes[path[0]]
    n_src = int(np.prod(src_node.shape))
    ops = [graph.nodes[name] for name in path[1:]]
    real = [op for op in ops if not isinstance(op, FlattenNode)]
    if len(real) == 1 and isinstance(real[0], DenseNode):
        return _direct_dense(real[0], path, target, what)
    delay = sum(_uniform_delay(op, what) for op in real)
    if delay > LAVA_MAX_DELAY:
        raise GraphError(
            f"{what}: its delays add up to {delay} steps; Lava's DelaySparse holds at most "
            f"{LAVA_MAX_DELAY} (PyDelaySparseModelBitAcc), so the Lava backend cannot run it"
        )

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
            lo, hi = shift(lo, exp), shift(hi, exp)
            if lo.size and (lo.min() < -_W24 or hi.max() >= _W24):
                raise GraphError(
                    f"{what}: conv node '{op.name}' can produce values outside signed 24 bits "
                    f"([{lo.min()}, {hi.max()}]) where docs/qgraph.md wraps them; the Lava "
                    "backend lowers conv to Sparse, which does not wrap"
                )
    m.eliminate_zeros()
    conns = [_Conn("sparse", w, int(x), 8, delay) for w, x in _encode(m, exp, what)]
    return _Path([*path], path[0], target, m, exp, conns, {delay: m})


def check_path_int32(p: _Path, x_max: int, graded: bool) -> tuple[np.ndarray, np.ndarray]:
    """Static per-neuron bounds of the path output; refuse paths that overflow int32."""
    lo, hi = _row_bounds(p.matrix, x_max)
    acc = max(int(-lo.min()), int(hi.max())) if lo.size else 0
    lo_s, hi_s = shift(lo, p.exp), shift(hi, p.exp)
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
