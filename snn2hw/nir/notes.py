"""Import notes: the assumptions :func:`~snn2hw.nir.importer.read_nir` had to make.

A note (a type check skipped, a batch dimension dropped, ...) is attached to the graph object
that was read, as a plain attribute, so that validation and timing resolution can pass it on
to reports. It is not a dataclass field and therefore never written back to a file.

May import: ``nir`` only.
"""

from __future__ import annotations

import nir

_NOTES_ATTR = "snn2hw_import_notes"  # not a dataclass field: never written back to a file


def import_notes(graph: nir.NIRGraph) -> list[str]:
    """Notes recorded by :func:`read_nir` for ``graph`` (empty for in-memory graphs)."""
    return list(getattr(graph, _NOTES_ATTR, []))


def attach_import_notes(graph: nir.NIRGraph, notes: list[str]) -> None:
    """Record ``notes`` on ``graph`` for :func:`import_notes`."""
    setattr(graph, _NOTES_ATTR, notes)
