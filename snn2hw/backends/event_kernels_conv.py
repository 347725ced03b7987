"""2-D convolution and sum pooling of the event-driven simulator, event driven: each event
scatters into the channels-last sums of the outputs it reaches (:func:`conv_scatter`,
:func:`sumpool_scatter`); :func:`conv_sample` is one sample's scatter, which the fused
conv + LIF kernel (:func:`~snn2hw.backends.event_kernels_lif.lif_kernels`) shares.
Conventions: :mod:`snn2hw.backends.event_kernels`.

May import: numba, numpy and the shared event kernels.
"""

from __future__ import annotations

import numpy as np

from snn2hw.backends.event_kernels import (
    add_lanes16,
    ashr,
    like,
    njit_inline,
    njit_kernel,
    nonzero_positions,
    packed_activation,
    position,
    shift,
    shl,
    unpack,
    wrap24,
)


@njit_kernel
def conv_scatter(
    x, geom, wt, wpk, yptr, yk, yo, xptr, xk, xo, weight_exp, need_cnt, acc_t, cnt_t, out,
    cnt, xrun, w_s, wpk_s, xslot, syn_tab, synall_tab, xbin, pos, hwc_out, wpk32, wpk32_s,
    acc32, blk, wblk32, syn,
):
    """2-D convolution (PyTorch cross-correlation), event driven.

    ``geom = (C, H, W, C_out, H_out, W_out, C_in/groups, C_out/groups, kH, kW, wbound,
    wmax)`` (the last two below). ``wt`` is
    the weight as ``[C_in/groups, kH, kW, C_out]``, flattened (one event's output channels
    are contiguous). ``yptr/yk/yo``: for input row y, the pairs (kernel row ky, output row
    oy) with ``oy*stride - pad + ky*dil == y`` inside the output, in increasing ky (same for
    columns). Each event (c, y, x) scatters into the channels-last sums ``[oy, ox,
    group's c_out]`` (flat); then ``out = wrap24(shift(acc, weight_exp))`` (docs/qgraph.md,
    ``conv``). ``syn_tab``/``synall_tab``: per stored input position, the synops of one
    event there over non-zero weights / over every weight it reaches; each row's ``(synops
    non-zero, synops structural)`` are added to ``syn[step]``
    (:mod:`snn2hw.backends.event_kernels`, "Rows"), each event counted once from the
    tables.

    Fan-in counts ride in the same add when it is safe: ``wpk = w + (w != 0) << 32``; if
    ``max|x| * wbound < 2^31`` (``wbound = max|w| * taps per output``) the true sum stays in
    (-2^31, 2^31) and the count is the part above bit 32. Otherwise counts use their own
    array (``cnt_t`` or ``cnt``). Narrow sums: where ``sum|x| * wmax < 2^15`` (``wmax =
    max|w|``) the sums are int32 ``acc32``, packed ``w + (w != 0) << 16`` (``wpk32``).

    Blocks (``blk``, with the packed int32 sums; one group, no dilation): every event adds
    the same ``R`` runs of ``Rx * C_out`` values rounded up to whole 16-lane vector adds,
    ``R``/``Rx`` the most kernel rows/columns one input row/column reaches, from a table of
    the kernel per case of input row and column (its stride phase and border, ``wblk32``)
    where the taps a case lacks, and the lanes past ``Rx * C_out``, weigh 0. Such a lane
    lands on another output position (in the same row, the row before or after, or in the
    margins of ``acc32`` around the sums) and adds 0 there: the trip counts are the same for
    every event (no mispredicted loop exits) and nothing is dropped afterwards. The sums
    then lie at ``acc32[front:front + n]`` (``front = blk[5]``), the margins stay zero.

    ``xrun`` (one group, column dilation 1, any stride): the column taps of one event hit
    consecutive output columns with kx falling by the stride, so with the kernel columns
    ordered by ``xslot`` (``w_s``/``wpk_s``: phase ``kx % stride``, then falling kx) each
    kernel row is ONE contiguous add of (taps x C_out) values. Otherwise every tap is an
    add of C_out/groups values. ``xbin``: the input is known to be 0/1 (no scan for
    ``max|x|``).

    Layouts (:mod:`snn2hw.backends.event` "Layouts"): ``pos`` gives the ``(C, H, W)``
    position of each stored input position (packed, :func:`position`), whichever the
    input's layout; ``hwc_out`` the output is written
    channels-last: the scatter then accumulates straight into ``out`` (same order as the
    scratch) and the epilogue is one contiguous pass instead of a strided conversion.
    """
    c_out, h_out, w_out = geom[3], geom[4], geom[5]
    n_pos = h_out * w_out
    front = blk[5]
    per_step = x.shape[0] // max(syn.shape[0], 1)
    events = np.empty(x.shape[1], dtype=np.int32)
    for b in range(x.shape[0]):
        ob = out[b]
        cb = cnt[b]
        bits, s0, s1 = conv_sample(
            x[b], ob, cb, events, geom, wt, wpk, yptr, yk, yo, xptr, xk, xo, need_cnt,
            acc_t, cnt_t, xrun, w_s, wpk_s, xslot, syn_tab, synall_tab, xbin, pos, hwc_out,
            wpk32, wpk32_s, acc32, blk, wblk32)
        syn[b // per_step, 0] += s0
        syn[b // per_step, 1] += s1
        if hwc_out:  # out = wrap24(shift(sum, e)), contiguous
            if bits == 16:
                for k in range(n_pos * c_out):
                    p = np.int64(acc32[front + k])
                    acc32[front + k] = 0  # left all zero for the next sample (conv_sample)
                    cb[k] = unpack(p, 16)[0]
                    ob[k] = packed_activation(p, 16, weight_exp)
            elif bits == 32:  # in place: ob = true + count << 32 with |true| < 2^31
                for k in range(n_pos * c_out):
                    cb[k] = unpack(ob[k], 32)[0]
                    ob[k] = packed_activation(ob[k], 32, weight_exp)
            else:
                for k in range(n_pos * c_out):
                    ob[k] = wrap24(shift(ob[k], weight_exp))
            continue
        # out = wrap24(shift(sum, e)) in (C, H, W) order from the channels-last sums; each
        # mode its own branch-free loop (contiguous writes, L1-resident strided reads)
        for co in range(c_out):
            k0 = co * n_pos
            if bits == 16:
                for yx in range(n_pos):
                    p = np.int64(acc32[front + yx * c_out + co])
                    acc32[front + yx * c_out + co] = 0  # left all zero (conv_sample)
                    cb[k0 + yx] = unpack(p, 16)[0]
                    ob[k0 + yx] = packed_activation(p, 16, weight_exp)
            elif bits == 32:
                for yx in range(n_pos):
                    p = acc_t[yx * c_out + co]
                    cb[k0 + yx] = unpack(p, 32)[0]
                    ob[k0 + yx] = packed_activation(p, 32, weight_exp)
            else:
                if need_cnt:
                    for yx in range(n_pos):
                        cb[k0 + yx] = cnt_t[yx * c_out + co]
                for yx in range(n_pos):
                    ob[k0 + yx] = wrap24(shift(acc_t[yx * c_out + co], weight_exp))


@njit_inline
def conv_sample(
    xb, ob, cb, events, geom, wt, wpk, yptr, yk, yo, xptr, xk, xo, need_cnt, acc_t, cnt_t,
    xrun, w_s, wpk_s, xslot, syn_tab, synall_tab, xbin, pos, hwc_out, wpk32, wpk32_s, acc32,
    blk, wblk32,
):
    """Scatter one sample's events into channels-last sums (see :func:`conv_scatter`) and
    return ``(bits, synops non-zero, synops structural)``; ``bits`` says where the sums are:
    16: ``acc32[blk[5]:]``, packed ``true + count << 16`` (``acc32`` is all zero on entry:
    its readers clear it); 32: the int64 sums (``ob`` when ``hwc_out``, else ``acc_t``)
    packed ``true + count << 32``; 0: the int64 sums unpacked, counts (when ``need_cnt``) in
    ``cb`` (``hwc_out``) or ``cnt_t``."""
    half = np.int64(1) << 31
    wbound, wmax = geom[10], geom[11]
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
        # acc32 is all zero here: whoever reads it clears it (the fused LIF's loop, the
        # epilogue of conv_scatter), so no pass clears it before the events
        if blk[0] > 0:
            s0, s1 = _conv_block_events(acc32, xb, events, n_ev, blk, wblk32, syn_tab,
                                        synall_tab, xbin)
        else:
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


@njit_kernel
def _conv_block_events(acc, xb, events, n_ev, blk, wblk, syn_tab, synall_tab, xbin):
    """Scatter one sample's events into the packed int32 sums ``acc`` as blocks (see
    :func:`conv_scatter`, "Blocks"; ``blk``: ``[R, run (a multiple of 16), row step,
    channel step, block-row step, front]``, then per stored input position where its runs
    start in the sums (high 32 bits) and in the kernel table (low 32 bits): one load per
    event). Returns the events' ``(synops non-zero, synops structural)``."""
    n_r, run, row_step, r_step = blk[0], blk[1], blk[2], blk[4]
    at = blk[6:]
    syn = 0
    syn_all = 0
    for e in range(n_ev):
        i = events[e]
        syn += syn_tab[i]
        syn_all += synall_tab[i]
        a = at[i] >> 32
        wb = at[i] & 0xFFFFFFFF
        v = 1 if xbin else np.int64(xb[i])
        if v == 1:
            for r in range(n_r):
                for t in range(0, run, 16):
                    add_lanes16(acc, a + r * row_step + t, wblk, wb + r * r_step + t)
            continue
        # v * w + (w != 0) << 16 = p + (v - 1) * w, w the sign-extended low half of p
        m = v - 1
        for r in range(n_r):
            arow = acc[a + r * row_step:a + r * row_step + run]
            prow = wblk[wb + r * r_step:wb + r * r_step + run]
            for t in range(run):
                p = prow[t]
                arow[t] = like(arow, arow[t] + p + m * ashr(shl(p, 16), 16))
    return syn, syn_all


@njit_kernel
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
        ch, y, xx = position(pos[i])
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


@njit_kernel
def sumpool_scatter(x, mptr, midx, dst, need_cnt, out, cnt, syn):
    """Sum pooling (zero padding, exact, no shift or wrap), event driven.

    ``mptr/midx``: for each stored input position i, the stored output positions
    ``midx[mptr[i]:mptr[i + 1]]`` of the windows that hold it (built once per graph, in
    the layouts of input and output). ``dst``: where every input lies in at most one window
    (a stride of at least the window), that window's output position per input (-1 for
    none), else empty: one load per event instead of a loop. Every window membership is
    one synaptic event of weight 1, counted in both columns of ``syn[step]`` (all weights
    are non-zero).
    """
    nb, n_in = x.shape
    per_step = nb // max(syn.shape[0], 1)
    events = np.empty(n_in, dtype=np.int32)
    single = dst.size > 0
    for b in range(nb):
        xb = x[b]
        o = out[b]
        o[:] = 0
        c = cnt[b]
        if need_cnt:
            c[:] = 0
        n_syn = 0  # added into syn per row: a store per event would chain the events
        n_ev = nonzero_positions(xb, events)
        if single:
            for e in range(n_ev):
                i = events[e]
                d = dst[i]
                if d >= 0:  # almost always: a branch the CPU predicts
                    o[d] += xb[i]
                    if need_cnt:
                        c[d] += 1
                    n_syn += 1
        else:
            for e in range(n_ev):
                i = events[e]
                v = xb[i]
                m0 = mptr[i]
                m1 = mptr[i + 1]
                for m in range(m0, m1):
                    o[midx[m]] += v
                if need_cnt:
                    for m in range(m0, m1):
                        c[midx[m]] += 1
                n_syn += m1 - m0
        syn[b // per_step, 0] += n_syn
        syn[b // per_step, 1] += n_syn
