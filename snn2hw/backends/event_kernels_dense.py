"""Dense synapses of the event-driven simulator, event driven: column rows per event
(:func:`dense_columns`), sparse rows (:func:`dense_csr`), per-synapse delays
(:func:`dense_delay_scatter`, :func:`ring_emit`), and the weight preparation they read
(:func:`dense_prepare`, :func:`csr_rows`). Conventions: :mod:`snn2hw.backends.event_kernels`.

May import: numba, numpy and the shared event kernels.
"""

from __future__ import annotations

import numpy as np

from snn2hw.backends.event_kernels import njit_kernel, nonzero_positions, shift


@njit_kernel
def dense_columns(x, wt, nnz_col, zptr, zidx, rowbound, wmax, weight_exp, need_cnt, acc, cnt,
                  acc32, acc16, cnt16, xbin, syn):
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
    matrix), gathered in the same pass; or, where ``cnt16`` has ``N_out`` entries (the
    operator chose it: zeros enough that one decrement per zero costs more), counted with
    the rows' adds as int16 sums of ``W'[:, j] != 0`` (at most ``N_in < 2^15``).
    Adds each row's ``(synops over non-zero weights, structural synops = events * N_out)``
    to ``syn[step]`` (:mod:`snn2hw.backends.event_kernels`, "Rows").
    """
    nb, n_in = x.shape
    n_out = wt.shape[1]
    per_step = nb // max(syn.shape[0], 1)
    lim = np.int64(1) << 31
    events = np.empty(n_in, dtype=np.int32)
    for b in range(nb):
        s = b // per_step
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
        syn[s, 1] += ev_b * n_out
        count = need_cnt and cnt16.size > 0
        if need_cnt:
            c[:] = ev_b  # minus the zero weights each event meets, below (or counted)
        if count:
            cnt16[:] = 0
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
        n_syn = 0  # in a register: a store into syn per event would chain the events
        for e in range(ev_b):
            j = events[e]
            n_syn += nnz_col[j]
            if need_cnt and not count:
                for k in range(zptr[j], zptr[j + 1]):
                    c[zidx[k]] -= 1
        syn[s, 0] += n_syn
        if width == 16:
            _add_rows(acc16, wt, xb, events, ev_b, xbin, cnt16, count)
        elif width == 32:
            _add_rows(acc32, wt, xb, events, ev_b, xbin, cnt16, count)
        else:
            _add_rows(a, wt, xb, events, ev_b, xbin, cnt16, count)
        if count:
            for i in range(n_out):
                c[i] = cnt16[i]
        # shift(acc, weight_exp) applies to the SUM (floor for negative exponents), in one
        # pass that also widens the narrow sums
        if width == 16:
            for i in range(n_out):
                a[i] = shift(np.int64(acc16[i]), weight_exp)
        elif width == 32:
            for i in range(n_out):
                a[i] = shift(np.int64(acc32[i]), weight_exp)
        elif weight_exp != 0:
            for i in range(n_out):
                a[i] = shift(a[i], weight_exp)


@njit_kernel
def _add_rows(acc, wt, xb, events, n_ev, xbin, cacc, count):
    """``acc += sum_e xb[j_e] * wt[j_e]`` over the events ``j_e = events[e]``, in ``acc``'s
    integer width (the caller's bound guarantees the sums fit; the compiler narrows the
    arithmetic to that width), and with ``count`` ``cacc += sum_e (wt[j_e] != 0)``. Binary
    events are added four rows at a time: one load and store of ``acc`` per four rows
    instead of per row (1.4x on 1 KB rows)."""
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
            if count:
                for i in range(n):
                    cacc[i] += (r0[i] != 0) + (r1[i] != 0) + (r2[i] != 0) + (r3[i] != 0)
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
        if count:
            for i in range(n):
                cacc[i] += row[i] != 0
        e += 1


@njit_kernel
def dense_csr(x, ptr, idx, val, weight_exp, need_cnt, acc, cnt, syn):
    """Dense synapses, sparse layout: CSR by input column holding only non-zero W' entries
    (``ptr[j]:ptr[j+1]`` indexes ``idx`` = output neuron, ``val`` = weight).

    ``acc = shift(W' @ x, weight_exp)``; adds each row's ``(synops over non-zero weights,
    structural synops = events * N_out)`` to ``syn[step]`` (as :func:`dense_columns`).
    """
    nb, n_in = x.shape
    n_out = acc.shape[1]
    per_step = nb // max(syn.shape[0], 1)
    for b in range(nb):
        s = b // per_step
        a = acc[b]
        a[:] = 0
        if need_cnt:
            c = cnt[b]
            c[:] = 0
        for j in range(n_in):
            xj = x[b, j]
            if xj == 0:
                continue
            syn[s, 1] += n_out
            k0 = ptr[j]
            k1 = ptr[j + 1]
            syn[s, 0] += k1 - k0
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
                a[i] = shift(a[i], weight_exp)


@njit_kernel
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


@njit_kernel
def ring_emit(ring, cring, slot, weight_exp, need_cnt, out, cnt):
    """The pending input of arrival step ``slot``: ``out = shift(ring[slot], weight_exp)``
    (one floor shift of the sum of every product arriving now), ``cnt`` its fan-in count;
    the slot is cleared for the arrival step ``depth`` steps later."""
    nb, n = out.shape
    for b in range(nb):
        for i in range(n):
            out[b, i] = shift(ring[slot, b, i], weight_exp)
            ring[slot, b, i] = 0
            if need_cnt:
                cnt[b, i] = cring[slot, b, i]
                cring[slot, b, i] = 0


@njit_kernel
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


@njit_kernel
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
