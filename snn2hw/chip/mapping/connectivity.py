"""Structural connectivity: which source neurons have a non-zero synapse onto which neurons.

For one LIF layer, every synapse path into it (``QGraph.synapse_paths``) is turned into a
0/1 sparse matrix, neuron x source neuron, one column block per spike source
(:class:`SourceBlock`). "Non-zero synapse": for ``dense`` the weight after Lava's sign-mode
clip and LSB truncation (docs/qgraph.md "Dense weight preparation": a mixed-sign 1 is 0); for
``conv`` a non-zero kernel tap whose input position lies inside the (unpadded) input;
``sumpool`` window taps likewise; ``flatten`` is the identity; a chain of operators (e.g.
sumpool -> flatten -> dense) is composed into one structural matrix. Big layers are built
in row chunks (at most ``_CHUNK_NNZ`` structural non-zeros at once).

Holds :class:`SourceBlock`, :class:`Connectivity`, :func:`connectivity`,
:func:`fan_in_counts` and the chunked builder ``_FanIn`` the partition walks.

May import: ``snn2hw.quant`` (graph nodes, dense weight preparation) and ``snn2hw.common``;
nothing else of ``snn2hw``.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from snn2hw.common.errors import GraphError
from snn2hw.quant.qgraph import (
    ConvNode,
    DenseNode,
    FlattenNode,
    LIFNode,
    QGraph,
    SumPoolNode,
)
from snn2hw.quant.weights import effective_dense_weight

_CHUNK_NNZ = 2_000_000  # structural non-zeros built at once; bounds memory on big conv layers


@dataclass(frozen=True)
class SourceBlock:
    """A spike source of a layer and its column range in the layer's connectivity matrix."""

    name: str
    offset: int
    size: int
    on_mesh: bool  # LIF neurons live on cores; external inputs are injected from outside


@dataclass
class Connectivity:
    """Structural synapses into one LIF layer: ``matrix[i, offset + j] = 1`` when source
    neuron j of a block has a non-zero synapse onto neuron i (canonical CSR, data all 1)."""

    layer: str
    sources: list[SourceBlock]
    matrix: sp.csr_matrix


def _csr(rows: np.ndarray, cols: np.ndarray, shape: tuple[int, int]) -> sp.csr_matrix:
    m = sp.csr_matrix(
        (np.ones(rows.size, dtype=np.int32), (rows, cols)), shape=shape, dtype=np.int32
    )
    m.sum_duplicates()
    m.data[:] = 1
    return m


def _grid_rows(
    taps: np.ndarray,
    groups: int,
    in_shape: tuple[int, int, int],
    out_shape: tuple[int, int, int],
    stride: tuple[int, int],
    padding: tuple[int, int],
    dilation: tuple[int, int],
    start: int,
    stop: int,
) -> sp.csr_matrix:
    """Rows [start, stop) of the structure of a 2-D convolution-like operator.

    ``taps`` is bool (C_out, C_in/groups, kH, kW): which kernel taps are non-zero. Output
    neuron (co, oy, ox) connects to input (g*C_in/groups + ci, oy*s - p + ky*d, ...) for
    every non-zero tap that lands inside the input (zero padding has no synapse)."""
    c_in, h, w = in_shape
    c_out, oh, ow = out_shape
    cg = taps.shape[1]
    out_per_group = c_out // groups
    plane = oh * ow
    rows_l: list[np.ndarray] = []
    cols_l: list[np.ndarray] = []
    for co in range(start // plane, (stop - 1) // plane + 1):
        r0, r1 = max(start, co * plane), min(stop, (co + 1) * plane)
        ci, ky, kx = np.nonzero(taps[co])
        if ci.size == 0:
            continue
        pos = np.arange(r0 - co * plane, r1 - co * plane)
        oy, ox = pos // ow, pos % ow
        iy = oy[:, None] * stride[0] - padding[0] + ky[None, :] * dilation[0]
        ix = ox[:, None] * stride[1] - padding[1] + kx[None, :] * dilation[1]
        ok = (iy >= 0) & (iy < h) & (ix >= 0) & (ix < w)
        chan = (co // out_per_group) * cg + ci
        col = (chan[None, :] * h + iy) * w + ix
        row = np.broadcast_to((pos + co * plane - start)[:, None], col.shape)
        rows_l.append(row[ok])
        cols_l.append(col[ok])
    rows = np.concatenate(rows_l) if rows_l else np.zeros(0, np.int64)
    cols = np.concatenate(cols_l) if cols_l else np.zeros(0, np.int64)
    return _csr(rows, cols, (stop - start, c_in * h * w))


class _Ops:
    """Structural matrices (out x in, 0/1) of synaptic operators, with caches."""

    def __init__(self, graph: QGraph) -> None:
        self.graph = graph
        self._dense: dict[str, sp.csr_matrix] = {}
        self._full: dict[str, sp.csr_matrix] = {}

    def size_in(self, name: str) -> int:
        node = self.graph.nodes[name]
        return int(np.prod(node.in_shape))

    def size_out(self, name: str) -> int:
        node = self.graph.nodes[name]
        return int(np.prod(node.out_shape))

    def row_nnz_bound(self, name: str) -> int:
        node = self.graph.nodes[name]
        if isinstance(node, DenseNode):
            return int(node.weight.shape[1])
        if isinstance(node, ConvNode):
            return int(np.prod(node.weight.shape[1:]))
        if isinstance(node, SumPoolNode):
            return int(node.kernel_size[0] * node.kernel_size[1])
        return 1

    def rows(self, name: str, start: int, stop: int) -> sp.csr_matrix:
        node = self.graph.nodes[name]
        if isinstance(node, DenseNode):
            if name not in self._dense:
                wp = effective_dense_weight(np.asarray(node.weight), node.num_weight_bits,
                                           self.graph.formats)
                self._dense[name] = sp.csr_matrix((wp != 0).astype(np.int32))
            return self._dense[name][start:stop]
        if isinstance(node, ConvNode):
            return _grid_rows(
                np.asarray(node.weight) != 0, node.groups, tuple(node.input_shape),
                node.out_shape, tuple(node.stride), tuple(node.padding),
                tuple(node.dilation), start, stop,
            )
        if isinstance(node, SumPoolNode):
            c = node.input_shape[0]
            taps = np.ones((c, 1, *node.kernel_size), dtype=bool)
            return _grid_rows(
                taps, c, tuple(node.input_shape), node.out_shape, tuple(node.stride),
                tuple(node.padding), (1, 1), start, stop,
            )
        if isinstance(node, FlattenNode):
            r = np.arange(start, stop)
            return _csr(r - start, r, (stop - start, self.size_in(name)))
        raise GraphError(f"node '{name}' ({node.kind}) is not a synaptic operator")

    def full(self, name: str) -> sp.csr_matrix:
        if name not in self._full:
            self._full[name] = self.rows(name, 0, self.size_out(name))
        return self._full[name]


def _source_size(graph: QGraph, name: str) -> int:
    node = graph.nodes[name]
    return int(np.prod(node.shape))


class _FanIn:
    """Structural connectivity of one LIF layer, produced in row chunks."""

    def __init__(self, graph: QGraph, ops: _Ops, layer: str) -> None:
        node = graph.nodes[layer]
        if not isinstance(node, LIFNode):
            raise GraphError(f"'{layer}' is not a LIF layer")
        self.layer = layer
        self.n = int(np.prod(node.shape))
        self.ops = ops
        self.sources: list[SourceBlock] = []
        index: dict[str, int] = {}
        offset = 0
        # per block: list of (pre-composed matrix or None, last op or None)
        self.paths: list[list[tuple[sp.csr_matrix | None, str | None]]] = []
        for path in graph.synapse_paths(layer):
            src, chain = path[0], path[1:]
            if src not in index:
                size = _source_size(graph, src)
                on_mesh = isinstance(graph.nodes[src], LIFNode)
                index[src] = len(self.sources)
                self.sources.append(SourceBlock(src, offset, size, on_mesh))
                self.paths.append([])
                offset += size
            pre: sp.csr_matrix | None = None
            for op in chain[:-1]:
                m = ops.full(op)
                pre = m if pre is None else _bool_mm(m, pre)
            self.paths[index[src]].append((pre, chain[-1] if chain else None))
        self.ncols = offset
        bound = 1
        for block in self.paths:
            for pre, last in block:
                b = ops.row_nnz_bound(last) if last else 1
                if pre is not None and pre.nnz:
                    b *= int(np.diff(pre.indptr).max())
                bound = max(bound, b)
        self.rows_per_chunk = max(1, min(self.n, _CHUNK_NNZ // bound))

    def chunk(self, start: int, stop: int) -> sp.csr_matrix:
        blocks = []
        for src, paths in zip(self.sources, self.paths, strict=True):
            acc: sp.csr_matrix | None = None
            for pre, last in paths:
                if last is None:  # a LIF fed straight by a source: identity synapses
                    r = np.arange(start, stop)
                    m = _csr(r - start, r, (stop - start, src.size))
                else:
                    m = self.ops.rows(last, start, stop)
                    if pre is not None:
                        m = _bool_mm(m, pre)
                acc = m if acc is None else acc + m
            blocks.append(acc)
        out = sp.hstack(blocks, format="csr", dtype=np.int32) if len(blocks) > 1 else blocks[0]
        out = sp.csr_matrix(out)
        out.sum_duplicates()
        out.data[:] = 1
        out.sort_indices()
        return out

    def chunks(self) -> Iterator[tuple[int, sp.csr_matrix]]:
        for start in range(0, self.n, self.rows_per_chunk):
            yield start, self.chunk(start, min(self.n, start + self.rows_per_chunk))


def _bool_mm(a: sp.csr_matrix, b: sp.csr_matrix) -> sp.csr_matrix:
    m = sp.csr_matrix(a @ b)
    m.sum_duplicates()
    m.eliminate_zeros()
    m.data[:] = 1
    return m


def connectivity(graph: QGraph, layer: str) -> Connectivity:
    """Full structural connectivity into LIF layer ``layer`` (may be large for big convs)."""
    fan = _FanIn(graph, _Ops(graph), layer)
    return Connectivity(layer, fan.sources, fan.chunk(0, fan.n))


def fan_in_counts(graph: QGraph, layer: str) -> np.ndarray:
    """Per neuron of ``layer`` (C-order): number of source neurons with a non-zero synapse."""
    fan = _FanIn(graph, _Ops(graph), layer)
    parts = [np.diff(m.indptr) for _, m in fan.chunks()]
    return np.concatenate(parts).astype(np.int64)
