"""The ``.qgraph`` file (docs/qgraph.md "On-disk format", versions 1 and 2): save and load.

One ZIP archive holding ``graph.json`` (a header: format name, version, ``dt``, target,
``num_steps``, the target's number ``formats``, metadata, edges, and one JSON object per
node with its fields) and ``arrays/<ref>.npy`` (the int64 array fields, written with
``allow_pickle=False``).

Versions: a graph whose formats execute like Loihi's (every field of
:data:`~snn2hw.quant.formats.ARITHMETIC_FIELDS` equal) is written as version 1, which
readers from before formats were recorded still execute correctly (they ignore the
``formats`` key); any other graph is written as version 2, which those readers refuse
instead of running it with Loihi arithmetic. A file without ``formats`` (older writers)
loads with :data:`~snn2hw.quant.formats.LOIHI_FORMATS`.

Loading never unpickles; a foreign format field, a newer version, an unknown node kind,
a truncated or bit-flipped archive (the ZIP CRC and deflate checks), a missing member or
key, or a wrongly typed value is refused with a one-line :class:`GraphError`; the loaded
graph is then validated (:mod:`snn2hw.quant.validation`).

Dependencies: numpy, the standard library, :mod:`snn2hw.common` and
:mod:`snn2hw.quant.nodes`. The graph class is passed in by ``QGraph.save``/``QGraph.load``
(or imported lazily), so this module does not import :mod:`snn2hw.quant.qgraph` at load time.
"""

from __future__ import annotations

import io
import json
import os
import zipfile
import zlib
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from snn2hw.common.atomic_io import atomic_write_bytes
from snn2hw.common.errors import GraphError
from snn2hw.quant.formats import ARITHMETIC_FIELDS, LOIHI_FORMATS, NumberFormats
from snn2hw.quant.nodes import NODE_TYPES, Node

if TYPE_CHECKING:
    from snn2hw.quant.qgraph import QGraph

__all__ = ["ARRAY_FIELDS", "FORMAT_NAME", "FORMAT_VERSION", "load_qgraph", "save_qgraph"]

FORMAT_NAME = "snn2hw.qgraph"
FORMAT_VERSION = 2
"""Newest version written and read (2: formats that differ from Loihi's arithmetic)."""
ARRAY_FIELDS = {"dense": ("weight",), "conv": ("weight",), "lif": ("bias_mant", "bias_exp")}
"""Per node kind: the fields stored as ``.npy`` members instead of JSON values."""

# Everything a damaged archive or header can raise while being read.
_CORRUPT = (zipfile.BadZipFile, zlib.error, NotImplementedError, KeyError, ValueError,
            TypeError, AttributeError, OSError, EOFError)


# ----- save --------------------------------------------------------------------------------


def save_qgraph(g: QGraph, path: str | Path) -> None:
    """Validate ``g`` and write it to one ``.qgraph`` file, atomically."""
    g.validate()
    header, arrays = _encode(g)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("graph.json", json.dumps(header, indent=1))
        for ref, arr in arrays.items():
            npy = io.BytesIO()
            np.save(npy, arr, allow_pickle=False)
            zf.writestr(f"arrays/{ref}.npy", npy.getvalue())
    atomic_write_bytes(path, buf.getvalue())


def _encode(g: QGraph) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """The JSON header and the int64 arrays (by reference name) of ``g``."""
    loihi_like = all(getattr(g.formats, k) == getattr(LOIHI_FORMATS, k)
                     for k in ARITHMETIC_FIELDS)
    header: dict[str, Any] = {
        "format": FORMAT_NAME,
        "version": 1 if loihi_like else FORMAT_VERSION,
        "dt": float(g.dt),
        "target": g.target,
        "num_steps": int(g.num_steps),
        "formats": g.formats.to_dict(),
        "metadata": _jsonable(g.metadata),
        "edges": [list(e) for e in g.edges],
        "nodes": [],
    }
    arrays: dict[str, np.ndarray] = {}
    for name, node in g.nodes.items():
        rec: dict[str, Any] = {}
        for key, val in vars(node).items():
            # per-synapse delays are an array; a connection-wide delay stays a JSON int
            as_array = key in ARRAY_FIELDS.get(node.kind, ()) or (
                key == "delay" and isinstance(val, np.ndarray))
            if as_array:
                ref = f"{len(arrays):04d}_{name}.{key}"
                arrays[ref] = np.ascontiguousarray(val, dtype=np.int64)
                rec[key] = {"array": ref}
            else:
                rec[key] = _jsonable(val)
        header["nodes"].append(rec)
    return header, arrays


def _jsonable(val: Any) -> Any:
    if isinstance(val, dict):
        return {str(k): _jsonable(v) for k, v in val.items()}
    if isinstance(val, (list, tuple)):
        return [_jsonable(v) for v in val]
    if isinstance(val, np.ndarray):
        return val.tolist()
    if isinstance(val, np.generic):
        return val.item()
    return val


# ----- load --------------------------------------------------------------------------------


def load_qgraph(path: str | Path, cls: type[QGraph] | None = None) -> QGraph:
    """Read and validate a ``.qgraph`` file as a ``cls`` (default :class:`QGraph`)."""
    if cls is None:
        from snn2hw.quant.qgraph import QGraph  # lazy: qgraph imports this module

        cls = QGraph
    path = Path(path)
    if not path.is_file():
        raise GraphError(f"quantized graph file not found: {path}")
    try:
        with zipfile.ZipFile(path) as zf:
            _check_sizes(zf, path)
            header = json.loads(zf.read("graph.json"))
            _check_header(header, path)
            nodes = _decode_nodes(zf, header["nodes"], path)
            g = cls(
                nodes=nodes,
                edges=[(str(s), str(d)) for s, d in header["edges"]],
                dt=float(header["dt"]),
                target=str(header["target"]),
                num_steps=int(header["num_steps"]),
                metadata=dict(header.get("metadata", {})),
                formats=_decode_formats(header, path),
                folder=path.resolve().parent,
            )
    except GraphError:
        raise
    except _CORRUPT as exc:
        raise GraphError(
            f"{path}: corrupt or truncated quantized graph ({type(exc).__name__}: {exc}); "
            "re-run `snn2hw export`"
        ) from None
    return g.validate()


# Largest total of uncompressed member bytes a .qgraph may declare (a few-MB zip of deflated
# zeros can declare gigabytes); override with SNN2HW_MAX_QGRAPH_BYTES.
MAX_QGRAPH_BYTES = 2 * 2**30


def _check_sizes(zf: zipfile.ZipFile, path: Path) -> None:
    """Refuse an archive whose members declare more than the limit, before inflating any."""
    limit = int(os.environ.get("SNN2HW_MAX_QGRAPH_BYTES", MAX_QGRAPH_BYTES))
    infos = zf.infolist()
    total = sum(i.file_size for i in infos)
    if total > limit:
        big = max(infos, key=lambda i: i.file_size)
        raise GraphError(
            f"{path}: the archive declares {total / 2**20:.0f} MiB uncompressed (largest "
            f"member {big.filename!r}, {big.file_size / 2**20:.0f} MiB), over the "
            f"{limit / 2**20:.0f} MiB limit; set SNN2HW_MAX_QGRAPH_BYTES to allow it"
        )


def _check_header(header: Any, path: Path) -> None:
    """A JSON object with our format name and a version this code can read."""
    if not isinstance(header, dict):
        raise GraphError(f"{path}: graph.json must hold an object")
    if header.get("format") != FORMAT_NAME:
        raise GraphError(f"{path}: not a snn2hw quantized graph (format field)")
    if int(header.get("version", -1)) > FORMAT_VERSION:
        raise GraphError(
            f"{path}: quantized graph format version {header.get('version')} is newer "
            f"than this snn2hw supports ({FORMAT_VERSION}); upgrade snn2hw"
        )


def _decode_formats(header: dict[str, Any], path: Path) -> NumberFormats:
    """The recorded number formats; Loihi's for files written before they were recorded."""
    if "formats" not in header:
        if int(header.get("version", 1)) >= 2:
            raise GraphError(f"{path}: quantized graph version {header['version']} lacks "
                             "its number formats")
        return LOIHI_FORMATS
    return NumberFormats.from_dict(header["formats"], f"{path}: formats")


def _decode_nodes(zf: zipfile.ZipFile, records: list[Any], path: Path) -> dict[str, Node]:
    """Node objects from their header records, arrays read without unpickling."""
    nodes: dict[str, Node] = {}
    for rec in records:
        kind = rec.get("kind")
        if kind not in NODE_TYPES:
            raise GraphError(f"{path}: node {rec.get('name')!r} has unknown kind {kind!r}")
        kwargs = {}
        for key, val in rec.items():
            if isinstance(val, dict) and "array" in val:
                with zf.open(f"arrays/{val['array']}.npy") as fh:
                    kwargs[key] = np.load(io.BytesIO(fh.read()), allow_pickle=False)
            elif isinstance(val, list):
                kwargs[key] = tuple(val)
            else:
                kwargs[key] = val
        node = NODE_TYPES[kind](**kwargs)
        if node.name in nodes:
            raise GraphError(f"{path}: two nodes are called {node.name!r}")
        nodes[node.name] = node
    return nodes
