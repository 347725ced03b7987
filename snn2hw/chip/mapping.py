"""Resource mapping: place each LIF layer of a quantized graph onto a target's neuro-cores.

Model (Loihi 1 style, limits from ``targets/<name>.toml`` ``[resources]``):

* A core holds neurons of ONE layer, a contiguous range in the layer's C-order flattening,
  at most ``neurons_per_core`` of them.
* **Input axons** of a core: distinct source neurons (inputs or LIF neurons, over all
  synapse paths into the layer) with at least one non-zero synapse into the core's neurons.
* **Output axons** of a core: each of its neurons needs one output axon per destination
  core it reaches (one spike message per destination core); summed over the core.
  External inputs are injected from off the neuro-core mesh and use no output axons here.
* **Synaptic memory** of a core: non-zero synapses into its neurons x ``bits_per_synapse``,
  where ``bits_per_synapse = synapse_weight_bits + synapse_index_bits`` (Loihi 1: 8 + 10
  = 18). This is an ASSUMED, simplified model of Loihi's compressed synapse formats: every
  non-zero synapse is stored explicitly as weight + target-compartment index; conv weight
  sharing is not credited.
* "Non-zero synapse": for ``dense`` the weight after Lava's sign-mode clip and LSB
  truncation (SPEC.md §2; a mixed-sign weight of 1 is 0 on the chip); for ``conv`` a
  non-zero kernel tap whose input position lies inside the (unpadded) input; ``sumpool``
  window taps likewise; a chain of operators (e.g. sumpool -> flatten -> dense) is
  composed into one structural matrix.

Partition: greedy contiguous, O(neurons) per layer: extend the current core neuron by
neuron while every limit still holds, else open a new core. Every limit is monotone in the
range, so this gives the fewest cores of any contiguous partition. Output axons depend on
the destination layers' partitions, so layers are first split on input-side limits, then
any layer whose cores exceed ``output_axons_per_core`` is re-split (bounded iterations).

Placement for routing energy: cores are numbered layer after layer; ``cores_per_tile``
cores share a mesh tile; tiles fill a chip's square-ish grid in snake order, chips fill a
square-ish grid of chips the same way. A spike from core a to core b crosses
``|dx|`` east-west and ``|dy|`` north-south tile hops (dimension-order routing).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import scipy.sparse as sp

from snn2hw.chip.targets import Target
from snn2hw.common.errors import GraphError, ResourceError
from snn2hw.quant.qgraph import (
    ConvNode,
    DenseNode,
    FlattenNode,
    LIFNode,
    QGraph,
    SumPoolNode,
)
from snn2hw.quant.weights import effective_dense_weight

__all__ = [
    "Connectivity",
    "CoreUse",
    "Hops",
    "LayerMapping",
    "Mapping",
    "SourceBlock",
    "SpikeRouting",
    "connectivity",
    "fan_in_counts",
    "format_mapping",
    "map_to_cores",
    "spike_hops",
]

_CHUNK_NNZ = 2_000_000  # structural non-zeros built at once; bounds memory on big conv layers
_REASONS = ("neurons", "input_axons", "synaptic_memory", "output_axons")


# ----- structural connectivity ----------------------------------------------------------------
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
                wp = effective_dense_weight(np.asarray(node.weight), node.num_weight_bits)
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


# ----- partition ------------------------------------------------------------------------------
@dataclass
class CoreUse:
    """One core: a contiguous neuron range of one layer and what it uses."""

    core: int  # global core index
    start: int
    stop: int
    input_axons: int
    synapses: int
    synaptic_memory_bits: int
    output_axons: int = 0

    @property
    def neurons(self) -> int:
        return self.stop - self.start


@dataclass
class _Limits:
    neurons: int
    input_axons: int
    output_axons: int
    memory_bits: int
    bits_per_synapse: int


@dataclass
class _Part:
    cores: list[CoreUse]
    axons: list[np.ndarray]  # per core: columns (source space) of its input axons
    reasons: list[str]
    max_fan_in: int


def _partition(
    fan: _FanIn, lim: _Limits, out_need: np.ndarray | None
) -> _Part:
    """Greedy contiguous partition of one layer (see module docstring)."""
    layer = fan.layer
    bits = lim.bits_per_synapse
    covered = np.zeros(fan.ncols, dtype=bool)
    cores: list[CoreUse] = []
    axon_sets: list[np.ndarray] = []
    reasons: list[str] = []
    parts: list[np.ndarray] = []
    start = n = ax = syn = out = 0
    max_fan_in = 0

    def close(stop: int) -> None:
        axons = np.concatenate(parts) if parts else np.zeros(0, np.int64)
        covered[axons] = False
        axon_sets.append(axons)
        cores.append(CoreUse(-1, start, stop, ax, syn, syn * bits, out))

    for row0, chunk in fan.chunks():
        ptr, idx = chunk.indptr, chunk.indices
        for k in range(chunk.shape[0]):
            i = row0 + k
            cols = idx[ptr[k] : ptr[k + 1]]
            s = int(cols.size)
            need = int(out_need[i]) if out_need is not None else 0
            max_fan_in = max(max_fan_in, s)
            if s > lim.input_axons:
                raise ResourceError(
                    f"layer '{layer}': one neuron (index {i}) needs {s} input axons, a core "
                    f"has {lim.input_axons} (over by {s - lim.input_axons})"
                )
            if s * bits > lim.memory_bits:
                raise ResourceError(
                    f"layer '{layer}': one neuron (index {i}) needs {s} synapses x {bits} bits "
                    f"= {s * bits} bits of synaptic memory, a core has {lim.memory_bits} "
                    f"(over by {s * bits - lim.memory_bits})"
                )
            if need > lim.output_axons:
                raise ResourceError(
                    f"layer '{layer}': one neuron (index {i}) reaches {need} cores and needs "
                    f"{need} output axons, a core has {lim.output_axons} "
                    f"(over by {need - lim.output_axons})"
                )
            fresh = cols[~covered[cols]]
            reason = ""
            if n + 1 > lim.neurons:
                reason = "neurons"
            elif ax + fresh.size > lim.input_axons:
                reason = "input_axons"
            elif (syn + s) * bits > lim.memory_bits:
                reason = "synaptic_memory"
            elif out + need > lim.output_axons:
                reason = "output_axons"
            if reason:
                close(i)
                reasons.append(reason)
                start, n, ax, syn, out, parts = i, 0, 0, 0, 0, []
                fresh = cols
            covered[fresh] = True
            parts.append(fresh)
            n += 1
            ax += int(fresh.size)
            syn += s
            out += need
    close(fan.n)
    return _Part(cores, axon_sets, reasons, max_fan_in)


# ----- results --------------------------------------------------------------------------------
@dataclass
class LayerMapping:
    """How one LIF layer is spread over cores."""

    name: str
    shape: tuple[int, ...]
    cores: list[CoreUse]
    max_fan_in: int  # largest number of source neurons of a single neuron
    limited_by: str  # the limit that most often closed a core ("" when one core suffices)

    @property
    def neurons(self) -> int:
        return int(np.prod(self.shape))

    @property
    def num_cores(self) -> int:
        return len(self.cores)

    @property
    def first_core(self) -> int:
        return self.cores[0].core

    @property
    def neurons_per_core(self) -> list[int]:
        return [c.neurons for c in self.cores]

    @property
    def max_input_axons(self) -> int:
        return max(c.input_axons for c in self.cores)

    @property
    def max_output_axons(self) -> int:
        return max(c.output_axons for c in self.cores)

    @property
    def synapses(self) -> int:
        return sum(c.synapses for c in self.cores)

    @property
    def max_synaptic_memory_bits(self) -> int:
        return max(c.synaptic_memory_bits for c in self.cores)

    @property
    def total_synaptic_memory_bits(self) -> int:
        return sum(c.synaptic_memory_bits for c in self.cores)

    def core_of(self, neurons: np.ndarray | int) -> np.ndarray:
        """Global core index of each neuron index (C-order) of this layer."""
        starts = np.array([c.start for c in self.cores])
        return self.first_core + np.searchsorted(starts, np.asarray(neurons), side="right") - 1

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "shape": list(self.shape),
            "neurons": self.neurons,
            "cores": self.num_cores,
            "first_core": self.first_core,
            "max_fan_in": self.max_fan_in,
            "limited_by": self.limited_by,
            "synapses": self.synapses,
            "max_neurons_per_core": max(self.neurons_per_core),
            "max_input_axons": self.max_input_axons,
            "max_output_axons": self.max_output_axons,
            "max_synaptic_memory_bits": self.max_synaptic_memory_bits,
            "total_synaptic_memory_bits": self.total_synaptic_memory_bits,
            "per_core": {
                "neurons": self.neurons_per_core,
                "input_axons": [c.input_axons for c in self.cores],
                "output_axons": [c.output_axons for c in self.cores],
                "synapses": [c.synapses for c in self.cores],
                "synaptic_memory_bits": [c.synaptic_memory_bits for c in self.cores],
            },
        }


@dataclass(frozen=True)
class Hops:
    """Tile hops of one route: east-west (x) and north-south (y)."""

    ew: int
    ns: int

    @property
    def total(self) -> int:
        return self.ew + self.ns


def _snake(i: np.ndarray, width: int) -> tuple[np.ndarray, np.ndarray]:
    """Snake (boustrophedon) order on a grid ``width`` wide: consecutive indices adjacent."""
    y = i // width
    x = np.where(y % 2 == 0, i % width, width - 1 - i % width)
    return x, y


def _grid(n: int) -> tuple[int, int]:
    """(width, height) of a square-ish grid holding n cells: the most square exact
    factorisation, or a ceil(sqrt) square when n has no useful factorisation."""
    if n <= 0:
        return 1, 1
    h = max(d for d in range(1, math.isqrt(n) + 1) if n % d == 0)
    if h == 1 and n > 3:
        w = math.ceil(math.sqrt(n))
        return w, math.ceil(n / w)
    return n // h, h


@dataclass
class Mapping:
    """Result of :func:`map_to_cores`."""

    target: str
    layers: dict[str, LayerMapping]
    limits: dict[str, int]
    bits_per_synapse: int
    cores_per_chip: int
    cores_per_tile: int
    max_chips: int
    iterations: int = 1  # partition rounds needed to satisfy output-axon limits
    _routes: dict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict, repr=False)

    @property
    def total_cores(self) -> int:
        return sum(layer.num_cores for layer in self.layers.values())

    @property
    def chips(self) -> int:
        return math.ceil(self.total_cores / self.cores_per_chip)

    @property
    def tiles_per_chip(self) -> int:
        return math.ceil(self.cores_per_chip / self.cores_per_tile)

    def position(self, core: np.ndarray | int) -> tuple[np.ndarray, np.ndarray]:
        """Global tile coordinates (x, y) of core index/indices on the mesh of chips."""
        c = np.asarray(core, dtype=np.int64)
        tiles_x, tiles_y = _grid(self.tiles_per_chip)
        chips_x = math.ceil(math.sqrt(max(1, self.chips)))
        chip, local = np.divmod(c, self.cores_per_chip)
        tx, ty = _snake(local // self.cores_per_tile, tiles_x)
        cx, cy = _snake(chip, chips_x)
        return cx * tiles_x + tx, cy * tiles_y + ty

    def hops(self, src_core: int, dst_core: int) -> Hops:
        """Tile hops from ``src_core`` to ``dst_core`` (Manhattan, X then Y routing)."""
        (x0, y0), (x1, y1) = self.position(src_core), self.position(dst_core)
        return Hops(ew=int(abs(x1 - x0)), ns=int(abs(y1 - y0)))

    def destinations(self, source: str) -> tuple[np.ndarray, np.ndarray]:
        """CSR (indptr, cores): the destination cores of each neuron of ``source``."""
        if source not in self._routes and source in self.layers:
            # a layer whose spikes leave the mesh (network output): no destination cores
            n = self.layers[source].neurons
            return np.zeros(n + 1, dtype=np.int64), np.zeros(0, dtype=np.int64)
        if source not in self._routes:
            raise GraphError(
                f"'{source}' sends no spikes to any mapped layer; sources: "
                f"{', '.join(self._routes)}"
            )
        return self._routes[source]

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly summary (for ``--json``)."""
        tiles_x, tiles_y = _grid(self.tiles_per_chip)
        return {
            "target": self.target,
            "total_cores": self.total_cores,
            "chips": self.chips,
            "cores_per_chip": self.cores_per_chip,
            "max_chips": self.max_chips,
            "limits_per_core": dict(self.limits),
            "bits_per_synapse": self.bits_per_synapse,
            "mesh": {"cores_per_tile": self.cores_per_tile, "tiles_per_chip_x": tiles_x,
                     "tiles_per_chip_y": tiles_y},
            "iterations": self.iterations,
            "layers": [layer.to_dict() for layer in self.layers.values()],
            "assumptions": [
                f"synaptic memory = non-zero synapses x {self.bits_per_synapse} bits "
                "(weight + target index; simplified model, no weight sharing)",
                "one layer per core; contiguous neuron ranges in C order",
                "external inputs are injected from off the mesh (no cores, no output axons)",
            ],
        }


# ----- mapping --------------------------------------------------------------------------------
def _limits(target: Target) -> _Limits:
    r = target.resources
    return _Limits(
        neurons=r.neurons_per_core,
        input_axons=r.input_axons_per_core,
        output_axons=r.output_axons_per_core,
        memory_bits=r.synaptic_memory_bits_per_core,
        bits_per_synapse=r.bits_per_synapse,
    )


def _out_need(
    graph: QGraph, fans: dict[str, _FanIn], parts: dict[str, _Part]
) -> dict[str, np.ndarray]:
    """Per source LIF neuron: number of destination cores it reaches (= output axons)."""
    need = {
        name: np.zeros(_source_size(graph, name), dtype=np.int64)
        for name, node in graph.nodes.items()
        if isinstance(node, LIFNode)
    }
    for dst, fan in fans.items():
        offsets = np.array([b.offset for b in fan.sources])
        for axons in parts[dst].axons:
            which = np.searchsorted(offsets, axons, side="right") - 1
            for b, block in enumerate(fan.sources):
                if block.on_mesh:
                    local = axons[which == b] - block.offset
                    np.add.at(need[block.name], local, 1)
    return need


def _chip_check(target: Target, layers: list[tuple[str, int]]) -> None:
    """Raise when the cumulative core count passes cores_per_chip x max_chips."""
    r = target.resources
    total = 0
    for name, ncores in layers:
        total += ncores
        chips = math.ceil(total / r.cores_per_chip)
        if chips > r.max_chips:
            raise ResourceError(
                f"layer '{name}' brings the model to {total} cores = {chips} chips of "
                f"{r.cores_per_chip} cores; target '{target.name}' has at most "
                f"{r.max_chips} chip(s) (over by {chips - r.max_chips} chip(s))"
            )


def map_to_cores(graph: QGraph, target: Target) -> Mapping:
    """Partition every LIF layer of ``graph`` onto ``target``'s cores within its limits.

    Raises :class:`ResourceError` naming the layer, the limit and the overflow when a
    single neuron cannot fit a core or the model needs more chips than the target has."""
    graph.validate()
    lim = _limits(target)
    ops = _Ops(graph)
    lif_names = [n.name for n in graph.lif_nodes]
    if not lif_names:
        raise GraphError("quantized graph has no LIF layer to map")
    fans: dict[str, _FanIn] = {}
    parts: dict[str, _Part] = {}
    done: list[tuple[str, int]] = []
    for name in lif_names:
        fans[name] = _FanIn(graph, ops, name)
        parts[name] = _partition(fans[name], lim, None)
        done.append((name, len(parts[name].cores)))
        _chip_check(target, done)  # stop early: later layers only add cores

    # Output axons depend on destination partitions; re-split offending source layers.
    # Re-splitting a layer changes its own input-axon sets (hence its sources' needs), so
    # iterate, destinations first. Feed-forward graphs settle in a few rounds; recurrent
    # ones could in principle oscillate, hence the bound.
    max_rounds = 2 * len(lif_names) + 2
    rounds = 1
    while True:
        need = _out_need(graph, fans, parts)
        bad = [
            name
            for name in lif_names
            if any(
                int(need[name][c.start : c.stop].sum()) > lim.output_axons
                for c in parts[name].cores
            )
        ]
        if not bad:
            break
        if rounds > max_rounds:
            raise ResourceError(
                f"layer '{bad[0]}': could not satisfy {lim.output_axons} output axons per "
                f"core after {max_rounds} re-partitioning rounds"
            )
        for name in reversed(bad):
            parts[name] = _partition(fans[name], lim, need[name])
        rounds += 1
        _chip_check(target, [(n, len(parts[n].cores)) for n in lif_names])

    layers: dict[str, LayerMapping] = {}
    next_core = 0
    for name in lif_names:
        part = parts[name]
        for k, core in enumerate(part.cores):
            core.core = next_core + k
            core.output_axons = int(need[name][core.start : core.stop].sum())
        next_core += len(part.cores)
        reasons = part.reasons
        limited = max(_REASONS, key=reasons.count) if reasons else ""
        node = graph.nodes[name]
        layers[name] = LayerMapping(name, tuple(node.shape), part.cores, part.max_fan_in, limited)

    r = target.resources
    mapping = Mapping(
        target=target.name,
        layers=layers,
        limits={
            "neurons": lim.neurons,
            "input_axons": lim.input_axons,
            "output_axons": lim.output_axons,
            "synaptic_memory_bits": lim.memory_bits,
        },
        bits_per_synapse=lim.bits_per_synapse,
        cores_per_chip=r.cores_per_chip,
        cores_per_tile=r.cores_per_tile,
        max_chips=r.max_chips,
        iterations=rounds,
    )
    mapping._routes = _routes(graph, fans, parts, layers)
    return mapping


def _routes(
    graph: QGraph,
    fans: dict[str, _FanIn],
    parts: dict[str, _Part],
    layers: dict[str, LayerMapping],
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Per source node: CSR from source neuron to the destination cores it reaches."""
    pairs: dict[str, list[tuple[np.ndarray, np.ndarray]]] = {}
    for dst, fan in fans.items():
        offsets = np.array([b.offset for b in fan.sources])
        for core, axons in zip(layers[dst].cores, parts[dst].axons, strict=True):
            which = np.searchsorted(offsets, axons, side="right") - 1
            for b, block in enumerate(fan.sources):
                local = axons[which == b] - block.offset
                if local.size:
                    pairs.setdefault(block.name, []).append(
                        (local, np.full(local.size, core.core, dtype=np.int64))
                    )
    routes = {}
    for src, lst in pairs.items():
        neurons = np.concatenate([p[0] for p in lst])
        cores = np.concatenate([p[1] for p in lst])
        # stable sort keeps each neuron's cores in increasing order (appended core by core)
        order = np.argsort(neurons, kind="stable")
        counts = np.bincount(neurons, minlength=_source_size(graph, src))
        indptr = np.concatenate([[0], np.cumsum(counts)])
        routes[src] = (indptr, cores[order])
    return routes


# ----- routing activity -----------------------------------------------------------------------
@dataclass(frozen=True)
class SpikeRouting:
    """Routed spike traffic of one source layer.

    ``deliveries``: spike messages, one per (spike, destination core). ``within_tile``:
    those whose destination core shares the source's tile. ``hops_ew`` / ``hops_ns``: tile
    hops summed over all deliveries; ``chip_crossings``: deliveries that leave the source's
    chip (their hops are included; no inter-chip energy constant exists). For external
    inputs (``source_on_mesh`` false) only deliveries are counted."""

    source: str
    deliveries: int
    within_tile: int
    hops_ew: int
    hops_ns: int
    chip_crossings: int
    source_on_mesh: bool


def spike_hops(mapping: Mapping, source: str, spike_counts: np.ndarray) -> SpikeRouting:
    """Route ``spike_counts`` (spikes per neuron of ``source``, any shape of that layer,
    C-order) to their destination cores and count deliveries and tile hops."""
    indptr, cores = mapping.destinations(source)
    n = indptr.size - 1
    counts = np.asarray(spike_counts).reshape(-1).astype(np.int64)
    if counts.size != n:
        raise GraphError(
            f"spike counts for '{source}' have {counts.size} entries, the layer has {n} neurons"
        )
    owner = np.repeat(np.arange(n), np.diff(indptr))  # source neuron of each route
    weight = counts[owner]
    deliveries = int(weight.sum())
    layer = mapping.layers.get(source)
    if layer is None:  # external input: injected from off the mesh
        return SpikeRouting(source, deliveries, 0, 0, 0, 0, False)
    src_core = layer.core_of(owner)
    x0, y0 = mapping.position(src_core)
    x1, y1 = mapping.position(cores)
    chip0, local0 = np.divmod(src_core, mapping.cores_per_chip)
    chip1, local1 = np.divmod(cores, mapping.cores_per_chip)
    other_chip = chip0 != chip1
    same_tile = ~other_chip & (
        local0 // mapping.cores_per_tile == local1 // mapping.cores_per_tile
    )
    return SpikeRouting(
        source=source,
        deliveries=deliveries,
        within_tile=int(weight[same_tile].sum()),
        hops_ew=int((weight * np.abs(x1 - x0)).sum()),
        hops_ns=int((weight * np.abs(y1 - y0)).sum()),
        chip_crossings=int(weight[other_chip].sum()),
        source_on_mesh=True,
    )


# ----- display --------------------------------------------------------------------------------
def format_mapping(mapping: Mapping) -> str:
    """A table of the mapping (``snn2hw`` CLI)."""
    head = ("layer", "neurons", "cores", "neurons/core", "in-axons", "out-axons",
            "synapses", "syn.mem/core", "syn.mem total", "limited by")
    rows = [head]
    for lm in mapping.layers.values():
        rows.append((
            lm.name, f"{lm.neurons:,}", str(lm.num_cores), f"{max(lm.neurons_per_core):,}",
            f"{lm.max_input_axons:,}", f"{lm.max_output_axons:,}", f"{lm.synapses:,}",
            _bits(lm.max_synaptic_memory_bits), _bits(lm.total_synaptic_memory_bits),
            lm.limited_by.replace("_", " ") or "-",
        ))
    total_syn = sum(lm.synapses for lm in mapping.layers.values())
    total_bits = sum(lm.total_synaptic_memory_bits for lm in mapping.layers.values())
    rows.append(("total", f"{sum(lm.neurons for lm in mapping.layers.values()):,}",
                 str(mapping.total_cores), "", "", "", f"{total_syn:,}", "",
                 _bits(total_bits), ""))
    widths = [max(len(r[i]) for r in rows) for i in range(len(head))]
    lines = [
        f"Mapping onto {mapping.target}: {mapping.total_cores} cores on {mapping.chips} "
        f"chip(s) ({mapping.cores_per_chip} cores per chip, at most {mapping.max_chips} chips)",
        "",
    ]
    for k, r in enumerate(rows):
        cells = [r[0].ljust(widths[0])]
        cells += [c.rjust(w) for c, w in zip(r[1:], widths[1:], strict=True)]
        lines.append("  ".join(cells).rstrip())
        if k == 0 or k == len(rows) - 2:
            lines.append("  ".join("-" * w for w in widths))
    lim = mapping.limits
    lines += [
        "",
        f"Per core: {lim['neurons']:,} neurons, {lim['input_axons']:,} input axons, "
        f"{lim['output_axons']:,} output axons, {_bits(lim['synaptic_memory_bits'])} synaptic "
        f"memory. Columns show the per-core maximum.",
        f"Assumed: {mapping.bits_per_synapse} bits per non-zero synapse (weight + index); one "
        "layer per core; inputs injected from off the mesh.",
    ]
    return "\n".join(lines)


def _bits(b: int) -> str:
    return f"{b / 8192:,.1f} KiB" if b >= 8192 else f"{b:,} b"
