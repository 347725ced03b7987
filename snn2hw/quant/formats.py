"""Target number formats, and the one place where float parameters become chip integers.

:class:`NumberFormats` is the ``[formats]`` table of a target file
(``snn2hw/chip/targets/data/*.toml``) as plain data: quant may not import ``snn2hw.chip``,
so ``snn2hw.chip.targets`` builds a
``NumberFormats`` from the TOML (``Target.number_formats``) and passes it in. A quantized
graph records the formats it was made for (``QGraph.formats``); :data:`LOIHI_FORMATS` are
Lava's Loihi fixed-point models (``snn2hw/chip/targets/data/loihi.toml``), the default of every
function here and of graph files written before formats were recorded.

Used by post-training quantization (:mod:`snn2hw.quant.ptq`) and by quantization-aware
fine-tuning (:mod:`snn2hw.training.qat`), so both round exactly alike (docs/qgraph.md, docs/nir.md).
The Loihi decay formulas are defined in :mod:`snn2hw.common.units`; here they are
generalized to ``decay_bits`` (the scale ``2^decay_bits``, 4096 for Loihi).

Dependencies: numpy, the standard library and :mod:`snn2hw.common`.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from typing import Any

import numpy as np

from snn2hw.common.errors import GraphError
from snn2hw.common.units import ACT_SHIFT

OVERFLOW_RULES = ("wrap", "saturate")
RESET_RULES = ("zero", "subtract")
COMPARE_RULES = (">", ">=")


@dataclass(frozen=True)
class NumberFormats:
    """The integer formats and arithmetic rules of one target (docs/qgraph.md "Number formats").

    Value ranges (what a graph may hold): weight mantissa bits, weight exponent range,
    decay / threshold / bias bits, bias exponent range, message bits, delays. Arithmetic
    rules (how a backend executes): weight clip ranges and the mixed-sign LSB loss, the
    activation shift, u / v widths and overflow rules, the reset and the spike comparison.
    Defaults are Loihi's (Lava ``PyLifModelBitAcc`` / ``PyDenseModelBitAcc``)."""

    weight_mantissa_bits: int = 8
    weight_exp_min: int = -7
    weight_exp_max: int = 7
    weight_range_mixed: tuple[int, int] = (-256, 255)
    weight_range_excitatory: tuple[int, int] = (0, 255)
    weight_range_inhibitory: tuple[int, int] = (-255, 0)
    mixed_sign_lsb_loss: bool = True
    activation_shift: int = ACT_SHIFT
    u_bits: int = 24
    u_overflow: str = "wrap"
    v_bits: int = 24
    v_overflow: str = "saturate"
    decay_bits: int = 12
    threshold_bits: int = 17
    bias_mant_bits: int = 13
    bias_exp_min: int = 0
    bias_exp_max: int = 7
    max_message_bits: int = 0
    max_synaptic_delay: int = 0
    reset: str = "zero"
    threshold_compare: str = ">"

    def __post_init__(self) -> None:
        for key in ("weight_range_mixed", "weight_range_excitatory", "weight_range_inhibitory"):
            val = getattr(self, key)
            if not isinstance(val, tuple):  # lists from JSON / TOML: keep the class hashable
                object.__setattr__(self, key, tuple(int(v) for v in val))
        for key, allowed in (("u_overflow", OVERFLOW_RULES), ("v_overflow", OVERFLOW_RULES),
                             ("reset", RESET_RULES), ("threshold_compare", COMPARE_RULES)):
            if getattr(self, key) not in allowed:
                raise GraphError(f"number formats: {key}={getattr(self, key)!r} is not one of "
                                 f"{', '.join(map(repr, allowed))}")

    # ----- derived ranges -------------------------------------------------------------------
    @property
    def decay_scale(self) -> int:
        """Decay denominator ``2^decay_bits`` (4096 for Loihi)."""
        return 1 << self.decay_bits

    @property
    def decay_max(self) -> int:
        """Largest du / dv register (4095 for 12 bits)."""
        return self.decay_scale - 1

    @property
    def vth_max(self) -> int:
        """Largest threshold mantissa (131071 for 17 bits, unsigned)."""
        return (1 << self.threshold_bits) - 1

    @property
    def bias_mant_range(self) -> tuple[int, int]:
        """Signed range of the bias mantissa (-4096..4095 for 13 bits)."""
        half = 1 << (self.bias_mant_bits - 1)
        return -half, half - 1

    @property
    def bias_int_max(self) -> int:
        """Largest bias magnitude ``mant << exp`` can hold."""
        return self.bias_mant_range[1] << max(self.bias_exp_max, 0)

    @property
    def weight_stored_range(self) -> tuple[int, int]:
        """Range every stored weight must lie in (the union of the three clip ranges)."""
        lo = min(self.weight_range_mixed[0], self.weight_range_inhibitory[0])
        hi = max(self.weight_range_mixed[1], self.weight_range_excitatory[1])
        return lo, hi

    @property
    def act_scale(self) -> float:
        """``2^activation_shift`` (64 for Loihi): a bias of ``x`` thresholds is
        ``act_scale · vth · x``."""
        return float(1 << self.activation_shift)

    @property
    def u_wrap_safe(self) -> int:
        """``|vth · u_norm|`` bound used by PTQ: half of the value at which ``u`` can
        overflow in one step (``2^(u_bits - 1 - activation_shift - 1)``)."""
        return 1 << max(self.u_bits - 2 - self.activation_shift, 0)

    def int64_decay_overflow(self) -> str | None:
        """The first of ``u_bits`` / ``v_bits`` whose decay product (``u · (2^decay_bits -
        du - 1)``, ``v · (2^decay_bits - dv)``) can leave int64, i.e. ``bits + decay_bits >
        62``; ``None`` when an int64 implementation is exact (Loihi: 24 + 12)."""
        for key in ("u_bits", "v_bits"):
            if int(getattr(self, key)) + self.decay_bits > 62:
                return key
        return None

    # ----- conversion -----------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly dict (pairs as lists); :meth:`from_dict` reads it back."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, data: Any, where: str = "number formats") -> NumberFormats:
        """Parse :meth:`to_dict` output; every field must be present with its type."""
        if not isinstance(data, dict):
            raise GraphError(f"{where}: must be an object, got {type(data).__name__}")
        known = {f.name: f for f in fields(cls)}
        unknown = sorted(set(data) - set(known))
        if unknown:
            raise GraphError(f"{where}: unknown field(s) {', '.join(unknown)}")
        missing = [k for k in known if k not in data]
        if missing:
            raise GraphError(f"{where}: missing field(s) {', '.join(missing)}")
        kwargs: dict[str, Any] = {}
        for key, val in data.items():
            default = getattr(LOIHI_FORMATS, key)
            if isinstance(default, bool):
                ok = isinstance(val, bool)
            elif isinstance(default, int):
                ok = isinstance(val, int) and not isinstance(val, bool)
            elif isinstance(default, tuple):
                ok = (isinstance(val, (list, tuple)) and len(val) == 2
                      and all(isinstance(v, int) and not isinstance(v, bool) for v in val))
            else:
                ok = isinstance(val, str)
            if not ok:
                raise GraphError(f"{where}: {key}={val!r} has the wrong type")
            kwargs[key] = tuple(val) if isinstance(default, tuple) else val
        return cls(**kwargs)

    def differences(self, other: NumberFormats) -> list[str]:
        """Names of the fields whose values differ from ``other``'s, in field order."""
        return [f.name for f in fields(self) if getattr(self, f.name) != getattr(other, f.name)]


@dataclass(frozen=True)
class NeuronCapabilities:
    """What a target's neurons can be set to do (the target file's ``[formats]``
    ``resets`` / ``threshold_compares``; graded spikes where ``max_message_bits > 0``).
    Quantization picks the source convention's rule when it is in these lists and
    refuses otherwise, unless the user accepts the approximation (docs/nir.md
    "Framework conventions on a target")."""

    resets: tuple[str, ...] = ("zero",)
    threshold_compares: tuple[str, ...] = (">",)
    max_message_bits: int = 0

    @classmethod
    def of(cls, formats: NumberFormats) -> NeuronCapabilities:
        """Only the formats' own rules: a fixed-function neuron."""
        return cls((formats.reset,), (formats.threshold_compare,), formats.max_message_bits)


APPROXIMATIONS = ("reset", "threshold", "spikes")
"""What ``snn2hw export --approximate`` may accept: the target's reset (also snnTorch's
delayed reset executed at once), its spike comparison, one spike per step."""


LOIHI_FORMATS = NumberFormats()
"""Lava's Loihi fixed-point models (bundled ``loihi.toml`` [formats]); the default."""

ARITHMETIC_FIELDS = (
    "weight_mantissa_bits", "weight_range_mixed", "weight_range_excitatory",
    "weight_range_inhibitory", "mixed_sign_lsb_loss", "activation_shift", "u_bits",
    "u_overflow", "v_bits", "v_overflow", "decay_bits", "reset", "threshold_compare",
)
"""Fields that change how a graph executes (the rest only bound the values it may hold)."""


# ----- weights -----------------------------------------------------------------------------
def is_mixed(w: np.ndarray) -> bool:
    """Whether a float matrix has both signs (after rounding it would be MIXED)."""
    return bool(np.any(w > 0) and np.any(w < 0))


def _mant_max(f: NumberFormats) -> int:
    """Largest magnitude a ``weight_mantissa_bits`` mantissa holds (255 for 8 bits)."""
    return (1 << f.weight_mantissa_bits) - 1


def _mixed_limit(f: NumberFormats) -> int:
    lim = min(-f.weight_range_mixed[0], f.weight_range_mixed[1], _mant_max(f))
    return lim - (lim % 2) if f.mixed_sign_lsb_loss else lim


def _single_sign_range(f: NumberFormats) -> tuple[int, int]:
    m = _mant_max(f)
    return max(f.weight_range_inhibitory[0], -m), min(f.weight_range_excitatory[1], m)


def weight_limit(w: np.ndarray, formats: NumberFormats = LOIHI_FORMATS) -> int:
    """Largest weight magnitude a quantizer emits for ``w``: within the clip range of its
    sign mode and at most ``2^weight_mantissa_bits - 1``. Loihi: 254 for mixed-sign
    matrices (they lose their lowest bit in Lava's Dense, docs/qgraph.md), 255 otherwise."""
    f = formats
    if is_mixed(w):
        return _mixed_limit(f)
    lo, hi = _single_sign_range(f)
    if np.any(np.asarray(w) < 0):
        return -lo
    return hi


def round_weights(w_scaled: np.ndarray, formats: NumberFormats = LOIHI_FORMATS) -> np.ndarray:
    """Round scaled float weights to the integers the target's Dense keeps unchanged.

    Loihi: mixed-sign matrices round to even integers in [-254, 254] (the mixed-sign LSB
    loss); single-sign ones to [0, 255] or [-255, 0]. Other targets: their clip ranges,
    magnitudes at most ``2^weight_mantissa_bits - 1`` (even values only where
    ``mixed_sign_lsb_loss``). Rounding is half away from zero,
    symmetric in sign."""
    f = formats
    w = np.asarray(w_scaled, dtype=np.float64)
    if is_mixed(w):
        lim = _mixed_limit(f)
        if f.mixed_sign_lsb_loss:
            q = 2 * np.sign(w) * np.floor(np.abs(w) / 2 + 0.5)
        else:
            q = np.sign(w) * np.floor(np.abs(w) + 0.5)
        # Still legal if rounding happened to remove one sign: the limit is symmetric.
        return np.clip(q, -lim, lim).astype(np.int64)
    q = np.sign(w) * np.floor(np.abs(w) + 0.5)
    return np.clip(q, *_single_sign_range(f)).astype(np.int64)


def choose_weight_exp(vth_int: float, m: float, limit: int,
                      formats: NumberFormats = LOIHI_FORMATS) -> int:
    """Smallest legal ``weight_exp`` with ``vth_int · m · 2^-e <= limit`` (``m``: the
    largest threshold-normalized weight of the path)."""
    if m <= 0:
        return 0
    e = math.ceil(math.log2(vth_int * m / limit) - 1e-12)
    return int(min(max(e, formats.weight_exp_min), formats.weight_exp_max))


# ----- decays ------------------------------------------------------------------------------
def du_from_alpha(alpha: float, formats: NumberFormats = LOIHI_FORMATS) -> int:
    """Integer ``du`` for current decay ``alpha``: ``round(S(1 - alpha)) - 1`` with
    ``S = 2^decay_bits`` (Loihi: ``alpha = 1 - (du+1)/4096``)."""
    return int(round(formats.decay_scale * (1.0 - alpha))) - 1


def dv_from_beta(beta: float, formats: NumberFormats = LOIHI_FORMATS) -> int:
    """Integer ``dv`` for voltage decay ``beta``: ``round(S(1 - beta))`` (Loihi:
    ``beta = 1 - dv/4096``)."""
    return int(round(formats.decay_scale * (1.0 - beta)))


def decay_in_range(du: int, dv: int, formats: NumberFormats = LOIHI_FORMATS) -> str | None:
    """A reason string if ``du``/``dv`` fall outside the target's decay registers."""
    dmax, bits = formats.decay_max, formats.decay_bits
    if not -1 <= du <= dmax:
        return f"current decay du={du} outside -1..{dmax} ({bits}-bit decay registers)"
    if not 0 <= dv <= dmax:
        return (f"voltage decay dv={dv} outside 0..{dmax} ({bits}-bit decay registers; "
                "beta > 1 or < 0)")
    return None


# ----- biases ------------------------------------------------------------------------------
def split_bias(b_int: np.ndarray, formats: NumberFormats = LOIHI_FORMATS
               ) -> tuple[np.ndarray, np.ndarray]:
    """Per-neuron ``(bias_mant, bias_exp)`` with ``mant << exp`` closest to ``b_int``,
    the mantissa in the target's signed range (Loihi ``|mant| <= 4095``) and the smallest
    exponent that fits (most precision). Exponents start at ``max(bias_exp_min, 0)``."""
    lo_m, hi_m = formats.bias_mant_range
    e0 = max(formats.bias_exp_min, 0)
    b = np.asarray(np.round(b_int), dtype=np.int64)
    mant = np.zeros_like(b)
    exp = np.zeros_like(b)
    for i, val in np.ndenumerate(b):
        e = e0
        while abs(val) > (hi_m << e) and e < formats.bias_exp_max:
            e += 1
        m = int(np.sign(val) * ((abs(int(val)) + (1 << e >> 1)) >> e)) if e else int(val)
        mant[i] = max(lo_m, min(hi_m, m))
        exp[i] = e
    return mant, exp


BIAS_INT_MAX = LOIHI_FORMATS.bias_int_max
ACT_SCALE = LOIHI_FORMATS.act_scale
"""64: synaptic input, bias units and threshold are left-aligned by ``ACT_SHIFT`` bits
(``u += a << 6``, ``s = v > vth << 6``), so a bias of ``x`` thresholds is ``64 · vth · x``."""
WEIGHT_MAX_SINGLE_SIGN = LOIHI_FORMATS.weight_range_excitatory[1]
WEIGHT_MAX_MIXED = _mixed_limit(LOIHI_FORMATS)
