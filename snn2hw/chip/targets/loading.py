"""Loading targets: ``load_target`` (a chip description) and ``load_baselines``.

Each reads a file found by :mod:`.files`, checks it with :mod:`.validation` against the
schema of :mod:`.schema` and returns the frozen dataclasses. Every problem raises
:class:`~snn2hw.common.errors.TargetError` naming the file and the key.

May import: ``snn2hw.common`` and the sibling ``files``, ``schema`` and ``validation``
modules; nothing else of ``snn2hw``.
"""

from __future__ import annotations

from pathlib import Path

from snn2hw.chip.targets.files import BASELINES_FILE, _read_toml, _resolve, find_target_file
from snn2hw.chip.targets.schema import (
    _ENERGY_UNITS,
    _TIME_UNITS,
    CHIP_LIMIT_KEYS,
    FORMAT_CAPABILITY_KEYS,
    FORMAT_KEYS,
    FORMAT_RULE_KEYS,
    NEURON_MODELS,
    REQUIRED_ENERGY,
    REQUIRED_LATENCY,
    RESOURCE_KEYS,
    Baselines,
    Constant,
    ConstantTable,
    Formats,
    Resources,
    Target,
)
from snn2hw.chip.targets.validation import _constant, _constant_table, _Reader
from snn2hw.common.errors import TargetError


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
    known = (set(FORMAT_KEYS) | set(FORMAT_RULE_KEYS) | set(CHIP_LIMIT_KEYS)
             | set(FORMAT_CAPABILITY_KEYS))
    rd.no_unknown(fmt, "formats", known | {"source", "note"})
    for key, kind in CHIP_LIMIT_KEYS.items():  # optional; read by snn2hw.quant.bounds
        rd.value(fmt, key, "formats", kind, *((1, 64) if kind == "int" else ()), default=None)
    fvals = {k: rd.value(fmt, k, "formats", kind, lo, hi)
             for k, (kind, lo, hi) in FORMAT_KEYS.items()}
    fvals.update({k: rd.value(fmt, k, "formats", allowed, default=default)
                  for k, (allowed, default) in FORMAT_RULE_KEYS.items()})
    for lo_key, hi_key in (("weight_exp_min", "weight_exp_max"), ("bias_exp_min", "bias_exp_max")):
        if fvals[lo_key] > fvals[hi_key]:
            raise rd.bad(f"formats.{lo_key}", f"= {fvals[lo_key]} is larger than "
                                              f"formats.{hi_key} = {fvals[hi_key]}")
    for key, (allowed, rule) in FORMAT_CAPABILITY_KEYS.items():
        val = fmt.get(key, [])
        if not isinstance(val, list) or any(v not in allowed for v in val):
            raise rd.bad(f"formats.{key}", f"= {val!r} must be a list of {', '.join(allowed)}")
        if val and fvals[rule] not in val:
            raise rd.bad(f"formats.{key}", f"= {val!r} does not contain formats.{rule} = "
                                           f"{fvals[rule]!r}")
        fvals[key] = tuple(val)
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
    """Load ``baselines.toml`` (or ``path``): groups of sourced constants.

    Without ``path``, the first ``baselines.toml`` on the targets search path (a user
    folder of ``$SNN2HW_TARGETS_DIR``, else the bundled one).
    """
    found = find_target_file(BASELINES_FILE) if path is None else None
    file = Path(path) if path is not None else (found or Path(BASELINES_FILE))
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
