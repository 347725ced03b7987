"""Timing of a NIR graph: which dt and which framework convention to read it with.

NIR records neither the time step nor which framework wrote a graph; :func:`resolve_timing`
takes them from the user, else the graph metadata, else a convention's default, and never
guesses silently: a missing one is a one-line :class:`~snn2hw.common.errors.GraphError` that
names the option to pass. Every decision is returned as a note.

May import: ``nir``, :mod:`snn2hw.nir.discretize`, :mod:`snn2hw.nir.fields`,
:mod:`snn2hw.nir.notes` and :mod:`snn2hw.common`.
"""

from __future__ import annotations

import math
from typing import Any

import nir

from snn2hw.common.errors import GraphError
from snn2hw.nir.discretize import Convention, get_convention
from snn2hw.nir.fields import graph_metadata
from snn2hw.nir.notes import import_notes


def resolve_timing(
    graph: nir.NIRGraph, dt: float | None = None, convention: str | Convention | None = None
) -> tuple[float, Convention, list[str]]:
    """The time step and convention to read ``graph`` with, and the notes saying why.

    dt: the user's, else the graph metadata's ``dt``, else the convention's default.
    Convention: the user's, else metadata ``convention`` (or a known ``producer``).
    Neither is ever guessed silently: a missing one is a :class:`GraphError` that says
    which option to pass."""
    md = graph_metadata(graph)
    notes = import_notes(graph)
    known = ", ".join(_known_conventions())
    conv: Convention | None
    if isinstance(convention, Convention):
        conv = convention
        notes.append(f"convention '{conv.name}' given by the user")
    elif convention is not None:
        conv = get_convention(str(convention))
        notes.append(f"convention '{conv.name}' given by the user")
    else:
        conv = None
        for key in ("convention", "producer"):
            name = md.get(key)
            if name is None:
                continue
            name = str(name).strip().lower()
            if name in _known_conventions():
                conv = get_convention(name)
                notes.append(f"convention '{name}' from the graph metadata ('{key}')")
                break
            if key == "convention":
                raise GraphError(
                    f"the graph metadata names convention '{name}', which snn2hw does not "
                    f"know; pass --convention NAME (one of: {known})"
                )
    if dt is not None:
        dt_val = _check_dt(dt, "--dt")
        notes.append(f"dt = {dt_val:g} s given by the user")
    elif md.get("dt") is not None:
        dt_val = _check_dt(md["dt"], "the graph metadata 'dt'")
        notes.append(f"dt = {dt_val:g} s from the graph metadata")
    elif conv is not None and conv.dt is not None:
        dt_val = float(conv.dt)
        notes.append(f"dt = {dt_val:g} s: the default of the '{conv.name}' convention")
    elif conv is None:
        raise GraphError(
            "this NIR graph stores no dt; pass --dt SECONDS or --convention NAME "
            f"(NIR records neither the time step nor which framework wrote it; known: {known})"
        )
    else:
        raise GraphError(
            f"this NIR graph stores no dt and the '{conv.name}' convention has no default; "
            "pass --dt SECONDS"
        )
    if conv is None:
        raise GraphError(
            "this NIR graph does not say which framework wrote it; pass --convention NAME "
            f"(one of: {known}) so that decays, thresholds and resets are read as intended"
        )
    notes.extend(f"{conv.name}: {n}" for n in conv.notes)
    notes.append(
        f"'{conv.name}' convention: {conv.decay} decay, spike when v {conv.threshold_op} "
        f"threshold, {conv.reset} reset"
    )
    return dt_val, conv, notes


def _known_conventions() -> list[str]:
    from snn2hw.nir.discretize import CONVENTIONS

    return list(CONVENTIONS)


def _check_dt(value: Any, source: str) -> float:
    try:
        dt = float(value)
    except (TypeError, ValueError):
        raise GraphError(f"dt from {source} is not a number: {value!r}") from None
    if not (dt > 0 and math.isfinite(dt)):
        raise GraphError(f"dt from {source} must be a positive number of seconds, got {value!r}")
    return dt
