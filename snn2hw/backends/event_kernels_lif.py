"""The LIF step of the event-driven simulator (docs/qgraph.md "LIF step"): the single-spike
kernels compiled per overflow mode and decay case (:func:`lif_kernels`: one of them fused
with the conv that alone feeds the LIF), their constants (:func:`lif_consts`), the int32
state bound (:func:`lif_narrow`), and the multi-spike step (:func:`lif_step_general`).
Conventions: :mod:`snn2hw.backends.event_kernels`.

May import: numba, numpy and the shared and conv event kernels.
"""

from __future__ import annotations

import functools
from typing import Any, NamedTuple

import numpy as np

from snn2hw.backends.event_kernels import (
    bits_of,
    like,
    njit_inline,
    njit_kernel,
    packed_activation,
    shift,
    shl,
    unpack,
    wrap24,
)
from snn2hw.backends.event_kernels_conv import conv_sample


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


@njit_inline
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
    u_hi, u_neg, u_lo, u_up, u_span = (like(ui, lc[5]), like(ui, -lc[5]),
                                       like(ui, 1 - lc[5]), like(ui, lc[5] - 1),
                                       like(ui, lc[5] << 1))
    v_hi, v_neg, v_lo, v_up, v_span = (like(vi, lc[6]), like(vi, -lc[6]),
                                       like(vi, 1 - lc[6]), like(vi, lc[6] - 1),
                                       like(vi, lc[6] << 1))
    if decays:
        p = ui * fu
        ui = like(ui, ((p + ((p >> 63) & rmask)) >> db) + (ai << sh))
    else:
        ui = shl(like(ui, ai), sh)
    if u_sat:
        ui = min(max(ui, u_lo), u_up)
    else:
        ui = like(ui, ui - u_span * (ui > u_hi) + u_span * (ui <= u_neg))
    if decays:
        p = vi * fv
        vi = like(vi, ((p + ((p >> 63) & rmask)) >> db) + ui + bi)
    else:
        vi = like(vi, vi + ui + bi)
    if v_sat:
        vi = min(max(vi, v_lo), v_up)
    else:
        vi = like(vi, vi - v_span * (vi > v_hi) + v_span * (vi <= v_neg))
    return ui, vi


@njit_inline
def _lif_neuron(ai, ui, vi, bi, lc, u_sat, v_sat, decays):
    """The single-spike LIF step of one neuron: ``(u, v, spike)`` (:func:`_lif_uv`, then
    the threshold test and the reset of v, branch free)."""
    th, th_cmp, keep = like(vi, lc[7]), like(vi, lc[8]), like(vi, lc[9])
    ui, vi = _lif_uv(ai, ui, vi, bi, lc, u_sat, v_sat, decays)
    k = vi > th_cmp
    return ui, like(vi, like(vi, vi - th) & keep) if k else vi, k


@njit_inline
def _lif_row(ab, cb, bits, e, ub, vb, bias, sb, lc, u_sat, v_sat, decays, packed):
    """One sample's single-spike LIF step over its ``n`` neurons; returns ``(spikes, active
    neuron updates, max fan-in)``. ``packed`` (a constant, inlined): ``ab`` holds a conv's
    packed sums ``true + count << bits`` (:func:`unpack`), the activation is
    ``wrap24(shift(true, e))`` (:func:`packed_activation`, the conv's epilogue, fused here),
    and ``ab`` is left all zero (the conv's next sample adds into it: no separate clearing
    pass); else ``ab`` is the activation and ``cb`` the fan-in counts. The arithmetic runs
    in the width of the state ``ub``/``vb`` (and ``bias``): int64, or int32
    (:func:`lif_narrow`)."""
    n_spk = like(ub, 0)
    n_act = like(ub, 0)
    peak = like(ub, 0)
    top = like(ab, 1 << (bits_of(ab) - 1))  # packed: the largest packed sum (from the minimum)
    # packed: the count is monotonic in the packed sum, so the largest count is the count
    # of the largest sum, unpacked once after the loop
    for i in range(ub.size):
        if packed:  # the activation is a wrap24 value: exact in the state's width
            p = ab[i]
            ab[i] = 0
            top = max(top, p)
            ai = like(ub, packed_activation(p, bits, e))
        else:
            ai = like(ub, ab[i])
            peak = like(ub, max(peak, like(ub, cb[i])))
        ui = ub[i]
        vi = vb[i]
        bi = bias[i]
        n_act = like(ub, n_act + ((ai | ui | vi | bi) != 0))
        ui, vi, k = _lif_neuron(ai, ui, vi, bi, lc, u_sat, v_sat, decays)
        sb[i] = k
        n_spk = like(ub, n_spk + k)
        vb[i] = vi
        ub[i] = ui
    if packed and ub.size > 0:
        peak = like(ub, unpack(top, bits)[0])
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

    step: Any  # (a, cnt, u, v, bias, spk, lc, tal): tallies into tal[step]
    conv_step: Any  # a conv fused with the LIF it alone feeds (see lif_kernels)


@functools.cache
def lif_kernels(u_sat: bool, v_sat: bool, decays: bool) -> LifKernels:
    """The single-spike LIF kernels with ``u_sat``/``v_sat``/``decays`` compiled in as
    constants (:func:`_lif_neuron`: only the clip or wrap and decay work the node needs,
    each 20-25 % of the step). Each combination is compiled on its first use (and cached
    on disk), so a session builds only the ones its graphs use; int32 state ``u``/``v``
    and ``bias`` (a LIF fed by a conv alone where :func:`lif_narrow` holds) compiles
    another version of each, twice as fast.

    ``step(a, cnt, u, v, bias, spk, lc, tal)``: steps of ``[B, N]`` neurons from the
    summed activation ``a`` and fan-in counts ``cnt``, rows of consecutive steps (see
    :func:`lif_step_general` for the arguments and ``tal``; ``lc``: :func:`lif_consts`).

    ``conv_step(x, <conv_scatter's arguments without need_cnt and hwc_out and syn>, u, v,
    bias, spk, lc, syn, tal)``: a conv whose channels-last output is the only input of the
    LIF, in the same layout, fused per sample: the events are scattered as in
    :func:`conv_scatter`, then the LIF's loop reads the sums directly, the conv's epilogue
    (unpack, shift, wrap24) inside it while the sums are in cache; ``out``/``cnt`` (scratch,
    ``[B, size]``: one step's rows, whatever the rows of ``x``) are written only when the
    sums need int64 without packing. Same results as
    :func:`conv_scatter` then ``step``; the conv's synops into ``syn``, the LIF's tallies
    into ``tal``.
    """

    @njit_kernel
    def step(a, cnt, u, v, bias, spk, lc, tal):
        nb = u.shape[0]
        for r in range(a.shape[0]):
            s, c, p = _lif_row(a[r], cnt[r], 0, 0, u[r % nb], v[r % nb], bias, spk[r], lc,
                               u_sat, v_sat, decays, False)
            _tally(tal, r // nb, s, c, p)

    @njit_kernel
    def conv_step(x, geom, wt, wpk, yptr, yk, yo, xptr, xk, xo, weight_exp, acc_t, cnt_t,
                  out, cnt, xrun, w_s, wpk_s, xslot, syn_tab, synall_tab, xbin, pos, wpk32,
                  wpk32_s, acc32, blk, wblk32, u, v, bias, spk, lc, syn, tal):
        nb = u.shape[0]
        sums32 = acc32[blk[5]:blk[5] + out.shape[1]]  # the int32 sums, inside the margins
        events = np.empty(x.shape[1], dtype=np.int32)
        for r in range(x.shape[0]):
            b = r % nb
            ob = out[b]  # scratch rows of one step (event.py allocates no more)
            cb = cnt[b]
            bits, s0, s1 = conv_sample(
                x[r], ob, cb, events, geom, wt, wpk, yptr, yk, yo, xptr, xk, xo, True,
                acc_t, cnt_t, xrun, w_s, wpk_s, xslot, syn_tab, synall_tab, xbin, pos, True,
                wpk32, wpk32_s, acc32, blk, wblk32)
            syn[r // nb, 0] += s0
            syn[r // nb, 1] += s1
            if bits == 16:
                t = _lif_row(sums32, sums32, 16, weight_exp, u[b], v[b], bias, spk[r], lc,
                             u_sat, v_sat, decays, True)
                _tally(tal, r // nb, t[0], t[1], t[2])
                continue
            e = weight_exp
            if bits == 0:  # int64 sums, separate counts: packed as activation + count << 32
                # (a wrap24 value, so the packed form's activation with exponent 0 is
                # itself): one inlined LIF loop serves both int64 modes, each variant
                # compiles faster
                e = 0
                for k in range(ob.size):
                    ob[k] = wrap24(shift(ob[k], weight_exp)) + (cb[k] << 32)
            t = _lif_row(ob, ob, 32, e, u[b], v[b], bias, spk[r], lc, u_sat, v_sat, decays,
                         True)
            _tally(tal, r // nb, t[0], t[1], t[2])

    return LifKernels(step, conv_step)


@njit_kernel
def lif_step_general(a, cnt, u, v, bias, lc, max_spikes, spk, u_sat, v_sat, ge, sub,
                     decays, tal):
    """LIF steps of ``[B, N]`` neurons with any ``max_spikes``, docs/qgraph.md "LIF step"
    and "Multi-spike output" (the single-spike step is :func:`lif_kernels`); the rows of
    ``a``, ``cnt`` and ``spk`` are consecutive steps of the B samples
    (:mod:`snn2hw.backends.event_kernels`, "Rows").

    ``a``: summed activation; ``cnt``: fan-in event counts (for ``peak_fanin``); ``u``,
    ``v`` updated in place (:func:`_lif_uv`); ``bias = bias_mant << bias_exp``. Writes
    spikes to ``spk`` (the record's row of this step, which the next step's synapses
    read). With ``max_spikes > 1`` the output is the number of thresholds crossed, capped
    at ``max_spikes`` (a graded payload), and ``v`` loses that many thresholds ("subtract")
    or is zeroed ("zero"). ``lc``: :func:`lif_consts`; ``u_sat``/``v_sat`` saturate
    instead of wrap (Loihi: False/True), ``ge`` spike on ``>=`` instead of ``>``, ``sub``
    subtract the threshold on a spike instead of resetting to 0, ``decays``:
    :func:`lif_decays`. Adds ``(spikes, active neuron updates)`` of each step to ``tal[step,
    :2]`` and takes the max fan-in into ``tal[step, 2]``.
    """
    rows, n = a.shape
    nb = u.shape[0]
    th = lc[7]
    for r in range(rows):
        b = r % nb
        n_spk = 0
        n_act = 0
        peak = 0
        for i in range(n):
            ai = np.int64(a[r, i])
            ui = u[b, i]
            vi = v[b, i]
            bi = bias[i]
            if ai != 0 or ui != 0 or vi != 0 or bi != 0:
                n_act += 1
            peak = max(peak, cnt[r, i])
            ui, vi = _lif_uv(ai, ui, vi, bi, lc, u_sat, v_sat, decays)
            # s = v > (vth << sh) (or >=); reset of v only: to 0, or minus the threshold
            if max_spikes == 1:
                k = 1 if (vi > th or (ge and vi == th)) else 0
            elif ge:  # n = min(max_spikes, floor(v / TH)) where v >= TH (TH >= 1 here)
                k = min(max_spikes, vi // th) if vi >= th else 0
            else:  # n = min(max_spikes, floor((v - 1) / TH)) where v > TH
                k = min(max_spikes, (vi - 1) // th) if vi > th else 0
            spk[r, i] = k
            if k > 0:
                vi = vi - k * th if sub else 0
                n_spk += 1  # one event per neuron and step, whatever its payload
            u[b, i] = ui
            v[b, i] = vi
        _tally(tal, r // nb, n_spk, n_act, peak)


@njit_inline
def _tally(tal, step, spikes, active, peak):
    """Add one row's ``(spikes, active neuron updates)`` to ``tal[step]`` and take its
    max fan-in into ``tal[step, 2]``."""
    tal[step, 0] += spikes
    tal[step, 1] += active
    if peak > tal[step, 2]:  # not max(): with it the fused conv + LIF ran 2x slower
        tal[step, 2] = peak
