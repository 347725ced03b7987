"""The event simulator's prepared synaptic operators (:mod:`snn2hw.backends.event`): dense
(columns or CSR), dense with per-synapse delays, conv, sum pooling and identity paths, each
holding its weights prepared once per graph and, per run, its batch buffers; plus the
layout helpers they share (:func:`chw_order`, :func:`position_table`).

An operator's ``apply`` runs its numba kernel (:mod:`snn2hw.backends.event_kernels`) on one
step's input and returns the step's synaptic events; a conv can also run fused with the
LIF it alone feeds (:meth:`ConvOp.apply_lif`).

May import: numpy, ``snn2hw.common``, ``snn2hw.quant`` and the event simulator's own
modules; never torch or another backend.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from snn2hw.backends import event_kernels as K
from snn2hw.backends import event_kernels_conv as conv_k
from snn2hw.backends import event_kernels_dense as dense_k
from snn2hw.common.errors import GraphError
from snn2hw.quant.formats import LOIHI_FORMATS, NumberFormats
from snn2hw.quant.qgraph import ConvNode, DenseNode, SumPoolNode

if TYPE_CHECKING:
    from snn2hw.backends.event_plan import Lif

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


# Vector loads and stores that straddle two cache lines cost about twice one that does not:
# the packed int32 sums of a conv and its block table start on a cache line (64 bytes),
# and so do the rows of their runs where C_out is a multiple of 16.
CACHE_LINE = 64


def aligned_zeros(n: int, dtype: Any) -> np.ndarray:
    """``np.zeros(n, dtype)`` whose first element starts on a :data:`CACHE_LINE`."""
    dt = np.dtype(dtype)
    buf = np.zeros(n * dt.itemsize + CACHE_LINE, dtype=np.uint8)
    skip = -buf.ctypes.data % CACHE_LINE
    return buf[skip:skip + n * dt.itemsize].view(dt)


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


class Op:
    """A prepared weighted synaptic operator with its output buffers for the rows of a
    run's steps (:mod:`snn2hw.backends.event_kernels`, "Rows").

    ``delay`` (uniform over the operator): its output of step t is computed from its input
    of step ``t - delay``. The output buffers form a ring of ``delay + 1`` slots (arrival
    steps); :meth:`apply` writes this step's result into the slot of its arrival step and
    exposes the slot of the current step as ``out``/``cnt``. An operator with a delay
    therefore runs one step per call (the simulator runs its graph step by step)."""

    size_out: int
    macs: int
    delay: int = 0
    binary_input: bool = False  # set by the plan: the operator reads a 0/1 source
    out_dtype: Any = np.int64  # of its output rows (the plan narrows a pool's: PoolOp)

    def alloc(self, rows: int) -> None:
        """Output buffers for up to ``rows`` rows (the steps of a chunk times the batch)."""
        depth = self.delay + 1
        # Without a delay every kernel writes the rows it hands on before they are read (a
        # fused conv's only in its int64 sum modes), so they need no zeroing: at chunk
        # size, zeroing them cost about 10 % of a CNN run. A delay's ring slots are read
        # before anything arrives in them: zeros.
        new = np.empty if depth == 1 else np.zeros
        self.ring = new((depth, rows, self.size_out), dtype=self.out_dtype)
        self.cring = new((depth, rows, self.size_out), dtype=np.int64)
        self.out = self.ring[0]
        self.cnt = self.cring[0]

    def apply(self, x: np.ndarray, need_cnt: bool, syn: np.ndarray, t: int) -> None:
        """Apply to the rows ``x`` ``[steps * B, size_in]`` that steps ``t, t + 1, ...``
        read: set the first rows of ``self.out`` (and the fan-in counts ``self.cnt`` when
        ``need_cnt``) to the values arriving at those steps and add each step's ``(synops
        over non-zero weights, structural synops)`` of the events processed now into
        ``syn`` ``[steps, 2]``."""
        if self.delay == 0:  # a ring of one slot: out/cnt stay
            self._apply(x, need_cnt, self.out, self.cnt, syn)
            return
        depth = self.delay + 1
        slot = (t + self.delay) % depth
        self._apply(x, need_cnt, self.ring[slot], self.cring[slot], syn)
        self.out = self.ring[t % depth]
        self.cnt = self.cring[t % depth]

    def _apply(self, x: np.ndarray, need_cnt: bool, out: np.ndarray, cnt: np.ndarray,
               syn: np.ndarray) -> None:
        """The operator without delay: fill ``out`` (and ``cnt``) from ``x``."""
        raise NotImplementedError


def _prepare_dense(op: Op, node: DenseNode, f: NumberFormats
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Set ``op``'s size, MACs and weight exponent from ``node``; return its weights as
    int64 and the prepared W'^T ``[N_in, N_out]`` int16 (one event's fan-out is one
    contiguous row) with the non-zero count per input column."""
    w = np.ascontiguousarray(node.weight, dtype=np.int64)
    op.size_out, op.macs = int(w.shape[0]), int(w.size)
    op.weight_exp = int(node.weight_exp)
    wt, nnz_col = dense_k.dense_prepare(
        w, int(node.num_weight_bits), f.weight_mantissa_bits, *f.weight_range_mixed,
        *f.weight_range_excitatory, *f.weight_range_inhibitory, int(f.mixed_sign_lsb_loss))
    return w, wt, nnz_col


class DenseOp(Op):
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
            self.zptr, self.zidx, _ = dense_k.csr_rows(self.wt, False)
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
            # fan-in counts as int16 sums of W' != 0 with the rows' adds
            # (dense_k.dense_columns) where one decrement per zero weight hit (~1.5 ns
            # each, scattered) costs more than a vector add of N_out / 32 lanes per event
            zeros_per_column = len(self.zidx) / max(n_in, 1)
            self.count_rows = n_in < 2**15 and zeros_per_column * 64 > self.size_out
        else:
            self.ptr, self.idx, self.val = dense_k.csr_rows(self.wt, True)

    def alloc(self, rows: int) -> None:
        super().alloc(rows)
        # the narrow sums of dense_k.dense_columns
        self.acc32 = np.zeros(self.size_out, dtype=np.int32)
        self.acc16 = np.zeros(self.size_out, dtype=np.int16)
        self.cnt16 = np.zeros(self.size_out if self.columns and self.count_rows else 0,
                              dtype=np.int16)

    def _apply(self, x: np.ndarray, need_cnt: bool, out: np.ndarray, cnt: np.ndarray,
               syn: np.ndarray) -> None:
        if self.columns:
            dense_k.dense_columns(
                x, self.wt, self.nnz_col, self.zptr, self.zidx, self.rowbound, self.wmax,
                self.weight_exp + self.row_exp, need_cnt, out, cnt, self.acc32, self.acc16,
                self.cnt16, self.binary_input, syn)
        else:
            dense_k.dense_csr(x, self.ptr, self.idx, self.val, self.weight_exp, need_cnt,
                              out, cnt, syn)


def _common_trailing_zeros(w: np.ndarray) -> int:
    """The largest k with every entry of ``w`` a multiple of 2^k (0 for an all-zero ``w``)."""
    bits = int(np.bitwise_or.reduce(np.abs(w.astype(np.int32)), axis=None)) if w.size else 0
    return (bits & -bits).bit_length() - 1 if bits else 0


def _uniform_delay(delay: Any) -> int:
    """The one delay of every synapse (an int, or an array holding one value)."""
    d = np.asarray(delay, dtype=np.int64)
    return int(d.flat[0]) if d.size else 0


def has_mixed_delays(delay: Any) -> bool:
    d = np.asarray(delay, dtype=np.int64)
    return d.size > 0 and int(d.min()) != int(d.max())


class DelayDenseOp(Op):
    """A dense operator whose synapses have different delays: a ring of unshifted
    per-arrival-step sums (one accumulator per neuron), shifted once when read; one step
    per call, like every operator with a delay."""

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

    def alloc(self, rows: int) -> None:
        self.ring = np.zeros((self.depth, rows, self.size_out), dtype=np.int64)
        self.cring = np.zeros((self.depth, rows, self.size_out), dtype=np.int64)
        self.out = np.zeros((rows, self.size_out), dtype=np.int64)
        self.cnt = np.zeros((rows, self.size_out), dtype=np.int64)

    def apply(self, x: np.ndarray, need_cnt: bool, syn: np.ndarray, t: int) -> None:
        s, n_ev = dense_k.dense_delay_scatter(x, self.ptr, self.idx, self.val, self.dly, t,
                                              self.ring, self.cring, need_cnt)
        dense_k.ring_emit(self.ring, self.cring, t % self.depth, self.weight_exp, need_cnt,
                          self.out, self.cnt)
        syn[0, 0] += s
        syn[0, 1] += n_ev * self.size_out


class ConvOp(Op):
    def __init__(self, node: ConvNode, hwc_in: bool, hwc_out: bool,
                 src_shape: tuple[int, ...] | None = None) -> None:
        """``hwc_in``: the input is stored channels-last in ``src_shape`` (default the
        conv's input shape; a flatten lets another (C, H, W) shape of the same size feed
        it)."""
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
        wbound = int(np.abs(w).max(initial=0)) * cig * kh * kw
        wmax = int(np.abs(w).max(initial=0))
        # wbound and wmax: the bounds of the packed sums (conv_k.conv_scatter)
        self.geom = np.array([c, h, wd, c_out, h_out, w_out, cig, cog, kh, kw, wbound, wmax],
                             dtype=np.int64)
        # [C_in/g, kH, kW, C_out]: the output channels of one tap are contiguous
        wk = w.transpose(1, 2, 3, 0)
        self.wt = _small_int(wk).ravel()
        # weight and fan-in count in one int64 add (see conv_k.conv_scatter)
        self.wpk = self.wt.astype(np.int64) + ((self.wt != 0).astype(np.int64) << 32)
        self.ytaps = _taps(h, h_out, kh, node.stride[0], node.padding[0], node.dilation[0])
        self.xtaps = _taps(wd, w_out, kw, node.stride[1], node.padding[1], node.dilation[1])
        # runs (conv_k.conv_scatter): kernel columns by phase kx % stride, then falling kx, so
        # the column taps of one event are consecutive slots
        stride = int(node.stride[1])
        self.xrun = groups == 1 and int(node.dilation[1]) == 1
        order = [kx for r in range(stride) for kx in range(kw)[r::stride][::-1]]
        self.xslot = np.empty(kw, dtype=np.int64)
        self.xslot[order] = np.arange(kw, dtype=np.int64)
        self.w_s = _small_int(wk[:, :, order, :]).ravel()
        self.wpk_s = np.ascontiguousarray(
            self.wpk.reshape(cig, kh, kw, c_out)[:, :, order, :]).ravel()
        self.pos = position_table((c, h, wd), hwc_in, src_shape)
        syn_tab, synall_tab = _conv_synop_tables(w, (c, h, wd), groups, self.ytaps,
                                                 self.xtaps)
        # per stored position (its C-order index)
        stored = chw_order(src_shape or (c, h, wd)) if hwc_in else slice(None)
        self.syn_tab = np.ascontiguousarray(syn_tab[stored])
        self.synall_tab = np.ascontiguousarray(synall_tab[stored])
        self.n_scratch = h_out * w_out * c_out
        # packed int32 sums (conv_k.conv_scatter, "Narrow sums"): w + (w != 0) << 16
        nz16 = (self.wt != 0).astype(np.int64) << 16
        self.wpk32 = (self.wt.astype(np.int64) + nz16).astype(np.int32)
        self.wpk32_s = np.ascontiguousarray(
            self.wpk32.reshape(cig, kh, kw, c_out)[:, :, order, :]).ravel()
        # their blocks (conv_k.conv_scatter, "Blocks") where the conv allows them
        self.blk, self.wblk32, self.n_acc32 = conv_blocks(
            self.wpk32.reshape(cig, kh, kw, c_out), (c, h, wd), (h_out, w_out), groups,
            tuple(int(v) for v in node.stride), tuple(int(v) for v in node.padding),
            tuple(int(v) for v in node.dilation), self.pos)

    def alloc(self, rows: int) -> None:
        super().alloc(rows)
        # the channels-last scratch of a (C, H, W) output (unused when hwc_out)
        n = 0 if self.hwc_out else self.n_scratch
        self.acc_t = np.zeros(n, dtype=np.int64)
        self.cnt_t = np.zeros(n, dtype=np.int64)
        # channels-last, packed (with the blocks' margins)
        self.acc32 = aligned_zeros(self.n_acc32, np.int32)
        # the kernels' fixed arguments, bound once per run (30 attribute reads per call
        # cost about 1 us, a few % of a step at batch 16)
        (yp, yk, yo), (xp, xk, xo) = self.ytaps, self.xtaps
        self.args_head = (self.geom, self.wt, self.wpk, yp, yk, yo, xp, xk, xo,
                          self.weight_exp)
        self.args_events = (self.xrun, self.w_s, self.wpk_s, self.xslot, self.syn_tab,
                            self.synall_tab, self.binary_input, self.pos)
        self.args_narrow = (self.wpk32, self.wpk32_s, self.acc32, self.blk, self.wblk32)

    def _apply(self, x: np.ndarray, need_cnt: bool, out: np.ndarray, cnt: np.ndarray,
               syn: np.ndarray) -> None:
        conv_k.conv_scatter(x, *self.args_head, need_cnt, self.acc_t, self.cnt_t, out, cnt,
                            *self.args_events, self.hwc_out, *self.args_narrow, syn)

    def apply_lif(self, x: np.ndarray, lif: Lif, u: np.ndarray, v: np.ndarray,
                  spk: np.ndarray, syn: np.ndarray, tal: np.ndarray) -> None:
        """The conv and the single-spike LIF it alone feeds, in one kernel (``fused`` in
        :class:`Plan`; no delay): the LIF's steps from the rows ``x``, spikes into the rows
        ``spk``; the conv's synops into ``syn``, the LIF's tallies into ``tal``
        (``event_kernels_lif.lif_kernels``)."""
        lif.kernels.conv_step(x, *self.args_head, self.acc_t, self.cnt_t, self.out, self.cnt,
                              *self.args_events, *self.args_narrow, u, v, lif.bias, spk,
                              lif.consts, syn, tal)


# The largest kernel table of a conv's blocks (conv_blocks): beyond it the conv scatters
# per tap (its cases grow with kernel size over stride, squared).
BLOCK_BYTES = 1 << 20


def _axis_cases(size: int, size_out: int, k: int, stride: int, pad: int
                ) -> tuple[int, np.ndarray, np.ndarray, list[tuple[int, ...]]]:
    """The blocks along one axis (dilation 1): ``R = ceil(k / stride)`` slots; for each
    input index y the first output index its slots start at (``ceil((y + pad - k + 1) /
    stride)``, maybe outside the output) and its case, the kernel index of each slot (-1
    where the slot's output index is outside the output or its kernel index outside the
    kernel). Returns ``(R, starts, case of each index, cases)``."""
    n = -(-k // stride)
    starts = np.empty(size, dtype=np.int64)
    case = np.empty(size, dtype=np.int64)
    cases: dict[tuple[int, ...], int] = {}
    for y in range(size):
        o0 = -((k - 1 - y - pad) // stride)
        taps = tuple(ky if 0 <= ky < k and 0 <= o0 + j < size_out else -1
                     for j in range(n) for ky in (y + pad - (o0 + j) * stride,))
        starts[y] = o0
        case[y] = cases.setdefault(taps, len(cases))
    return n, starts, case, list(cases)


def conv_blocks(wpk32: np.ndarray, in_shape: tuple[int, int, int], out_hw: tuple[int, int],
                groups: int, stride: tuple[int, int], padding: tuple[int, int],
                dilation: tuple[int, int], pos: np.ndarray
                ) -> tuple[np.ndarray, np.ndarray, int]:
    """The block tables of a conv (``conv_k.conv_scatter``, "Blocks") from its packed int32
    kernel ``[C_in, kH, kW, C_out]`` and the packed ``(C, H, W)`` position of each stored
    input position (``pos``, :func:`position_table`): ``(blk, kernel table, size of the
    int32 sums with their margins)``; ``blk[0] = 0`` (no blocks) for groups or dilation, or
    where the kernel table would pass :data:`BLOCK_BYTES`."""
    _, h, w = in_shape
    h_out, w_out = out_hw
    cig, kh, kw, c_out = wpk32.shape
    off = (np.zeros(6, dtype=np.int64), np.zeros(0, dtype=np.int32), h_out * w_out * c_out)
    if groups != 1 or dilation != (1, 1) or min(h_out, w_out, c_out) == 0:
        return off
    ry, ys, yc, ycases = _axis_cases(h, h_out, kh, stride[0], padding[0])
    rx, xs, xc, xcases = _axis_cases(w, w_out, kw, stride[1], padding[1])
    # a run is added 16 lanes at a time (K.add_lanes16): its last lanes weigh 0 and land in
    # the next position's sums or the end margin
    run = -(-rx * c_out // 16) * 16
    n_y, n_x = len(ycases), len(xcases)
    if cig * n_y * ry * n_x * run * 4 > BLOCK_BYTES or h_out * w_out * c_out >= 1 << 30:
        return off  # (the sums' offsets, margins included, must fit 31 bits: see below)
    table = np.zeros((cig, n_y, ry, n_x, run), dtype=np.int32)
    for a, ky_slots in enumerate(ycases):
        for r, ky in enumerate(ky_slots):
            for b, kx_slots in enumerate(xcases):
                for j, kx in enumerate(kx_slots):
                    if ky >= 0 and kx >= 0:
                        table[:, a, r, b, j * c_out:(j + 1) * c_out] = wpk32[:, ky, kx, :]
    # margins for the slots outside the output, before the first position and past the last
    front = max(0, -(int(ys.min()) * w_out + int(xs.min()))) * c_out
    front = -(-front // 16) * 16  # the sums start on a cache line (aligned_zeros)
    end = ((int(ys.max()) + ry - 1) * w_out + int(xs.max())) * c_out + run
    n = h_out * w_out * c_out
    ch_step = n_y * ry * n_x * run  # one input channel's part of the kernel table
    head = np.array([ry, run, w_out * c_out, ch_step, n_x * run, front], dtype=np.int64)
    # per stored input position, one load in the kernel: where its runs start in the sums
    # (high 32 bits) and in the kernel table (low 32 bits)
    ch, y, x = K.position.py_func(pos)  # the kernels' decoding, on whole arrays
    sums_at = (ys[y] * w_out + xs[x]) * c_out + front
    kernel_at = ch * ch_step + (yc[y] * ry * n_x + xc[x]) * run
    blk = np.concatenate([head, (sums_at << 32) | kernel_at]).astype(np.int64)
    wblk = aligned_zeros(table.size, np.int32)
    wblk[:] = table.ravel()
    return blk, wblk, front + max(n, end)


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


class PoolOp(Op):
    """Sum pooling. Its sums of 0/1 inputs over windows of at most 255 fit a byte: where no
    LIF reads them (no fan-in counts), the plan makes its rows uint8
    (:meth:`narrow_output`); the next operator then reads (and scans for events) an
    eighth of the bytes."""

    def __init__(self, node: SumPoolNode, hwc_in: bool, hwc_out: bool,
                 src_shape: tuple[int, ...] | None = None) -> None:
        self.hwc_in, self.hwc_out = hwc_in, hwc_out  # src_shape: see ConvOp
        c, h, w = (int(s) for s in node.input_shape)
        _, h_out, w_out = node.out_shape
        kh, kw = (int(k) for k in node.kernel_size)
        self.window = kh * kw
        self.size_out = c * h_out * w_out
        self.macs = c * h_out * w_out * kh * kw  # adds of a dense implementation
        yp, _, yo = _taps(h, h_out, kh, node.stride[0], node.padding[0], 1)
        xp, _, xo = _taps(w, w_out, kw, node.stride[1], node.padding[1], 1)
        # each stored input position's window memberships, as stored output positions
        # (one load per membership in the kernel: no index arithmetic per event)
        p = position_table((c, h, w), hwc_in, src_shape)
        ch, y, x = K.position.py_func(p)  # the kernels' decoding, on whole arrays
        ny, nx = np.diff(yp)[y], np.diff(xp)[x]
        cols = []  # [n_in] output index per (row tap a, column tap b), -1 where none
        for a in range(int(np.diff(yp).max(initial=0))):
            oy = yo[np.minimum(yp[y] + a, len(yo) - 1)] if len(yo) else y * 0
            for b in range(int(np.diff(xp).max(initial=0))):
                ox = xo[np.minimum(xp[x] + b, len(xo) - 1)] if len(xo) else x * 0
                k = ((oy * w_out + ox) * c + ch if hwc_out
                     else (ch * h_out + oy) * w_out + ox)
                cols.append(np.where((ny > a) & (nx > b), k, -1))
        table = np.stack(cols, axis=1) if cols else np.full((len(p), 0), -1, np.int64)
        hit = table >= 0
        members = hit.sum(axis=1)  # windows holding each input
        self.mptr = np.concatenate([[0], np.cumsum(members)]).astype(np.int64)
        self.midx = np.ascontiguousarray(table[hit], dtype=np.int64)
        # at most one window per input (stride >= window): its output, or -1 (25 % faster)
        self.dst = (np.where(members == 1, table.max(axis=1, initial=-1), -1).astype(np.int64)
                    if members.max(initial=0) <= 1 else np.zeros(0, np.int64))

    def narrow_output(self) -> bool:
        """Whether the rows may be uint8: 0/1 input, windows of at most 255 entries."""
        return self.binary_input and self.window <= 0xFF

    def _apply(self, x: np.ndarray, need_cnt: bool, out: np.ndarray, cnt: np.ndarray,
               syn: np.ndarray) -> None:
        conv_k.sumpool_scatter(x, self.mptr, self.midx, self.dst, need_cnt, out, cnt, syn)


class IdentityOp(Op):
    """A path with no weighted operator: the source's values, one weight-1 event each."""

    def __init__(self, size: int, gather: np.ndarray | None) -> None:
        self.size_out = size
        self.macs = size
        self.gather = gather  # out[i] = x[gather[i]] when source and LIF layouts differ

    def _apply(self, x: np.ndarray, need_cnt: bool, out: np.ndarray, cnt: np.ndarray,
               syn: np.ndarray) -> None:
        if self.gather is not None:
            x = np.ascontiguousarray(x[:, self.gather])
        K.identity_scatter(x, out, cnt, syn)


def chw_order(shape: tuple[int, ...]) -> np.ndarray:
    """For a ``(C, H, W)`` value stored channels-last: the ``(C, H, W)`` flat index of each
    stored position (``stored = chw_flat[chw_order(shape)]``)."""
    c, h, w = (int(v) for v in shape)
    return np.arange(c * h * w, dtype=np.int64).reshape(c, h, w).transpose(1, 2, 0).ravel()


def position_table(shape: tuple[int, ...], hwc: bool,
                   stored_shape: tuple[int, ...] | None = None) -> np.ndarray:
    """The packed ``(C, H, W)`` position in ``shape`` (``event_kernels.position``) of
    each stored position of a value stored in C order, or (``hwc``) channels-last in
    ``stored_shape`` (default ``shape``; another (C, H, W) of the same size where a
    flatten lies between: both shapes index the same C-order values)."""
    c, h, w = (int(v) for v in shape)
    if max(h, w) >= 1 << K.POS_BITS or c >= 1 << 22:
        raise GraphError(f"a (C, H, W) = {shape} value is too large for the event simulator "
                         f"(H and W below 2^{K.POS_BITS}, C below 2^22)")
    ch, y, x = (a.ravel().astype(np.int64) for a in np.indices((c, h, w)))
    p = (ch << (2 * K.POS_BITS)) | (y << K.POS_BITS) | x
    return p[chw_order(stored_shape or shape)] if hwc else p
