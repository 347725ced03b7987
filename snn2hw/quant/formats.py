"""Loihi number formats: the one place where float parameters become chip integers.

Used by post-training quantization (:mod:`snn2hw.quant.ptq`) and by quantization-aware
fine-tuning (:mod:`snn2hw.training.qat`), so both round alike (docs/nir.md, docs/qgraph.md).
The decay formulas themselves are defined once, in :mod:`snn2hw.common.units`; the
register ranges in :mod:`snn2hw.quant.nodes`.

Dependencies: numpy, :mod:`snn2hw.common`, :mod:`snn2hw.quant.nodes`.
"""

from __future__ import annotations

import math

import numpy as np

from snn2hw.common.units import ACT_SHIFT, du_register, dv_register
from snn2hw.quant.nodes import (
    BIAS_EXP_MAX,
    BIAS_MANT_MAX,
    DECAY_MAX,
    WEIGHT_EXP_MAX,
    WEIGHT_EXP_MIN,
)

# Largest weight magnitude a quantizer emits: mixed-sign matrices lose their lowest bit
# in Lava's Dense (docs/qgraph.md), so they are emitted as even integers in [-254, 254].
WEIGHT_MAX_SINGLE_SIGN = 255
WEIGHT_MAX_MIXED = 254


def is_mixed(w: np.ndarray) -> bool:
    """Whether a float matrix has both signs (after rounding it would be MIXED)."""
    return bool(np.any(w > 0) and np.any(w < 0))


def weight_limit(w: np.ndarray) -> int:
    return WEIGHT_MAX_MIXED if is_mixed(w) else WEIGHT_MAX_SINGLE_SIGN


def round_weights(w_scaled: np.ndarray) -> np.ndarray:
    """Round scaled float weights to the integers Lava's Dense keeps unchanged.

    Mixed-sign matrices round to even integers in [-254, 254]; single-sign ones to
    [0, 255] or [-255, 0]. Rounding is half away from zero, symmetric in sign."""
    w = np.asarray(w_scaled, dtype=np.float64)
    if is_mixed(w):
        q = 2 * np.sign(w) * np.floor(np.abs(w) / 2 + 0.5)
        # Still even and legal if rounding happened to remove one sign.
        return np.clip(q, -WEIGHT_MAX_MIXED, WEIGHT_MAX_MIXED).astype(np.int64)
    q = np.sign(w) * np.floor(np.abs(w) + 0.5)
    return np.clip(q, -WEIGHT_MAX_SINGLE_SIGN, WEIGHT_MAX_SINGLE_SIGN).astype(np.int64)


def choose_weight_exp(vth_int: float, m: float, limit: int) -> int:
    """Smallest legal ``weight_exp`` with ``vth_int · m · 2^-e <= limit`` (``m``: the
    largest threshold-normalized weight of the path)."""
    if m <= 0:
        return 0
    e = math.ceil(math.log2(vth_int * m / limit) - 1e-12)
    return int(min(max(e, WEIGHT_EXP_MIN), WEIGHT_EXP_MAX))


du_from_alpha = du_register
"""Integer Loihi ``du`` for current decay ``alpha`` (``alpha = 1 - (du+1)/4096``)."""
dv_from_beta = dv_register
"""Integer Loihi ``dv`` for voltage decay ``beta`` (``beta = 1 - dv/4096``)."""


def decay_in_range(du: int, dv: int) -> str | None:
    """A reason string if ``du``/``dv`` fall outside Loihi's 12-bit decay registers."""
    if not -1 <= du <= DECAY_MAX:
        return f"current decay du={du} outside -1..{DECAY_MAX}"
    if not 0 <= dv <= DECAY_MAX:
        return f"voltage decay dv={dv} outside 0..{DECAY_MAX} (beta > 1 or < 0)"
    return None


def split_bias(b_int: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-neuron ``(bias_mant, bias_exp)`` with ``mant << exp`` closest to ``b_int``,
    ``|mant| <= 4095`` and the smallest exponent that fits (most precision)."""
    b = np.asarray(np.round(b_int), dtype=np.int64)
    mant = np.zeros_like(b)
    exp = np.zeros_like(b)
    for i, val in np.ndenumerate(b):
        e = 0
        while abs(val) > (BIAS_MANT_MAX << e) and e < BIAS_EXP_MAX:
            e += 1
        m = int(np.sign(val) * ((abs(int(val)) + (1 << e >> 1)) >> e)) if e else int(val)
        mant[i] = max(-BIAS_MANT_MAX - 1, min(BIAS_MANT_MAX, m))
        exp[i] = e
    return mant, exp


BIAS_INT_MAX = BIAS_MANT_MAX << BIAS_EXP_MAX
ACT_SCALE = float(1 << ACT_SHIFT)
"""64: synaptic input, bias units and threshold are left-aligned by ``ACT_SHIFT`` bits
(``u += a << 6``, ``s = v > vth << 6``), so a bias of ``x`` thresholds is ``64 · vth · x``."""
