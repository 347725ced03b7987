"""Reading NIR node fields as plain Python/numpy values.

Exporters leave torch tensors in in-memory graphs, h5py gives bytes and numpy scalars back,
and NIR stores some fields either as an int or as a sequence; these helpers turn all of that
into numpy arrays, int tuples and plain metadata dicts, and nothing else.

May import: ``nir``, ``numpy`` and :mod:`snn2hw.common`.
"""

from __future__ import annotations

from typing import Any

import nir
import numpy as np

from snn2hw.common.errors import GraphError

#: Node fields that describe types or carry metadata, not parameters.
TYPE_FIELDS = ("input_type", "output_type", "metadata")


def as_array(x: Any) -> np.ndarray:
    """A NIR field as a numpy array (exporters leave torch tensors in in-memory graphs)."""
    if hasattr(x, "detach"):
        x = x.detach().cpu().numpy()
    return np.asarray(x)


def as_ints(x: Any, n: int, what: str, node: str) -> tuple[int, ...]:
    """An int or a sequence of ints as an ``n``-tuple (NIR stores both forms)."""
    a = np.atleast_1d(as_array(x)).reshape(-1)
    if a.size == 1:
        a = np.repeat(a, n)
    if a.size != n:
        raise GraphError(f"node '{node}': {what} must have {n} values, got {a.tolist()}")
    return tuple(int(v) for v in a)


def meta_value(v: Any) -> Any:
    """A metadata value as plain Python (h5py gives bytes and numpy scalars back)."""
    if isinstance(v, bytes):
        return v.decode("utf8")
    if isinstance(v, np.ndarray) and v.ndim == 0:
        v = v[()]
    if isinstance(v, np.generic):
        return v.item()
    return v


def graph_metadata(graph: nir.NIRGraph) -> dict[str, Any]:
    """The graph's metadata with plain Python values."""
    md = graph.metadata if isinstance(graph.metadata, dict) else {}
    return {str(k): meta_value(v) for k, v in md.items()}


def node_metadata(node: nir.NIRNode) -> dict[str, Any]:
    md = getattr(node, "metadata", None)
    return {str(k): meta_value(v) for k, v in md.items()} if isinstance(md, dict) else {}

