"""Triton kernels of the fused multi-step LIF (:mod:`snn2hw.nn.fused`, backend ``"triton"``).

The same recurrences as the module doc of :mod:`snn2hw.nn.fused` (forward equations in
:mod:`snn2hw.nn.functional`), written for a GPU: one program owns a block of neurons
(columns of the ``[T, M]`` input, ``M = B·N``) and runs the whole time loop inside the
kernel, so a forward or backward pass is one launch instead of one per step, and no
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

# Columns per program and warps per program. One element per thread: each thread's time loop
# is latency bound (one dependent load-compute-store chain per step), so more columns per
# program only lowers the number of programs in flight.
BLOCK = 128
NUM_WARPS = 4
DTYPES = (torch.float32, torch.float64)
# Triton reads the variable when a kernel is decorated, i.e. when this module is imported.
INTERPRETED = os.environ.get("TRITON_INTERPRET", "0") == "1"


@triton.jit
def _lif_fwd_kernel(x_ptr, h_ptr, s_ptr, bias_ptr, par_ptr, T, M, N,
                    HARD: tl.constexpr, BLOCK: tl.constexpr):
    cols = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    mask = cols < M
    alpha = tl.load(par_ptr)
    beta = tl.load(par_ptr + 1)
    vth = tl.load(par_ptr + 2)
    b = tl.load(bias_ptr + cols % N, mask=mask, other=0.0)
    u = tl.zeros_like(b)
    v = tl.zeros_like(b)
    off = cols
    for _t in range(T):
        x = tl.load(x_ptr + off, mask=mask, other=0.0)
        u = alpha * u + x
        h = beta * v + u + b
        s = (h > vth).to(h.dtype)
        tl.store(h_ptr + off, h, mask=mask)
        tl.store(s_ptr + off, s, mask=mask)
        if HARD:
            v = h * (1.0 - s)
        else:
            v = h - vth * s
        off += M


@triton.jit
def _lif_bwd_kernel(gs_ptr, sg_ptr, h_ptr, s_ptr, bias_ptr, par_ptr,
                    gx_ptr, gb_ptr, pd_ptr, T, M, N, LAST,
                    HARD: tl.constexpr, DETACH: tl.constexpr, DECAY: tl.constexpr,
                    PARAMS: tl.constexpr, BLOCK: tl.constexpr):
    # Reverse-time BPTT of fused.py's module doc. With DECAY (alpha or beta learnt) the step
    # t also needs h[t-1], s[t-1]: they are loaded once and carried into the next (earlier)
    # step, and dL/dalpha = sum_t gu[t]·u[t-1] is accumulated as u[t]·gu[t+1] at step t.
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
    off = LAST + cols  # (T-1)·M, from the host: 64-bit when it must be
    h_cur = zero
    s_cur = zero
    if DECAY:
        h_cur = tl.load(h_ptr + off, mask=mask, other=0.0)
        s_cur = tl.load(s_ptr + off, mask=mask, other=0.0)
    for _t in range(T):
        g = tl.load(sg_ptr + off, mask=mask, other=0.0)
        gs = tl.load(gs_ptr + off, mask=mask, other=0.0)
        if DECAY:
            ht = h_cur
            st = s_cur
        else:
            st = tl.load(s_ptr + off, mask=mask, other=0.0)
            ht = zero
            if NEED_H:
                ht = tl.load(h_ptr + off, mask=mask, other=0.0)
        if HARD:
            dvdh = 1.0 - st
            dvdth = zero
            if not DETACH:
                dvdh -= ht * g
                dvdth = ht * g
        else:
            dvdh = zero + 1.0
            dvdth = -st
            if not DETACH:
                dvdh -= vth * g
                dvdth += vth * g
        gh = gs * g + gv_next * dvdh
        gu = gh + gu_next
        tl.store(gx_ptr + off, gu, mask=mask)
        if PARAMS:
            gb += gh
            d_vth += (-gs * g + gv_next * dvdth).to(tl.float64)
        if DECAY:
            pmask = mask & (off >= M)  # t > 0 (off = t·M + column)
            hp = tl.load(h_ptr + off - M, mask=pmask, other=0.0)
            sp = tl.load(s_ptr + off - M, mask=pmask, other=0.0)
            if HARD:
                vp = hp * (1.0 - sp)
            else:
                vp = hp - vth * sp
            d_beta += (gh * vp).to(tl.float64)
            d_alpha += (gu_later * (ht - b - beta * vp)).to(tl.float64)
            gu_later = gu
            h_cur = hp
            s_cur = sp
        gv_next = beta * gh
        gu_next = alpha * gu
        off -= M
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


def _params(alpha: float, beta: float, vth: float, like: torch.Tensor) -> torch.Tensor:
    """The scalars as a tensor in the data dtype: the kernels round like numba's ``f(a)``."""
    return torch.tensor([alpha, beta, vth], dtype=like.dtype).to(like.device)


def _grid(m: int) -> tuple[int]:
    return (triton.cdiv(m, BLOCK),)


def lif_forward(x: torch.Tensor, alpha: float, beta: float, vth: float, bias: torch.Tensor,
                hard: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """``(h, s)`` ``[T, M]`` for contiguous ``x`` ``[T, M]`` and per-neuron ``bias`` ``[N]``
    (neuron ``m % N`` of column ``m``)."""
    _check(x)
    T, M = x.shape
    h = torch.empty_like(x)
    s = torch.empty_like(x)
    if T == 0 or M == 0:
        return h, s
    _lif_fwd_kernel[_grid(M)](x, h, s, bias, _params(alpha, beta, vth, x), T, M, bias.numel(),
                              HARD=hard, BLOCK=BLOCK, num_warps=NUM_WARPS,
                              enable_fp_fusion=False)
    return h, s


def lif_backward(gs: torch.Tensor, sg: torch.Tensor, h: torch.Tensor, s: torch.Tensor,
                 alpha: float, beta: float, vth: float, bias: torch.Tensor, hard: bool,
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
        _lif_bwd_kernel[_grid(M)](gs, sg, h, s, bias, _params(alpha, beta, vth, h), gx, gb, pd,
                                  T, M, bias.numel(), (T - 1) * M, HARD=hard, DETACH=detach,
                                  DECAY=want_decay, PARAMS=want_params or want_decay,
                                  BLOCK=BLOCK, num_warps=NUM_WARPS, enable_fp_fusion=False)
    d_alpha, d_beta, d_vth = pd.sum(dim=1)
    return gx, gb, d_alpha, d_beta, d_vth
