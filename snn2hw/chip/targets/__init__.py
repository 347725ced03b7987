"""Targets are data: load and validate ``snn2hw/chip/targets/data/*.toml`` chip descriptions.

A target file describes one chip: its number formats, resource limits and per-operation
energy and latency constants, each number with the source it comes from (the schema is in
:mod:`.schema`'s docstring; ``snn2hw/chip/targets/data/loihi.toml`` is a complete
example). Adding a chip means adding a file; code changes only for a genuinely new kind
of neuron or connection.

Modules, one job each:

* ``schema``: the allowed keys (:data:`FORMAT_KEYS`, :data:`RESOURCE_KEYS`, required
  energy / latency constants, units) and the dataclasses of a loaded target
  (:class:`Target`, :class:`Formats`, :class:`Resources`, :class:`ConstantTable`,
  :class:`Constant`, :class:`Baselines`);
* ``files``: where the files are (folders of ``$SNN2HW_TARGETS_DIR`` first, then the
  bundled package data ``data/*.toml``), target names, reading TOML;
* ``validation``: typed, range-checked access to parsed TOML and sourced constant tables;
* ``loading``: :func:`load_target`, :func:`load_baselines`;
* ``display``: :func:`format_target`.

Every problem raises :class:`~snn2hw.common.errors.TargetError` naming the file and the key.

May import: ``snn2hw.common`` and ``snn2hw.quant.formats`` (a target's formats become the
:class:`~snn2hw.quant.formats.NumberFormats` quantization and the backends read,
``Target.number_formats``), and the standard library.
"""

from snn2hw.chip.targets.display import format_target
from snn2hw.chip.targets.files import BASELINES_FILE, TARGETS_ENV, list_targets, targets_dir
from snn2hw.chip.targets.loading import load_baselines, load_target
from snn2hw.chip.targets.schema import (
    FORMAT_KEYS,
    FORMAT_RULE_KEYS,
    NEURON_MODELS,
    REQUIRED_ENERGY,
    REQUIRED_LATENCY,
    RESOURCE_KEYS,
    UNITS,
    Baselines,
    Constant,
    ConstantTable,
    Formats,
    Resources,
    Target,
)

__all__ = [
    "BASELINES_FILE",
    "FORMAT_KEYS",
    "FORMAT_RULE_KEYS",
    "NEURON_MODELS",
    "REQUIRED_ENERGY",
    "REQUIRED_LATENCY",
    "RESOURCE_KEYS",
    "TARGETS_ENV",
    "UNITS",
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
