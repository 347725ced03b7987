"""Numba kernels of the event-driven reference simulator (:mod:`snn2hw.backends.event`).

Every kernel works on one time step for a whole batch, on flat arrays ``[B, size]`` (each
value in the layout the simulator chose for it: C order or channels-last): int64 state and
outputs (int32 state for a LIF whose step provably fits it, :func:`lif_narrow`); inputs in
their source's own integer dtype (a frame, a uint8 row of the spike record), each value
widened to int64 before any arithmetic (numba promotes integer operands narrower than 64
bits to int64). Synaptic kernels visit only the non-zero entries (events) of their input
and scatter each event into its fan-out; the LIF kernels (:func:`lif_kernels`,
:func:`lif_step_general`) are the per-neuron step of docs/qgraph.md ("LIF step"), one of
them fused with a conv. All arithmetic is int64 (int16 or int32 only where a bound proves
the values fit). No torch anywhere (the point of this backend is to be independent of the
torch integer backend).

Each synaptic kernel also fills ``cnt`` (when ``need_cnt``): the number of synaptic events
with a non-zero weight that reached each output position this step; the LIF kernels take
its maximum (``peak_fanin``).

May import: numba (with its llvmlite, for machine operations numba lacks: the integer
width helpers below, :func:`nonzero_positions`) and numpy only.
"""

from __future__ import annotations

import functools
from typing import Any, NamedTuple

import numba
import numpy as np
from llvmlite import ir
from numba.core import types
from numba.extending import intrinsic

# 24-bit constants of docs/qgraph.md (the conv output wrap; u/v widths are parameters).
_U_HI = 1 << 23
_MASK24 = (1 << 24) - 1

_jit = numba.njit(cache=True, nogil=True, boundscheck=False)


_inline = numba.njit(cache=True, nogil=True, boundscheck=False, inline="always")

# Integer width follows the data: numba widens every integer operation to int64, so the
# single-spike LIF step with int32 state (:func:`lif_narrow`) converts each result back to
# the state's type (:func:`_like`) and shifts in that width (:func:`_shl`, :func:`_ashr`);
# the compiler then keeps the whole step in 32-bit lanes, twice as many per vector
# instruction. For int64 values each of these is the plain int64 operation.


def _integer_of(t: Any) -> Any:
    """The integer type of a numba integer type or of an integer array's elements."""
    t = t.dtype if isinstance(t, types.Array) else t
    return t if isinstance(t, types.Integer) else None


@intrinsic
def _like(typingctx, witness, value):
    """``value`` converted (wrapped) to the integer type of ``witness`` (an integer or an
    integer array)."""
    target = _integer_of(witness)
    if target is None or not isinstance(value, (types.Integer, types.Boolean)):
        return None

    def codegen(context, builder, signature, args):
        return context.cast(builder, args[1], signature.args[1], target)
    return target(witness, value), codegen


def _shift_op(name: str, doc: str) -> Any:
    def typer(typingctx, x, s):
        if not (isinstance(x, types.Integer) and isinstance(s, types.Integer)):
            return None

        def codegen(context, builder, signature, args):
            amount = context.cast(builder, args[1], signature.args[1], x)
            return getattr(builder, name)(args[0], amount)
        return x(x, s), codegen

    typer.__doc__ = doc
    return intrinsic(typer)


_shl = _shift_op("shl", "``x << s`` in the width of ``x`` (``0 <= s <`` its bits).")
_ashr = _shift_op("ashr", "``x >> s`` (arithmetic) in the width of ``x`` (``0 <= s <`` "
                          "its bits).")


@intrinsic
def _bits(typingctx, x):
    """The width in bits of the integer type of ``x``."""
    t = _integer_of(x)
    if t is None:
        return None

    def codegen(context, builder, signature, args):
        return context.get_constant(types.int64, t.bitwidth)
    return types.int64(x), codegen


@_jit
def _shift(x: int, e: int) -> int:
    """``shift(x, e)`` of docs/qgraph.md: ``x << e`` for e >= 0, else floor ``x >> -e``,
    branch-free, so loops over it vectorize; in the width of ``x`` with the amount capped
    at its bits - 1. For int32 ``x`` that is exact modulo 2^32, which :func:`_wrap24`
    needs (a shift left by 24 or more leaves no low bits either way)."""
    cap = _bits(x) - 1
    return _shl(_ashr(x, min(max(-e, 0), cap)), min(max(e, 0), cap))


@_jit
def _wrap24(x: int) -> int:
    """``wrap24(x) = ((x + 2^23) mod 2^24) - 2^23`` (two's complement, so ``&`` is mod), in
    the width of ``x``."""
    return _like(x, _like(x, _like(x, x + _U_HI) & _MASK24) - _U_HI)


@_jit
def _unpack(a: int, bits: int) -> tuple[int, int]:
    """A packed conv sum ``true + count << bits`` (``|true| < 2^(bits-1)``): ``(count,
    true)``, in the width of ``a`` (int32 for the packed int32 sums: ``a + 2^15`` stays
    below 2^31 there, the count being below 2^15)."""
    c = _like(a, _like(a, a + (1 << (bits - 1))) >> bits)
    return c, _like(a, a - (c << bits))


@intrinsic
def _cttz(typingctx, x):
    """The number of trailing zero bits of a non-zero uint64 (one ``tzcnt``)."""
    def codegen(context, builder, signature, args):
        return builder.cttz(args[0], ir.Constant(ir.IntType(1), 1))
    return types.int64(types.uint64), codegen


@intrinsic
def _nonzero_mask64(typingctx, row, start):
    """Bit j set where ``row[start + j] != 0``, j < 64, for a 1-D integer row of unit stride
    (one vector compare of 64 entries into a mask register; numba has no such operation
    and its loops over the bytes do not become one)."""
    if not (isinstance(row, types.Array) and isinstance(row.dtype, types.Integer)):
        return None

    def codegen(context, builder, signature, args):
        data = context.make_array(signature.args[0])(context, builder, args[0]).data
        vec = ir.VectorType(ir.IntType(row.dtype.bitwidth), 64)
        ptr = builder.bitcast(builder.gep(data, [args[1]]), vec.as_pointer())
        lanes = builder.load(ptr, align=1)
        nonzero = builder.icmp_unsigned("!=", lanes, ir.Constant(vec, None))
        return builder.bitcast(nonzero, ir.IntType(64))
    return types.uint64(row, types.intp), codegen


@_jit
def nonzero_positions(xb, idx):
    """Write the positions of the non-zero entries of the 1-D contiguous row ``xb`` into
    ``idx`` (in increasing order, capacity ``xb.size``) and return how many there are.

    Blocks of 64 entries: one vector compare gives the block's mask of events, each event
    is then one ``tzcnt`` (at the few % activity of spike records most blocks hold 0-3
    events; 5-6x faster than a branch-free pass over every entry); the last ``size % 64``
    entries are visited one by one, the position written unconditionally and the count
    advanced by ``x != 0`` (no mispredicted branch per event)."""
    n = 0
    m = xb.size
    n_blocks = m // 64 if xb.strides[0] == xb.itemsize else 0  # blocks need unit stride
    for q in range(n_blocks):
        mask = _nonzero_mask64(xb, q * 64)
        while mask != 0:
            idx[n] = q * 64 + _cttz(mask)
            n += 1
            mask &= mask - np.uint64(1)
    for j in range(n_blocks * 64, m):
        idx[n] = j
        n += xb[j] != 0
    return n


# A (C, H, W) position packed in one int64 (the operators' position tables, built where
# they are prepared): channel << 40 | row << 20 | column. One load per event instead of
# two or three integer divisions (tens of cycles each) by the runtime sizes.
POS_BITS = 20
_POS_MASK = (1 << POS_BITS) - 1


@_inline
def _position(p):
    """``(channel, row, column)`` of a packed position (:data:`POS_BITS`)."""
    return p >> (2 * POS_BITS), (p >> POS_BITS) & _POS_MASK, p & _POS_MASK


@_jit
def dense_columns(x, wt, nnz_col, zptr, zidx, rowbound, wmax, weight_exp, need_cnt, acc, cnt,
                  acc32, acc16, xbin):
    """Dense synapses, column layout: each event j adds the whole row ``wt[j] = W'[:, j]``.

    ``wt`` is W' transposed, int16 ``[N_in, N_out]`` (or int8 rows of ``W' >> k`` with
    ``k`` folded into ``weight_exp``; contiguous fan-out per event; zero
    weights are added too, which is cheaper than skipping them when the matrix is dense).
    ``acc = shift(W' @ x, weight_exp)`` (docs/qgraph.md, ``dense``). The sum runs in the
    narrowest integer that provably holds every partial sum of the sample (more SIMD lanes,
    no widening of the int16 rows): int16 (``acc16``) when ``sum|x| * wmax < 2^15``
    (``wmax = max|W'|``; a partial sum of neuron i is at most ``sum_j |x_j| |W'[i, j]|``),
    else int32 (``acc32``) when ``max|x| * rowbound < 2^31`` (``rowbound = max_i sum_j
    |W'[i, j]|``) or ``sum|x| * wmax < 2^31``, else int64. ``xbin``: the input is known to
    be 0/1 (``sum|x|`` is the event count, ``max|x| <= 1``). Fan-in counts: every event
    reaches every neuron except through a zero weight, so ``cnt = events - zeros hit`` with
    ``zptr/zidx`` the CSR (by input column) of the zero entries of W' (few in a dense
    matrix), gathered in the same pass.
    Returns ``(synops over non-zero weights, number of events)``.
    """
    nb, n_in = x.shape
    n_out = wt.shape[1]
    lim = np.int64(1) << 31
    syn = 0
    n_ev = 0
    events = np.empty(n_in, dtype=np.int64)
    for b in range(nb):
        a = acc[b]
        c = cnt[b]
        xb = x[b]
        ev_b = nonzero_positions(xb, events)
        # the bounds: sum |x| and max |x| over the events
        sabs = ev_b
        vmax = 1
        if not xbin:
            sabs = 0
            vmax = 0
            for e in range(ev_b):
                v = abs(np.int64(xb[events[e]]))
                sabs += v
                vmax = max(vmax, v)
        n_ev += ev_b
        if need_cnt:
            c[:] = ev_b  # minus the zero weights each event meets, below
        if ev_b == 0:
            a[:] = 0
            continue
        width = 64
        if sabs * wmax < (1 << 15):
            width = 16
            acc16[:] = 0
        elif rowbound < lim // vmax or sabs * wmax < lim:  # division: no overflow
            width = 32
            acc32[:] = 0
        else:
            a[:] = 0
        for e in range(ev_b):
            j = events[e]
            syn += nnz_col[j]
            if need_cnt:
                for k in range(zptr[j], zptr[j + 1]):
                    c[zidx[k]] -= 1
        if width == 16:
            _add_rows(acc16, wt, xb, events, ev_b, xbin)
        elif width == 32:
            _add_rows(acc32, wt, xb, events, ev_b, xbin)
        else:
            _add_rows(a, wt, xb, events, ev_b, xbin)
        # shift(acc, weight_exp) applies to the SUM (floor for negative exponents), in one
        # pass that also widens the narrow sums
        if width == 16:
            for i in range(n_out):
                a[i] = _shift(np.int64(acc16[i]), weight_exp)
        elif width == 32:
            for i in range(n_out):
                a[i] = _shift(np.int64(acc32[i]), weight_exp)
        elif weight_exp != 0:
            for i in range(n_out):
                a[i] = _shift(a[i], weight_exp)
    return syn, n_ev


@_jit
def _add_rows(acc, wt, xb, events, n_ev, xbin):
    """``acc += sum_e xb[j_e] * wt[j_e]`` over the events ``j_e = events[e]``, in ``acc``'s
    integer width (the caller's bound guarantees the sums fit; the compiler narrows the
    arithmetic to that width). Binary events are added four rows at a time: one load and
    store of ``acc`` per four rows instead of per row (1.4x on 1 KB rows)."""
    n = acc.size
    e = 0
    if xbin:
        while e + 4 <= n_ev:
            r0 = wt[events[e]]
            r1 = wt[events[e + 1]]
            r2 = wt[events[e + 2]]
            r3 = wt[events[e + 3]]
            for i in range(n):
                acc[i] += r0[i] + r1[i] + r2[i] + r3[i]
            e += 4
    while e < n_ev:
        j = events[e]
        xj = xb[j]
        row = wt[j]
        if xj == 1:  # binary spike: plain add
            for i in range(n):
                acc[i] += row[i]
        else:  # graded payload: W'[:, j] * x_j
            for i in range(n):
                acc[i] += xj * row[i]
        e += 1


@_jit
def dense_csr(x, ptr, idx, val, weight_exp, need_cnt, acc, cnt):
    """Dense synapses, sparse layout: CSR by input column holding only non-zero W' entries
    (``ptr[j]:ptr[j+1]`` indexes ``idx`` = output neuron, ``val`` = weight).

    ``acc = shift(W' @ x, weight_exp)``; returns ``(synops over non-zero weights, events)``.
    """
    nb, n_in = x.shape
    n_out = acc.shape[1]
    syn = 0
    n_ev = 0
    for b in range(nb):
        a = acc[b]
        a[:] = 0
        if need_cnt:
            c = cnt[b]
            c[:] = 0
        for j in range(n_in):
            xj = x[b, j]
            if xj == 0:
                continue
            n_ev += 1
            k0 = ptr[j]
            k1 = ptr[j + 1]
            syn += k1 - k0
            # slices + uint32 indices: no negative-index wraparound test in the hot loop
            ii = idx[k0:k1]
            vv = val[k0:k1]
            if need_cnt:
                if xj == 1:
                    for k in range(k1 - k0):
                        t = ii[k]
                        a[t] += vv[k]
                        c[t] += 1
                else:
                    for k in range(k1 - k0):
                        t = ii[k]
                        a[t] += xj * vv[k]
                        c[t] += 1
            elif xj == 1:
                for k in range(k1 - k0):
                    a[ii[k]] += vv[k]
            else:
                for k in range(k1 - k0):
                    a[ii[k]] += xj * vv[k]
        if weight_exp != 0:
            for i in range(n_out):
                a[i] = _shift(a[i], weight_exp)
    return syn, n_ev


@_jit
def conv_scatter(
    x, geom, wt, wpk, wbound, yptr, yk, yo, xptr, xk, xo, weight_exp, need_cnt, acc_t, cnt_t,
    out, cnt, xrun, w_s, wpk_s, xslot, syn_tab, synall_tab, xbin, pos, hwc_out, wmax,
    wpk32, wpk32_s, acc32,
):
    """2-D convolution (PyTorch cross-correlation), event driven.

    ``geom = (C, H, W, C_out, H_out, W_out, C_in/groups, C_out/groups, kH, kW)``. ``wt`` is
    the weight as ``[C_in/groups, kH, kW, C_out]``, flattened (one event's output channels
    are contiguous). ``yptr/yk/yo``: for input row y, the pairs (kernel row ky, output row
    oy) with ``oy*stride - pad + ky*dil == y`` inside the output, in increasing ky (same for
    columns). Each event (c, y, x) scatters into the channels-last sums ``[oy, ox,
    group's c_out]`` (flat); then ``out = wrap24(shift(acc, weight_exp))`` (docs/qgraph.md,
    ``conv``). ``syn_tab``/``synall_tab``: per stored input position, the synops of one
    event there over non-zero weights / over every weight it reaches. Returns
    ``(synops non-zero, synops structural)``, each event's counted once from the tables.

    Fan-in counts ride in the same add when it is safe: ``wpk = w + (w != 0) << 32``; if
    ``max|x| * wbound < 2^31`` (``wbound = max|w| * taps per output``) the true sum stays in
    (-2^31, 2^31) and the count is the part above bit 32. Otherwise counts use their own
    array (``cnt_t`` or ``cnt``).

    ``xrun`` (one group, column dilation 1, any stride): the column taps of one event hit
    consecutive output columns with kx falling by the stride, so with the kernel columns
    ordered by ``xslot`` (``w_s``/``wpk_s``: phase ``kx % stride``, then falling kx) each
    kernel row is ONE contiguous add of (taps x C_out) values. Otherwise every tap is an
    add of C_out/groups values. ``xbin``: the input is known to be 0/1 (no scan for
    ``max|x|``).

    Layouts (:mod:`snn2hw.backends.event` "Layouts"): ``pos`` gives the ``(C, H, W)``
    position of each stored input position (packed, :func:`_position`), whichever the
    input's layout; ``hwc_out`` the output is written
    channels-last: the scatter then accumulates straight into ``out`` (same order as the
    scratch) and the epilogue is one contiguous pass instead of a strided conversion.
    """
    c_out, h_out, w_out = geom[3], geom[4], geom[5]
    n_pos = h_out * w_out
    syn = 0
    syn_all = 0
    events = np.empty(x.shape[1], dtype=np.int64)
    for b in range(x.shape[0]):
        ob = out[b]
        cb = cnt[b]
        bits, s0, s1 = _conv_sample(
            x[b], ob, cb, events, geom, wt, wpk, wbound, yptr, yk, yo, xptr, xk, xo,
            need_cnt, acc_t, cnt_t, xrun, w_s, wpk_s, xslot, syn_tab, synall_tab, xbin,
            pos, hwc_out, wmax, wpk32, wpk32_s, acc32)
        syn += s0
        syn_all += s1
        if hwc_out:  # out = wrap24(shift(sum, e)), contiguous
            if bits == 16:
                for k in range(n_pos * c_out):
                    c, a_k = _unpack(np.int64(acc32[k]), 16)
                    cb[k] = c
                    ob[k] = _wrap24(_shift(a_k, weight_exp))
            elif bits == 32:  # in place: ob = true + count << 32 with |true| < 2^31
                for k in range(n_pos * c_out):
                    c, a_k = _unpack(ob[k], 32)
                    cb[k] = c
                    ob[k] = _wrap24(_shift(a_k, weight_exp))
            else:
                for k in range(n_pos * c_out):
                    ob[k] = _wrap24(_shift(ob[k], weight_exp))
            continue
        # out = wrap24(shift(sum, e)) in (C, H, W) order from the channels-last sums; each
        # mode its own branch-free loop (contiguous writes, L1-resident strided reads)
        for co in range(c_out):
            k0 = co * n_pos
            if bits == 16:
                for yx in range(n_pos):
                    c, a_k = _unpack(np.int64(acc32[yx * c_out + co]), 16)
                    cb[k0 + yx] = c
                    ob[k0 + yx] = _wrap24(_shift(a_k, weight_exp))
            elif bits == 32:
                for yx in range(n_pos):
                    c, a_k = _unpack(acc_t[yx * c_out + co], 32)
                    cb[k0 + yx] = c
                    ob[k0 + yx] = _wrap24(_shift(a_k, weight_exp))
            else:
                if need_cnt:
                    for yx in range(n_pos):
                        cb[k0 + yx] = cnt_t[yx * c_out + co]
                for yx in range(n_pos):
                    ob[k0 + yx] = _wrap24(_shift(acc_t[yx * c_out + co], weight_exp))
    return syn, syn_all


@_inline
def _conv_sample(
    xb, ob, cb, events, geom, wt, wpk, wbound, yptr, yk, yo, xptr, xk, xo, need_cnt, acc_t,
    cnt_t, xrun, w_s, wpk_s, xslot, syn_tab, synall_tab, xbin, pos, hwc_out, wmax, wpk32,
    wpk32_s, acc32,
):
    """Scatter one sample's events into channels-last sums (see :func:`conv_scatter`) and
    return ``(bits, synops non-zero, synops structural)``; ``bits`` says where the sums are:
    16: ``acc32``, packed ``true + count << 16``; 32: the int64 sums (``ob`` when
    ``hwc_out``, else ``acc_t``) packed ``true + count << 32``; 0: the int64 sums unpacked,
    counts (when ``need_cnt``) in ``cb`` (``hwc_out``) or ``cnt_t``."""
    half = np.int64(1) << 31
    n_ev = nonzero_positions(xb, events)
    vmax = 1
    sabs = n_ev
    if not xbin:
        vmax = 0
        sabs = 0
        for e in range(n_ev):
            v = abs(np.int64(xb[events[e]]))
            vmax = max(vmax, v)
            sabs += v
    if need_cnt and sabs * wmax < (1 << 15):  # packed int32 sums
        acc32[:] = 0
        s0, s1 = _conv_events(acc32, acc32, True, False, xb, events, n_ev, geom, wt,
                              wpk32, w_s, wpk32_s, yptr, yk, yo, xptr, xk, xo, xrun,
                              xslot, syn_tab, synall_tab, pos)
        return 16, s0, s1
    acc = ob if hwc_out else acc_t
    cacc = cb if hwc_out else cnt_t
    acc[:] = 0
    packed = False
    if need_cnt:
        packed = wbound == 0 or vmax < half // wbound  # division: no overflow
        if not packed:
            cacc[:] = 0
    s0, s1 = _conv_events(acc, cacc, packed, need_cnt, xb, events, n_ev, geom, wt, wpk,
                          w_s, wpk_s, yptr, yk, yo, xptr, xk, xo, xrun, xslot, syn_tab,
                          synall_tab, pos)
    return 32 if packed else 0, s0, s1


@_jit
def _conv_events(acc, cacc, packed, need_cnt, xb, events, n_ev, geom, wt, wpk, w_s, wpk_s,
                 yptr, yk, yo, xptr, xk, xo, xrun, xslot, syn_tab, synall_tab, pos):
    """Scatter one sample's events into the channels-last sums ``acc`` (int64, or int32
    packed; counts in ``cacc`` when ``need_cnt`` and not ``packed``), see
    :func:`conv_scatter`. Returns the events' ``(synops non-zero, synops structural)``."""
    c_in, c_out, w_out = geom[0], geom[3], geom[5]
    cig, cog, kh, kw = geom[6], geom[7], geom[8], geom[9]
    syn = 0
    syn_all = 0
    for e in range(n_ev):
        i = events[e]
        v = np.int64(xb[i])
        ch, y, xx = _position(pos[i])
        syn += syn_tab[i]
        syn_all += synall_tab[i]
        g = 0 if cig == c_in else ch // cig  # one group: no division
        cl = ch - g * cig
        if xrun:
            q0 = xptr[xx]
            q1 = xptr[xx + 1]
            n_run = (q1 - q0) * c_out
            if n_run == 0:
                continue
            ws0 = xslot[xk[q1 - 1]] * c_out  # the largest kx: the first output column
            ar0 = xo[q1 - 1] * c_out
            for p in range(yptr[y], yptr[y + 1]):
                wb = (cl * kh + yk[p]) * kw * c_out + ws0
                ab = yo[p] * w_out * c_out + ar0
                # 1-D slices indexed from 0: the compiler vectorizes the adds
                # (offset indexing into the whole arrays stayed scalar, 4x slower)
                arun = acc[ab:ab + n_run]
                if packed:
                    prun = wpk_s[wb:wb + n_run]
                    if v == 1:
                        for t in range(n_run):
                            arun[t] += prun[t]
                    else:  # v*w + (w != 0) << 32
                        wrun = w_s[wb:wb + n_run]
                        for t in range(n_run):
                            arun[t] += prun[t] + (v - 1) * wrun[t]
                else:
                    wrun = w_s[wb:wb + n_run]
                    if need_cnt:
                        crun = cacc[ab:ab + n_run]
                        for t in range(n_run):
                            wv = wrun[t]
                            arun[t] += v * wv
                            crun[t] += wv != 0
                    else:
                        for t in range(n_run):
                            arun[t] += v * wrun[t]
            continue
        co0 = g * cog
        for p in range(yptr[y], yptr[y + 1]):
            arow0 = yo[p] * w_out
            tap0 = (cl * kh + yk[p]) * kw
            for q in range(xptr[xx], xptr[xx + 1]):
                ab = (arow0 + xo[q]) * c_out + co0
                wb = (tap0 + xk[q]) * c_out + co0
                wrow = wt[wb:wb + cog]
                arow = acc[ab:ab + cog]
                if packed:
                    prow = wpk[wb:wb + cog]
                    for t in range(cog):
                        arow[t] += prow[t] + (v - 1) * wrow[t]
                elif need_cnt:
                    crow = cacc[ab:ab + cog]
                    for t in range(cog):
                        wv = wrow[t]
                        arow[t] += v * wv
                        crow[t] += wv != 0
                else:
                    for t in range(cog):
                        arow[t] += v * wrow[t]
    return syn, syn_all


@_jit
def sumpool_scatter(x, mptr, midx, need_cnt, out, cnt):
    """Sum pooling (zero padding, exact, no shift or wrap), event driven.

    ``mptr/midx``: for each stored input position i, the stored output positions
    ``midx[mptr[i]:mptr[i + 1]]`` of the windows that hold it (built once per graph, in
    the layouts of input and output). Every window membership is one synaptic event of
    weight 1. Returns ``(synops, synops)`` (all weights are non-zero).
    """
    nb, n_in = x.shape
    syn = 0
    events = np.empty(n_in, dtype=np.int64)
    for b in range(nb):
        xb = x[b]
        o = out[b]
        o[:] = 0
        c = cnt[b]
        if need_cnt:
            c[:] = 0
        for e in range(nonzero_positions(xb, events)):
            i = events[e]
            v = xb[i]
            m0 = mptr[i]
            m1 = mptr[i + 1]
            for m in range(m0, m1):
                o[midx[m]] += v
            if need_cnt:
                for m in range(m0, m1):
                    c[midx[m]] += 1
            syn += m1 - m0
    return syn, syn


@_jit
def identity_scatter(x, out, cnt):
    """A path without weighted operators (only flattens): ``a = x``; every non-zero value
    is one event through a weight-1 synapse. Returns ``(synops, synops)``."""
    nb, n = x.shape
    syn = 0
    for b in range(nb):
        for i in range(n):
            v = x[b, i]
            out[b, i] = v
            if v != 0:
                cnt[b, i] = 1
                syn += 1
            else:
                cnt[b, i] = 0
    return syn, syn


def lif_consts(du: int, dv: int, vth: int, sh: int, db: int, u_bits: int, v_bits: int,
               ge: bool, sub: bool) -> tuple[int, ...]:
    """The per-node constants of the single-spike LIF step (:func:`_lif_neuron`), from the
    node's ``du``, ``dv``, ``vth`` and the formats of :func:`lif_step_general`."""
    th = int(vth) << sh
    return ((1 << db) - (int(du) + 1),  # fu: the hidden +1 on du
            (1 << db) - int(dv),  # fv
            sh, db,
            (1 << db) - 1,  # rtz(p, db) = (p + (p < 0 ? 2^db - 1 : 0)) >> db
            1 << (u_bits - 1), 1 << (v_bits - 1), th,
            th - 1 if ge else th,  # v >= th  <=>  v > th - 1 (integers)
            -1 if sub else 0)  # v after a spike: (v - th) & keep


def lif_decays(lc: tuple[int, ...]) -> bool:
    """Whether the LIF step of constants ``lc`` (:func:`lif_consts`) has decay products at
    all: not for ``fu = 0`` (``du = 2^db - 1``, no current memory) with ``fv = 2^db``
    (``dv = 0``, no leak), where ``rtz(u * 0, db) = 0`` and ``rtz(v * 2^db, db) = v``
    (converted integrate-and-fire networks)."""
    fu, fv, _, db = lc[:4]
    return fu != 0 or fv != 1 << db


@_inline
def _lif_uv(ai, ui, vi, bi, lc, u_sat, v_sat, decays):
    """``(u, v)`` of one neuron after activation ``ai`` and bias ``bi``, before the spike
    test (docs/qgraph.md "LIF step"), branch free: ``u = ovf(rtz(u * fu, db) + (a << sh))``,
    ``v = ovf(rtz(v * fv, db) + u + b)``. Where ``u_sat``/``v_sat``/``decays`` are
    constants at the call site (inlined), only the clip (saturate: to +-(2^(n-1) - 1),
    where the wrap never fires) or only the wrap is compiled, and without ``decays``
    (:func:`lif_decays`) the decay products are left out. In the width of ``ui`` (int32
    state only where :func:`lif_narrow` proves it exact)."""
    fu, fv, sh, db, rmask = lc[:5]
    # the bounds in the state's width too: a comparison stays narrow only between values
    # known to fit it
    u_hi, u_neg, u_lo, u_up, u_span = (_like(ui, lc[5]), _like(ui, -lc[5]),
                                       _like(ui, 1 - lc[5]), _like(ui, lc[5] - 1),
                                       _like(ui, lc[5] << 1))
    v_hi, v_neg, v_lo, v_up, v_span = (_like(vi, lc[6]), _like(vi, -lc[6]),
                                       _like(vi, 1 - lc[6]), _like(vi, lc[6] - 1),
                                       _like(vi, lc[6] << 1))
    if decays:
        p = ui * fu
        ui = _like(ui, ((p + ((p >> 63) & rmask)) >> db) + (ai << sh))
    else:
        ui = _shl(_like(ui, ai), sh)
    if u_sat:
        ui = min(max(ui, u_lo), u_up)
    else:
        ui = _like(ui, ui - u_span * (ui > u_hi) + u_span * (ui <= u_neg))
    if decays:
        p = vi * fv
        vi = _like(vi, ((p + ((p >> 63) & rmask)) >> db) + ui + bi)
    else:
        vi = _like(vi, vi + ui + bi)
    if v_sat:
        vi = min(max(vi, v_lo), v_up)
    else:
        vi = _like(vi, vi - v_span * (vi > v_hi) + v_span * (vi <= v_neg))
    return ui, vi


@_inline
def _lif_neuron(ai, ui, vi, bi, lc, u_sat, v_sat, decays):
    """The single-spike LIF step of one neuron: ``(u, v, spike)`` (:func:`_lif_uv`, then
    the threshold test and the reset of v, branch free)."""
    th, th_cmp, keep = _like(vi, lc[7]), _like(vi, lc[8]), _like(vi, lc[9])
    ui, vi = _lif_uv(ai, ui, vi, bi, lc, u_sat, v_sat, decays)
    k = vi > th_cmp
    return ui, _like(vi, _like(vi, vi - th) & keep) if k else vi, k


@_inline
def _lif_row(ab, cb, bits, e, ub, vb, bias, sb, lc, u_sat, v_sat, decays, packed):
    """One sample's single-spike LIF step over its ``n`` neurons; returns ``(spikes, active
    neuron updates, max fan-in)``. ``packed`` (a constant, inlined): ``ab`` holds a conv's
    packed sums ``true + count << bits`` (:func:`_unpack`), the activation is
    ``wrap24(shift(true, e))`` (the conv's epilogue, fused here); else ``ab`` is the
    activation and ``cb`` the fan-in counts. The arithmetic runs in the width of the state
    ``ub``/``vb`` (and ``bias``): int64, or int32 (:func:`lif_narrow`)."""
    n_spk = _like(ub, 0)
    n_act = _like(ub, 0)
    peak = _like(ub, 0)
    for i in range(ub.size):
        if packed:  # the activation is a wrap24 value: exact in the state's width
            ci, t = _unpack(ab[i], bits)
            ai = _like(ub, _wrap24(_shift(t, e)))
        else:
            ai = _like(ub, ab[i])
            ci = _like(ub, cb[i])
        ui = ub[i]
        vi = vb[i]
        bi = bias[i]
        n_act = _like(ub, n_act + ((ai | ui | vi | bi) != 0))
        peak = _like(ub, max(peak, ci))
        ui, vi, k = _lif_neuron(ai, ui, vi, bi, lc, u_sat, v_sat, decays)
        sb[i] = k
        n_spk = _like(ub, n_spk + k)
        vb[i] = vi
        ub[i] = ui
    return n_spk, n_act, peak


def lif_narrow(lc: tuple[int, ...], u_sat: bool, v_sat: bool, bias_max: int) -> bool:
    """Whether the single-spike LIF step of constants ``lc`` (:func:`lif_consts`) and
    biases of magnitude at most ``bias_max``, fed by a conv (a ``wrap24`` activation, at
    most 2^23 in magnitude), runs exactly with int32 state and arithmetic: every value the
    step forms (:func:`_lif_uv`, :func:`_lif_neuron`) stays below 2^31 in magnitude.

    By induction over steps: without decay products (those need 64 bits) u is formed anew
    from ``a << sh`` each step, at most ``2^23 << sh`` before its correction or clip; v
    starts at 0 and after each step lies within ``+-v_hi`` when it saturates, and when it
    wraps if ``|u| + |b| <= v_hi`` (one correction then brings it back), with a threshold
    ``th >= 0`` (a reset ``v - th`` of a v above it is in ``[0, v_hi]``)."""
    sh, u_hi, v_hi, th = lc[2], lc[5], lc[6], lc[7]
    if lif_decays(lc) or th < 0 or sh >= 31:
        return False
    a_sh = (1 << 23) << sh  # |a << sh|
    u_max = min(a_sh, u_hi) if u_sat else a_sh  # |u| after the clip or the correction
    if not v_sat and u_max + bias_max > v_hi:
        return False
    formed = (a_sh + 2 * u_hi,  # u and its wrap correction
              v_hi + u_max + bias_max + 2 * v_hi,  # v + u + b and its wrap correction
              v_hi + th + 1)  # v - th at a spike, th and th - 1 themselves
    return max(formed) < 1 << 31


class LifKernels(NamedTuple):
    """The single-spike LIF kernels of one overflow mode of u and v and one decay case."""

    step: Any  # (a, cnt, u, v, bias, spk, lc) -> (spikes, active updates, max fan-in)
    conv_step: Any  # a conv fused with the LIF it alone feeds (see lif_kernels)


@functools.cache
def lif_kernels(u_sat: bool, v_sat: bool, decays: bool) -> LifKernels:
    """The single-spike LIF kernels with ``u_sat``/``v_sat``/``decays`` compiled in as
    constants (:func:`_lif_neuron`: only the clip or wrap and decay work the node needs,
    each 20-25 % of the step). Each combination is compiled on its first use (and cached
    on disk), so a session builds only the ones its graphs use; int32 state ``u``/``v``
    and ``bias`` (a LIF fed by a conv alone where :func:`lif_narrow` holds) compiles
    another version of each, twice as fast.

    ``step(a, cnt, u, v, bias, spk, lc)``: one step of ``[B, N]`` neurons from the summed
    activation ``a`` and fan-in counts ``cnt`` (see :func:`lif_step_general` for the
    arguments; ``lc``: :func:`lif_consts`). Returns ``(spikes, active neuron updates, max
    fan-in)``.

    ``conv_step(x, <conv_scatter's arguments without need_cnt and hwc_out>, u, v, bias,
    spk, lc)``: a conv whose channels-last output is the only input of the LIF, in the same
    layout, fused per sample: the events are scattered as in :func:`conv_scatter`, then the
    LIF's loop reads the sums directly, the conv's epilogue (unpack, shift, wrap24) inside
    it while the sums are in cache; ``out``/``cnt`` are written only when the sums need
    int64 without packing. Same results as :func:`conv_scatter` then ``step``. Returns
    ``(synops non-zero, synops structural, spikes, active neuron updates, max fan-in)``.
    """

    @_jit
    def step(a, cnt, u, v, bias, spk, lc):
        n_spk = n_act = peak = 0
        for b in range(a.shape[0]):
            s, c, p = _lif_row(a[b], cnt[b], 0, 0, u[b], v[b], bias, spk[b], lc, u_sat,
                               v_sat, decays, False)
            n_spk += s
            n_act += c
            peak = max(peak, p)
        return n_spk, n_act, peak

    @_jit
    def conv_step(x, geom, wt, wpk, wbound, yptr, yk, yo, xptr, xk, xo, weight_exp, acc_t,
                  cnt_t, out, cnt, xrun, w_s, wpk_s, xslot, syn_tab, synall_tab, xbin, pos,
                  wmax, wpk32, wpk32_s, acc32, u, v, bias, spk, lc):
        syn = syn_all = n_spk = n_act = peak = 0
        events = np.empty(x.shape[1], dtype=np.int64)
        for b in range(x.shape[0]):
            ob = out[b]
            cb = cnt[b]
            bits, s0, s1 = _conv_sample(
                x[b], ob, cb, events, geom, wt, wpk, wbound, yptr, yk, yo, xptr, xk, xo,
                True, acc_t, cnt_t, xrun, w_s, wpk_s, xslot, syn_tab, synall_tab, xbin,
                pos, True, wmax, wpk32, wpk32_s, acc32)
            syn += s0
            syn_all += s1
            if bits == 16:
                r = _lif_row(acc32, acc32, 16, weight_exp, u[b], v[b], bias, spk[b], lc,
                             u_sat, v_sat, decays, True)
            elif bits == 32:
                r = _lif_row(ob, ob, 32, weight_exp, u[b], v[b], bias, spk[b], lc, u_sat,
                             v_sat, decays, True)
            else:  # int64 sums and separate counts: the epilogue in place first
                for k in range(ob.size):
                    ob[k] = _wrap24(_shift(ob[k], weight_exp))
                r = _lif_row(ob, cb, 0, 0, u[b], v[b], bias, spk[b], lc, u_sat, v_sat,
                             decays, False)
            n_spk += r[0]
            n_act += r[1]
            peak = max(peak, r[2])
        return syn, syn_all, n_spk, n_act, peak

    return LifKernels(step, conv_step)


@_jit
def lif_step_general(a, cnt, u, v, bias, lc, max_spikes, spk, u_sat, v_sat, ge, sub,
                     decays):
    """One LIF step for ``[B, N]`` neurons with any ``max_spikes``, docs/qgraph.md "LIF
    step" and "Multi-spike output" (the single-spike step is :func:`lif_kernels`).

    ``a``: summed activation; ``cnt``: fan-in event counts (for ``peak_fanin``); ``u``,
    ``v`` updated in place (:func:`_lif_uv`); ``bias = bias_mant << bias_exp``. Writes
    spikes to ``spk`` (the record's row of this step, which the next step's synapses
    read). With ``max_spikes > 1`` the output is the number of thresholds crossed, capped
    at ``max_spikes`` (a graded payload), and ``v`` loses that many thresholds ("subtract")
    or is zeroed ("zero"). ``lc``: :func:`lif_consts`; ``u_sat``/``v_sat`` saturate
    instead of wrap (Loihi: False/True), ``ge`` spike on ``>=`` instead of ``>``, ``sub``
    subtract the threshold on a spike instead of resetting to 0, ``decays``:
    :func:`lif_decays`. Returns ``(spikes, active neuron updates, max fan-in)``.
    """
    nb, n = a.shape
    th = lc[7]
    n_spk = 0
    n_act = 0
    peak = 0
    for b in range(nb):
        for i in range(n):
            ai = np.int64(a[b, i])
            ui = u[b, i]
            vi = v[b, i]
            bi = bias[i]
            if ai != 0 or ui != 0 or vi != 0 or bi != 0:
                n_act += 1
            peak = max(peak, cnt[b, i])
            ui, vi = _lif_uv(ai, ui, vi, bi, lc, u_sat, v_sat, decays)
            # s = v > (vth << sh) (or >=); reset of v only: to 0, or minus the threshold
            if max_spikes == 1:
                k = 1 if (vi > th or (ge and vi == th)) else 0
            elif ge:  # n = min(max_spikes, floor(v / TH)) where v >= TH (TH >= 1 here)
                k = min(max_spikes, vi // th) if vi >= th else 0
            else:  # n = min(max_spikes, floor((v - 1) / TH)) where v > TH
                k = min(max_spikes, (vi - 1) // th) if vi > th else 0
            spk[b, i] = k
            if k > 0:
                vi = vi - k * th if sub else 0
                n_spk += 1  # one event per neuron and step, whatever its payload
            u[b, i] = ui
            v[b, i] = vi
    return n_spk, n_act, peak



@_jit
def dense_delay_scatter(x, ptr, idx, val, dly, t, ring, cring, need_cnt):
    """Dense synapses with per-synapse delays (docs/qgraph.md "Synaptic delays"), event
    driven: each event ``x_j`` of this step adds ``W'[i, j] * x_j`` into the pending input
    of neuron i for arrival step ``t + D[i, j]``, i.e. ring slot ``(t + D[i, j]) % L``.
    ``ptr/idx/val/dly``: CSR by input column of the non-zero ``W'`` with each synapse's
    delay. The sum is NOT shifted here: :func:`ring_emit` floor-shifts the whole pending sum
    of an arrival step once. Returns ``(synops over non-zero weights, events)``."""
    nb, n_in = x.shape
    depth = ring.shape[0]
    syn = 0
    n_ev = 0
    for b in range(nb):
        for j in range(n_in):
            xj = x[b, j]
            if xj == 0:
                continue
            n_ev += 1
            k0 = ptr[j]
            k1 = ptr[j + 1]
            syn += k1 - k0
            for k in range(k0, k1):
                slot = (t + dly[k]) % depth
                i = idx[k]
                ring[slot, b, i] += xj * val[k]
                if need_cnt:
                    cring[slot, b, i] += 1
    return syn, n_ev


@_jit
def ring_emit(ring, cring, slot, weight_exp, need_cnt, out, cnt):
    """The pending input of arrival step ``slot``: ``out = shift(ring[slot], weight_exp)``
    (one floor shift of the sum of every product arriving now), ``cnt`` its fan-in count;
    the slot is cleared for the arrival step ``depth`` steps later."""
    nb, n = out.shape
    for b in range(nb):
        for i in range(n):
            out[b, i] = _shift(ring[slot, b, i], weight_exp)
            ring[slot, b, i] = 0
            if need_cnt:
                cnt[b, i] = cring[slot, b, i]
                cring[slot, b, i] = 0


@_jit
def dense_prepare(w, num_weight_bits, mant_bits=8, mix_lo=-256, mix_hi=255, exc_lo=0,
                  exc_hi=255, inh_lo=-255, inh_hi=0, lsb_loss=1):
    """``W'`` transposed to int16 ``[N_in, N_out]`` plus non-zeros per input column, in one
    blocked pass over int64 ``w`` ``[N_out, N_in]``. Same rule as
    ``event.dense_effective_weight`` (docs/qgraph.md "Dense weight preparation"): sign mode
    from min/max, clip to the formats' range of that mode, then truncate the low
    ``k = mant_bits - num_weight_bits + (MIXED and lsb_loss)`` bits. Defaults: Loihi."""
    n_out, n_in = w.shape
    lo = 0
    hi = 0
    if w.size:
        lo = w[0, 0]
        hi = w[0, 0]
        for i in range(n_out):
            for j in range(n_in):
                x = w[i, j]
                if x < lo:
                    lo = x
                if x > hi:
                    hi = x
    inhibitory = False
    mixed = 0
    if lo >= 0:  # EXCITATORY (all-zero included)
        clo, chi = exc_lo, exc_hi
    elif hi <= 0:  # INHIBITORY
        clo, chi = inh_lo, inh_hi
        inhibitory = True
    else:  # MIXED
        clo, chi = mix_lo, mix_hi
        mixed = lsb_loss
    k = mant_bits - num_weight_bits + mixed
    sg = -1 if inhibitory else 1  # INHIBITORY truncates -W: W' = -(((-W) >> k) << k)
    wt = np.empty((n_in, n_out), dtype=np.int16)
    nnz_col = np.zeros(n_in, dtype=np.int64)
    blk = 32  # tiles: contiguous reads of w, then contiguous writes of wt rows
    tile = np.empty((blk, blk), dtype=np.int16)
    for i0 in range(0, n_out, blk):
        i1 = min(i0 + blk, n_out)
        for j0 in range(0, n_in, blk):
            j1 = min(j0 + blk, n_in)
            for i in range(i0, i1):
                for j in range(j0, j1):
                    x = min(max(w[i, j], clo), chi) * sg
                    tile[i - i0, j - j0] = ((x >> k) << k) * sg
            for j in range(j0, j1):
                nzc = 0
                for i in range(i0, i1):
                    y = tile[i - i0, j - j0]
                    wt[j, i] = y
                    nzc += y != 0
                nnz_col[j] += nzc
    return wt, nnz_col


@_jit
def csr_rows(wt, want_nonzero):
    """CSR by row of ``wt`` ``[rows, cols]``: the columns whose entry is non-zero
    (``want_nonzero``) or zero, with their values. Returns ``(ptr int64, idx uint32,
    val int16)``."""
    rows, cols = wt.shape
    total = 0
    for r in range(rows):
        for c in range(cols):
            if (wt[r, c] != 0) == want_nonzero:
                total += 1
    ptr = np.zeros(rows + 1, dtype=np.int64)
    idx = np.empty(total, dtype=np.uint32)
    val = np.empty(total, dtype=np.int16)
    k = 0
    for r in range(rows):
        for c in range(cols):
            if (wt[r, c] != 0) == want_nonzero:
                idx[k] = c
                val[k] = wt[r, c]
                k += 1
        ptr[r + 1] = k
    return ptr, idx, val


@_jit
def checksum64(words):
    """Fletcher-style checksum of a uint64 array (wrapping sums): ``s1`` changes with any
    single word, ``s2`` (the running sum of ``s1``) also with the order of the words.
    Used to notice a graph array written in place since its plan was prepared."""
    s1 = np.uint64(0)
    s2 = np.uint64(0)
    for i in range(words.size):
        s1 += words[i]
        s2 += s1
    return s1, s2
