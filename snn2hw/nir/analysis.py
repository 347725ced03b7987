"""Validating a NIR graph and analysing its structure: :func:`check_graph`, :func:`analyze`.

Checks supported node types, finite parameters, edges, the single Input and Output node,
reachability and shapes (per node: :mod:`snn2hw.nir.shapes`), and computes the topology
the executors need (:class:`GraphInfo`).

Topology: a depth-first search from the Input node marks the edges that close a cycle
(back edges, e.g. ``lif1.lif -> lif1.w_rec -> lif1.lif``: the edge into the node where
the cycle was entered). The executors deliver a back edge's value from the previous time
step; all other edges deliver the current step's value.

May import: ``nir``, ``numpy``, the other ``snn2hw.nir`` helper modules (fields, notes,
shapes) and :mod:`snn2hw.common`.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass, field

import nir
import numpy as np

from snn2hw.common.errors import GraphError
from snn2hw.nir.fields import TYPE_FIELDS, as_array
from snn2hw.nir.notes import import_notes
from snn2hw.nir.shapes import Shape, fmt_shape, input_shape, node_output_shape

#: Node types the float executor and the quantizer understand.
SUPPORTED_TYPES: tuple[type, ...] = (
    nir.Input, nir.Output, nir.Affine, nir.Linear, nir.Scale, nir.Conv1d, nir.Conv2d,
    nir.SumPool2d, nir.AvgPool2d, nir.Flatten, nir.LIF, nir.CubaLIF, nir.IF, nir.LI,
    nir.CubaLI, nir.I, nir.Threshold, nir.Delay,
)
SUPPORTED_NAMES = ", ".join(t.__name__ for t in SUPPORTED_TYPES)

_TAU_FIELDS = ("tau", "tau_syn", "tau_mem")  # +inf is legal there (no leak)


@dataclass
class GraphInfo:
    """What the executor and quantizer need to know about a checked graph."""

    input_node: str
    output_node: str
    order: list[str]  # topological order of all nodes, back edges removed
    back_edges: list[tuple[str, str]]
    preds: dict[str, list[tuple[str, bool]]]  # node -> [(source, is_back_edge)] in edge order
    in_shapes: dict[str, Shape]  # shape a node receives (sum of its inputs)
    out_shapes: dict[str, Shape]  # shape a node emits
    notes: list[str] = field(default_factory=list)

    @property
    def recurrent(self) -> bool:
        return bool(self.back_edges)


def check_graph(graph: nir.NIRGraph) -> list[str]:
    """Validate ``graph`` for snn2hw; returns notes, raises :class:`GraphError`.

    Checks: supported node types only, finite parameters, edges between existing nodes,
    one Input and one Output node, every node reachable from the Input, and consistent
    shapes on every edge."""
    return analyze(graph).notes


def analyze(graph: nir.NIRGraph) -> GraphInfo:
    """Check ``graph`` and compute its topology and shapes (see :func:`check_graph`)."""
    if not isinstance(graph, nir.NIRGraph):
        raise GraphError(f"expected a NIR graph, got a {type(graph).__name__} node")
    notes = import_notes(graph)
    nodes = graph.nodes
    for name, node in nodes.items():
        if isinstance(node, nir.NIRGraph) or not isinstance(node, SUPPORTED_TYPES):
            kind = "nested NIRGraph" if isinstance(node, nir.NIRGraph) else type(node).__name__
            raise GraphError(
                f"node '{name}' has unsupported type {kind}; supported: {SUPPORTED_NAMES}"
            )
        _check_finite(name, node)
    seen: set[tuple[str, str]] = set()
    for edge in graph.edges:
        src, dst = (str(e) for e in edge)
        for end, what in ((src, "source"), (dst, "destination")):
            if end not in nodes:
                raise GraphError(
                    f"edge ('{src}', '{dst}') names {what} node '{end}', which is not in the "
                    f"graph (nodes: {', '.join(sorted(nodes))})"
                )
        if (src, dst) in seen:
            raise GraphError(f"duplicate edge ('{src}', '{dst}')")
        seen.add((src, dst))
    edges = [(str(a), str(b)) for a, b in graph.edges]
    inputs = [k for k, n in nodes.items() if isinstance(n, nir.Input)]
    outputs = [k for k, n in nodes.items() if isinstance(n, nir.Output)]
    if not inputs:
        raise GraphError("the NIR graph has no Input node")
    if len(inputs) > 1:
        raise GraphError(f"graphs with several Input nodes are not supported: {inputs}")
    if not outputs:
        raise GraphError("the NIR graph has no Output node")
    if len(outputs) > 1:
        raise GraphError(f"graphs with several Output nodes are not supported: {outputs}")
    inp, out = inputs[0], outputs[0]
    for a, b in edges:
        if b == inp:
            raise GraphError(f"edge ('{a}', '{b}') leads into the Input node")
        if a == out:
            raise GraphError(f"edge ('{a}', '{b}') leaves the Output node")

    order, back = _topology(list(nodes), edges, inp)
    preds: dict[str, list[tuple[str, bool]]] = {k: [] for k in nodes}
    for a, b in edges:
        preds[b].append((a, (a, b) in back))
    for k in order:
        if k != inp and not any(not is_back for _, is_back in preds[k]):
            raise GraphError(f"node '{k}' receives input only through a recurrent edge")
    if out not in order:
        raise GraphError(f"the Output node '{out}' is not reachable from the Input node '{inp}'")

    in_shapes: dict[str, Shape] = {}
    out_shapes: dict[str, Shape] = {}
    for k in order:
        node = nodes[k]
        if k == inp:
            shape = input_shape(graph, k, edges, notes)
            in_shapes[k] = out_shapes[k] = shape
            continue
        fwd = [s for s, is_back in preds[k] if not is_back]
        shape = out_shapes[fwd[0]]
        for s in fwd[1:]:
            if out_shapes[s] != shape:
                raise GraphError(
                    f"node '{k}' sums inputs of different shapes: '{fwd[0]}' gives "
                    f"{fmt_shape(shape)}, '{s}' gives {fmt_shape(out_shapes[s])}"
                )
        in_shapes[k] = shape
        out_shapes[k] = node_output_shape(k, node, shape, fwd[0], notes)
    for a, b in back:
        if out_shapes[a] != in_shapes[b]:
            raise GraphError(
                f"inconsistent shapes on recurrent edge ('{a}', '{b}'): '{a}' gives "
                f"{fmt_shape(out_shapes[a])}, '{b}' takes {fmt_shape(in_shapes[b])}"
            )
    return GraphInfo(
        input_node=inp, output_node=out, order=order,
        back_edges=[e for e in edges if e in back], preds=preds,
        in_shapes=in_shapes, out_shapes=out_shapes, notes=notes,
    )


def _check_finite(name: str, node: nir.NIRNode) -> None:
    for key, val in vars(node).items():
        if key in TYPE_FIELDS or isinstance(val, (str, bytes, dict)) or val is None:
            continue
        try:
            arr = as_array(val)
        except Exception:  # noqa: BLE001 - not array-like: nothing to check
            continue
        if arr.dtype.kind not in "fc":
            continue
        bad = np.isnan(arr) | (np.isinf(arr) & ~((key in _TAU_FIELDS) & (arr > 0)))
        if np.any(bad):
            first = arr.reshape(-1)[np.flatnonzero(bad.reshape(-1))[0]]
            raise GraphError(
                f"node '{name}' ({type(node).__name__}): field '{key}' contains "
                f"{'NaN' if np.isnan(first) else 'Inf'} ({int(bad.sum())} of {arr.size} values)"
            )


def _topology(
    names: list[str], edges: list[tuple[str, str]], root: str
) -> tuple[list[str], set[tuple[str, str]]]:
    succ: dict[str, list[str]] = {k: [] for k in names}
    for a, b in edges:
        succ[a].append(b)
    # Iterative DFS: an edge into a node still on the stack closes a cycle.
    state = dict.fromkeys(names, 0)  # 0 new, 1 on stack, 2 done
    back: set[tuple[str, str]] = set()
    stack = [(root, iter(succ[root]))]
    state[root] = 1
    while stack:
        node, it = stack[-1]
        nxt = next(it, None)
        if nxt is None:
            state[node] = 2
            stack.pop()
        elif state[nxt] == 1:
            back.add((node, nxt))
        elif state[nxt] == 0:
            state[nxt] = 1
            stack.append((nxt, iter(succ[nxt])))
    unreached = [k for k in names if state[k] == 0]
    if unreached:
        raise GraphError(
            f"node(s) {', '.join(repr(k) for k in unreached)} are not reachable from the "
            f"Input node '{root}'"
        )
    # Kahn's algorithm on the forward edges; ties keep the file's node order (readable).
    rank = {k: i for i, k in enumerate(names)}
    indeg = dict.fromkeys(names, 0)
    for a, b in edges:
        if (a, b) not in back:
            indeg[b] += 1
    heap = [(rank[k], k) for k in names if indeg[k] == 0]
    heapq.heapify(heap)
    order: list[str] = []
    while heap:
        _, k = heapq.heappop(heap)
        order.append(k)
        for b in succ[k]:
            if (k, b) in back:
                continue
            indeg[b] -= 1
            if indeg[b] == 0:
                heapq.heappush(heap, (rank[b], b))
    return order, back
