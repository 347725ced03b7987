"""Event-driven reference simulator of a quantized graph (numpy + numba, no torch).

An independent implementation of the execution semantics in docs/qgraph.md, used to check
the torch integer backend spike for spike. Spikes (and non-zero graded payloads) are
processed as events: each one touches only its fan-out (one column of a dense matrix, the
output positions of a conv or pooling window it reaches); every neuron then takes the LIF
step. All arithmetic is exact: int64, or int16/int32 sums where a bound proves they fit.

Timing (docs/qgraph.md "Topology and timing", "Synaptic delays"): at step n every LIF
integrates ``a = sum over its synapse paths P of apply_ops(P, out[source(P)][n-1-d])``
(0 before step 0), where ``d`` is the path's total delay; all LIFs update simultaneously
from earlier outputs. Each weighted operator with a delay keeps a circular buffer of the
input pending for each of its next ``delay + 1`` arrival steps (per neuron and sample):
an event is scattered into the slot of its arrival step when it occurs, and at every step
the slot of that step is read and cleared. A ``dense`` with per-synapse delays buffers the
unshifted products and floor-shifts each arrival step's sum once (one accumulator per
neuron); a uniform delay buffers the finished operator output (the same values, since the
operator is time-invariant).

Periodic state reset (docs/qgraph.md "Periodic state reset"): a LIF with
``reset_interval > 0`` has its ``u`` and ``v`` zeroed at the start of every step ``n``
(0-based; every sample of the batch starts at step 0) with ``n % reset_interval ==
reset_offset``, before that step's input is integrated.

Multi-spike LIF nodes (``max_spikes > 1``) emit their count as a graded payload, which
the synaptic kernels multiply like any graded input. ``spikes`` in the result holds that
payload (uint8 while ``max_spikes <= 255``, wider beyond).

Activity counters (for the energy model): a synaptic event is one (event, synapse) pair
processed by a weighted operator (dense, conv, sumpool; a pooling window membership is a
weight-1 synapse). An event is a neuron (or input) with a non-zero output in a step,
whatever its payload (docs/qgraph.md "Multi-spike output"); ``spike_counts`` counts
events. Synaptic events are counted at the step they are processed (when the spike
occurs, also for delayed synapses: that is when the synapse is read); ``peak_fanin``
counts the events arriving at a neuron in one step (after their delay). A path made
only of flattens (or of nothing) is an identity connection: each non-zero value is one
weight-1 event. Events of every weighted operator on a path are attributed to the LIF the
path ends in (so ``lif -> sumpool -> conv -> lif`` counts the pooling events and the conv
events).

Layouts: values are flat per sample. A conv or sumpool output is stored channels-last
(``(H, W, C)`` flat: each event's output channels are contiguous, and no strided
conversion runs per step), and so is the state (``a``, ``u``, ``v``, bias) of a 3-D LIF whose
terms are all such outputs of its shape; every other value is in C order. A LIF's spike
record is kept in its state's layout (no reordering per step), so a source is read in its
own layout: a conv or pool reads either layout, a dense reading a channels-last value has
its weight columns permuted once when prepared, and an identity path between a source and
a LIF of different layouts gathers. Results come back in (C, H, W) order: the spike
records of channels-last LIFs as transposed views of their storage (not C-contiguous; no
copy), the ``u``/``v`` traces as copies. The layouts are the simulator's business: results
are those of the contract.

Fusion: a conv whose output only one single-spike LIF reads, in the same (channels-last)
layout and without delay, runs with that LIF as one kernel (``_Plan.fused``;
``event_kernels.lif_kernels``' ``conv_step``): per sample, the events are scattered, then
the LIF's loop reads the sums while they are in cache, the conv's epilogue inside it. The
LIF kernels are compiled per overflow mode of u and v and per decay case (a node without
decay, ``du = 2^db - 1`` and ``dv = 0``, skips the decay products), each on first use.

Prepared plans are cached (:data:`PLANS`): the checks (structure, formats, chip limits)
and the weight preparation of a graph run once per graph object and content; every run
compares a fingerprint of the graph (every node field, arrays by a checksum of their
bytes, edges, formats, metadata; one memory pass, about 1 ms for 2 M weights) and
prepares again when anything changed, including arrays written in place. Buffers (which
depend on the batch) are made per run on shallow copies of the prepared operators.

Module layout: the prepared operators, the plan, the time loop and the registry entry
:data:`BACKEND` (they share private types); the numba kernels live in
:mod:`snn2hw.backends.event_kernels`. Results are :class:`snn2hw.backends.base.SimResult`
with ``counters`` set. May import: numpy, numba, ``snn2hw.common``, ``snn2hw.quant``,
``snn2hw.backends.base`` and its own kernels; never torch, another backend (torch_int,
lava, onnx), pipeline, chip, training, reporting or cli.
"""

from __future__ import annotations

import copy
import dataclasses
import threading
import time
import weakref
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from snn2hw.backends import event_kernels as K
from snn2hw.backends.base import (
    ActivityCounters,
    PreparingBackend,
    SimResult,
    UnsupportedFormatsError,
    check_int64_formats,
    check_node_kinds,
)
from snn2hw.common.errors import GraphError
from snn2hw.common.threads import contiguous_ranges, current_threads, map_parts
from snn2hw.quant.bounds import check_graph as check_chip_limits_of
from snn2hw.quant.formats import LOIHI_FORMATS, NumberFormats
from snn2hw.quant.qgraph import (
    ConvNode,
    DenseNode,
    FlattenNode,
    InputNode,
    LIFNode,
    QGraph,
    SumPoolNode,
)

__all__ = [
    "BACKEND",
    "NODE_KINDS",
    "PLANS",
    "EventBackend",
    "PlanCache",
    "dense_effective_weight",
    "graph_fingerprint",
    "run",
    "warmup",
]

# Every qgraph node kind this backend executes (docs/qgraph.md).
NODE_KINDS = frozenset({"input", "dense", "conv", "sumpool", "flatten", "lif", "output"})

# Dense layout choice: with at least this fraction of non-zero weights, adding whole
# columns (zeros included, SIMD friendly) beats a CSR scatter of the non-zeros.
COLUMN_DENSITY = 0.35


def dense_effective_weight(
    weight: np.ndarray, num_weight_bits: int, formats: NumberFormats = LOIHI_FORMATS
) -> np.ndarray:
    """``W'`` of docs/qgraph.md "Dense weight preparation", int64.

    sign mode EXCITATORY if ``min(W) >= 0`` (all-zero included), INHIBITORY if
    ``max(W) <= 0``, else MIXED; clip to that mode's range of the formats (Loihi: MIXED
    [-256, 255], EXC [0, 255], INH [-255, 0]); ``k = weight_mantissa_bits -
    num_weight_bits + (MIXED and mixed_sign_lsb_loss)``; ``W' = (W >> k) << k`` (floor
    shifts), for INHIBITORY ``W' = -(((-W) >> k) << k)``. Loihi: mixed [7, -7] -> [6, -8].
    """
    f = formats
    w = np.asarray(weight).astype(np.int64)
    if w.size == 0 or w.min() >= 0:
        mixed, inhibitory = 0, False
        w = np.clip(w, *f.weight_range_excitatory)
    elif w.max() <= 0:
        mixed, inhibitory = 0, True
        w = np.clip(w, *f.weight_range_inhibitory)
    else:
        mixed, inhibitory = int(f.mixed_sign_lsb_loss), False
        w = np.clip(w, *f.weight_range_mixed)
    k = f.weight_mantissa_bits - int(num_weight_bits) + mixed
    if inhibitory:
        return -(((-w) >> k) << k)
    return (w >> k) << k


def _small_int(a: np.ndarray) -> np.ndarray:
    """int16 copy when the values fit (4x less memory traffic per event), else int64."""
    if a.size == 0 or (a.min() >= -(2**15) and a.max() < 2**15):
        return np.ascontiguousarray(a, dtype=np.int16)
    return np.ascontiguousarray(a, dtype=np.int64)


def _taps(size: int, size_out: int, k: int, stride: int, pad: int, dil: int):
    """For each input index y: the pairs (kernel index ky, output index o) with
    ``o * stride - pad + ky * dil == y`` and ``0 <= o < size_out`` (PyTorch geometry)."""
    ptr = np.zeros(size + 1, dtype=np.int64)
    ks: list[int] = []
    os_: list[int] = []
    for y in range(size):
        for ky in range(k):
            t = y + pad - ky * dil
            if t >= 0 and t % stride == 0 and t // stride < size_out:
                ks.append(ky)
                os_.append(t // stride)
        ptr[y + 1] = len(ks)
    return ptr, np.asarray(ks, dtype=np.int64), np.asarray(os_, dtype=np.int64)


class _Op:
    """A prepared weighted synaptic operator with its per-batch output buffers.

    ``delay`` (uniform over the operator): its output of step t is computed from its input
    of step ``t - delay``. The output buffers form a ring of ``delay + 1`` slots (arrival
    steps); :meth:`apply` writes this step's result into the slot of its arrival step and
    exposes the slot of the current step as ``out``/``cnt``."""

    size_out: int
    macs: int
    delay: int = 0
    binary_input: bool = False  # set by the plan: the operator reads a 0/1 source

    def alloc(self, batch: int) -> None:
        depth = self.delay + 1
        self.ring = np.zeros((depth, batch, self.size_out), dtype=np.int64)
        self.cring = np.zeros((depth, batch, self.size_out), dtype=np.int64)
        self.out = self.ring[0]
        self.cnt = self.cring[0]

    def apply(self, x: np.ndarray, need_cnt: bool, t: int) -> tuple[int, int]:
        """Apply at step ``t`` to the flat values ``x`` ``[B, size_in]`` this step reads:
        set ``self.out`` (and the fan-in counts ``self.cnt`` when ``need_cnt``) to the
        values arriving at step t and return ``(synops over non-zero weights, structural
        synops)`` of the events processed now, summed over the batch."""
        if self.delay == 0:  # a ring of one slot: out/cnt stay
            return self._apply(x, need_cnt, self.out, self.cnt)
        depth = self.delay + 1
        slot = (t + self.delay) % depth
        res = self._apply(x, need_cnt, self.ring[slot], self.cring[slot])
        self.out = self.ring[t % depth]
        self.cnt = self.cring[t % depth]
        return res

    def _apply(self, x: np.ndarray, need_cnt: bool, out: np.ndarray,
               cnt: np.ndarray) -> tuple[int, int]:
        """The operator without delay: fill ``out`` (and ``cnt``) from ``x``."""
        raise NotImplementedError


def _prepare_dense(op: _Op, node: DenseNode, f: NumberFormats
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Set ``op``'s size, MACs and weight exponent from ``node``; return its weights as
    int64 and the prepared W'^T ``[N_in, N_out]`` int16 (one event's fan-out is one
    contiguous row) with the non-zero count per input column."""
    w = np.ascontiguousarray(node.weight, dtype=np.int64)
    op.size_out, op.macs = int(w.shape[0]), int(w.size)
    op.weight_exp = int(node.weight_exp)
    wt, nnz_col = K.dense_prepare(
        w, int(node.num_weight_bits), f.weight_mantissa_bits, *f.weight_range_mixed,
        *f.weight_range_excitatory, *f.weight_range_inhibitory, int(f.mixed_sign_lsb_loss))
    return w, wt, nnz_col


class _DenseOp(_Op):
    def __init__(self, node: DenseNode, f: NumberFormats) -> None:
        w, self.wt, self.nnz_col = _prepare_dense(self, node, f)
        n_in = w.shape[1]
        self.delay = _uniform_delay(node.delay)
        nnz = int(self.nnz_col.sum())
        density = nnz / w.size if w.size else 0.0
        self.columns = density >= COLUMN_DENSITY
        self.row_exp = 0
        if self.columns:
            # the zero entries per input column (fan-in counts) and the narrow-sum bounds
            self.zptr, self.zidx, _ = K.csr_rows(self.wt, False)
            self.wmax = max(-int(self.wt.min(initial=0)), int(self.wt.max(initial=0)))
            # W' keeps num_weight_bits of precision: all its entries are multiples of 2^k.
            # Rows of W' >> k in int8 (Loihi 8-bit mixed: [-256, 254] -> [-128, 127]) halve
            # the bytes each event reads; the kernel's shift by weight_exp + k restores the
            # scale exactly (shift(s << k, e) == shift(s, e + k) for integer sums s)
            k = _common_trailing_zeros(self.wt)
            if -128 <= int(self.wt.min(initial=0)) >> k and int(self.wt.max(initial=0)) >> k <= 127:
                self.wt = (self.wt >> k).astype(np.int8)
                self.wmax >>= k
                self.row_exp = k
            # max|W'| * N_in bounds every row's sum of |W'| (no int64 copy of W')
            self.rowbound = self.wmax * n_in
        else:
            self.ptr, self.idx, self.val = K.csr_rows(self.wt, True)

    def alloc(self, batch: int) -> None:
        super().alloc(batch)
        # the narrow sums of K.dense_columns
        self.acc32 = np.zeros(self.size_out, dtype=np.int32)
        self.acc16 = np.zeros(self.size_out, dtype=np.int16)

    def _apply(self, x: np.ndarray, need_cnt: bool, out: np.ndarray,
               cnt: np.ndarray) -> tuple[int, int]:
        if self.columns:
            syn, n_ev = K.dense_columns(
                x, self.wt, self.nnz_col, self.zptr, self.zidx, self.rowbound, self.wmax,
                self.weight_exp + self.row_exp, need_cnt, out, cnt, self.acc32, self.acc16,
                self.binary_input,
            )
        else:
            syn, n_ev = K.dense_csr(
                x, self.ptr, self.idx, self.val, self.weight_exp, need_cnt, out, cnt
            )
        return int(syn), int(n_ev) * self.size_out  # every structural synapse of a column


def _common_trailing_zeros(w: np.ndarray) -> int:
    """The largest k with every entry of ``w`` a multiple of 2^k (0 for an all-zero ``w``)."""
    bits = int(np.bitwise_or.reduce(np.abs(w.astype(np.int32)), axis=None)) if w.size else 0
    return (bits & -bits).bit_length() - 1 if bits else 0


def _uniform_delay(delay: Any) -> int:
    """The one delay of every synapse (an int, or an array holding one value)."""
    d = np.asarray(delay, dtype=np.int64)
    return int(d.flat[0]) if d.size else 0


def _has_mixed_delays(delay: Any) -> bool:
    d = np.asarray(delay, dtype=np.int64)
    return d.size > 0 and int(d.min()) != int(d.max())


class _DelayDenseOp(_Op):
    """A dense operator whose synapses have different delays: a ring of unshifted
    per-arrival-step sums (one accumulator per neuron), shifted once when read."""

    def __init__(self, node: DenseNode, f: NumberFormats) -> None:
        w, wt, _ = _prepare_dense(self, node, f)
        n_in = w.shape[1]
        dt = np.asarray(node.delay, dtype=np.int64).T  # [N_in, N_out] like wt
        cols, rows = np.nonzero(wt)  # row-major: grouped by input column j
        self.ptr = np.zeros(n_in + 1, dtype=np.int64)
        np.cumsum(np.bincount(cols, minlength=n_in), out=self.ptr[1:])
        self.idx = rows.astype(np.int64)
        self.val = wt[cols, rows].astype(np.int64)
        self.dly = dt[cols, rows].astype(np.int64)
        self.depth = int(dt.max()) + 1

    def alloc(self, batch: int) -> None:
        self.ring = np.zeros((self.depth, batch, self.size_out), dtype=np.int64)
        self.cring = np.zeros((self.depth, batch, self.size_out), dtype=np.int64)
        self.out = np.zeros((batch, self.size_out), dtype=np.int64)
        self.cnt = np.zeros((batch, self.size_out), dtype=np.int64)

    def apply(self, x: np.ndarray, need_cnt: bool, t: int) -> tuple[int, int]:
        syn, n_ev = K.dense_delay_scatter(x, self.ptr, self.idx, self.val, self.dly, t,
                                          self.ring, self.cring, need_cnt)
        K.ring_emit(self.ring, self.cring, t % self.depth, self.weight_exp, need_cnt,
                    self.out, self.cnt)
        return int(syn), int(n_ev) * self.size_out


class _ConvOp(_Op):
    def __init__(self, node: ConvNode, hwc_in: bool, hwc_out: bool) -> None:
        self.hwc_in, self.hwc_out = hwc_in, hwc_out
        w = np.asarray(node.weight).astype(np.int64)
        c_out, cig, kh, kw = w.shape
        c, h, wd = (int(s) for s in node.input_shape)
        _, h_out, w_out = node.out_shape
        groups = int(node.groups)
        cog = c_out // groups
        self.size_out = c_out * h_out * w_out
        self.macs = c_out * h_out * w_out * cig * kh * kw
        self.weight_exp = int(node.weight_exp)
        self.delay = int(node.delay)
        self.geom = np.array([c, h, wd, c_out, h_out, w_out, cig, cog, kh, kw], dtype=np.int64)
        # [C_in/g, kH, kW, C_out]: the output channels of one tap are contiguous
        wk = w.transpose(1, 2, 3, 0)
        self.wt = _small_int(wk).ravel()
        # weight and fan-in count in one int64 add (see K.conv_scatter)
        self.wpk = self.wt.astype(np.int64) + ((self.wt != 0).astype(np.int64) << 32)
        self.wbound = int(np.abs(w).max(initial=0)) * cig * kh * kw
        self.ytaps = _taps(h, h_out, kh, node.stride[0], node.padding[0], node.dilation[0])
        self.xtaps = _taps(wd, w_out, kw, node.stride[1], node.padding[1], node.dilation[1])
        # runs (K.conv_scatter): kernel columns by phase kx % stride, then falling kx, so
        # the column taps of one event are consecutive slots
        stride = int(node.stride[1])
        self.xrun = groups == 1 and int(node.dilation[1]) == 1
        order = [kx for r in range(stride) for kx in range(kw)[r::stride][::-1]]
        self.xslot = np.empty(kw, dtype=np.int64)
        self.xslot[order] = np.arange(kw, dtype=np.int64)
        self.w_s = _small_int(wk[:, :, order, :]).ravel()
        self.wpk_s = np.ascontiguousarray(
            self.wpk.reshape(cig, kh, kw, c_out)[:, :, order, :]).ravel()
        self.pos = position_table((c, h, wd), hwc_in)
        syn_tab, synall_tab = _conv_synop_tables(w, (c, h, wd), groups, self.ytaps,
                                                 self.xtaps)
        stored = chw_order((c, h, wd)) if hwc_in else slice(None)  # per stored position
        self.syn_tab = np.ascontiguousarray(syn_tab[stored])
        self.synall_tab = np.ascontiguousarray(synall_tab[stored])
        self.n_scratch = h_out * w_out * c_out
        # packed int32 sums (K.conv_scatter, "Narrow sums"): w + (w != 0) << 16
        self.wmax = int(np.abs(w).max(initial=0))
        nz16 = (self.wt != 0).astype(np.int64) << 16
        self.wpk32 = (self.wt.astype(np.int64) + nz16).astype(np.int32)
        self.wpk32_s = np.ascontiguousarray(
            self.wpk32.reshape(cig, kh, kw, c_out)[:, :, order, :]).ravel()

    def alloc(self, batch: int) -> None:
        super().alloc(batch)
        # the channels-last scratch of a (C, H, W) output (unused when hwc_out)
        n = 0 if self.hwc_out else self.n_scratch
        self.acc_t = np.zeros(n, dtype=np.int64)
        self.cnt_t = np.zeros(n, dtype=np.int64)
        self.acc32 = np.zeros(self.n_scratch, dtype=np.int32)  # channels-last, packed
        # the kernels' fixed arguments, bound once per run (30 attribute reads per call
        # cost about 1 us, a few % of a step at batch 16)
        (yp, yk, yo), (xp, xk, xo) = self.ytaps, self.xtaps
        self.args_head = (self.geom, self.wt, self.wpk, self.wbound, yp, yk, yo, xp, xk, xo,
                          self.weight_exp)
        self.args_events = (self.xrun, self.w_s, self.wpk_s, self.xslot, self.syn_tab,
                            self.synall_tab, self.binary_input, self.pos)
        self.args_narrow = (self.wmax, self.wpk32, self.wpk32_s, self.acc32)

    def _apply(self, x: np.ndarray, need_cnt: bool, out: np.ndarray,
               cnt: np.ndarray) -> tuple[int, int]:
        return K.conv_scatter(x, *self.args_head, need_cnt, self.acc_t, self.cnt_t, out, cnt,
                              *self.args_events, self.hwc_out, *self.args_narrow)

    def apply_lif(self, x: np.ndarray, lif: _Lif, u: np.ndarray, v: np.ndarray,
                  spk: np.ndarray) -> tuple[int, int, int, int, int]:
        """The conv and the single-spike LIF it alone feeds, in one kernel (``fused`` in
        :class:`_Plan`; no delay): the LIF's step from ``x``, spikes into ``spk``. Returns
        ``(synops, structural synops, spikes, active updates, max fan-in)``."""
        return lif.kernels.conv_step(x, *self.args_head, self.acc_t, self.cnt_t, self.out,
                                     self.cnt, *self.args_events, *self.args_narrow, u, v,
                                     lif.bias, spk, lif.consts)


def _conv_synop_tables(w: np.ndarray, in_shape: tuple[int, int, int], groups: int,
                       ytaps: tuple[np.ndarray, ...], xtaps: tuple[np.ndarray, ...]
                       ) -> tuple[np.ndarray, np.ndarray]:
    """Per input position (C-order index): the synaptic events of one event there through
    non-zero weights, and through every weight it reaches (C_out/groups per tap)."""
    c_out, cig, kh, kw = w.shape
    c, h, wd = in_shape
    cog = c_out // groups

    def reach(taps: tuple[np.ndarray, ...], size: int, k: int) -> np.ndarray:
        ptr, ks, _ = taps  # [size, k]: 1 where input index y meets kernel index ky
        m = np.zeros((size, k), dtype=np.int64)
        rows = np.repeat(np.arange(size), np.diff(ptr))
        m[rows, ks] = 1
        return m

    ym, xm = reach(ytaps, h, kh), reach(xtaps, wd, kw)
    nnz = (w != 0).reshape(groups, cog, cig, kh, kw).sum(axis=1)  # [g, cig, kh, kw]
    nnz = nnz.reshape(groups * cig, kh, kw)  # one per input channel
    syn = np.einsum("yk,ckl,xl->cyx", ym, nnz, xm)
    taps = ym.sum(axis=1)[:, None] * xm.sum(axis=1)[None, :] * cog  # [h, w]
    synall = np.broadcast_to(taps, (c, h, wd))
    return (np.ascontiguousarray(syn, dtype=np.int64).ravel(),
            np.ascontiguousarray(synall, dtype=np.int64).ravel())


class _PoolOp(_Op):
    def __init__(self, node: SumPoolNode, hwc_in: bool, hwc_out: bool) -> None:
        self.hwc_in, self.hwc_out = hwc_in, hwc_out
        c, h, w = (int(s) for s in node.input_shape)
        _, h_out, w_out = node.out_shape
        kh, kw = (int(k) for k in node.kernel_size)
        self.size_out = c * h_out * w_out
        self.macs = c * h_out * w_out * kh * kw  # adds of a dense implementation
        self.geom = np.array([c, h, w, h_out, w_out], dtype=np.int64)
        yp, _, yo = _taps(h, h_out, kh, node.stride[0], node.padding[0], 1)
        xp, _, xo = _taps(w, w_out, kw, node.stride[1], node.padding[1], 1)
        self.args_head = (self.geom, yp, yo, xp, xo)
        self.pos = position_table((c, h, w), hwc_in)

    def _apply(self, x: np.ndarray, need_cnt: bool, out: np.ndarray,
               cnt: np.ndarray) -> tuple[int, int]:
        return K.sumpool_scatter(x, *self.args_head, need_cnt, out, cnt, self.pos,
                                 self.hwc_out)


class _IdentityOp(_Op):
    """A path with no weighted operator: the source's values, one weight-1 event each."""

    def __init__(self, size: int, gather: np.ndarray | None) -> None:
        self.size_out = size
        self.macs = size
        self.gather = gather  # out[i] = x[gather[i]] when source and LIF layouts differ

    def _apply(self, x: np.ndarray, need_cnt: bool, out: np.ndarray,
               cnt: np.ndarray) -> tuple[int, int]:
        if self.gather is not None:
            x = np.ascontiguousarray(x[:, self.gather])
        syn, syn_all = K.identity_scatter(x, out, cnt)
        return int(syn), int(syn_all)


@dataclass
class _Lif:
    node: LIFNode
    size: int
    terms: list[str]  # terminal operator key of each path (its value reaches the LIF)
    path_ops: list[str]  # every weighted operator of every path (with multiplicity)
    bias: np.ndarray
    macs: int
    kernels: K.LifKernels  # of its overflow modes and decay case (single spikes)
    consts: tuple[int, ...]  # K.lif_consts


def chw_order(shape: tuple[int, ...]) -> np.ndarray:
    """For a ``(C, H, W)`` value stored channels-last: the ``(C, H, W)`` flat index of each
    stored position (``stored = chw_flat[chw_order(shape)]``)."""
    c, h, w = (int(v) for v in shape)
    return np.arange(c * h * w, dtype=np.int64).reshape(c, h, w).transpose(1, 2, 0).ravel()


def position_table(shape: tuple[int, ...], hwc: bool) -> np.ndarray:
    """The packed ``(C, H, W)`` position (``event_kernels._position``) of each stored
    position of a ``(C, H, W)`` value stored channels-last (``hwc``) or in C order."""
    c, h, w = (int(v) for v in shape)
    if max(h, w) >= 1 << K.POS_BITS or c >= 1 << 22:
        raise GraphError(f"a (C, H, W) = {shape} value is too large for the event simulator "
                         f"(H and W below 2^{K.POS_BITS}, C below 2^22)")
    ch, y, x = (a.ravel().astype(np.int64) for a in np.indices((c, h, w)))
    p = (ch << (2 * K.POS_BITS)) | (y << K.POS_BITS) | x
    return p[chw_order(shape)] if hwc else p


def _identity_gather(src_shape: tuple[int, ...], src_hwc: bool, dst_shape: tuple[int, ...],
                     dst_hwc: bool) -> np.ndarray | None:
    """For an identity path (the same values, flat in C order) from a source stored in one
    layout into a LIF stored in another: the stored source position of each stored LIF
    position (None where the two orders agree)."""
    dst_c = chw_order(dst_shape) if dst_hwc else None  # C index of each stored LIF position
    if not src_hwc:
        return dst_c
    src_pos = np.argsort(chw_order(src_shape))  # stored source position of each C index
    gather = src_pos if dst_c is None else src_pos[dst_c]
    return None if np.array_equal(gather, np.arange(gather.size)) else gather


def _layouts(op_nodes: dict[str, Any], lif_paths: list[tuple[LIFNode, list[str]]]
             ) -> dict[str, bool]:
    """Which values are stored channels-last (module docstring, "Layouts"): every conv and
    sumpool output and every 3-D LIF, except where a LIF and a term delivering to it cannot
    share the layout (a dense term, an operator of another shape, an operator that is also
    a term of a C-order LIF); identity terms gather whatever the layouts. Flags only turn
    off, so the loop ends."""
    hwc = {key: isinstance(n, (ConvNode, SumPoolNode)) for key, n in op_nodes.items()}
    for node, _ in lif_paths:
        hwc[node.name] = len(node.shape) == 3
    changed = True
    while changed:
        changed = False
        for node, terms in lif_paths:
            for t in terms:
                n = op_nodes[t]
                if n is None:
                    continue
                same = (isinstance(n, (ConvNode, SumPoolNode))
                        and tuple(n.out_shape) == tuple(node.shape))
                if hwc[node.name] and not (same and hwc[t]):
                    hwc[node.name] = False
                    changed = True
                if not hwc[node.name] and hwc[t]:
                    hwc[t] = False
                    changed = True
    return hwc


class _Plan:
    """The graph compiled for one run: prepared operators, their inputs, the LIF list, the
    layout of every value (``hwc``: stored channels-last)."""

    def __init__(self, graph: QGraph) -> None:
        self.input = graph.input_node
        self.op_input: dict[str, str] = {}  # op key -> key of what feeds it (op or source)
        self.need_cnt: set[str] = set()
        self.sources: dict[str, int] = {self.input.name: int(np.prod(self.input.shape))}
        for node in graph.lif_nodes:
            self.sources[node.name] = int(np.prod(node.shape))
        # 1. the synapse paths: operator nodes (None: an identity path), their inputs, terms
        op_nodes: dict[str, Any] = {}
        lif_paths: list[tuple[LIFNode, list[str]]] = []
        path_ops_of: dict[str, list[str]] = {}
        for node in graph.lif_nodes:
            terms: list[str] = []
            path_ops: list[str] = []
            for path in graph.synapse_paths(node.name):
                src, chain = path[0], path[1:]
                prev = src
                weighted: list[str] = []
                for name in chain:
                    n = graph.nodes[name]
                    if isinstance(n, FlattenNode):
                        continue  # values are kept flat: flatten is the identity
                    if not isinstance(n, (DenseNode, ConvNode, SumPoolNode)):
                        raise GraphError(
                            f"node '{n.name}' ({n.kind}) cannot sit on a synapse path")
                    if name not in op_nodes:
                        op_nodes[name] = n
                        self.op_input[name] = prev
                    prev = name
                    weighted.append(name)
                if not weighted:  # source -> (flatten ...) -> lif
                    # NUL: cannot clash with a node name; per LIF: the gather is the LIF's
                    key = f"\0identity:{src}\0{node.name}"
                    if key not in op_nodes:
                        op_nodes[key] = None
                        self.op_input[key] = src
                    weighted.append(key)
                terms.append(weighted[-1])
                self.need_cnt.add(weighted[-1])
                path_ops.extend(weighted)
            lif_paths.append((node, terms))
            path_ops_of[node.name] = path_ops
        # 2. layouts, then 3. the operators prepared for them
        self.hwc = _layouts(op_nodes, lif_paths)
        # of the values that may be stored channels-last: 3-D LIFs, conv and pool outputs
        shapes: dict[str, tuple[int, ...]] = {
            node.name: tuple(int(v) for v in node.shape) for node in graph.lif_nodes}
        self.ops: dict[str, _Op] = {}
        lif_of_identity = {t: node for node, terms in lif_paths for t in terms
                           if op_nodes[t] is None}
        for key, n in op_nodes.items():  # insertion order: every input before its readers
            src = self.op_input[key]
            if n is None:  # source -> LIF: a gather where their layouts differ
                lif = lif_of_identity[key]
                op: _Op = _IdentityOp(self.sources[src], _identity_gather(
                    graph.nodes[src].shape, self.hwc.get(src, False), lif.shape,
                    self.hwc[lif.name]))
            else:
                op = self._prepare(n, graph.formats, src, shapes.get(src))
                if isinstance(n, (ConvNode, SumPoolNode)):
                    shapes[key] = tuple(int(v) for v in n.out_shape)
            op.binary_input = _binary(graph, src)
            self.ops[key] = op
        self.lifs: list[_Lif] = []
        for node, terms in lif_paths:
            size = int(np.prod(node.shape))
            for t in terms:
                if self.ops[t].size_out != size:
                    raise GraphError(
                        f"LIF '{node.name}' has {size} neurons but a synapse path delivers "
                        f"{self.ops[t].size_out} values"
                    )
            bm = np.asarray(node.bias_mant).astype(np.int64).ravel()
            be = np.asarray(node.bias_exp).astype(np.int64).ravel()
            # b = bias_mant << bias_exp (docs/qgraph.md "LIF step"; >> for exp < 0)
            bias = np.where(be >= 0, bm << np.maximum(be, 0), bm >> np.maximum(-be, 0))
            if self.hwc[node.name]:  # state (and spike record) channels-last
                bias = bias[chw_order(node.shape)]
            path_ops = path_ops_of[node.name]
            f = graph.formats
            self.lifs.append(
                _Lif(node, size, terms, path_ops, np.ascontiguousarray(bias, dtype=np.int64),
                     sum(self.ops[k].macs for k in path_ops),
                     K.lif_kernels(f.u_overflow == "saturate", f.v_overflow == "saturate",
                                   K.lif_decays(node.du, node.dv, f.decay_bits)),
                     K.lif_consts(node.du, node.dv, node.vth, *_lif_rules(f)))
            )
        # 4. a conv that alone feeds a single-spike LIF in its layout and nothing else runs
        # fused with it (K.conv_lif: the conv's epilogue inside the LIF's loop)
        feeds = [src for src in self.op_input.values()] + [
            t for _, terms in lif_paths for t in terms]
        self.fused: dict[str, str] = {}  # LIF name -> its conv
        for node, terms in lif_paths:
            t = terms[0]
            op = self.ops[t]
            if (len(terms) == 1 and isinstance(op, _ConvOp) and op.hwc_out
                    and self.hwc[node.name] and op.delay == 0 and feeds.count(t) == 1
                    and int(node.max_spikes) == 1):
                self.fused[node.name] = t

    def _prepare(self, node: Any, f: NumberFormats, src: str,
                 src_shape: tuple[int, ...] | None) -> _Op:
        """The operator of ``node`` reading ``src`` (an operator output, a LIF's spike
        record or the input) in ``src``'s layout."""
        src_hwc = self.hwc.get(src, False)
        if isinstance(node, DenseNode):
            if src_hwc and src_shape is not None:
                # a channels-last input: the weight columns in the stored order
                perm = chw_order(src_shape)
                d = np.asarray(node.delay)
                node = replace(node, weight=np.asarray(node.weight)[:, perm],
                               delay=d[:, perm] if d.ndim == 2 else node.delay)
            if _has_mixed_delays(node.delay):
                return _DelayDenseOp(node, f)
            return _DenseOp(node, f)
        if isinstance(node, ConvNode):
            return _ConvOp(node, src_hwc, self.hwc[node.name])
        return _PoolOp(node, src_hwc, self.hwc[node.name])


def _binary(graph: QGraph, key: str) -> bool:
    """Whether the values ``key`` (a node name) sends are 0/1: a binary input or a LIF
    with single spikes (an operator's output, or an unknown key, is not)."""
    node = graph.nodes.get(key)
    if isinstance(node, InputNode):
        return int(node.message_bits) == 0
    return isinstance(node, LIFNode) and int(node.max_spikes) == 1


def _check_formats(graph: QGraph) -> None:
    """Formats this int64 implementation executes: decay products inside int64, and
    stored Dense weights inside the int16 its fan-out rows use."""
    check_int64_formats(graph, "event")
    f = graph.formats
    for key in ("weight_range_mixed", "weight_range_excitatory", "weight_range_inhibitory"):
        lo, hi = getattr(f, key)
        if lo < -(2**15) or hi >= 2**15:
            raise UnsupportedFormatsError(
                f"backend 'event' cannot run target '{graph.target}': {key} {[lo, hi]} "
                "exceeds the 16-bit weights of its event kernels"
            )


def _fingerprint_value(v: Any) -> Any:
    """A hashable summary of one graph value that changes whenever the value does: arrays
    by dtype, shape and a position-weighted checksum of their bytes (one memory pass)."""
    if isinstance(v, np.ndarray) or isinstance(v, np.generic):
        a = np.ascontiguousarray(v)
        if a.dtype.kind in "iub":
            words = a.astype(np.int64, copy=False).reshape(-1).view(np.uint64)
        elif a.dtype.kind == "f":
            words = a.astype(np.float64, copy=False).reshape(-1).view(np.uint64)
        else:
            return (a.dtype.str, a.shape, a.tobytes())
        return (a.dtype.str, a.shape, K.checksum64(words))
    if isinstance(v, dict):
        return ("dict", tuple((repr(k), _fingerprint_value(x)) for k, x in v.items()))
    if isinstance(v, (list, tuple)):
        return (type(v).__name__, tuple(_fingerprint_value(x) for x in v))
    if dataclasses.is_dataclass(v) and not isinstance(v, type):
        return (type(v).__name__, tuple(_fingerprint_value(getattr(v, f.name))
                                        for f in dataclasses.fields(v)))
    return (type(v).__name__, repr(v))


def graph_fingerprint(graph: QGraph) -> tuple[Any, ...]:
    """Everything a run reads from ``graph`` (nodes in order with every field, edges,
    formats, target, metadata; not ``folder``), arrays by content: equal fingerprints mean
    the prepared plan (and the checks made when preparing it) still hold."""
    nodes = tuple((name, _fingerprint_value(node)) for name, node in graph.nodes.items())
    return (nodes, _fingerprint_value(list(graph.edges)), graph.dt, graph.target,
            graph.num_steps, _fingerprint_value(graph.formats),
            _fingerprint_value(graph.metadata))


class PlanCache:
    """Prepared plans per live graph object: a run of a graph seen before with the same
    content (:func:`graph_fingerprint`) reuses its validated, prepared weights; a graph
    changed since (a node replaced, an array written in place, an edge added) is checked
    and prepared again. Entries go when their graph is garbage collected.
    ``preparations`` counts the plans built (tests use it)."""

    def __init__(self) -> None:
        self._entries: dict[int, tuple[weakref.ref[QGraph], tuple[Any, ...], _Plan]] = {}
        self._lock = threading.Lock()
        self.preparations = 0

    def get(self, graph: QGraph) -> _Plan:
        """The plan of ``graph``, validated (structure, formats, chip limits) when built."""
        fp = graph_fingerprint(graph)
        key = id(graph)
        with self._lock:
            hit = self._entries.get(key)
        if hit is not None and hit[0]() is graph and hit[1] == fp:
            return hit[2]
        graph.validate()
        _check_formats(graph)
        check_chip_limits_of(graph)  # a graph made for a chip with limits must stay inside
        plan = _Plan(graph)
        with self._lock:
            self.preparations += 1
            old = self._entries.get(key)
            if old is None or old[0]() is not graph:
                weakref.finalize(graph, self._forget, key)
            self._entries[key] = (weakref.ref(graph), fp, plan)
        return plan

    def _forget(self, key: int) -> None:
        # No lock: this runs from a weakref finalizer, i.e. inside garbage collection, which
        # may start while this thread holds ``_lock`` (a non-reentrant lock: a deadlock, seen
        # as a hung test run). ``dict.pop`` is atomic under the GIL; a pop that removes a
        # newer entry of a recycled id only costs a re-preparation (get() checks identity).
        self._entries.pop(key, None)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)


PLANS = PlanCache()
"""The process-wide plan cache :func:`run` uses."""


def _lif_rules(f: NumberFormats) -> tuple[int, ...]:
    """The formats arguments of ``event_kernels.lif_consts``."""
    return (f.activation_shift, f.decay_bits, f.u_bits, f.v_bits, f.threshold_compare == ">=",
            f.reset == "subtract")


def _lif_step(L: _Lif, a: np.ndarray, c: np.ndarray, u: np.ndarray, v: np.ndarray,
              spk: np.ndarray, f: NumberFormats) -> tuple[int, int, int]:
    """One step of LIF ``L`` from its summed activation ``a`` and fan-in counts ``c``:
    spikes into ``spk``; returns ``(spikes, active updates, max fan-in)``."""
    m = int(L.node.max_spikes)
    if m == 1:
        return L.kernels.step(a, c, u, v, L.bias, spk, L.consts)
    sh, db, u_bits, v_bits, ge, sub = _lif_rules(f)
    return K.lif_step_general(a, c, u, v, L.bias, int(L.node.du), int(L.node.dv),
                              int(L.node.vth), m, spk, sh, db, u_bits,
                              f.u_overflow == "saturate", v_bits, f.v_overflow == "saturate",
                              ge, sub)


def _reset_state(node: LIFNode, n: int, u: np.ndarray, v: np.ndarray) -> None:
    """The periodic state reset of ``node`` (docs/qgraph.md "Periodic state reset"): zero
    its ``u`` and ``v`` at the start of step ``n`` (0-based within the sample) when
    ``reset_interval > 0`` and ``n % reset_interval == reset_offset``."""
    interval = int(node.reset_interval)
    if interval > 0 and n % interval == int(node.reset_offset):
        u.fill(0)
        v.fill(0)


def _check_inputs(graph: QGraph, inputs: Any) -> np.ndarray:
    """Validate ``[F, B, *input_shape]`` integer frames against the input node."""
    node: InputNode = graph.input_node
    arr = np.asarray(inputs)
    shape = tuple(int(s) for s in node.shape)
    if arr.dtype.kind not in "iub":
        raise GraphError(
            f"inputs for '{node.name}' must be an integer array, got dtype {arr.dtype}"
        )
    if arr.ndim != 2 + len(shape) or tuple(arr.shape[2:]) != shape:
        raise GraphError(
            f"inputs for '{node.name}' have shape {list(arr.shape)}, expected "
            f"[F, B, {', '.join(map(str, shape))}] (time-major frames, batch second)"
        )
    if arr.size:
        lo, hi = int(arr.min()), int(arr.max())
        if lo < 0:
            raise GraphError(f"inputs for '{node.name}' contain a negative value ({lo})")
        if node.message_bits == 0 and hi > 1:
            raise GraphError(
                f"input '{node.name}' is binary (message_bits=0) but the inputs contain {hi}; "
                "only 0/1 are allowed"
            )
        if node.message_bits > 0 and hi >= 2**node.message_bits:
            raise GraphError(
                f"input '{node.name}' carries {node.message_bits}-bit payloads but the inputs "
                f"contain {hi} >= 2**{node.message_bits}"
            )
    return arr


def run(
    graph: QGraph,
    inputs: np.ndarray,
    num_steps: int | None = None,
    record_state: bool = False,
    threads: int | None = None,
) -> SimResult:
    """Run ``graph`` on integer input frames ``[F, B, *input_shape]`` for ``num_steps``
    steps (default ``graph.num_steps + graph.depth()``), exactly as docs/qgraph.md defines.

    Returns spikes of every LIF ``[N, B, *shape]`` (uint8), optionally the ``u``/``v``
    traces after each step (int64), and the activity counters (``SimResult.counters``,
    :class:`snn2hw.backends.base.ActivityCounters`) in a :class:`SimResult`.
    ``threads`` (default: the process's thread count, which ``snn2hw --threads`` and
    ``OMP_NUM_THREADS`` set; :func:`snn2hw.common.threads.current_threads`) splits the
    batch into that many contiguous parts simulated at once (the kernels release the GIL);
    results do not depend on it.
    Raises :class:`GraphError` on a malformed graph or bad inputs.
    """
    t0 = time.perf_counter()
    plan = PLANS.get(graph)  # validates and prepares only when the graph is new or changed
    arr = _check_inputs(graph, inputs)
    if num_steps is None:
        num_steps = graph.num_steps + graph.depth()
    if isinstance(num_steps, bool) or not isinstance(num_steps, (int, np.integer)):
        raise GraphError(f"num_steps must be an integer, got {num_steps!r}")
    n_steps = int(num_steps)
    if n_steps < 0:
        raise GraphError(f"num_steps={n_steps} must be >= 0")
    batch = int(arr.shape[1])
    n_threads = current_threads() if threads is None else int(threads)
    if n_threads < 1:
        raise GraphError(f"threads must be >= 1, got {n_threads}")
    names = [L.node.name for L in plan.lifs]

    def per_lif(steps: int, dtype: type = np.int64) -> dict[str, np.ndarray]:
        return {L.node.name: np.zeros((steps, batch, L.size), dtype=dtype) for L in plan.lifs}

    out = _Outputs(
        spikes={L.node.name: np.zeros((n_steps, batch, L.size), dtype=_payload_dtype(L.node))
                for L in plan.lifs},
        u_rec=per_lif(n_steps) if record_state else None,
        v_rec=per_lif(n_steps) if record_state else None,
    )
    spans = contiguous_ranges(batch, max(1, min(n_threads, batch)))
    if len(spans) <= 1:
        tallies = [_simulate(plan, graph, arr, n_steps, out, 0, batch)]
    else:
        tallies = map_parts(lambda span: _simulate(plan, graph, arr[:, span[0]:span[1]],
                                                   n_steps, out, *span), spans)
    synops, synops_dense, updates, counts = (
        {n: sum(t[k][n] for t in tallies) if tallies else np.zeros(n_steps, dtype=np.int64)
         for n in names} for k in range(4)
    )
    peak = {n: max((t[4][n] for t in tallies), default=0) for n in names}

    def shaped(d: dict[str, np.ndarray], copy: bool) -> dict[str, np.ndarray]:
        """Per LIF ``[steps, B, *shape]`` from ``d`` in the LIFs' state layouts: a
        channels-last one as a (C, H, W) view of its storage, or a C-order ``copy``."""
        res = {}
        for L in plan.lifs:
            name, shape = L.node.name, tuple(L.node.shape)
            if plan.hwc[name]:
                c, h, w = shape
                view = d[name].reshape(n_steps, batch, h, w, c).transpose(0, 1, 4, 2, 3)
                res[name] = np.ascontiguousarray(view) if copy else view
            else:
                res[name] = d[name].reshape(n_steps, batch, *shape)
        return res

    counters = ActivityCounters(
        synops=synops,
        synops_dense=synops_dense,
        neuron_updates=updates,
        spike_counts=counts,
        macs_dense={L.node.name: int(L.macs) for L in plan.lifs},
        peak_fanin=peak,
    )
    return SimResult(
        BACKEND.name,
        shaped(out.spikes, copy=False),
        shaped(out.u_rec, copy=True) if out.u_rec is not None else None,
        shaped(out.v_rec, copy=True) if out.v_rec is not None else None,
        time.perf_counter() - t0,
        counters=counters,
    )


@dataclass
class _Outputs:
    """Result arrays ``[steps, B, size]`` per LIF, shared by the batch parts of one run
    (each part writes only its own samples)."""

    spikes: dict[str, np.ndarray]
    u_rec: dict[str, np.ndarray] | None
    v_rec: dict[str, np.ndarray] | None


def _payload_dtype(node: LIFNode) -> type:
    m = int(node.max_spikes)
    return np.uint8 if m <= 0xFF else np.uint16 if m <= 0xFFFF else np.uint32


def _simulate(plan: _Plan, graph: QGraph, arr: np.ndarray, n_steps: int, out: _Outputs,
              b0: int, b1: int) -> tuple[dict[str, np.ndarray], ...]:
    """The time loop for samples ``b0:b1`` of the run (``arr`` holds only those); writes
    their spikes and states into ``out`` and returns the activity tallies of this part
    ``(synops, synops_dense, updates, counts, peak)`` per LIF."""
    n_frames, batch = int(arr.shape[0]), b1 - b0
    # The prepared weights are shared; the per-run buffers live on shallow copies, so
    # concurrent runs of one graph never share state.
    ops = {k: copy.copy(op) for k, op in plan.ops.items()}
    for op in ops.values():
        op.alloc(batch)
    lifs = plan.lifs
    names = [L.node.name for L in lifs]

    def per_lif() -> dict[str, np.ndarray]:
        return {L.node.name: np.zeros((batch, L.size), dtype=np.int64) for L in lifs}

    u, v = per_lif(), per_lif()
    # the summed activation (and fan-ins) of a LIF with several paths into it
    a_sum, c_sum = ({L.node.name: np.zeros((batch, L.size), dtype=np.int64)
                     for L in lifs if len(L.terms) > 1} for _ in range(2))
    spikes = {k: a[:, b0:b1] for k, a in out.spikes.items()}
    # Source outputs of the previous step (what this step's synapses read), flat [B, size]
    # in the sources' own narrow dtypes (the kernels widen each value to int64): the input
    # frame itself, a LIF's row of the spike record (uint8 for single spikes).
    if arr.dtype == np.bool_ or (arr.dtype.kind == "u" and arr.dtype.itemsize == 8):
        arr = arr.astype(np.uint8 if arr.dtype == np.bool_ else np.int64)
    in_zero = np.zeros((batch, plan.sources[plan.input.name]), dtype=arr.dtype)
    zeros = {k: np.zeros((batch, a.shape[2]), dtype=a.dtype) for k, a in spikes.items()}
    prev: dict[str, np.ndarray] = dict(zeros)
    u_rec = {k: a[:, b0:b1] for k, a in out.u_rec.items()} if out.u_rec is not None else None
    v_rec = {k: a[:, b0:b1] for k, a in out.v_rec.items()} if out.v_rec is not None else None

    # every operator once per step, each after what feeds it (the plan's order is
    # topological): (key, operator, feeding operator or None for a source, source key,
    # fan-in counts wanted)
    fused = set(plan.fused.values())  # run by their LIF
    steps = [(key, op, ops.get(plan.op_input[key]), plan.op_input[key], key in plan.need_cnt)
             for key, op in ops.items() if key not in fused]
    done: dict[str, tuple[int, int]] = {}
    # per LIF, what its step reads; its tallies per step (synops, structural synops, active
    # updates, spikes, max fan-in) go to a list, one array at the end (cheaper per step)
    tallies: dict[str, list[tuple[int, int, int, int, int]]] = {n: [] for n in names}
    lif_steps = []
    for L in lifs:
        name = L.node.name
        conv = plan.fused.get(name)
        src = plan.op_input[conv] if conv is not None else None
        lif_steps.append((L, name, u[name], v[name], spikes[name], int(L.node.reset_interval) > 0,
                        conv, ops[conv] if conv is not None else None, src,
                        ops.get(src) if src is not None else None,
                        ops[L.terms[0]] if len(L.terms) == 1 else None, tallies[name]))

    for n in range(n_steps):
        # out[input][n-1] = x[n-1]; zeros at n == 0 and once the frames run out
        x_in = in_zero
        if 1 <= n <= n_frames:
            x_in = np.ascontiguousarray(arr[n - 1].reshape(batch, in_zero.shape[1]))
        prev[plan.input.name] = x_in
        if n >= 1:  # all LIFs update from step n-1 outputs (their spike record)
            for name in names:
                prev[name] = spikes[name][n - 1]
        for key, op, src_op, src, need in steps:
            done[key] = op.apply(src_op.out if src_op is not None else prev[src], need, n)
        for (L, name, uL, vL, rec, resets, conv, conv_op, src, src_op, term,
             tally) in lif_steps:
            if resets:  # before this step's input is integrated
                _reset_state(L.node, n, uL, vL)
            if conv_op is not None:
                s, s_all, n_spk, n_act, pk = conv_op.apply_lif(
                    src_op.out if src_op is not None else prev[src], L, uL, vL, rec[n])
                done[conv] = (s, s_all)
            elif term is not None:
                n_spk, n_act, pk = _lif_step(L, term.out, term.cnt, uL, vL, rec[n],
                                             graph.formats)
            else:  # several paths into one LIF: their activations (and fan-ins) add up
                a, c = a_sum[name], c_sum[name]
                np.copyto(a, ops[L.terms[0]].out)
                np.copyto(c, ops[L.terms[0]].cnt)
                for t in L.terms[1:]:
                    a += ops[t].out
                    c += ops[t].cnt
                n_spk, n_act, pk = _lif_step(L, a, c, uL, vL, rec[n], graph.formats)
            syn = syn_all = 0
            for key in L.path_ops:
                s, s_all = done[key]
                syn += s
                syn_all += s_all
            tally.append((syn, syn_all, n_act, n_spk, pk))
            if u_rec is not None and v_rec is not None:
                u_rec[name][n] = uL
                v_rec[name][n] = vL

    per_step = {k: np.array(t, dtype=np.int64).reshape(n_steps, 5) for k, t in tallies.items()}
    synops, synops_dense, updates, counts = (
        {k: np.ascontiguousarray(t[:, i]) for k, t in per_step.items()} for i in range(4))
    peak = {k: int(t[:, 4].max(initial=0)) for k, t in per_step.items()}

    # drop the views of the spike record and the operators' buffers now, not whenever
    # the cyclic GC would find them (hundreds of MB per large call)
    prev.clear()
    ops.clear()
    steps.clear()
    lif_steps.clear()
    return synops, synops_dense, updates, counts, peak


class _Prepared:
    """A graph ready to run: its plan is in :data:`PLANS` (re-prepared there only if the
    graph changes); buffers are made per call (they depend on the batch)."""

    def __init__(self, graph: QGraph) -> None:
        self.graph = graph

    def run(
        self, ints: Any, num_steps: int | None = None, record_state: bool = False
    ) -> SimResult:
        return run(self.graph, ints, num_steps, record_state)


class EventBackend(PreparingBackend):
    """The event-driven simulator behind :class:`snn2hw.backends.base.Backend` (registry
    name ``event``); the only backend that counts activity (``SimResult.counters``)."""

    name = "event"
    node_kinds = NODE_KINDS
    features = frozenset({"delay", "multi_spike", "periodic_reset"})
    records_state = True
    uses_device = False
    counts_activity = True
    splits_batches = True

    def prepare(self, graph: QGraph, device: str = "cpu") -> _Prepared:
        check_node_kinds(graph, self.name, self.node_kinds, self.features)
        _check_formats(graph)
        PLANS.get(graph)
        return _Prepared(graph)



BACKEND = EventBackend()


def warmup() -> None:
    """Compile every numba kernel on a tiny graph (benchmarks call it before timing)."""
    from snn2hw.quant.qgraph import OutputNode

    def lif(name: str, shape: tuple[int, ...]) -> LIFNode:
        z = np.zeros(shape, dtype=np.int64)
        return LIFNode(name, shape, du=4095, dv=0, vth=0, bias_mant=z, bias_exp=z.copy())

    nodes: dict[str, Any] = {
        "in": InputNode("in", (1, 4, 4), message_bits=2),
        "conv": ConvNode("conv", np.ones((2, 1, 3, 3), np.int64), (1, 4, 4), padding=(1, 1)),
        "l1": lif("l1", (2, 4, 4)),
        "pool": SumPoolNode("pool", (2, 4, 4), (2, 2), (2, 2)),
        "flat": FlattenNode("flat", (2, 2, 2)),
        "fc": DenseNode("fc", np.full((3, 8), 2, np.int64), weight_exp=-1),
        "fc2": DenseNode("fc2", np.eye(3, 8, dtype=np.int64) * 4),
        "l2": lif("l2", (3,)),
        "l3": lif("l3", (3,)),
        # a conv not fused with its LIF (K.conv_scatter): into a 1-D LIF
        "conv2": ConvNode("conv2", np.ones((1, 2, 3, 3), np.int64), (2, 4, 4), padding=(1, 1)),
        "l4": lif("l4", (16,)),
        "out": OutputNode("out", (3,)),
    }
    edges = [("in", "conv"), ("conv", "l1"), ("l1", "pool"), ("pool", "flat"), ("flat", "fc"),
             ("fc", "l2"), ("flat", "fc2"), ("fc2", "l2"), ("l2", "l3"), ("l3", "out"),
             ("l1", "conv2"), ("conv2", "l4")]
    g = QGraph(nodes, edges, dt=1e-3, target="loihi", num_steps=2)
    x = np.ones((2, 2, 1, 4, 4), dtype=np.int64)
    x[:, 1] = 3
    run(g, x, record_state=True)
    run(g, x.astype(np.uint8))  # the usual frame dtype: kernels specialize on it
    # the delay ring kernels and a multi-spike LIF (formats allowing both)
    fmt = replace(LOIHI_FORMATS, max_synaptic_delay=3, max_message_bits=8)
    z = np.zeros(2, dtype=np.int64)
    nodes2: dict[str, Any] = {
        "in": InputNode("in", (2,)),
        "fc": DenseNode("fc", np.full((2, 2), 64, np.int64), delay=np.array([[0, 1], [2, 3]])),
        "l": LIFNode("l", (2,), du=4095, dv=0, vth=1, bias_mant=z, bias_exp=z.copy(),
                     max_spikes=3),
        "out": OutputNode("out", (2,)),
    }
    g2 = QGraph(nodes2, [("in", "fc"), ("fc", "l"), ("l", "out")], dt=1e-3, target="loihi2",
                num_steps=2, formats=fmt)
    run(g2, np.ones((2, 1, 2), dtype=np.int64), record_state=True)
