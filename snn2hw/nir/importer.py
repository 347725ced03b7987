"""Reading NIR files robustly (:func:`read_nir`); the front door of NIR import.

Every failure becomes a one-line :class:`~snn2hw.common.errors.GraphError` that names the file,
node, edge or field at fault. Assumptions that had to be made (a type check that was
skipped, a batch dimension dropped, the dt and convention used) are returned as notes so
that reports can list them.

The rest of import lives in one module per job, re-exported here under the names callers
have always imported from ``snn2hw.nir.importer``:

* :mod:`snn2hw.nir.fields`: NIR field values as numpy/plain Python (``as_array``, ...);
* :mod:`snn2hw.nir.notes`: the notes attached to a graph read from a file;
* :mod:`snn2hw.nir.shapes`: per-node shape inference (``conv_geometry``, ...);
* :mod:`snn2hw.nir.analysis`: validation and topology (``check_graph``, ``analyze``,
  ``GraphInfo``, ``SUPPORTED_TYPES``);
* :mod:`snn2hw.nir.timing`: dt and convention (``resolve_timing``).

May import: ``nir``, ``h5py``, those modules and :mod:`snn2hw.common`.
"""

from __future__ import annotations

import os
from pathlib import Path

import nir

from snn2hw.common.errors import GraphError
from snn2hw.nir.analysis import SUPPORTED_NAMES, SUPPORTED_TYPES, GraphInfo, analyze, check_graph
from snn2hw.nir.fields import as_array, as_ints, graph_metadata, meta_value, node_metadata
from snn2hw.nir.notes import attach_import_notes, import_notes
from snn2hw.nir.shapes import Shape, conv_geometry
from snn2hw.nir.timing import resolve_timing

__all__ = [
    "SUPPORTED_NAMES",
    "SUPPORTED_TYPES",
    "GraphInfo",
    "Shape",
    "analyze",
    "as_array",
    "as_ints",
    "check_graph",
    "conv_geometry",
    "graph_metadata",
    "import_notes",
    "meta_value",
    "node_metadata",
    "read_nir",
    "resolve_timing",
]


# Largest total of declared dataset bytes a NIR file may ask us to read (compressed HDF5 can
# declare gigabytes in a few kB); override with SNN2HW_MAX_NIR_BYTES.
MAX_NIR_BYTES = 2 * 2**30


def _check_declared_size(p: Path) -> None:
    """Refuse a NIR file whose datasets declare more bytes than :data:`MAX_NIR_BYTES`, before
    nir reads (and decompresses) any of them."""
    import h5py

    limit = int(os.environ.get("SNN2HW_MAX_NIR_BYTES", MAX_NIR_BYTES))
    total = 0
    biggest = ("", 0)

    def visit(name: str, obj: object) -> None:
        nonlocal total, biggest
        if isinstance(obj, h5py.Dataset):
            size = int(obj.size or 0) * int(obj.dtype.itemsize)
            total += size
            biggest = max(biggest, (name, size), key=lambda t: t[1])

    try:
        with h5py.File(p, "r") as fh:
            fh.visititems(visit)
    except Exception as exc:  # noqa: BLE001 - h5py raises OSError, KeyError, RuntimeError
        raise GraphError(f"{p}: cannot read the NIR file ({_one_line(exc)})") from None
    if total > limit:
        raise GraphError(
            f"{p}: the file declares {total / 2**20:.0f} MiB of arrays (largest '{biggest[0]}', "
            f"{biggest[1] / 2**20:.0f} MiB), over the {limit / 2**20:.0f} MiB limit; "
            "set SNN2HW_MAX_NIR_BYTES to allow it"
        )


def read_nir(path: str | os.PathLike[str]) -> nir.NIRGraph:
    """Read a NIR file; every failure is a one-line :class:`GraphError`.

    A graph that fails only nir's type check (e.g. Rockpool's Output node stored as
    ``[1, 1, 1]``) is read again with ``type_check=False`` and accepted if snn2hw's own
    checks pass; the fallback is recorded as a note (see :func:`import_notes`)."""
    import h5py

    p = Path(path)
    if not p.exists():
        raise GraphError(f"NIR file not found: {p}")
    if p.is_dir():
        raise GraphError(f"{p} is a directory, not a NIR file")
    try:
        is_hdf5 = h5py.is_hdf5(p)
    except OSError as exc:
        raise GraphError(f"{p}: cannot open ({exc})") from None
    if not is_hdf5:
        raise GraphError(f"{p} is not a NIR file (NIR files are HDF5; this one is not)")
    _check_declared_size(p)
    notes: list[str] = []
    try:
        graph = nir.read(p)
    except Exception as first:  # noqa: BLE001 - nir raises ValueError, AssertionError, KeyError
        try:
            graph = nir.read(p, type_check=False)
        except Exception as exc:  # noqa: BLE001
            raise GraphError(f"{p}: cannot read the NIR graph: {_one_line(exc)}") from None
        notes.append(
            f"nir's type check failed ({_one_line(first)}); read with type_check=False and "
            "checked with snn2hw's own shape inference instead"
        )
        try:
            check_graph(graph)
        except GraphError as exc:
            raise GraphError(f"{p}: {exc}") from None
    if not isinstance(graph, nir.NIRGraph):
        raise GraphError(f"{p}: the file holds a single {type(graph).__name__} node, not a graph")
    attach_import_notes(graph, notes)
    return graph


def _one_line(exc: BaseException) -> str:
    msg = " ".join(str(exc).split()) or type(exc).__name__
    return msg if len(msg) <= 300 else msg[:297] + "..."
