"""Float neuron dynamics as pure functions over explicit state (the training-side model).

The current-based LIF (CUBA) is the one neuron of snn2hw; LIF, IF and SRM are settings
of it. One time step, with per-step factors ``alpha`` (current) and ``beta`` (voltage):

    u[t] = alpha · u[t-1] + x[t]                  # synaptic current
    h[t] = beta  · v[t-1] + u[t] + b              # membrane before spiking
    s[t] = 1[h[t] > vth]                          # strict, as on Loihi
    v[t] = h[t] · (1 - s[t])        (hard reset to 0)
    v[t] = h[t] - vth · s[t]        (subtractive reset)

This is Lava's floating-point LIF with ``alpha = 1 - (du+1)/4096`` and
``beta = 1 - dv/4096`` (snn2hw.common.units), so a trained model maps to Loihi integers by
rounding only. ``alpha = 0`` is a plain LIF (``u = x``); ``beta = 1`` is IF.

Two executions of these equations exist: :func:`lif_step` (autograd through every step;
the readable reference, also used for recurrent layers) and
:func:`snn2hw.nn.fused.lif_multistep` (a fused multi-step kernel with a hand-written
backward pass, tested against the reference).
"""

from __future__ import annotations

from typing import NamedTuple

import torch

from snn2hw.nn.surrogate import DEFAULT_SURROGATE, Surrogate, spike


class LIFState(NamedTuple):
    u: torch.Tensor
    v: torch.Tensor


def lif_step(
    x: torch.Tensor,
    state: LIFState,
    *,
    alpha: torch.Tensor | float,
    beta: torch.Tensor | float,
    vth: torch.Tensor | float,
    bias: torch.Tensor | float = 0.0,
    reset: str = "hard",
    surrogate: Surrogate = DEFAULT_SURROGATE,
    detach_reset: bool = True,
    v_reset: torch.Tensor | float = 0.0,
    strict: bool = True,
) -> tuple[torch.Tensor, LIFState]:
    """Advance one step; returns ``(spikes, new_state)`` (equations in the module doc).

    For imported graphs: ``v_reset`` is the hard-reset value (0 on Loihi) and
    ``strict=False`` spikes on ``h >= vth`` (SpikingJelly's convention)."""
    u = alpha * state.u + x
    h = beta * state.v + u + bias
    vth_f = float(vth.detach().mean()) if isinstance(vth, torch.Tensor) else float(vth)
    leak = 1.0 - (float(beta.detach().mean()) if isinstance(beta, torch.Tensor) else float(beta))
    if strict:
        s = spike(h - vth, surrogate, vth_f, leak)
    else:  # h >= vth  <=>  not (vth - h > 0)
        s = 1.0 - spike(vth - h, surrogate, vth_f, leak)
    s_r = s.detach() if detach_reset else s
    if reset == "hard":
        v = h * (1.0 - s_r) + v_reset * s_r
    else:
        v = h - vth * s_r
    return s, LIFState(u, v)


def lif_multistep_reference(
    x: torch.Tensor,
    *,
    alpha: torch.Tensor | float,
    beta: torch.Tensor | float,
    vth: torch.Tensor | float,
    bias: torch.Tensor | float = 0.0,
    reset: str = "hard",
    surrogate: Surrogate = DEFAULT_SURROGATE,
    detach_reset: bool = True,
) -> torch.Tensor:
    """Run :func:`lif_step` over ``x`` of shape ``[T, B, ...]``; returns spikes ``[T, B, ...]``.

    Readable but slow (autograd graph of T steps); used to test the fused kernel.
    ``unbind`` rather than ``x[t]`` keeps backward linear in T."""
    zeros = torch.zeros_like(x[0])
    state = LIFState(zeros, zeros)
    out = []
    for xt in x.unbind(0):
        s, state = lif_step(
            xt,
            state,
            alpha=alpha,
            beta=beta,
            vth=vth,
            bias=bias,
            reset=reset,
            surrogate=surrogate,
            detach_reset=detach_reset,
        )
        out.append(s)
    return torch.stack(out)
