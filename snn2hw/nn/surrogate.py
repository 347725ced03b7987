"""Surrogate gradients: the one definition of every spike-function derivative in snn2hw.

Forward is always the strict Heaviside step ``s = (x > 0)`` with ``x = v - threshold``
(Loihi spikes when ``v > vth``). Backward replaces the Dirac delta by ``g(x)``:

============== ==================================================== ======================
name           g(x)                                                 source
============== ==================================================== ======================
rectangular    ``1/a * 1[|x| < a/2]``                               STBP (Wu 2018), h1
polynomial     ``max(0, sqrt(a)/2 - a/4 * |x|)``                    STBP (Wu 2018), h2
sigmoid        ``σ(x/a)(1-σ(x/a))/a`` (derivative of a sigmoid)     STBP (Wu 2018), h3
gaussian       ``exp(-x²/(2a)) / sqrt(2πa)``                        STBP (Wu 2018), h4
arctan         ``a/2 / (1 + (π/2 · a · x)²)``                       SpikingJelly ATan
fast_sigmoid   ``1 / (1 + a|x|)²``                                  SuperSpike / snnTorch
triangle       ``max(0, 1 - |x|/a) / a``                            Esser 2016, Bellec 2018
straight       ``1[|x| < a]`` (straight-through in a window)        Bengio 2013
leaky_linear   ``(1 + leak)/vth · 1[|x| < vth]``                    Lee et al. 2020 (LIF)
============== ==================================================== ======================

``a`` is each surrogate's width/sharpness parameter ``alpha`` (defaults below).
``leaky_linear`` is the leak-aware straight-through derivative of Lee et al. (2020):
``∂a/∂net ≈ (1 + ε)/V_th`` with the leak correction ``ε = 1 - β`` (β the voltage decay),
applied in a window of one threshold around it.

The derivative is evaluated on whole ``[T, ...]`` tensors (:func:`surrogate_grad`), so the
fused multi-step kernels and the step-by-step autograd path share this single definition.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch

from snn2hw.common.errors import ConfigError

GradFn = Callable[[torch.Tensor, float, float, float], torch.Tensor]


def _rectangular(x: torch.Tensor, a: float, vth: float, leak: float) -> torch.Tensor:
    return (x.abs() < a / 2).to(x.dtype) / a


def _polynomial(x: torch.Tensor, a: float, vth: float, leak: float) -> torch.Tensor:
    return torch.clamp(math.sqrt(a) / 2 - a / 4 * x.abs(), min=0.0)


def _sigmoid(x: torch.Tensor, a: float, vth: float, leak: float) -> torch.Tensor:
    sg = torch.sigmoid(x / a)
    return sg * (1 - sg) / a


def _gaussian(x: torch.Tensor, a: float, vth: float, leak: float) -> torch.Tensor:
    return torch.exp(-(x * x) / (2 * a)) / math.sqrt(2 * math.pi * a)


def _arctan(x: torch.Tensor, a: float, vth: float, leak: float) -> torch.Tensor:
    return (a / 2) / (1 + (math.pi / 2 * a * x) ** 2)


def _fast_sigmoid(x: torch.Tensor, a: float, vth: float, leak: float) -> torch.Tensor:
    return 1.0 / (1.0 + a * x.abs()) ** 2


def _triangle(x: torch.Tensor, a: float, vth: float, leak: float) -> torch.Tensor:
    return torch.clamp(1 - x.abs() / a, min=0.0) / a


def _straight(x: torch.Tensor, a: float, vth: float, leak: float) -> torch.Tensor:
    return (x.abs() < a).to(x.dtype)


def _leaky_linear(x: torch.Tensor, a: float, vth: float, leak: float) -> torch.Tensor:
    width = max(vth, 1e-6)
    return (x.abs() < width).to(x.dtype) * ((1.0 + leak) / width)


@dataclass(frozen=True)
class SurrogateKind:
    """A named surrogate with its default ``alpha`` and derivative."""

    name: str
    default_alpha: float
    grad: GradFn


SURROGATES: dict[str, SurrogateKind] = {
    s.name: s
    for s in (
        SurrogateKind("rectangular", 1.0, _rectangular),
        SurrogateKind("polynomial", 1.0, _polynomial),
        SurrogateKind("sigmoid", 0.25, _sigmoid),
        SurrogateKind("gaussian", 0.25, _gaussian),
        SurrogateKind("arctan", 2.0, _arctan),
        SurrogateKind("fast_sigmoid", 10.0, _fast_sigmoid),
        SurrogateKind("triangle", 1.0, _triangle),
        SurrogateKind("straight", 0.5, _straight),
        SurrogateKind("leaky_linear", 1.0, _leaky_linear),
    )
}


@dataclass(frozen=True)
class Surrogate:
    """A surrogate choice: ``name`` from :data:`SURROGATES` and its ``alpha``."""

    name: str = "arctan"
    alpha: float | None = None

    def __post_init__(self) -> None:
        if self.name not in SURROGATES:
            raise ConfigError(
                f"unknown surrogate '{self.name}'; known: {', '.join(sorted(SURROGATES))}"
            )
        if self.alpha is not None and not (math.isfinite(self.alpha) and self.alpha > 0):
            raise ConfigError(f"surrogate alpha must be a positive number, got {self.alpha}")

    @property
    def a(self) -> float:
        return float(self.alpha if self.alpha is not None else SURROGATES[self.name].default_alpha)


DEFAULT_SURROGATE = Surrogate()


def surrogate_grad(
    x: torch.Tensor, surrogate: Surrogate, vth: float = 1.0, leak: float = 0.0
) -> torch.Tensor:
    """``g(x)``: the surrogate derivative of the spike function at ``x = v - vth``."""
    return SURROGATES[surrogate.name].grad(x, surrogate.a, float(vth), float(leak))


class _SpikeFn(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, surrogate, vth, leak):  # type: ignore[override]
        ctx.save_for_backward(x)
        ctx.surrogate, ctx.vth, ctx.leak = surrogate, vth, leak
        return (x > 0).to(x.dtype)

    @staticmethod
    def backward(ctx, grad_out):  # type: ignore[override]
        (x,) = ctx.saved_tensors
        return grad_out * surrogate_grad(x, ctx.surrogate, ctx.vth, ctx.leak), None, None, None


def spike(
    x: torch.Tensor, surrogate: Surrogate, vth: float = 1.0, leak: float = 0.0
) -> torch.Tensor:
    """Strict Heaviside ``x > 0`` forward, surrogate derivative backward."""
    return _SpikeFn.apply(x, surrogate, float(vth), float(leak))
