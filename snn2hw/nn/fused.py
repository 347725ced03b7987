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
run as a loop of elementwise torch ops without building an autograd graph.
"""

from __future__ import annotations

import numba
import numpy as np
import torch

from snn2hw.nn.surrogate import DEFAULT_SURROGATE, Surrogate, surrogate_grad

_CHUNK = 4096


@numba.njit(parallel=True, cache=True, fastmath=False)
def _fwd_kernel(x, alpha, beta, vth, bias, n_per_sample, hard, h_out, s_out):  # pragma: no cover
    T, M = x.shape
    nchunks = (M + _CHUNK - 1) // _CHUNK
    for c in numba.prange(nchunks):
        lo = c * _CHUNK
        hi = min(M, lo + _CHUNK)
        u = np.zeros(hi - lo, dtype=x.dtype)
        v = np.zeros(hi - lo, dtype=x.dtype)
        for t in range(T):
            for k in range(hi - lo):
                i = lo + k
                uk = alpha * u[k] + x[t, i]
                h = beta * v[k] + uk + bias[i % n_per_sample]
                s = 1.0 if h > vth else 0.0
                u[k] = uk
                h_out[t, i] = h
                s_out[t, i] = s
                if hard:
                    v[k] = h * (1.0 - s)
                else:
                    v[k] = h - vth * s


@numba.njit(parallel=True, cache=True, fastmath=False)
def _bwd_kernel(
    gs, sg, h, s, alpha, beta, vth, bias, n_per_sample, hard, detach, gx, gb, partial
):  # pragma: no cover
    T, M = h.shape
    nchunks = (M + _CHUNK - 1) // _CHUNK
    for c in numba.prange(nchunks):
        lo = c * _CHUNK
        hi = min(M, lo + _CHUNK)
        n = hi - lo
        gv_next = np.zeros(n, dtype=h.dtype)
        gu_next = np.zeros(n, dtype=h.dtype)
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
                b = bias[i % n_per_sample]
                if t > 0:
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


def _fwd_torch(x, alpha, beta, vth, bias, hard):
    T = x.shape[0]
    h_out = torch.empty_like(x)
    s_out = torch.empty_like(x)
    u = torch.zeros_like(x[0])
    v = torch.zeros_like(x[0])
    for t in range(T):
        u = alpha * u + x[t]
        h = beta * v + u + bias
        s = (h > vth).to(x.dtype)
        h_out[t] = h
        s_out[t] = s
        v = h * (1 - s) if hard else h - vth * s
    return h_out, s_out


def _bwd_torch(gs, sg, h, s, alpha, beta, vth, bias, hard, detach):
    T = h.shape[0]
    gx = torch.empty_like(h)
    gv_next = torch.zeros_like(h[0])
    gu_next = torch.zeros_like(h[0])
    gb = torch.zeros_like(h[0])
    d_alpha = h.new_zeros(())
    d_beta = h.new_zeros(())
    d_vth = h.new_zeros(())

    def v_of(t):
        return h[t] * (1 - s[t]) if hard else h[t] - vth * s[t]

    for t in range(T - 1, -1, -1):
        if hard:
            dvdh = 1 - s[t]
            dvdth = torch.zeros_like(dvdh)
            if not detach:
                dvdh = dvdh - h[t] * sg[t]
                dvdth = h[t] * sg[t]
        else:
            dvdh = torch.ones_like(h[t])
            dvdth = -s[t]
            if not detach:
                dvdh = dvdh - vth * sg[t]
                dvdth = dvdth + vth * sg[t]
        gh = gs[t] * sg[t] + gv_next * dvdh
        gu = gh + gu_next
        gx[t] = gu
        if t > 0:
            vp = v_of(t - 1)
            up = h[t - 1] - bias - (beta * v_of(t - 2) if t > 1 else 0.0)
            d_alpha = d_alpha + (gu * up).sum()
            d_beta = d_beta + (gh * vp).sum()
        gb = gb + gh
        d_vth = d_vth + (-gs[t] * sg[t] + gv_next * dvdth).sum()
        gv_next = beta * gh
        gu_next = alpha * gu
    return gx, gb, d_alpha, d_beta, d_vth


class _FusedLIF(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, alpha, beta, vth, bias, hard, detach, surrogate, backend):  # type: ignore[override]
        T = x.shape[0]
        n_per_sample = bias.numel()
        x2 = x.detach().reshape(T, -1).contiguous()
        a, b_, th = float(alpha), float(beta), float(vth)
        bias_flat = bias.detach().reshape(-1).contiguous()
        if backend == "numba":
            xn = x2.numpy()
            h = np.empty_like(xn)
            s = np.empty_like(xn)
            # Scalars in the tensor dtype so numba rounds exactly like the torch reference.
            f = xn.dtype.type
            _fwd_kernel(xn, f(a), f(b_), f(th), bias_flat.numpy(), n_per_sample, hard, h, s)
            h_t, s_t = torch.from_numpy(h), torch.from_numpy(s)
        else:
            bias_b = bias_flat.repeat(x2.shape[1] // n_per_sample)
            h_t, s_t = _fwd_torch(x2, a, b_, th, bias_b, hard)
        ctx.save_for_backward(h_t, s_t, bias_flat)
        ctx.params = (a, b_, th, hard, detach, surrogate, backend, tuple(x.shape))
        return s_t.reshape(x.shape)

    @staticmethod
    def backward(ctx, grad_s):  # type: ignore[override]
        h, s, bias_flat = ctx.saved_tensors
        a, b_, th, hard, detach, surrogate, backend, shape = ctx.params
        T = shape[0]
        n = bias_flat.numel()
        gs = grad_s.reshape(T, -1).contiguous().to(h.dtype)
        sg = surrogate_grad(h - th, surrogate, th, 1.0 - b_).contiguous()
        if backend == "numba":
            gx = np.empty_like(h.numpy())
            gb = np.zeros(h.shape[1], dtype=h.numpy().dtype)
            nchunks = (h.shape[1] + _CHUNK - 1) // _CHUNK
            partial = np.zeros((nchunks, 3), dtype=np.float64)
            f = h.numpy().dtype.type
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
                gx,
                gb,
                partial,
            )
            gx_t = torch.from_numpy(gx)
            gb_t = torch.from_numpy(gb)
            d_a, d_b, d_th = (
                torch.tensor(float(v), dtype=torch.float64) for v in partial.sum(axis=0)
            )
        else:
            bias_b = bias_flat.repeat(h.shape[1] // n)
            gx_t, gb_t, d_a, d_b, d_th = _bwd_torch(gs, sg, h, s, a, b_, th, bias_b, hard, detach)
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
        )


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
    (CPU float32/float64), ``"torch"`` (any device) or ``"auto"``."""
    if backend == "auto":
        backend = "numba" if x.device.type == "cpu" else "torch"
    if backend == "numba" and x.device.type != "cpu":
        raise ValueError("the numba LIF backend runs on CPU tensors only; use backend='torch'")
    neuron_shape = x.shape[2:]

    def as_param(p):
        return p if isinstance(p, torch.Tensor) else torch.tensor(float(p), dtype=x.dtype)

    if bias is None:
        bias = torch.zeros(neuron_shape, dtype=x.dtype, device=x.device)
    return _FusedLIF.apply(
        x,
        as_param(alpha).to(x.device),
        as_param(beta).to(x.device),
        as_param(vth).to(x.device),
        bias.expand(neuron_shape).to(x.dtype),
        reset == "hard",
        bool(detach_reset),
        surrogate,
        backend,
    )
