"""Fused multi-step CUBA LIF: one autograd node for all T steps.

Same equations as :mod:`snn2hw.nn.functional` (read them there). The forward pass keeps
only the pre-spike membrane ``h[t]`` and the spikes; the backward pass runs the BPTT
recurrence by hand, in reverse time, from them:

    gh[t] = gs[t]·g(h[t]-vth) + gv[t]·∂v[t]/∂h[t]      # g: surrogate derivative
    gu[t] = gh[t] + alpha·gu[t+1]                      # = dL/dx[t]
    gv[t-1] = beta·gh[t]
    dL/dalpha = Σ gu[t]·u[t-1],  dL/dbeta = Σ gh[t]·v[t-1],  dL/db = Σ gh[t],
    dL/dvth = Σ -gs[t]·g(h[t]-vth) + gv[t]·∂v[t]/∂vth

``u[t-1]`` and ``v[t-1]`` are recomputed from ``h`` and ``s`` (``v = h(1-s)`` or
``h - vth·s``; ``u = h - beta·v[t-1] - b``), so memory is two ``[T, B, N]`` tensors. The
surrogate derivative is evaluated on the whole ``h`` tensor with the single definition
in :mod:`snn2hw.nn.surrogate` before the recurrence runs.

Backends: on CPU the recurrences run in numba kernels (parallel over neurons, sequential
in time; cache-friendly time-outer loops); on other devices (CUDA) the same recurrences
run as a loop of elementwise torch ops without building an autograd graph, each step
fused into one kernel by ``torch.compile`` when available (backend ``"compiled"``). On CUDA
with Triton installed the default is ``"triton"`` (:mod:`snn2hw.nn.fused_triton`): one
kernel per pass with the time loop inside, imported only when that backend runs.
"""

from __future__ import annotations

import importlib.util

import numba
import numpy as np
import torch

from snn2hw.common.errors import ConfigError, MissingDependencyError
from snn2hw.nn.surrogate import DEFAULT_SURROGATE, Surrogate, surrogate_grad

_CHUNK = 4096
BACKENDS = ("numba", "torch", "compiled", "triton")


@numba.njit(parallel=True, cache=True, fastmath=False)
def _fwd_kernel(x, alpha, beta, vth, bias, n_per_sample, hard, h_out, s_out):  # pragma: no cover
    T, M = x.shape
    nchunks = (M + _CHUNK - 1) // _CHUNK
    for c in numba.prange(nchunks):
        lo = c * _CHUNK
        hi = min(M, lo + _CHUNK)
        n = hi - lo
        u = np.zeros(n, dtype=x.dtype)
        v = np.zeros(n, dtype=x.dtype)
        b = np.empty(n, dtype=x.dtype)
        for k in range(n):
            b[k] = bias[(lo + k) % n_per_sample]
        for t in range(T):
            xt = x[t, lo:hi]
            ht = h_out[t, lo:hi]
            st = s_out[t, lo:hi]
            if hard:
                for k in range(n):
                    uk = alpha * u[k] + xt[k]
                    h = beta * v[k] + uk + b[k]
                    s = 1.0 if h > vth else 0.0
                    u[k] = uk
                    ht[k] = h
                    st[k] = s
                    v[k] = h * (1.0 - s)
            else:
                for k in range(n):
                    uk = alpha * u[k] + xt[k]
                    h = beta * v[k] + uk + b[k]
                    s = 1.0 if h > vth else 0.0
                    u[k] = uk
                    ht[k] = h
                    st[k] = s
                    v[k] = h - vth * s


@numba.njit(parallel=True, cache=True, fastmath=False)
def _bwd_kernel(
    gs, sg, h, s, alpha, beta, vth, bias, n_per_sample, hard, detach, want_decay, gx, gb,
    partial
):  # pragma: no cover
    T, M = h.shape
    nchunks = (M + _CHUNK - 1) // _CHUNK
    for c in numba.prange(nchunks):
        lo = c * _CHUNK
        hi = min(M, lo + _CHUNK)
        n = hi - lo
        gv_next = np.zeros(n, dtype=h.dtype)
        gu_next = np.zeros(n, dtype=h.dtype)
        bb = np.empty(n, dtype=h.dtype)
        for k in range(n):
            bb[k] = bias[(lo + k) % n_per_sample]
        d_alpha = 0.0
        d_beta = 0.0
        d_vth = 0.0
        for t in range(T - 1, -1, -1):
            for k in range(n):
                i = lo + k
                st = s[t, i]
                ht = h[t, i]
                g = sg[t, i]
                if hard:
                    dvdh = 1.0 - st
                    dvdth = 0.0
                    if not detach:
                        dvdh -= ht * g
                        dvdth = ht * g
                else:
                    dvdh = 1.0
                    dvdth = -st
                    if not detach:
                        dvdh -= vth * g
                        dvdth += vth * g
                gh = gs[t, i] * g + gv_next[k] * dvdh
                gu = gh + gu_next[k]
                gx[t, i] = gu
                b = bb[k]
                if want_decay and t > 0:  # reads two earlier steps: only when learnt
                    hp = h[t - 1, i]
                    sp = s[t - 1, i]
                    vp = hp * (1.0 - sp) if hard else hp - vth * sp
                    up = hp - b
                    if t > 1:
                        hpp = h[t - 2, i]
                        spp = s[t - 2, i]
                        vpp = hpp * (1.0 - spp) if hard else hpp - vth * spp
                        up -= beta * vpp
                    d_alpha += gu * up
                    d_beta += gh * vp
                gb[i] += gh
                d_vth += -gs[t, i] * g + gv_next[k] * dvdth
                gv_next[k] = beta * gh
                gu_next[k] = alpha * gu
        partial[c, 0] = d_alpha
        partial[c, 1] = d_beta
        partial[c, 2] = d_vth


@numba.njit(parallel=True, cache=True, fastmath=False)
def _bwd_input_kernel(gs, sg, s, alpha, beta, hard, gx):  # pragma: no cover
    """:func:`_bwd_kernel` for the common training case: a detached reset and no neuron
    parameter to learn, so only ``gx`` is wanted. The same recurrence and the same float
    operations in the same order (bit-identical ``gx``), without the per-element branches
    and parameter reductions: the inner loop vectorizes (5x faster, ``[25, 32768]``)."""
    T, M = s.shape
    hard_f = 1.0 if hard else 0.0  # dv/dh = 1 - s (hard) or 1 (subtract): exact either way
    nchunks = (M + _CHUNK - 1) // _CHUNK
    for c in numba.prange(nchunks):
        lo = c * _CHUNK
        hi = min(M, lo + _CHUNK)
        n = hi - lo
        gv_next = np.zeros(n, dtype=s.dtype)
        gu_next = np.zeros(n, dtype=s.dtype)
        for t in range(T - 1, -1, -1):
            gst = gs[t, lo:hi]
            sgt = sg[t, lo:hi]
            st = s[t, lo:hi]
            gxt = gx[t, lo:hi]
            for k in range(n):
                gh = gst[k] * sgt[k] + gv_next[k] * (1.0 - hard_f * st[k])
                gu = gh + gu_next[k]
                gxt[k] = gu
                gv_next[k] = beta * gh
                gu_next[k] = alpha * gu


def _fwd_step(u, v, x, alpha: float, beta: float, vth: float, bias, hard: bool):
    u = alpha * u + x
    h = beta * v + u + bias
    s = (h > vth).to(x.dtype)
    v = h * (1 - s) if hard else h - vth * s
    return u, v, h, s


def _bwd_step(gs_sg, dvdh, gv_next, gu_next, alpha: float, beta: float):
    gh = gs_sg + gv_next * dvdh
    gu = gh + gu_next
    return gh, gu, beta * gh, alpha * gu


_COMPILED: dict[str, object] = {}


def _steps(compiled: bool):
    """The per-step update functions; with ``compiled`` each step's elementwise ops are
    fused into one kernel by ``torch.compile`` (the GPU path: one launch per step)."""
    if not compiled:
        return _fwd_step, _bwd_step
    if "fwd" not in _COMPILED:
        _COMPILED["fwd"] = torch.compile(_fwd_step, dynamic=False)
        _COMPILED["bwd"] = torch.compile(_bwd_step, dynamic=False)
    return _COMPILED["fwd"], _COMPILED["bwd"]


def _fwd_torch(x, alpha, beta, vth, bias, hard, compiled=False):
    fwd, _ = _steps(compiled)
    h_out = torch.empty_like(x)
    s_out = torch.empty_like(x)
    u = torch.zeros_like(x[0])
    v = torch.zeros_like(x[0])
    for t in range(x.shape[0]):
        u, v, h_out[t], s_out[t] = fwd(u, v, x[t], alpha, beta, vth, bias, hard)
    return h_out, s_out


def _bwd_torch(gs, sg, h, s, alpha, beta, vth, bias, hard, detach, compiled=False):
    """Everything that does not depend on the recurrence is computed on whole [T, M]
    tensors; only ``gh``/``gu`` run step by step (see the module doc for the equations)."""
    _, bwd = _steps(compiled)
    v_all = h * (1 - s) if hard else h - vth * s
    v_prev = torch.cat([torch.zeros_like(v_all[:1]), v_all[:-1]])
    u_all = h - bias - beta * v_prev
    u_prev = torch.cat([torch.zeros_like(u_all[:1]), u_all[:-1]])
    if hard:
        dvdh = 1 - s
        dvdth = torch.zeros_like(s)
        if not detach:
            dvdh = dvdh - h * sg
            dvdth = h * sg
    else:
        dvdh = torch.ones_like(s)
        dvdth = -s
        if not detach:
            dvdh = dvdh - vth * sg
            dvdth = dvdth + vth * sg
    gs_sg = gs * sg
    gh_all = torch.empty_like(h)
    gx = torch.empty_like(h)
    gv_in = torch.empty_like(h)  # gradient arriving at v[t] from step t+1
    gv_next = torch.zeros_like(h[0])
    gu_next = torch.zeros_like(h[0])
    for t in range(h.shape[0] - 1, -1, -1):
        gv_in[t] = gv_next
        gh_all[t], gx[t], gv_next, gu_next = bwd(gs_sg[t], dvdh[t], gv_next, gu_next,
                                                 alpha, beta)
    d_alpha = (gx * u_prev).sum()
    d_beta = (gh_all * v_prev).sum()
    d_vth = (-gs_sg + gv_in * dvdth).sum()
    return gx, gh_all.sum(0), d_alpha, d_beta, d_vth


def _triton():
    """:mod:`snn2hw.nn.fused_triton`, imported on first use: snn2hw imports without Triton."""
    try:
        from snn2hw.nn import fused_triton
    except ImportError as e:
        raise MissingDependencyError(
            f"the triton LIF backend needs Triton ({e}); install it with `pip install triton` "
            "or use backend='torch'") from None
    return fused_triton


class _FusedLIF(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, alpha, beta, vth, bias, hard, detach, surrogate, backend, host):  # type: ignore[override]
        T = x.shape[0]
        n_per_sample = bias.numel()
        x2 = x.detach().reshape(T, -1).contiguous()
        # ``host``: the parameters given as numbers, already known here; reading a GPU
        # tensor's value would wait for all queued GPU work.
        a, b_, th = (float(t) if v is None else v for v, t in zip(host, (alpha, beta, vth),
                                                                   strict=True))
        bias_flat = bias.detach().reshape(-1).contiguous()
        par = None
        if backend == "numba":
            xn = x2.numpy()
            h = np.empty_like(xn)
            s = np.empty_like(xn)
            # Scalars in the tensor dtype so numba rounds exactly like the torch reference.
            f = xn.dtype.type
            _fwd_kernel(xn, f(a), f(b_), f(th), bias_flat.numpy(), n_per_sample, hard, h, s)
            h_t, s_t = torch.from_numpy(h), torch.from_numpy(s)
        elif backend == "triton":
            # The scalars stay on the device, in the data dtype (rounded like numba's f(a)).
            par = torch.cat([p.detach().reshape(1).to(x.dtype) for p in (alpha, beta, vth)])
            h_t, s_t = _triton().lif_forward(x2, par, bias_flat, hard)
        else:
            bias_b = bias_flat.repeat(x2.shape[1] // n_per_sample)
            h_t, s_t = _fwd_torch(x2, a, b_, th, bias_b, hard, backend == "compiled")
        ctx.save_for_backward(h_t, s_t, bias_flat, par)
        ctx.params = (a, b_, th, hard, detach, surrogate, backend, tuple(x.shape))
        return s_t.reshape(x.shape)

    @staticmethod
    def backward(ctx, grad_s):  # type: ignore[override]
        h, s, bias_flat, par = ctx.saved_tensors
        a, b_, th, hard, detach, surrogate, backend, shape = ctx.params
        T = shape[0]
        n = bias_flat.numel()
        gs = grad_s.reshape(T, -1).contiguous().to(h.dtype)
        sg = torch.empty_like(h)
        # Evaluated in time blocks of ~256K elements on CPU: the temporaries of the
        # surrogate's elementwise chain stay small (no fresh page-faulted [T, M] buffer per
        # op). A GPU wants fewer, larger blocks (each op is a launch). (Fusing this chain
        # with torch.compile took it from 0.68 to 0.07 ms on an H200 for [500, 65536], but
        # needs one compiled graph per surrogate kind and dtype; not worth the machinery.)
        per_block = 1 << 18 if h.device.type == "cpu" else 1 << 22
        blk = max(1, per_block // max(1, h.shape[1]))
        for t0 in range(0, T, blk):
            sg[t0:t0 + blk] = surrogate_grad(h[t0:t0 + blk] - th, surrogate, th, 1.0 - b_)
        if backend == "numba":
            gx = np.empty_like(h.numpy())
            gb = np.zeros(h.shape[1], dtype=h.numpy().dtype)
            nchunks = (h.shape[1] + _CHUNK - 1) // _CHUNK
            partial = np.zeros((nchunks, 3), dtype=np.float64)
            f = h.numpy().dtype.type
        if backend == "numba" and detach and not any(ctx.needs_input_grad[1:5]):
            _bwd_input_kernel(gs.numpy(), sg.numpy(), s.numpy(), f(a), f(b_), hard, gx)
            gx_t = torch.from_numpy(gx)
            gb_t = torch.from_numpy(gb)
            d_a = d_b = d_th = torch.zeros((), dtype=torch.float64)
        elif backend == "numba":
            _bwd_kernel(
                gs.numpy(),
                sg.numpy(),
                h.numpy(),
                s.numpy(),
                f(a),
                f(b_),
                f(th),
                bias_flat.numpy(),
                n,
                hard,
                detach,
                bool(ctx.needs_input_grad[1] or ctx.needs_input_grad[2]),
                gx,
                gb,
                partial,
            )
            gx_t = torch.from_numpy(gx)
            gb_t = torch.from_numpy(gb)
            d_a, d_b, d_th = (
                torch.tensor(float(v), dtype=torch.float64) for v in partial.sum(axis=0)
            )
        elif backend == "triton":
            gx_t, gb_t, d_a, d_b, d_th = _triton().lif_backward(
                gs, sg, h, s, par, bias_flat, hard, detach,
                want_decay=bool(ctx.needs_input_grad[1] or ctx.needs_input_grad[2]),
                want_params=bool(ctx.needs_input_grad[3] or ctx.needs_input_grad[4]),
            )
        else:
            bias_b = bias_flat.repeat(h.shape[1] // n)
            gx_t, gb_t, d_a, d_b, d_th = _bwd_torch(
                gs, sg, h, s, a, b_, th, bias_b, hard, detach, backend == "compiled"
            )
        g_bias = gb_t.reshape(-1, n).sum(0).reshape(shape[2:])
        return (
            gx_t.reshape(shape).to(grad_s.dtype),
            d_a.to(grad_s.dtype),
            d_b.to(grad_s.dtype),
            d_th.to(grad_s.dtype),
            g_bias.to(grad_s.dtype),
            None,
            None,
            None,
            None,
            None,
        )


TRITON_DTYPES = (torch.float32, torch.float64)
"""The dtypes the Triton kernels (``nn/fused_triton.py``) run."""


def default_backend(device: torch.device | str, dtype: torch.dtype = torch.float32) -> str:
    """The backend ``backend="auto"`` picks for ``dtype`` data on ``device``: numba on CPU;
    on CUDA the Triton kernels (time loop inside one kernel) when Triton is installed and
    the dtype is one they run; else the per-step ops fused by ``torch.compile`` when Triton
    exists (half precision, other devices), else plain torch."""
    dev = torch.device(device).type
    if dev == "cpu":
        return "numba"
    if not importlib.util.find_spec("triton"):
        return "torch"
    return "triton" if dev == "cuda" and dtype in TRITON_DTYPES else "compiled"


def lif_multistep(
    x: torch.Tensor,
    *,
    alpha: torch.Tensor | float,
    beta: torch.Tensor | float,
    vth: torch.Tensor | float,
    bias: torch.Tensor | None = None,
    reset: str = "hard",
    surrogate: Surrogate = DEFAULT_SURROGATE,
    detach_reset: bool = True,
    backend: str = "auto",
) -> torch.Tensor:
    """Fused CUBA LIF over ``x`` ``[T, B, *neuron_shape]``; returns spikes of the same shape.

    ``alpha``, ``beta``, ``vth`` are scalars (floats or 0-d tensors, learnable);
    ``bias`` is per neuron (``neuron_shape``) or ``None``. ``backend``: ``"numba"``
    (CPU float32/float64), ``"torch"`` (any device, a loop of elementwise ops),
    ``"compiled"`` (the same loop with each step fused by ``torch.compile``),
    ``"triton"`` (CUDA float32/float64: one Triton kernel per pass, the time loop inside;
    the default on CUDA when Triton is installed) or ``"auto"``."""
    if backend == "auto":
        backend = default_backend(x.device, x.dtype)
    if backend == "numba" and x.device.type != "cpu":
        raise ValueError("the numba LIF backend runs on CPU tensors only; use backend='torch'")
    if backend not in BACKENDS:
        raise ConfigError(f"unknown LIF backend '{backend}'; known: {', '.join(BACKENDS)}, auto")
    neuron_shape = x.shape[2:]

    def as_param(p):
        # A number becomes a fill on the device, not a copy from the host (which waits for
        # the queued GPU work); its value rounded to the data dtype is known here too.
        if isinstance(p, torch.Tensor):
            return p.to(x.device), None
        return (torch.full((), float(p), dtype=x.dtype, device=x.device),
                float(torch.tensor(float(p), dtype=x.dtype)))

    params = [as_param(p) for p in (alpha, beta, vth)]
    if bias is None:
        bias = torch.zeros(neuron_shape, dtype=x.dtype, device=x.device)
    return _FusedLIF.apply(
        x,
        *(t for t, _ in params),
        bias.expand(neuron_shape).to(x.dtype),
        reset == "hard",
        bool(detach_reset),
        surrogate,
        backend,
        tuple(v for _, v in params),
    )
