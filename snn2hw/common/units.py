"""Unit conversions between continuous-time, per-step and Loihi integer parameters.

The one place where decay constants change representation (docs/nir.md "Decays"):

* voltage: Loihi ``dv`` (0..4095) <-> per-step factor ``beta = 1 - dv/4096``
* current: Loihi ``du`` (-1..4095) <-> per-step factor ``alpha = 1 - (du + 1)/4096``
  (the ``+ 1`` is Loihi's hidden ``ds_offset``; ``du = 4095`` means no synaptic memory)
* continuous time: ``dv = 4096 · dt/tau`` (forward Euler, as NIR exporters use it)

The float functions return unrounded register values; :func:`du_register` and
:func:`dv_register` round them to the integers a chip stores (used by quantization,
:mod:`snn2hw.quant.formats`). This module imports nothing from snn2hw.
"""

from __future__ import annotations

import math

DECAY_SCALE = 4096  # 12-bit decay denominators
ACT_SHIFT = 6  # Loihi shifts activations and thresholds left by 6 bits
DEFAULT_DT = 1e-3  # seconds per step of snn2hw's own models (stored in their NIR metadata)


def _decay_steps(factor: float) -> float:
    """``4096 · (1 - factor)``: the decay of a per-step factor in 1/4096 units."""
    return DECAY_SCALE * (1.0 - factor)


def beta_from_dv(dv: float) -> float:
    """Per-step voltage decay factor for Loihi ``dv``."""
    return 1.0 - dv / DECAY_SCALE


def dv_from_beta(beta: float) -> float:
    """Loihi ``dv`` (unrounded) giving per-step voltage decay factor ``beta``."""
    return _decay_steps(beta)


def alpha_from_du(du: float) -> float:
    """Per-step current decay factor for Loihi ``du`` (includes the hidden +1)."""
    return 1.0 - (du + 1.0) / DECAY_SCALE


def du_from_alpha(alpha: float) -> float:
    """Loihi ``du`` (unrounded) giving per-step current decay factor ``alpha``."""
    return _decay_steps(alpha) - 1.0


def du_register(alpha: float) -> int:
    """Integer Loihi ``du`` for current decay ``alpha``: ``round(4096(1 - alpha)) - 1``
    (the hidden ``+ 1`` stays outside the rounding, so every register value inverts)."""
    return int(round(_decay_steps(alpha))) - 1


def dv_register(beta: float) -> int:
    """Integer Loihi ``dv`` for voltage decay ``beta``: ``round(4096(1 - beta))``."""
    return int(round(_decay_steps(beta)))


def dv_from_tau(tau: float, dt: float) -> float:
    """Forward-Euler ``dv`` for a membrane time constant ``tau`` at step ``dt`` (same units)."""
    if not (tau > 0 and math.isfinite(tau)):
        return 0.0  # infinite tau: no leak
    return DECAY_SCALE * dt / tau


def du_from_tau(tau: float, dt: float) -> float:
    """Forward-Euler ``du`` for a synaptic time constant ``tau`` (``du + 1 = 4096 dt/tau``)."""
    if not (tau > 0 and math.isfinite(tau)):
        return -1.0  # infinite tau: no current decay
    return DECAY_SCALE * dt / tau - 1.0


def tau_from_beta(beta: float, dt: float) -> float:
    """Continuous-time constant whose Euler step with ``dt`` gives decay ``beta``."""
    return math.inf if beta >= 1.0 else dt / (1.0 - beta)
