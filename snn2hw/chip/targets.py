"""Targets are data: load and validate ``targets/*.toml`` chip descriptions.

A target file describes one chip: its number formats (``[formats]``), resource limits
(``[resources]``), and per-operation energy and latency constants (``[energy]``,
``[latency]``), each number with the source it comes from. Adding a chip means adding a
file; code changes only for a genuinely new kind of neuron or connection.

Where the files are: the repository's ``targets/`` folder next to the ``snn2hw`` package
(``Path(__file__).resolve().parents[2] / "targets"``); if that folder does not exist (an
installed wheel does not ship it), the folder named by the environment variable
``SNN2HW_TARGETS_DIR``. Any file can also be loaded by path.

Schema (see ``targets/loihi.toml`` for a complete example)::

    [target]     name, description, neuron_model, source
    [formats]    source, note, plus the keys of :data:`FORMAT_KEYS`
    [resources]  source, note, plus one table per key of :data:`RESOURCE_KEYS`:
                 {value, source, assumption = false, note = ""}
    [energy]     available, note, source; when available, one table per constant
    [latency]    (same), e.g. [energy.synop_pj] {value, source, pre_silicon, assumption, note}

Constant names end in their unit (``_pj``, ``_nj``, ``_uj``, ``_mj``, ``_ns``, ``_us``).
Every problem raises :class:`~snn2hw.common.errors.TargetError` naming the file and the key.
"""

from __future__ import annotations

import math
import os
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from snn2hw.common.errors import TargetError

__all__ = [
    "Baselines",
    "Constant",
    "ConstantTable",
    "Formats",
    "Resources",
    "Target",
    "format_target",
    "list_targets",
    "load_baselines",
    "load_target",
    "targets_dir",
]

TARGETS_ENV = "SNN2HW_TARGETS_DIR"
_REPO_ROOT = Path(__file__).resolve().parents[2]
_REPO_TARGETS = _REPO_ROOT / "targets"
BASELINES_FILE = "baselines.toml"

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
    """Number formats of the target's integer arithmetic (SPEC.md §1-2)."""

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
    source: str = ""
    note: str = ""

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
        """Synaptic-memory model: bits one non-zero synapse occupies (weight + index)."""
        return self.synapse_weight_bits + self.synapse_index_bits


@dataclass(frozen=True)
class Target:
    """A loaded, validated target description."""

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

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly description (for ``--json``)."""

        def consts(table: ConstantTable) -> dict[str, Any]:
            return {
                "available": table.available,
                "note": table.note,
                "constants": {k: vars(c) for k, c in table.constants.items()},
            }

        fmt = {k: getattr(self.formats, k) for k in FORMAT_KEYS}
        return {
            "name": self.name,
            "description": self.description,
            "neuron_model": self.neuron_model,
            "source": self.source,
            "path": str(self.path),
            "formats": {k: list(v) if isinstance(v, tuple) else v for k, v in fmt.items()},
            "resources": {k: vars(c) for k, c in self.resources.limits.items()},
            "bits_per_synapse": self.resources.bits_per_synapse,
            "energy": consts(self.energy),
            "latency": consts(self.latency),
        }


@dataclass(frozen=True)
class Baselines:
    """Groups of baseline constants (``targets/baselines.toml``)."""

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


# ----- locating files -------------------------------------------------------------------------
def targets_dir() -> Path:
    """The folder holding the target files (repo ``targets/``, else ``$SNN2HW_TARGETS_DIR``)."""
    if _REPO_TARGETS.is_dir():
        return _REPO_TARGETS
    env = os.environ.get(TARGETS_ENV)
    if env:
        path = Path(env).expanduser()
        if path.is_dir():
            return path
        raise TargetError(f"{TARGETS_ENV}={env} is not a folder")
    raise TargetError(
        f"no targets folder: {_REPO_TARGETS} does not exist and {TARGETS_ENV} is not set; "
        "point it at a folder of target .toml files"
    )


def list_targets() -> list[str]:
    """Names of the targets in :func:`targets_dir` (file stems, sorted; baselines excluded)."""
    return sorted(p.stem for p in targets_dir().glob("*.toml") if p.name != BASELINES_FILE)


def _display(path: Path) -> str:
    """Path as shown in messages: ``targets/x.toml`` for repo files, else as given."""
    try:
        return str(path.resolve().relative_to(_REPO_ROOT))
    except ValueError:
        return str(path)


def _resolve(name_or_path: str | Path) -> Path:
    text = str(name_or_path)
    if isinstance(name_or_path, Path) or text.endswith(".toml") or os.sep in text or "/" in text:
        path = Path(name_or_path).expanduser()
        if not path.is_file():
            raise TargetError(f"target file {path} does not exist")
        return path
    folder = targets_dir()
    path = folder / f"{text}.toml"
    if text == Path(BASELINES_FILE).stem or not path.is_file():
        known = ", ".join(list_targets()) or "(none)"
        raise TargetError(
            f"unknown target '{text}'; known targets: {known} (or pass a path to a .toml file)"
        )
    return path


def _read_toml(path: Path) -> dict[str, Any]:
    disp = _display(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise TargetError(f"cannot read {disp}: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise TargetError(f"{disp} is not UTF-8 text") from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        # tomllib's message ends with "(at line L, column C)"
        raise TargetError(f"{disp}: TOML syntax error: {exc}") from None


# ----- validation helpers ---------------------------------------------------------------------
class _Reader:
    """Typed access to a parsed TOML dict; every error names the file and the dotted key."""

    def __init__(self, path: Path) -> None:
        self.file = _display(path)

    def missing(self, key: str) -> TargetError:
        return TargetError(f"{key} missing in {self.file}")

    def bad(self, key: str, msg: str) -> TargetError:
        return TargetError(f"{key} in {self.file} {msg}")

    def table(self, parent: dict[str, Any], key: str, where: str = "") -> dict[str, Any]:
        dotted = f"{where}.{key}" if where else key
        if key not in parent:
            raise self.missing(f"[{dotted}]" if not where else dotted)
        val = parent[key]
        if not isinstance(val, dict):
            raise self.bad(dotted, f"must be a table, got {_kind(val)} {val!r}")
        return val

    def value(
        self,
        tbl: dict[str, Any],
        key: str,
        where: str,
        kind: Any,
        lo: float | None = None,
        hi: float | None = None,
        default: Any = ...,
    ) -> Any:
        dotted = f"{where}.{key}"
        if key not in tbl:
            if default is ...:
                raise self.missing(dotted)
            return default
        val = tbl[key]
        if kind == "int":
            # bool is an int subclass in Python; `true` is never a count
            if not isinstance(val, int) or isinstance(val, bool):
                raise self.bad(dotted, f"must be an integer, got {_kind(val)} {val!r}")
        elif kind == "float":
            if not isinstance(val, (int, float)) or isinstance(val, bool):
                raise self.bad(dotted, f"must be a number, got {_kind(val)} {val!r}")
            if not math.isfinite(val):
                raise self.bad(dotted, f"must be finite, got {val!r}")
            val = float(val)
        elif kind == "bool":
            if not isinstance(val, bool):
                raise self.bad(dotted, f"must be true or false, got {_kind(val)} {val!r}")
        elif kind == "str":
            if not isinstance(val, str):
                raise self.bad(dotted, f"must be a string, got {_kind(val)} {val!r}")
        elif kind == "pair":
            if (
                not isinstance(val, list)
                or len(val) != 2
                or any(not isinstance(v, int) or isinstance(v, bool) for v in val)
            ):
                raise self.bad(dotted, f"must be a list of two integers [lo, hi], got {val!r}")
            if val[0] > val[1]:
                raise self.bad(dotted, f"= {val} has lo > hi")
            for v in val:
                self._range(dotted, v, lo, hi)
            return (int(val[0]), int(val[1]))
        elif isinstance(kind, tuple):
            if val not in kind:
                raise self.bad(dotted, f"= {val!r} is not one of {', '.join(map(repr, kind))}")
            return val
        else:  # pragma: no cover - programming error
            raise AssertionError(kind)
        if kind in ("int", "float"):
            self._range(dotted, val, lo, hi)
        return val

    def _range(self, dotted: str, val: float, lo: float | None, hi: float | None) -> None:
        if (lo is not None and val < lo) or (hi is not None and val > hi):
            rng = f"{lo if lo is not None else '-inf'}..{hi if hi is not None else 'inf'}"
            raise self.bad(dotted, f"= {val} is out of range {rng}")

    def no_unknown(self, tbl: dict[str, Any], where: str, allowed: set[str]) -> None:
        for key in tbl:
            if key not in allowed:
                raise self.bad(
                    f"{where}.{key}", f"is not a known key; known: {', '.join(sorted(allowed))}"
                )


def _kind(val: Any) -> str:
    return {bool: "boolean", int: "integer", float: "number", str: "string", list: "array",
            dict: "table"}.get(type(val), type(val).__name__)


def _constant(rd: _Reader, tbl: dict[str, Any], key: str, where: str, units: tuple[str, ...]
              ) -> Constant:
    dotted = f"{where}.{key}"
    body = rd.table(tbl, key, where)
    suffix = key.rsplit("_", 1)[-1]
    if suffix not in units:
        raise rd.bad(dotted, f"must end in a unit suffix, one of: "
                             f"{', '.join('_' + u for u in units)}")
    rd.no_unknown(body, dotted, {"value", "source", "pre_silicon", "assumption", "note"})
    source = rd.value(body, "source", dotted, "str")
    if not source.strip():
        raise rd.bad(f"{dotted}.source", "is empty: every constant needs a source")
    return Constant(
        name=key,
        value=rd.value(body, "value", dotted, "float", 0.0, None),
        source=source,
        unit=UNITS[suffix][0],
        pre_silicon=rd.value(body, "pre_silicon", dotted, "bool", default=False),
        assumption=rd.value(body, "assumption", dotted, "bool", default=False),
        note=rd.value(body, "note", dotted, "str", default=""),
    )


def _constant_table(rd: _Reader, data: dict[str, Any], name: str, units: tuple[str, ...],
                    required: tuple[str, ...]) -> ConstantTable:
    """Parse ``[energy]`` / ``[latency]``: ``available``, ``note``, ``source`` + constants."""
    tbl = rd.table(data, name)
    available = rd.value(tbl, "available", name, "bool")
    note = rd.value(tbl, "note", name, "str", default="")
    source = rd.value(tbl, "source", name, "str", default="")
    keys = [k for k in tbl if k not in ("available", "note", "source")]
    if not available:
        if keys:
            raise rd.bad(f"{name}.{keys[0]}", f"given although {name}.available = false; "
                                              "remove it or set available = true")
        if not note.strip():
            raise rd.missing(f"{name}.note (why no {name} constants are available)")
        return ConstantTable(name, False, note, source, {}, rd.file)
    for key in required:
        if key not in tbl:
            raise rd.missing(f"{name}.{key}")
    consts = {k: _constant(rd, tbl, k, name, units) for k in keys}
    return ConstantTable(name, True, note, source, consts, rd.file)


# ----- loading --------------------------------------------------------------------------------
def load_target(name_or_path: str | Path) -> Target:
    """Load a target by name (``"loihi"``) or by path to a ``.toml`` file, validated."""
    path = _resolve(name_or_path)
    data = _read_toml(path)
    rd = _Reader(path)
    rd.no_unknown(data, "(top level)", {"target", "formats", "resources", "energy", "latency"})

    tgt = rd.table(data, "target")
    rd.no_unknown(tgt, "target", {"name", "description", "neuron_model", "source", "note"})
    name = rd.value(tgt, "name", "target", "str")
    if not name.strip():
        raise rd.bad("target.name", "is empty")
    neuron_model = rd.value(tgt, "neuron_model", "target", "str")
    if neuron_model not in NEURON_MODELS:
        raise rd.bad("target.neuron_model", f"= {neuron_model!r} has no implementation; "
                                            f"known: {', '.join(NEURON_MODELS)}")

    fmt = rd.table(data, "formats")
    rd.no_unknown(fmt, "formats", set(FORMAT_KEYS) | {"source", "note"})
    fvals = {k: rd.value(fmt, k, "formats", kind, lo, hi)
             for k, (kind, lo, hi) in FORMAT_KEYS.items()}
    for lo_key, hi_key in (("weight_exp_min", "weight_exp_max"), ("bias_exp_min", "bias_exp_max")):
        if fvals[lo_key] > fvals[hi_key]:
            raise rd.bad(f"formats.{lo_key}", f"= {fvals[lo_key]} is larger than "
                                              f"formats.{hi_key} = {fvals[hi_key]}")
    formats = Formats(
        **fvals,
        source=rd.value(fmt, "source", "formats", "str", default=""),
        note=rd.value(fmt, "note", "formats", "str", default=""),
    )

    res = rd.table(data, "resources")
    rd.no_unknown(res, "resources", set(RESOURCE_KEYS) | {"source", "note"})
    limits: dict[str, Constant] = {}
    for key, (lo, hi) in RESOURCE_KEYS.items():
        dotted = f"resources.{key}"
        body = rd.table(res, key, "resources")
        rd.no_unknown(body, dotted, {"value", "source", "assumption", "note"})
        source = rd.value(body, "source", dotted, "str")
        if not source.strip():
            raise rd.bad(f"{dotted}.source", "is empty: every limit needs a source")
        limits[key] = Constant(
            name=key,
            value=rd.value(body, "value", dotted, "int", lo, hi),
            source=source,
            assumption=rd.value(body, "assumption", dotted, "bool", default=False),
            note=rd.value(body, "note", dotted, "str", default=""),
        )
    resources = Resources(
        **{k: int(c.value) for k, c in limits.items()},
        limits=limits,
        source=rd.value(res, "source", "resources", "str", default=""),
    )

    return Target(
        name=name,
        description=rd.value(tgt, "description", "target", "str", default=""),
        neuron_model=neuron_model,
        source=rd.value(tgt, "source", "target", "str", default=""),
        path=path,
        formats=formats,
        resources=resources,
        energy=_constant_table(rd, data, "energy", _ENERGY_UNITS, REQUIRED_ENERGY),
        latency=_constant_table(rd, data, "latency", _TIME_UNITS, REQUIRED_LATENCY),
        raw=data,
    )


def load_baselines(path: str | Path | None = None) -> Baselines:
    """Load ``targets/baselines.toml`` (or ``path``): groups of sourced constants."""
    file = Path(path) if path is not None else targets_dir() / BASELINES_FILE
    if not file.is_file():
        raise TargetError(f"baselines file {file} does not exist")
    data = _read_toml(file)
    rd = _Reader(file)
    groups: dict[str, ConstantTable] = {}
    descriptions: dict[str, str] = {}
    for gname in data:
        tbl = rd.table(data, gname)
        descriptions[gname] = rd.value(tbl, "description", gname, "str", default="")
        consts = {
            k: _constant(rd, tbl, k, gname, _ENERGY_UNITS + _TIME_UNITS)
            for k in tbl
            if k != "description"
        }
        if not consts:
            raise rd.bad(gname, "has no constants")
        groups[gname] = ConstantTable(gname, True, descriptions[gname], "", consts, rd.file)
    if not groups:
        raise TargetError(f"{rd.file} defines no baseline groups")
    return Baselines(groups=groups, path=file, descriptions=descriptions)


# ----- display --------------------------------------------------------------------------------
def _flags(c: Constant) -> str:
    flags = [f for f, on in (("pre-silicon", c.pre_silicon), ("assumption", c.assumption)) if on]
    return f" [{', '.join(flags)}]" if flags else ""


def _num(v: float) -> str:
    return f"{int(v):,}" if float(v).is_integer() and abs(v) >= 1000 else f"{v:g}"


def format_target(target: Target) -> str:
    """Human-readable description, every constant with its source (``snn2hw targets show``)."""
    f, r = target.formats, target.resources
    lines = [
        f"{target.name}: {target.description}",
        f"  file: {_display(target.path)}",
        f"  neuron model: {target.neuron_model}",
    ]
    if target.source:
        lines.append(f"  sources: {target.source}")
    lines += ["", "Number formats" + (f"  (source: {f.source})" if f.source else "")]
    rows = [
        ("weights", f"{f.weight_mantissa_bits}-bit mantissa, exponent "
                    f"{f.weight_exp_min}..{f.weight_exp_max}"),
        ("weight clip", f"mixed {list(f.weight_range_mixed)}, excitatory "
                        f"{list(f.weight_range_excitatory)}, inhibitory "
                        f"{list(f.weight_range_inhibitory)}"),
        ("mixed-sign LSB loss", "yes ([7, -7] -> [6, -8])" if f.mixed_sign_lsb_loss else "no"),
        ("activation shift", f"<< {f.activation_shift} (weights and threshold)"),
        ("u", f"{f.u_bits}-bit, {f.u_overflow}"),
        ("v", f"{f.v_bits}-bit, {f.v_overflow}"),
        ("du, dv", f"{f.decay_bits}-bit, 0..{f.decay_max}"),
        ("vth", f"{f.threshold_bits}-bit, 0..{f.vth_max}"),
        ("bias", f"{f.bias_mant_bits}-bit signed mantissa {f.bias_mant_range[0]}.."
                 f"{f.bias_mant_range[1]}, exponent {f.bias_exp_min}..{f.bias_exp_max}"),
        ("message bits", "0 (binary spikes)" if f.max_message_bits == 0
         else f"up to {f.max_message_bits} (graded spikes)"),
        ("synaptic delay", f"0..{f.max_synaptic_delay} steps"),
    ]
    lines += [f"  {k:<22}{v}" for k, v in rows]
    if f.note:
        lines.append(f"  note: {f.note}")

    lines += ["", "Resources" + (f"  (source: {r.source})" if r.source else "")]
    for key, c in r.limits.items():
        lines.append(f"  {key:<32}{_num(c.value):>12}{_flags(c)}  {c.source}")
        if c.note:
            lines.append(f"  {'':<32}{'':>12}  note: {c.note}")
    lines.append(f"  {'bits per synapse (model)':<32}{r.bits_per_synapse:>12}  "
                 "synapse_weight_bits + synapse_index_bits")

    for table in (target.energy, target.latency):
        lines += ["", table.name.capitalize()]
        if not table.available:
            lines.append(f"  not available: {table.note}")
            continue
        if table.note:
            lines.append(f"  {table.note}")
        for key, c in table.constants.items():
            lines.append(f"  {key:<32}{_num(c.value):>8} {c.unit:<3}{_flags(c)}  {c.source}")
            if c.note:
                lines.append(f"  {'':<44}note: {c.note}")
    return "\n".join(lines)
