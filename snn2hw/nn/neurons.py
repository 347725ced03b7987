"""Spiking neuron modules over time-major ``[T, B, ...]`` currents.

All are the CUBA LIF of :mod:`snn2hw.nn.functional` with different parameterizations:

* :class:`LIF`  — no synaptic memory (``alpha = 0``, Loihi ``du = 4095``), voltage decay beta.
* :class:`CubaLIF` — synaptic current decay alpha and voltage decay beta.
* :class:`IF`   — no leak (``beta = 1``, ``dv = 0``).
* :class:`SRM`  — the spike response model of BP-SRM (Wang et al. 2023) in iterative form:
  a synaptic kernel ``exp(-t/tau_syn)`` and a membrane kernel ``exp(-t/tau_mem)``
  convolved with the input spikes is exactly a current with decay
  ``alpha = exp(-1/tau_syn)`` feeding a membrane with decay ``beta = exp(-1/tau_mem)``;
  the refractory kernel ``-vth·exp(-t/tau_mem)`` is the subtractive reset, and the
  deployable variant (Loihi has only reset-to-zero) uses the hard reset. Exported to NIR
  as the CubaLIF it equals.

Decays are stored as per-step factors and mapped to the chip's integers by
:mod:`snn2hw.common.units` (``dv = 4096(1 - beta)``, ``du = 4096(1 - alpha) - 1``), so a trained
model deploys by rounding only. With ``quantize_dynamics=True`` (QAT) the factors are
rounded to that 1/4096 grid in the forward pass with a straight-through gradient.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from snn2hw.common.errors import ConfigError
from snn2hw.common.units import DECAY_SCALE
from snn2hw.nn.functional import lif_multistep_reference
from snn2hw.nn.fused import lif_multistep
from snn2hw.nn.surrogate import Surrogate

RESETS = ("hard", "subtract")


def _round_ste(x: torch.Tensor) -> torch.Tensor:
    return x + (torch.round(x) - x).detach()


class CubaLIF(nn.Module):
    """Current-based LIF. ``alpha``: current decay per step (0 = no synaptic memory),
    ``beta``: voltage decay per step, ``threshold``, ``reset`` ('hard' | 'subtract')."""

    kind = "cuba"

    def __init__(
        self,
        alpha: float = 0.0,
        beta: float = 0.9,
        threshold: float = 1.0,
        reset: str = "hard",
        surrogate: Surrogate | None = None,
        learn_threshold: bool = False,
        learn_decay: bool = False,
        detach_reset: bool = True,
        fused: bool = True,
    ) -> None:
        super().__init__()
        for name, val, lo, hi in (("alpha", alpha, 0.0, 1.0), ("beta", beta, 0.0, 1.0)):
            if not (math.isfinite(val) and lo <= val <= hi):
                raise ConfigError(f"neuron {name}={val} outside [{lo}, {hi}]")
        if not (math.isfinite(threshold) and threshold > 0):
            raise ConfigError(f"neuron threshold must be > 0, got {threshold}")
        if reset not in RESETS:
            raise ConfigError(f"neuron reset '{reset}' unknown; use one of {RESETS}")
        self.reset = reset
        self.surrogate = surrogate or Surrogate()
        self.detach_reset = detach_reset
        self.fused = fused
        self.quantize_dynamics = False
        # steps between the layer feeding this neuron and its input: 1 under hop-delay
        # training (the chip's one-step hop, snn2hw.nn.model), 0 for the plain float model
        self.input_delay = 0
        self.learn_decay = learn_decay
        self.alpha = nn.Parameter(torch.tensor(float(alpha)), requires_grad=learn_decay)
        self.beta = nn.Parameter(torch.tensor(float(beta)), requires_grad=learn_decay)
        self.threshold = nn.Parameter(torch.tensor(float(threshold)), requires_grad=learn_threshold)

    def factors(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The per-step (alpha, beta) used in forward: clamped to [0, 1] and, under QAT,
        rounded to the chip's 1/4096 grid."""
        alpha = self.alpha.clamp(0.0, 1.0)
        beta = self.beta.clamp(0.0, 1.0)
        if self.quantize_dynamics:
            # alpha = 1 - (du + 1)/4096 with integer du; beta = 1 - dv/4096 with integer dv.
            alpha = 1.0 - _round_ste((1.0 - alpha) * DECAY_SCALE) / DECAY_SCALE
            beta = 1.0 - _round_ste((1.0 - beta) * DECAY_SCALE) / DECAY_SCALE
        return alpha, beta

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.input_delay:
            x = delay_steps(x, self.input_delay)
        alpha, beta = self.factors()
        kwargs = dict(
            alpha=alpha,
            beta=beta,
            vth=self.threshold.clamp_min(1e-3),
            reset=self.reset,
            surrogate=self.surrogate,
            detach_reset=self.detach_reset,
        )
        if self.fused:
            return lif_multistep(x, **kwargs)
        return lif_multistep_reference(x, **kwargs)

    def describe(self) -> dict:
        """Plain-data description (for checkpoints, NIR export and reports)."""
        alpha, beta = (float(f.detach()) for f in self.factors())
        return {
            "kind": self.kind,
            "alpha": alpha,
            "beta": beta,
            "threshold": float(self.threshold.detach()),
            "reset": self.reset,
        }

    def extra_repr(self) -> str:
        d = self.describe()
        return (
            f"alpha={d['alpha']:.4f}, beta={d['beta']:.4f}, vth={d['threshold']:.3f}, "
            f"reset={d['reset']}"
        )


def delay_steps(x: torch.Tensor, d: int) -> torch.Tensor:
    """``x`` ``[T, B, ...]`` delayed by ``d`` steps: ``y[t] = x[t - d]``, zeros before."""
    if d <= 0:
        return x
    if d >= x.shape[0]:
        return torch.zeros_like(x)
    return torch.cat([torch.zeros_like(x[:d]), x[:-d]])


class LIF(CubaLIF):
    """Leaky integrate-and-fire without synaptic memory (``alpha = 0``)."""

    kind = "lif"

    def __init__(self, beta: float = 0.9, **kw) -> None:
        kw.pop("alpha", None)
        super().__init__(alpha=0.0, beta=beta, **kw)
        self.alpha.requires_grad_(False)


class IF(CubaLIF):
    """Integrate-and-fire: no leak (``beta = 1``) and no synaptic memory."""

    kind = "if"

    def __init__(self, **kw) -> None:
        kw.pop("alpha", None)
        kw.pop("beta", None)
        kw["learn_decay"] = False
        super().__init__(alpha=0.0, beta=1.0, **kw)


class SRM(CubaLIF):
    """Spike response model (BP-SRM) with synaptic/membrane kernel time constants in steps."""

    kind = "srm"

    def __init__(self, tau_syn: float = 2.0, tau_mem: float = 8.0, **kw) -> None:
        for name, tau in (("tau_syn", tau_syn), ("tau_mem", tau_mem)):
            if not (math.isfinite(tau) and tau > 0):
                raise ConfigError(f"SRM {name} must be > 0 steps, got {tau}")
        kw.pop("alpha", None)
        kw.pop("beta", None)
        super().__init__(alpha=math.exp(-1.0 / tau_syn), beta=math.exp(-1.0 / tau_mem), **kw)


NEURONS: dict[str, type[CubaLIF]] = {"lif": LIF, "cuba": CubaLIF, "if": IF, "srm": SRM}
