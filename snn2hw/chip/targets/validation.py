"""Validating parsed TOML: typed, range-checked access to keys and sourced constant tables.

Every problem raises :class:`~snn2hw.common.errors.TargetError` naming the file and the
dotted key (``formats.u_bits in snn2hw/chip/targets/data/x.toml must be an integer, ...``).

May import: ``snn2hw.common``, the sibling ``files`` and ``schema`` modules and the standard
library; nothing else of ``snn2hw``.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from snn2hw.chip.targets.files import _display
from snn2hw.chip.targets.schema import UNITS, Constant, ConstantTable
from snn2hw.common.errors import TargetError


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
