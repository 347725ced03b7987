"""The event simulator's plan of a graph (:mod:`snn2hw.backends.event`): its synapse paths
and the operator of each weighted node, the layout of every value (channels-last or C
order, :func:`layouts`), which convs run fused with their LIF, and the LIF list; plus the
cache of plans (:data:`PLANS`), re-prepared when a graph's content changes
(:func:`graph_fingerprint`).

May import: numpy, ``snn2hw.common``, ``snn2hw.quant``, ``snn2hw.backends.base`` and the
event simulator's own modules; never torch or another backend.
"""

from __future__ import annotations

import dataclasses
import threading
import weakref
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from snn2hw.backends import event_kernels as K
from snn2hw.backends import event_kernels_lif as lif_k
from snn2hw.backends.base import UnsupportedFormatsError, check_int64_formats
from snn2hw.backends.event_ops import (
    ConvOp,
    DelayDenseOp,
    DenseOp,
    IdentityOp,
    Op,
    PoolOp,
    chw_order,
    has_mixed_delays,
)
from snn2hw.common.errors import GraphError
from snn2hw.quant.bounds import METADATA_KEY as LIMITS_KEY
from snn2hw.quant.bounds import check_graph as check_chip_limits_of
from snn2hw.quant.formats import NumberFormats
from snn2hw.quant.qgraph import (
    ConvNode,
    DenseNode,
    FlattenNode,
    InputNode,
    LIFNode,
    QGraph,
    SumPoolNode,
)

# Steps per call of a run that need not go step by step (Plan.chunk_steps): the rows an
# operator writes for the next kernel to read (int64 sums, and counts where read) stay
# within this many bytes, half a core's L2 cache: larger chunks were slower (measured on the
# benchmark nets: the MLP at batch 64 1.6x slower with 4 MB, its sums in L3 between the
# dense and the LIF kernel); and at most this many steps (beyond a few dozen the per-call
# cost is gone).
CHUNK_BYTES = 512 << 10
CHUNK_MAX = 32


@dataclass
class Lif:
    """A LIF node as the time loop runs it: its paths in, bias in its layout, kernels."""

    node: LIFNode
    size: int
    terms: list[str]  # terminal operator key of each path (its value reaches the LIF)
    path_ops: list[str]  # every weighted operator of every path (with multiplicity)
    bias: np.ndarray
    macs: int
    kernels: lif_k.LifKernels  # of its overflow modes and decay case (single spikes)
    consts: tuple[int, ...]  # lif_k.lif_consts

    @property
    def state_dtype(self) -> np.dtype:
        """The integer type of its state ``u``/``v``, the same as its bias: int64, or int32
        where the plan proved every value of its step fits (``lif_k.lif_narrow``)."""
        return self.bias.dtype


def identity_gather(src_shape: tuple[int, ...], src_hwc: bool, dst_shape: tuple[int, ...],
                     dst_hwc: bool) -> np.ndarray | None:
    """For an identity path (the same values, flat in C order) from a source stored in one
    layout into a LIF stored in another: the stored source position of each stored LIF
    position (None where the two orders agree)."""
    dst_c = chw_order(dst_shape) if dst_hwc else None  # C index of each stored LIF position
    if not src_hwc:
        return dst_c
    src_pos = np.argsort(chw_order(src_shape))  # stored source position of each C index
    gather = src_pos if dst_c is None else src_pos[dst_c]
    return None if np.array_equal(gather, np.arange(gather.size)) else gather


def layouts(op_nodes: dict[str, Any], lif_paths: list[tuple[LIFNode, list[str]]]
             ) -> dict[str, bool]:
    """Which values are stored channels-last (:mod:`snn2hw.backends.event`, "Layouts"):
    every conv and sumpool output and every 3-D LIF, except where a LIF and a term
    delivering to it cannot share the layout (a dense term, an operator of another shape,
    an operator that is also a term of a C-order LIF); identity terms gather whatever the
    layouts. Flags only turn off, so the loop ends."""
    hwc = {key: isinstance(n, (ConvNode, SumPoolNode)) for key, n in op_nodes.items()}
    for node, _ in lif_paths:
        hwc[node.name] = len(node.shape) == 3
    changed = True
    while changed:
        changed = False
        for node, terms in lif_paths:
            for t in terms:
                n = op_nodes[t]
                if n is None:
                    continue
                same = (isinstance(n, (ConvNode, SumPoolNode))
                        and tuple(n.out_shape) == tuple(node.shape))
                if hwc[node.name] and not (same and hwc[t]):
                    hwc[node.name] = False
                    changed = True
                if not hwc[node.name] and hwc[t]:
                    hwc[t] = False
                    changed = True
    return hwc


class Plan:
    """The graph compiled for one run: prepared operators, their inputs, the LIF list, the
    layout of every value (``hwc``: stored channels-last)."""

    def __init__(self, graph: QGraph) -> None:
        self.input = graph.input_node
        self.op_input: dict[str, str] = {}  # op key -> key of what feeds it (op or source)
        self.need_cnt: set[str] = set()
        self.sources: dict[str, int] = {self.input.name: int(np.prod(self.input.shape))}
        for node in graph.lif_nodes:
            self.sources[node.name] = int(np.prod(node.shape))
        # 1. the synapse paths: operator nodes (None: an identity path), their inputs, terms
        op_nodes: dict[str, Any] = {}
        lif_paths: list[tuple[LIFNode, list[str]]] = []
        path_ops_of: dict[str, list[str]] = {}
        for node in graph.lif_nodes:
            terms: list[str] = []
            path_ops: list[str] = []
            for path in graph.synapse_paths(node.name):
                src, chain = path[0], path[1:]
                prev = src
                weighted: list[str] = []
                for name in chain:
                    n = graph.nodes[name]
                    if isinstance(n, FlattenNode):
                        continue  # values are kept flat: flatten is the identity
                    if not isinstance(n, (DenseNode, ConvNode, SumPoolNode)):
                        raise GraphError(
                            f"node '{n.name}' ({n.kind}) cannot sit on a synapse path")
                    if name not in op_nodes:
                        op_nodes[name] = n
                        self.op_input[name] = prev
                    prev = name
                    weighted.append(name)
                if not weighted:  # source -> (flatten ...) -> lif
                    # NUL: cannot clash with a node name; per LIF: the gather is the LIF's
                    key = f"\0identity:{src}\0{node.name}"
                    if key not in op_nodes:
                        op_nodes[key] = None
                        self.op_input[key] = src
                    weighted.append(key)
                terms.append(weighted[-1])
                self.need_cnt.add(weighted[-1])
                path_ops.extend(weighted)
            lif_paths.append((node, terms))
            path_ops_of[node.name] = path_ops
        # 2. layouts, then 3. the operators prepared for them
        self.hwc = layouts(op_nodes, lif_paths)
        # of the values that may be stored channels-last: 3-D LIFs, conv and pool outputs
        shapes: dict[str, tuple[int, ...]] = {
            node.name: tuple(int(v) for v in node.shape) for node in graph.lif_nodes}
        self.ops: dict[str, Op] = {}
        lif_of_identity = {t: node for node, terms in lif_paths for t in terms
                           if op_nodes[t] is None}
        for key, n in op_nodes.items():  # insertion order: every input before its readers
            src = self.op_input[key]
            if n is None:  # source -> LIF: a gather where their layouts differ
                lif = lif_of_identity[key]
                op: Op = IdentityOp(self.sources[src], identity_gather(
                    graph.nodes[src].shape, self.hwc.get(src, False), lif.shape,
                    self.hwc[lif.name]))
            else:
                op = self._prepare(n, graph.formats, src, shapes.get(src))
                if isinstance(n, (ConvNode, SumPoolNode)):
                    shapes[key] = tuple(int(v) for v in n.out_shape)
            op.binary_input = binary_source(graph, src)
            self.ops[key] = op
        self.lifs: list[Lif] = []
        for node, terms in lif_paths:
            size = int(np.prod(node.shape))
            for t in terms:
                if self.ops[t].size_out != size:
                    raise GraphError(
                        f"LIF '{node.name}' has {size} neurons but a synapse path delivers "
                        f"{self.ops[t].size_out} values"
                    )
            bm = np.asarray(node.bias_mant).astype(np.int64).ravel()
            be = np.asarray(node.bias_exp).astype(np.int64).ravel()
            # b = bias_mant << bias_exp (docs/qgraph.md "LIF step"; >> for exp < 0)
            bias = np.where(be >= 0, bm << np.maximum(be, 0), bm >> np.maximum(-be, 0))
            if self.hwc[node.name]:  # state (and spike record) channels-last
                bias = bias[chw_order(node.shape)]
            path_ops = path_ops_of[node.name]
            f = graph.formats
            self.lifs.append(
                Lif(node, size, terms, path_ops, np.ascontiguousarray(bias, dtype=np.int64),
                     sum(self.ops[k].macs for k in path_ops),
                     *_lif_kernels_and_consts(node, f))
            )
        # 4. a conv that alone feeds a single-spike LIF in its layout and nothing else runs
        # fused with it (lif_k.lif_kernels(...).conv_step: the conv's epilogue inside the
        # LIF's loop)
        feeds = [src for src in self.op_input.values()] + [
            t for _, terms in lif_paths for t in terms]
        self.fused: dict[str, str] = {}  # LIF name -> its conv
        for node, terms in lif_paths:
            t = terms[0]
            op = self.ops[t]
            if (len(terms) == 1 and isinstance(op, ConvOp) and op.hwc_out
                    and self.hwc[node.name] and op.delay == 0 and feeds.count(t) == 1
                    and int(node.max_spikes) == 1):
                self.fused[node.name] = t
        # 5. uint8 rows for a pool of spikes that no LIF reads directly
        for key, op in self.ops.items():
            if isinstance(op, PoolOp) and key not in self.need_cnt and op.narrow_output():
                op.out_dtype = np.uint8
        # 6. int32 state (and bias) for a fused LIF whose step provably stays inside 32 bits:
        # its arithmetic then runs in twice as many vector lanes
        f = graph.formats
        for L in self.lifs:
            if L.node.name in self.fused and lif_k.lif_narrow(
                    L.consts, f.u_overflow == "saturate", f.v_overflow == "saturate",
                    int(np.abs(L.bias).max(initial=0))):
                L.bias = L.bias.astype(np.int32)

    def schedule(self) -> tuple[list[tuple[str, str]], bool]:
        """The order in which a run applies the (unfused) operators and steps the LIFs,
        as ``("op", key)`` / ``("lif", name)``, and whether it must go one step at a time
        (event.py, "Steps in chunks"). Made per run from :attr:`fused` (cheap).

        Several steps per call need every operator and LIF after everything it reads,
        LIFs included (a LIF's rows of the earlier steps of the chunk are read by the next
        layer within the chunk): a topological order of that dependency graph. A cycle
        (a recurrent LIF), an operator with a delay (its ring holds state across steps) or
        a periodic state reset mean one step per call, in the order operators, then LIFs
        (every LIF reads only the previous step's records)."""
        fused_ops = set(self.fused.values())
        ops = [k for k in self.ops if k not in fused_ops]
        names = [L.node.name for L in self.lifs]
        deps: dict[tuple[str, str], list[tuple[str, str]]] = {}

        def reader_of(src: str) -> list[tuple[str, str]]:  # what must run before reading src
            if src in self.ops:
                return [("op", src)]
            return [("lif", src)] if src in names else []

        for k in ops:
            deps[("op", k)] = reader_of(self.op_input[k])
        for L in self.lifs:
            conv = self.fused.get(L.node.name)
            if conv is not None:
                deps[("lif", L.node.name)] = reader_of(self.op_input[conv])
            else:
                deps[("lif", L.node.name)] = [("op", t) for t in L.terms]
        order: list[tuple[str, str]] = []
        state: dict[tuple[str, str], int] = {}  # 1: on the DFS path, 2: placed

        def visit(item: tuple[str, str]) -> bool:  # False on a cycle
            if state.get(item) == 2:
                return True
            if state.get(item) == 1:
                return False
            state[item] = 1
            if not all(visit(d) for d in deps[item]):
                return False
            state[item] = 2
            order.append(item)
            return True

        acyclic = all(visit(item) for item in deps)
        stepwise = (not acyclic
                    or any(op.delay > 0 or isinstance(op, DelayDenseOp)
                           for op in self.ops.values())
                    or any(int(L.node.reset_interval) > 0 for L in self.lifs))
        if stepwise:
            return [("op", k) for k in ops] + [("lif", n) for n in names], True
        return order, False

    def chunk_steps(self, batch: int, n_steps: int) -> int:
        """Steps per call for a batch of ``batch`` samples, where the graph need not go
        step by step (:meth:`schedule`): as many as keep every operator's output rows
        within :data:`CHUNK_BYTES` (at most :data:`CHUNK_MAX`, at most the run)."""
        fused = set(self.fused.values())  # their sums stay in the kernel's scratch
        # the bytes of a row of outputs (int64 sums, a narrowed pool's uint8) and of counts
        # where a LIF reads them
        row_bytes = max([op.size_out * (np.dtype(op.out_dtype).itemsize
                                        + 8 * (k in self.need_cnt))
                         for k, op in self.ops.items() if k not in fused]
                        + [16 * L.size for L in self.lifs if len(L.terms) > 1] + [1])
        fit = CHUNK_BYTES // max(row_bytes * batch, 1)
        return int(max(1, min(fit, CHUNK_MAX, n_steps)))

    def _prepare(self, node: Any, f: NumberFormats, src: str,
                 src_shape: tuple[int, ...] | None) -> Op:
        """The operator of ``node`` reading ``src`` (an operator output, a LIF's spike
        record or the input) in ``src``'s layout."""
        src_hwc = self.hwc.get(src, False)
        if isinstance(node, DenseNode):
            if src_hwc and src_shape is not None:
                # a channels-last input: the weight columns in the stored order
                perm = chw_order(src_shape)
                d = np.asarray(node.delay)
                node = replace(node, weight=np.asarray(node.weight)[:, perm],
                               delay=d[:, perm] if d.ndim == 2 else node.delay)
            if has_mixed_delays(node.delay):
                return DelayDenseOp(node, f)
            return DenseOp(node, f)
        if isinstance(node, ConvNode):
            return ConvOp(node, src_hwc, self.hwc[node.name], src_shape)
        return PoolOp(node, src_hwc, self.hwc[node.name], src_shape)


def binary_source(graph: QGraph, key: str) -> bool:
    """Whether the values ``key`` (a node name) sends are 0/1: a binary input or a LIF
    with single spikes (an operator's output, or an unknown key, is not)."""
    node = graph.nodes.get(key)
    if isinstance(node, InputNode):
        return int(node.message_bits) == 0
    return isinstance(node, LIFNode) and int(node.max_spikes) == 1


def check_formats(graph: QGraph) -> None:
    """Formats this int64 implementation executes: decay products inside int64, and
    stored Dense weights inside the int16 its fan-out rows use."""
    check_int64_formats(graph, "event")
    f = graph.formats
    for key in ("weight_range_mixed", "weight_range_excitatory", "weight_range_inhibitory"):
        lo, hi = getattr(f, key)
        if lo < -(2**15) or hi >= 2**15:
            raise UnsupportedFormatsError(
                f"backend 'event' cannot run target '{graph.target}': {key} {[lo, hi]} "
                "exceeds the 16-bit weights of its event kernels"
            )


# Plain values stand for themselves (with their type: 1, 1.0 and True differ); floats by
# repr, so that a NaN equals itself.
_PLAIN = frozenset({int, str, bool, type(None), np.bool_})


def _fingerprint_value(v: Any) -> Any:
    """A hashable summary of one graph value that changes whenever the value does: arrays
    by dtype, shape and a position-weighted checksum of their bytes (one memory pass).
    Called for every field of every node on every run: the common cases come first."""
    t = type(v)
    if t in _PLAIN:
        return (t, v)
    if t is float:
        return (t, repr(v))
    if t is tuple or t is list:
        if all(type(x) is int for x in v):  # a shape, a stride
            return (t, tuple(v))
        return (t, tuple(_fingerprint_value(x) for x in v))
    if isinstance(v, (np.ndarray, np.generic)):
        a = np.ascontiguousarray(v)
        if a.dtype.kind in "iub":
            words = a.astype(np.int64, copy=False).reshape(-1).view(np.uint64)
        elif a.dtype.kind == "f":
            words = a.astype(np.float64, copy=False).reshape(-1).view(np.uint64)
        else:
            return (a.dtype.str, a.shape, a.tobytes())
        return (a.dtype.str, a.shape, K.checksum64(words))
    if isinstance(v, dict):
        return ("dict", tuple((repr(k), _fingerprint_value(x)) for k, x in v.items()))
    if isinstance(v, (list, tuple)):
        return (type(v).__name__, tuple(_fingerprint_value(x) for x in v))
    names = _dataclass_fields(t)
    if names is not None:
        return (t.__name__, tuple(_fingerprint_value(getattr(v, f)) for f in names))
    return (t.__name__, repr(v))


_FIELDS: dict[type, tuple[str, ...] | None] = {}


def _dataclass_fields(t: type) -> tuple[str, ...] | None:
    """The field names of dataclass type ``t`` (None for another type), looked up once."""
    if t not in _FIELDS:
        _FIELDS[t] = (tuple(f.name for f in dataclasses.fields(t))
                      if dataclasses.is_dataclass(t) else None)
    return _FIELDS[t]


def graph_fingerprint(graph: QGraph) -> tuple[Any, ...]:
    """Everything a run reads from ``graph`` (nodes in order with every field, edges,
    formats, target, the chip limits in its metadata, which
    :func:`snn2hw.quant.bounds.graph_limits` reads; not the rest of the metadata, not
    ``folder``), arrays by content: equal fingerprints mean the prepared plan (and the
    checks made when preparing it) still hold. Taken on every run: about 0.1 ms for the
    N-MNIST CNN (0.2 ms right after a run has filled the caches)."""
    nodes = tuple((name, _fingerprint_value(node)) for name, node in graph.nodes.items())
    edges = tuple(tuple(e) for e in graph.edges)  # pairs of names
    limits = (graph.metadata or {}).get(LIMITS_KEY)
    return (nodes, edges, graph.dt, graph.target, graph.num_steps,
            _fingerprint_value(graph.formats), _fingerprint_value(limits))


class PlanCache:
    """Prepared plans per live graph object: a run of a graph seen before with the same
    content (:func:`graph_fingerprint`) reuses its validated, prepared weights; a graph
    changed since (a node replaced, an array written in place, an edge added) is checked
    and prepared again. Entries go when their graph is garbage collected.
    ``preparations`` counts the plans built (tests use it)."""

    def __init__(self) -> None:
        self._entries: dict[int, tuple[weakref.ref[QGraph], tuple[Any, ...], Plan]] = {}
        self._lock = threading.Lock()
        self.preparations = 0

    def get(self, graph: QGraph) -> Plan:
        """The plan of ``graph``, validated (structure, formats, chip limits) when built."""
        fp = graph_fingerprint(graph)
        key = id(graph)
        with self._lock:
            hit = self._entries.get(key)
        if hit is not None and hit[0]() is graph and hit[1] == fp:
            return hit[2]
        graph.validate()
        check_formats(graph)
        check_chip_limits_of(graph)  # a graph made for a chip with limits must stay inside
        plan = Plan(graph)
        with self._lock:
            self.preparations += 1
            old = self._entries.get(key)
            if old is None or old[0]() is not graph:
                weakref.finalize(graph, self._forget, key)
            self._entries[key] = (weakref.ref(graph), fp, plan)
        return plan

    def _forget(self, key: int) -> None:
        # No lock: this runs from a weakref finalizer, i.e. inside garbage collection, which
        # may start while this thread holds ``_lock`` (a non-reentrant lock: a deadlock, seen
        # as a hung test run). ``dict.pop`` is atomic under the GIL; a pop that removes a
        # newer entry of a recycled id only costs a re-preparation (get() checks identity).
        self._entries.pop(key, None)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)


PLANS = PlanCache()
"""The process-wide plan cache :func:`run` uses."""


def _lif_kernels_and_consts(node: LIFNode, f: NumberFormats
                            ) -> tuple[lif_k.LifKernels, tuple[int, ...]]:
    """The single-spike LIF kernels of ``node``'s overflow modes and decay case, and its
    constants (``event_kernels_lif.lif_consts``)."""
    lc = lif_k.lif_consts(node.du, node.dv, node.vth, *lif_rules(f))
    return lif_k.lif_kernels(f.u_overflow == "saturate", f.v_overflow == "saturate",
                             lif_k.lif_decays(lc)), lc


def lif_rules(f: NumberFormats) -> tuple[int, ...]:
    """The formats arguments of ``event_kernels_lif.lif_consts``."""
    return (f.activation_shift, f.decay_bits, f.u_bits, f.v_bits, f.threshold_compare == ">=",
            f.reset == "subtract")
