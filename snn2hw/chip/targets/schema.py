"""The target schema: constant tables of allowed keys and the dataclasses of a loaded target.

A target file describes one chip: its number formats (``[formats]``), resource limits
(``[resources]``), and per-operation energy and latency constants (``[energy]``,
``[latency]``), each number with the source it comes from. Adding a chip means adding a
file; code changes only for a genuinely new kind of neuron or connection.

Schema (see ``snn2hw/chip/targets/data/loihi.toml`` for a complete example)::

    [target]     name, description, neuron_model, source
    [formats]    source, note, plus the keys of :data:`FORMAT_KEYS` and, optionally, those
                 of :data:`FORMAT_RULE_KEYS` (reset and spike comparison; Loihi's if absent)
    [resources]  source, note, plus one table per key of :data:`RESOURCE_KEYS`:
                 {value, source, assumption = false, note = ""}
    [energy]     available, note, source; when available, one table per constant
    [latency]    (same), e.g. [energy.synop_pj] {value, source, pre_silicon, assumption, note}

Constant names end in their unit (``_pj``, ``_nj``, ``_uj``, ``_mj``, ``_ns``, ``_us``).

May import: ``snn2hw.common``, ``snn2hw.quant.formats`` (the :class:`NumberFormats` handed
to quantization and the backends), the sibling ``files`` (path display in messages) and
the standard library; nothing else of ``snn2hw``.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from snn2hw.chip.targets.files import _display
from snn2hw.common.errors import TargetError
from snn2hw.quant.formats import COMPARE_RULES, RESET_RULES, NeuronCapabilities, NumberFormats

# Neuron models that have code behind them (the integer backends); a new model is code.
NEURON_MODELS = ("loihi_cuba_lif",)

# unit suffix -> (display unit, factor to SI)
UNITS: dict[str, tuple[str, float]] = {
    "pj": ("pJ", 1e-12),
    "nj": ("nJ", 1e-9),
    "uj": ("µJ", 1e-6),
    "mj": ("mJ", 1e-3),
    "ns": ("ns", 1e-9),
    "us": ("µs", 1e-6),
}
_ENERGY_UNITS = ("pj", "nj", "uj", "mj")
_TIME_UNITS = ("ns", "us")

# Constants an energy / latency model needs when the section says available = true.
REQUIRED_ENERGY = (
    "synop_pj",
    "syn_update_pj",
    "neuron_update_active_pj",
    "neuron_update_inactive_pj",
    "spike_within_tile_pj",
    "hop_ew_pj",
    "hop_ns_pj",
)
REQUIRED_LATENCY = ("spike_within_tile_ns", "hop_ew_ns", "hop_ns_ns")

_BIG = 2**40  # generous upper bound for counts; catches nonsense such as 1e20, not real chips

# key -> (kind, lo, hi); kind "int", "bool", "pair" (two ints), or a tuple of allowed strings
# Optional [formats] keys: where the silicon departs from Lava's model (docs/loihi-edges.md);
# snn2hw.quant.bounds reads them from the raw table (limits_from_formats).
CHIP_LIMIT_KEYS: dict[str, Any] = {
    "chip_accumulator_bits": "int",
    "chip_u_bias_overflow": ("wrap", "saturate"),
    "chip_u_wrap": ("twos_complement", "lava"),
    "chip_weight_exp_shift": ("per_synapse", "sum"),
    "chip_limits_source": "str",
}

FORMAT_KEYS: dict[str, tuple[Any, int | None, int | None]] = {
    "weight_mantissa_bits": ("int", 1, 16),
    "weight_exp_min": ("int", -31, 0),
    "weight_exp_max": ("int", 0, 31),
    "weight_range_mixed": ("pair", -(2**16), 2**16),
    "weight_range_excitatory": ("pair", 0, 2**16),
    "weight_range_inhibitory": ("pair", -(2**16), 0),
    "mixed_sign_lsb_loss": ("bool", None, None),
    "activation_shift": ("int", 0, 16),
    "u_bits": ("int", 2, 64),
    "u_overflow": (("wrap", "saturate"), None, None),
    "v_bits": ("int", 2, 64),
    "v_overflow": (("wrap", "saturate"), None, None),
    "decay_bits": ("int", 1, 32),
    "threshold_bits": ("int", 1, 32),
    "bias_mant_bits": ("int", 2, 32),
    "bias_exp_min": ("int", -31, 31),
    "bias_exp_max": ("int", -31, 31),
    "max_message_bits": ("int", 0, 32),
    "max_synaptic_delay": ("int", 0, 2**16),
}

# Optional [formats] keys: key -> (allowed strings, default = Loihi's rule)
FORMAT_RULE_KEYS: dict[str, tuple[tuple[str, ...], str]] = {
    "reset": (RESET_RULES, "zero"),  # on a spike: v = 0, or v -= vth << activation_shift
    "threshold_compare": (COMPARE_RULES, ">"),  # s = v > (vth << shift), or >=
}

# Optional [formats] keys: what the neurons can be set to (programmable neurons list
# several rules); default: only the rule above. key -> (allowed strings, the rule key)
FORMAT_CAPABILITY_KEYS: dict[str, tuple[tuple[str, ...], str]] = {
    "resets": (RESET_RULES, "reset"),
    "threshold_compares": (COMPARE_RULES, "threshold_compare"),
}

# key -> (lo, hi) of the integer value
RESOURCE_KEYS: dict[str, tuple[int, int]] = {
    "cores_per_chip": (1, _BIG),
    "neurons_per_core": (1, _BIG),
    "input_axons_per_core": (1, _BIG),
    "output_axons_per_core": (1, _BIG),
    "synaptic_memory_bits_per_core": (1, _BIG),
    "max_chips": (1, _BIG),
    "cores_per_tile": (1, _BIG),
    "synapse_weight_bits": (1, 64),
    "synapse_index_bits": (0, 64),
}


# ----- data classes ---------------------------------------------------------------------------
@dataclass(frozen=True)
class Constant:
    """One number with its provenance. ``unit`` is '' for counts (resource limits)."""

    name: str
    value: float
    source: str
    unit: str = ""
    pre_silicon: bool = False
    assumption: bool = False
    note: str = ""

    @property
    def si(self) -> float:
        """The value in SI units (J or s); the plain value for unit-less constants."""
        suffix = self.name.rsplit("_", 1)[-1]
        return self.value * UNITS[suffix][1] if suffix in UNITS else self.value


@dataclass(frozen=True)
class ConstantTable:
    """A section of constants (``[energy]``, ``[latency]``, a baseline group).

    ``available = False`` means no trustworthy numbers exist; ``note`` says why and
    ``constants`` is empty. Indexing an unavailable table raises :class:`TargetError`."""

    name: str
    available: bool
    note: str = ""
    source: str = ""
    constants: dict[str, Constant] = field(default_factory=dict, hash=False)
    origin: str = ""  # the file, for messages

    def __getitem__(self, key: str) -> Constant:
        if not self.available:
            raise TargetError(f"{self.name} constants are not available for {self.origin}: "
                              f"{self.note}")
        try:
            return self.constants[key]
        except KeyError:
            raise TargetError(
                f"{self.name}.{key} missing in {self.origin}; has: {', '.join(self.constants)}"
            ) from None

    def __contains__(self, key: object) -> bool:
        return key in self.constants

    def __iter__(self) -> Iterator[str]:
        return iter(self.constants)

    def __len__(self) -> int:
        return len(self.constants)

    def value(self, key: str) -> float:
        """``self[key].value``."""
        return self[key].value


@dataclass(frozen=True)
class Formats:
    """Number formats of the target arithmetic (docs/sources.md#loihi-arithmetic-formats)."""

    weight_mantissa_bits: int
    weight_exp_min: int
    weight_exp_max: int
    weight_range_mixed: tuple[int, int]
    weight_range_excitatory: tuple[int, int]
    weight_range_inhibitory: tuple[int, int]
    mixed_sign_lsb_loss: bool
    activation_shift: int
    u_bits: int
    u_overflow: str
    v_bits: int
    v_overflow: str
    decay_bits: int
    threshold_bits: int
    bias_mant_bits: int
    bias_exp_min: int
    bias_exp_max: int
    max_message_bits: int
    max_synaptic_delay: int
    reset: str = "zero"
    threshold_compare: str = ">"
    resets: tuple[str, ...] = ()
    threshold_compares: tuple[str, ...] = ()
    source: str = ""
    note: str = ""

    def number_formats(self) -> NumberFormats:
        """These formats as quantization's :class:`~snn2hw.quant.formats.NumberFormats`
        (the data PTQ, QAT, validation and the backends read)."""
        # Only the fields NumberFormats has: keys added to [formats] for other purposes
        # (e.g. chip limits) are not number formats of the quantized graph.
        keys = {f.name for f in fields(NumberFormats)}
        return NumberFormats(**{k: getattr(self, k) for k in keys})

    def neuron_capabilities(self) -> NeuronCapabilities:
        """The rules the target's neurons can be set to (``resets``,
        ``threshold_compares``; just ``reset`` / ``threshold_compare`` if absent)."""
        return NeuronCapabilities(
            tuple(self.resets) or (self.reset,),
            tuple(self.threshold_compares) or (self.threshold_compare,),
            int(self.max_message_bits),
        )

    @property
    def decay_max(self) -> int:
        """Largest du / dv (4095 for 12 bits)."""
        return 2**self.decay_bits - 1

    @property
    def vth_max(self) -> int:
        """Largest threshold mantissa (131071 for 17 bits, unsigned)."""
        return 2**self.threshold_bits - 1

    @property
    def bias_mant_range(self) -> tuple[int, int]:
        """Signed range of the bias mantissa (-4096..4095 for 13 bits)."""
        half = 2 ** (self.bias_mant_bits - 1)
        return -half, half - 1


@dataclass(frozen=True)
class Resources:
    """Resource limits. ``limits`` keeps each value's provenance (source, assumption)."""

    cores_per_chip: int
    neurons_per_core: int
    input_axons_per_core: int
    output_axons_per_core: int
    synaptic_memory_bits_per_core: int
    max_chips: int
    cores_per_tile: int
    synapse_weight_bits: int
    synapse_index_bits: int
    limits: dict[str, Constant] = field(default_factory=dict, compare=False)
    source: str = ""

    @property
    def bits_per_synapse(self) -> int:
        """``synapse_weight_bits + synapse_index_bits`` as written in ``[resources]``; the
        resource model uses :attr:`Target.bits_per_synapse` (the formats' weight bits)."""
        return self.synapse_weight_bits + self.synapse_index_bits


@dataclass(frozen=True)
class Target:
    """A loaded, validated target description. ``number_formats`` is what quantization,
    validation and the backends read (``formats.number_formats()``)."""

    name: str
    description: str
    neuron_model: str
    source: str
    path: Path
    formats: Formats
    resources: Resources
    energy: ConstantTable
    latency: ConstantTable
    raw: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @property
    def bits_per_synapse(self) -> int:
        """Synaptic-memory model: bits one non-zero synapse occupies, the target's weight
        bits (``formats.weight_mantissa_bits``) plus ``resources.synapse_index_bits``."""
        return self.formats.weight_mantissa_bits + self.resources.synapse_index_bits

    @property
    def number_formats(self) -> NumberFormats:
        """The target's ``[formats]`` as :class:`~snn2hw.quant.formats.NumberFormats`."""
        return self.formats.number_formats()

    def neuron_capabilities(self) -> NeuronCapabilities:
        """What the target's neurons can be set to (reset, comparison, graded spikes)."""
        return self.formats.neuron_capabilities()

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly description (for ``--json``)."""

        def consts(table: ConstantTable) -> dict[str, Any]:
            return {
                "available": table.available,
                "note": table.note,
                "constants": {k: vars(c) for k, c in table.constants.items()},
            }

        fmt = {k: getattr(self.formats, k) for k in (*FORMAT_KEYS, *FORMAT_RULE_KEYS)}
        caps = self.neuron_capabilities()
        fmt["resets"], fmt["threshold_compares"] = caps.resets, caps.threshold_compares
        return {
            "name": self.name,
            "description": self.description,
            "neuron_model": self.neuron_model,
            "source": self.source,
            "path": str(self.path),
            "formats": {k: list(v) if isinstance(v, tuple) else v for k, v in fmt.items()},
            "resources": {k: vars(c) for k, c in self.resources.limits.items()},
            "bits_per_synapse": self.bits_per_synapse,
            "energy": consts(self.energy),
            "latency": consts(self.latency),
        }


@dataclass(frozen=True)
class Baselines:
    """Groups of baseline constants (``snn2hw/chip/targets/data/baselines.toml``)."""

    groups: dict[str, ConstantTable] = field(hash=False)
    path: Path
    descriptions: dict[str, str] = field(default_factory=dict, hash=False)

    def __getitem__(self, group: str) -> ConstantTable:
        try:
            return self.groups[group]
        except KeyError:
            raise TargetError(
                f"no baseline group '{group}' in {_display(self.path)}; "
                f"known: {', '.join(self.groups)}"
            ) from None

