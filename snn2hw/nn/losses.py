"""Losses on output spike trains ``[T, B, C]``.

* ``rate_ce``  — cross-entropy on spike counts (rate coding, STBP/snnTorch style).
* ``rate_mse`` — mean squared error between firing rate and a target rate for the true
  class (STBP's rate-coded MSE; others target 0).
* ``van_rossum`` — spike-sequence labels: the true class's neuron should fire a target
  spike train (one spike every ``period`` steps), the others stay silent; the distance is
  van Rossum's: both trains filtered by ``exp(-t/tau)`` and compared by squared error
  (Spike-sequence-label STBP, 2024).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from snn2hw.common.errors import ConfigError

LOSSES = ("rate_ce", "rate_mse", "van_rossum")


def exp_filter(s: torch.Tensor, tau: float) -> torch.Tensor:
    """Causal exponential filter along time: ``y[t] = exp(-1/tau) y[t-1] + s[t]``.

    Implemented as a matmul with a ``[T, T]`` lower-triangular decay matrix (no per-step
    indexing into grad-requiring tensors)."""
    t = s.shape[0]
    idx = torch.arange(t, device=s.device)
    lag = (idx.view(-1, 1) - idx.view(1, -1)).to(s.dtype)
    kernel = torch.where(lag >= 0, torch.exp(-lag / tau), torch.zeros_like(lag))
    return torch.einsum("ts,s...->t...", kernel, s)


def target_spike_trains(
    labels: torch.Tensor, num_classes: int, num_steps: int, period: int, offset: int = 0
) -> torch.Tensor:
    """Targets ``[T, B, C]``: the true class fires every ``period`` steps from ``offset``."""
    train = torch.zeros(num_steps, dtype=torch.float32, device=labels.device)
    train[offset::period] = 1.0
    onehot = F.one_hot(labels, num_classes).float()
    return train.view(-1, 1, 1) * onehot.unsqueeze(0)


def spike_loss(
    kind: str,
    out: torch.Tensor,
    labels: torch.Tensor,
    *,
    target_rate: float = 0.5,
    period: int = 4,
    tau: float = 4.0,
    offset: int = 0,
) -> torch.Tensor:
    """Loss ``kind`` for output spikes ``out`` ``[T, B, C]`` and integer ``labels``."""
    t, _, c = out.shape
    if kind == "rate_ce":
        return F.cross_entropy(out.sum(0), labels)
    if kind == "rate_mse":
        target = F.one_hot(labels, c).float() * target_rate
        return F.mse_loss(out.mean(0), target)
    if kind == "van_rossum":
        target = target_spike_trains(labels, c, t, period, offset)
        diff = exp_filter(out - target, tau)
        return (diff * diff).sum(0).mean() / math.sqrt(t)
    raise ConfigError(f"unknown loss '{kind}'; known: {', '.join(LOSSES)}")
