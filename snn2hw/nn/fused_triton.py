"""Triton kernels of the fused multi-step LIF (:mod:`snn2hw.nn.fused`, backend ``"triton"``).

The same recurrences as the module doc of :mod:`snn2hw.nn.fused` (forward equations in
:mod:`snn2hw.nn.functional`), written for a GPU: one program owns a block of neurons
(columns of the ``[T, M]`` input, ``M = B·N``) and runs the whole time loop inside the
kernel (four steps per iteration, their loads issued before their arithmetic), so a
forward or backward pass is one launch instead of one per step, and no
``[T, M]`` temporary is made besides ``h``, ``s`` (forward), the surrogate derivative
``sg`` and ``gx`` (backward).

The surrogate derivative is not computed here: the caller evaluates it with the one
definition (:func:`snn2hw.nn.surrogate.surrogate_grad`) and passes ``sg`` in.

Floating-point contraction (``a·b + c`` fused into one FMA) is turned off at launch, so each
step rounds exactly like the numba kernel and the torch loop: the spikes are the same bit for
bit, not only to rounding near the threshold.

Imported only when the ``"triton"`` backend runs (snn2hw imports without Triton). With
``TRITON_INTERPRET=1`` set before this module is first imported, the kernels run in Triton's
interpreter on CPU tensors (how the tests check them on machines without a GPU).
"""

from __future__ import annotations

import os

import torch
import triton
import triton.language as tl

from snn2hw.common.errors import ConfigError
from snn2hw.nn.fused import TRITON_DTYPES

# Columns per program and warps per program, one column per thread. Each thread's time loop
# is latency bound (hence four steps per iteration, their loads first), so the block size
# hardly matters: on an H200 ([500, 65536] float32) BLOCK 64, 128 and 256 with 2, 4 and 8
# warps gave 0.18 ms forward and 0.24-0.31 ms backward alike; 512 was slower.
BLOCK = 128
NUM_WARPS = 4
DTYPES = TRITON_DTYPES
# Triton reads the variable when a kernel is decorated, i.e. when this module is imported.
INTERPRETED = os.environ.get("TRITON_INTERPRET", "0") == "1"


@triton.jit
def _fwd_step(u, v, x, b, alpha, beta, vth, h_ptr, s_ptr, off, valid, HARD: tl.constexpr):
    u = alpha * u + x
    h = beta * v + u + b
    s = (h > vth).to(h.dtype)
    tl.store(h_ptr + off, h, mask=valid)
    tl.store(s_ptr + off, s, mask=valid)
    if HARD:
        v = h * (1.0 - s)
    else:
        v = h - vth * s
    return u, v


@triton.jit
def _lif_fwd_kernel(x_ptr, h_ptr, s_ptr, bias_ptr, par_ptr, T, M, N, TM,
                    HARD: tl.constexpr, BLOCK: tl.constexpr):
    cols = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    mask = cols < M
    alpha = tl.load(par_ptr)
    beta = tl.load(par_ptr + 1)
    vth = tl.load(par_ptr + 2)
    b = tl.load(bias_ptr + cols % N, mask=mask, other=0.0)
    u = tl.zeros_like(b)
    v = tl.zeros_like(b)
    off = cols  # t·M + column; step t exists iff off < TM = T·M
    # Four steps per iteration with their loads issued before their arithmetic: one memory
    # latency per four steps (the recurrence itself waits only on arithmetic). Steps past
    # the end (T not a multiple of 4) are masked and come after every real one.
    for _t in range(0, T, 4):
        m0 = mask & (off < TM)
        m1 = mask & (off + M < TM)
        m2 = mask & (off + 2 * M < TM)
        m3 = mask & (off + 3 * M < TM)
        x0 = tl.load(x_ptr + off, mask=m0, other=0.0)
        x1 = tl.load(x_ptr + off + M, mask=m1, other=0.0)
        x2 = tl.load(x_ptr + off + 2 * M, mask=m2, other=0.0)
        x3 = tl.load(x_ptr + off + 3 * M, mask=m3, other=0.0)
        u, v = _fwd_step(u, v, x0, b, alpha, beta, vth, h_ptr, s_ptr, off, m0, HARD)
        u, v = _fwd_step(u, v, x1, b, alpha, beta, vth, h_ptr, s_ptr, off + M, m1, HARD)
        u, v = _fwd_step(u, v, x2, b, alpha, beta, vth, h_ptr, s_ptr, off + 2 * M, m2, HARD)
        u, v = _fwd_step(u, v, x3, b, alpha, beta, vth, h_ptr, s_ptr, off + 3 * M, m3, HARD)
        off += 4 * M


@triton.jit
def _bwd_load(gs_ptr, sg_ptr, h_ptr, s_ptr, off, mask, M, TM,
              NEED_H: tl.constexpr, DECAY: tl.constexpr):
    """Step ``t``'s inputs (``off = t·M + column``): ``gs``, ``sg`` and, with DECAY, ``h``
    and ``s`` of step ``t-1`` (step ``t``'s own come carried from the later step), else
    ``s`` (and ``h`` when the reset's derivative needs it) of step ``t``."""
    valid = mask & (off < TM)
    gs = tl.load(gs_ptr + off, mask=valid, other=0.0)
    g = tl.load(sg_ptr + off, mask=valid, other=0.0)
    if DECAY:
        prev = mask & (off >= M) & (off - M < TM)
        hr = tl.load(h_ptr + off - M, mask=prev, other=0.0)
        sr = tl.load(s_ptr + off - M, mask=prev, other=0.0)
    else:
        sr = tl.load(s_ptr + off, mask=valid, other=0.0)
        hr = tl.zeros_like(sr)
        if NEED_H:
            hr = tl.load(h_ptr + off, mask=valid, other=0.0)
    return gs, g, hr, sr, valid


@triton.jit
def _bwd_step(gs, g, ht, st, hp, sp, gv_next, gu_next, gu_later, gb, d_alpha, d_beta, d_vth,
              alpha, beta, vth, b, gx_ptr, off, valid,
              HARD: tl.constexpr, DETACH: tl.constexpr, DECAY: tl.constexpr,
              PARAMS: tl.constexpr):
    if HARD:
        dvdh = 1.0 - st
        dvdth = tl.zeros_like(st)
        if not DETACH:
            dvdh -= ht * g
            dvdth = ht * g
    else:
        dvdh = tl.zeros_like(st) + 1.0
        dvdth = -st
        if not DETACH:
            dvdh -= vth * g
            dvdth += vth * g
    gh = gs * g + gv_next * dvdh
    gu = gh + gu_next
    tl.store(gx_ptr + off, gu, mask=valid)
    if PARAMS:
        gb += gh
        d_vth += (-gs * g + gv_next * dvdth).to(tl.float64)
    if DECAY:
        if HARD:
            vp = hp * (1.0 - sp)
        else:
            vp = hp - vth * sp
        d_beta += (gh * vp).to(tl.float64)
        d_alpha += (gu_later * (ht - b - beta * vp)).to(tl.float64)
        gu_later = gu
    return beta * gh, alpha * gu, gu_later, gb, d_alpha, d_beta, d_vth


@triton.jit
def _lif_bwd_kernel(gs_ptr, sg_ptr, h_ptr, s_ptr, bias_ptr, par_ptr,
                    gx_ptr, gb_ptr, pd_ptr, T, M, N, TM, LAST,
                    HARD: tl.constexpr, DETACH: tl.constexpr, DECAY: tl.constexpr,
                    PARAMS: tl.constexpr, BLOCK: tl.constexpr):
    # Reverse-time BPTT of fused.py's module doc, four steps per iteration like the forward.
    # The time axis is padded at its end to a multiple of 4 and the padded steps run first:
    # with zero gs and sg and nothing carried yet they change no sum and store nothing.
    # With DECAY (alpha or beta learnt) step t also needs h[t-1], s[t-1]: loaded once and
    # carried into the next (earlier) step; dL/dalpha = sum_t gu[t]·u[t-1] is accumulated as
    # u[t]·gu[t+1] at step t.
    NEED_H: tl.constexpr = DECAY or (HARD and not DETACH)
    cols = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    mask = cols < M
    alpha = tl.load(par_ptr)
    beta = tl.load(par_ptr + 1)
    vth = tl.load(par_ptr + 2)
    b = tl.load(bias_ptr + cols % N, mask=mask, other=0.0)
    zero = tl.zeros_like(b)
    gv_next = zero
    gu_next = zero
    gu_later = zero  # gu[t+1], unscaled (for dL/dalpha)
    gb = zero
    d_alpha = tl.zeros([BLOCK], dtype=tl.float64)
    d_beta = tl.zeros([BLOCK], dtype=tl.float64)
    d_vth = tl.zeros([BLOCK], dtype=tl.float64)
    off = LAST + cols  # LAST = (padded T - 1)·M, from the host: 64-bit when it must be
    h_cur = zero
    s_cur = zero
    if DECAY:
        h_cur = tl.load(h_ptr + off, mask=mask & (off < TM), other=0.0)
        s_cur = tl.load(s_ptr + off, mask=mask & (off < TM), other=0.0)
    for _t in range(0, T, 4):
        gs0, g0, h0, s0, m0 = _bwd_load(gs_ptr, sg_ptr, h_ptr, s_ptr, off, mask, M, TM,
                                        NEED_H, DECAY)
        gs1, g1, h1, s1, m1 = _bwd_load(gs_ptr, sg_ptr, h_ptr, s_ptr, off - M, mask, M, TM,
                                        NEED_H, DECAY)
        gs2, g2, h2, s2, m2 = _bwd_load(gs_ptr, sg_ptr, h_ptr, s_ptr, off - 2 * M, mask, M,
                                        TM, NEED_H, DECAY)
        gs3, g3, h3, s3, m3 = _bwd_load(gs_ptr, sg_ptr, h_ptr, s_ptr, off - 3 * M, mask, M,
                                        TM, NEED_H, DECAY)
        if DECAY:  # step t's own h, s: carried (h_cur) or the previous step's "prev" row
            ht0, st0, ht1, st1, ht2, st2, ht3, st3 = h_cur, s_cur, h0, s0, h1, s1, h2, s2
            h_cur = h3
            s_cur = s3
        else:
            ht0, st0, ht1, st1, ht2, st2, ht3, st3 = h0, s0, h1, s1, h2, s2, h3, s3
        gv_next, gu_next, gu_later, gb, d_alpha, d_beta, d_vth = _bwd_step(
            gs0, g0, ht0, st0, h0, s0, gv_next, gu_next, gu_later, gb, d_alpha, d_beta, d_vth,
            alpha, beta, vth, b, gx_ptr, off, m0, HARD, DETACH, DECAY, PARAMS)
        gv_next, gu_next, gu_later, gb, d_alpha, d_beta, d_vth = _bwd_step(
            gs1, g1, ht1, st1, h1, s1, gv_next, gu_next, gu_later, gb, d_alpha, d_beta, d_vth,
            alpha, beta, vth, b, gx_ptr, off - M, m1, HARD, DETACH, DECAY, PARAMS)
        gv_next, gu_next, gu_later, gb, d_alpha, d_beta, d_vth = _bwd_step(
            gs2, g2, ht2, st2, h2, s2, gv_next, gu_next, gu_later, gb, d_alpha, d_beta, d_vth,
            alpha, beta, vth, b, gx_ptr, off - 2 * M, m2, HARD, DETACH, DECAY, PARAMS)
        gv_next, gu_next, gu_later, gb, d_alpha, d_beta, d_vth = _bwd_step(
            gs3, g3, ht3, st3, h3, s3, gv_next, gu_next, gu_later, gb, d_alpha, d_beta, d_vth,
            alpha, beta, vth, b, gx_ptr, off - 3 * M, m3, HARD, DETACH, DECAY, PARAMS)
        off -= 4 * M
    if PARAMS:
        tl.store(gb_ptr + cols, gb, mask=mask)
        tl.store(pd_ptr + cols, d_alpha, mask=mask)
        tl.store(pd_ptr + M + cols, d_beta, mask=mask)
        tl.store(pd_ptr + 2 * M + cols, d_vth, mask=mask)


def _check(x: torch.Tensor) -> None:
    if x.device.type == "cpu" and not INTERPRETED:
        raise ConfigError("the triton LIF backend runs on CUDA tensors (on CPU only in Triton's "
                          "interpreter, TRITON_INTERPRET=1); use backend='numba' on CPU")
    if x.dtype not in DTYPES:
        raise ConfigError(f"the triton LIF backend runs float32 and float64 only, got {x.dtype}; "
                          "cast the input or use backend='torch'")


def _grid(m: int) -> tuple[int]:
    return (triton.cdiv(m, BLOCK),)


def lif_forward(x: torch.Tensor, par: torch.Tensor, bias: torch.Tensor,
                hard: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """``(h, s)`` ``[T, M]`` for contiguous ``x`` ``[T, M]``, ``par`` = ``[alpha, beta, vth]``
    in ``x``'s dtype and device (read by the kernel: no wait for the GPU) and per-neuron
    ``bias`` ``[N]`` (neuron ``m % N`` of column ``m``)."""
    _check(x)
    T, M = x.shape
    h = torch.empty_like(x)
    s = torch.empty_like(x)
    if T == 0 or M == 0:
        return h, s
    _lif_fwd_kernel[_grid(M)](x, h, s, bias, par, T, M, bias.numel(),
                              T * M,
                              HARD=hard, BLOCK=BLOCK, num_warps=NUM_WARPS,
                              enable_fp_fusion=False)
    return h, s


def lif_backward(gs: torch.Tensor, sg: torch.Tensor, h: torch.Tensor, s: torch.Tensor,
                 par: torch.Tensor, bias: torch.Tensor, hard: bool,
                 detach: bool, want_decay: bool, want_params: bool):
    """``(gx [T, M], gb [M], d_alpha, d_beta, d_vth)`` from the spike gradient ``gs`` and the
    surrogate derivative ``sg`` (both ``[T, M]``). ``gb`` holds per-column sums of ``gh``
    (the caller folds columns into neurons); the three parameter gradients are float64
    scalars reduced from per-column float64 partial sums. Without ``want_params`` only
    ``gx`` is computed (the rest is zero); without ``want_decay`` ``d_alpha``/``d_beta`` are
    zero."""
    _check(h)
    T, M = h.shape
    gx = torch.empty_like(h)
    gb = torch.zeros(M, dtype=h.dtype, device=h.device)
    pd = torch.zeros(3, M, dtype=torch.float64, device=h.device)
    if T > 0 and M > 0:
        _lif_bwd_kernel[_grid(M)](gs, sg, h, s, bias, par, gx, gb, pd,
                                  T, M, bias.numel(), T * M, (triton.cdiv(T, 4) * 4 - 1) * M,
                                  HARD=hard, DETACH=detach,
                                  DECAY=want_decay, PARAMS=want_params or want_decay,
                                  BLOCK=BLOCK, num_warps=NUM_WARPS, enable_fp_fusion=False)
    d_alpha, d_beta, d_vth = pd.sum(dim=1)
    return gx, gb, d_alpha, d_beta, d_vth
