"""Input encoders: static samples ``[B, *shape]`` (values in [0, 1]) to ``[T, B, *shape]``.

* ``direct``  — the analog value is injected as a current every step (on chip: a graded
  spike payload).
* ``poisson`` — rate coding: a spike with probability ``gain · x`` each step (Bernoulli).
* ``latency`` — time-to-first-spike: one spike at step ``round((1 - x)(T - 1))`` for
  ``x > threshold``, earlier for brighter inputs.
* ``events``  — data that already has time (``[B, T, *shape]``) is made time-major.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from snn2hw.common.errors import ConfigError

ENCODERS = ("direct", "poisson", "latency", "events")
# Seed of stochastic encoders when export/QAT/simulate regenerate a graph's samples, so the
# same frames come back every time.
SAMPLE_ENCODER_SEED = 20240


@dataclass(frozen=True)
class Encoder:
    kind: str = "direct"
    gain: float = 1.0
    threshold: float = 0.05

    def __post_init__(self) -> None:
        if self.kind not in ENCODERS:
            raise ConfigError(f"unknown encoder '{self.kind}'; known: {', '.join(ENCODERS)}")

    @property
    def spiking(self) -> bool:
        """Whether the encoder emits binary spikes (else analog/graded values)."""
        return self.kind in ("poisson", "latency")

    def __call__(
        self, x: torch.Tensor, num_steps: int, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        if self.kind == "events":
            return x.transpose(0, 1).contiguous()
        x = x.clamp(0.0, 1.0)
        if self.kind == "direct":
            return (self.gain * x).unsqueeze(0).expand(num_steps, *x.shape).contiguous()
        if self.kind == "poisson":
            p = (self.gain * x).clamp(0.0, 1.0).unsqueeze(0).expand(num_steps, *x.shape)
            rnd = torch.rand(p.shape, generator=generator, device="cpu").to(x.device)
            return (rnd < p).to(x.dtype)
        # latency
        t_spike = torch.round((1.0 - x) * (num_steps - 1)).long()
        steps = torch.arange(num_steps, device=x.device).view(-1, *([1] * x.dim()))
        return ((steps == t_spike.unsqueeze(0)) & (x > self.threshold).unsqueeze(0)).to(x.dtype)
