"""Reading NIR graphs robustly: file errors, validation, shapes, topology and timing.

Every failure becomes a one-line :class:`~snn2hw.common.errors.GraphError` that names the file,
node, edge or field at fault. Assumptions that had to be made (a type check that was
skipped, a batch dimension dropped, the dt and convention used) are returned as notes so
that reports can list them.

Shapes are inferred here from the Input node through each node's own semantics rather than
taken from the ``input_type``/``output_type`` that exporters store, because several
exporters store them wrong (Rockpool's Output ``[1, 1, 1]``, nirtorch's batch dimension
on Input, scalar neuron parameters without a shape).

Topology: a depth-first search from the Input node marks the edges that close a cycle
(back edges, e.g. ``lif1.lif -> lif1.w_rec -> lif1.lif``: the edge into the node where
the cycle was entered). The executors deliver a back edge's value from the previous time
step; all other edges deliver the current step's value.
"""

from __future__ import annotations

import heapq
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import nir
import numpy as np

from snn2hw.common.errors import GraphError
from snn2hw.nir.discretize import NEURON_TYPES, Convention, get_convention

#: Node types the float executor and the quantizer understand.
SUPPORTED_TYPES: tuple[type, ...] = (
    nir.Input, nir.Output, nir.Affine, nir.Linear, nir.Scale, nir.Conv1d, nir.Conv2d,
    nir.SumPool2d, nir.AvgPool2d, nir.Flatten, nir.LIF, nir.CubaLIF, nir.IF, nir.LI,
    nir.CubaLI, nir.I, nir.Threshold,
)
SUPPORTED_NAMES = ", ".join(t.__name__ for t in SUPPORTED_TYPES)

_NOTES_ATTR = "snn2hw_import_notes"  # not a dataclass field: never written back to a file
_TYPE_FIELDS = ("input_type", "output_type", "metadata")
_TAU_FIELDS = ("tau", "tau_syn", "tau_mem")  # +inf is legal there (no leak)

Shape = tuple[int, ...]


# --------------------------------------------------------------------------- helpers


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


def _fmt(shape: Any) -> str:
    return str([int(s) for s in shape]) if shape is not None else "undefined"


def _declared(node: nir.NIRNode, key: str) -> Shape | None:
    types = getattr(node, key, None)
    if not isinstance(types, dict) or len(types) != 1:
        return None
    val = next(iter(types.values()))
    if val is None:
        return None
    return tuple(int(s) for s in np.atleast_1d(as_array(val)).reshape(-1))


def import_notes(graph: nir.NIRGraph) -> list[str]:
    """Notes recorded by :func:`read_nir` for ``graph`` (empty for in-memory graphs)."""
    return list(getattr(graph, _NOTES_ATTR, []))


# --------------------------------------------------------------------------- reading


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
    setattr(graph, _NOTES_ATTR, notes)
    return graph


def _one_line(exc: BaseException) -> str:
    msg = " ".join(str(exc).split()) or type(exc).__name__
    return msg if len(msg) <= 300 else msg[:297] + "..."


# --------------------------------------------------------------------------- analysis


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
            shape = _input_shape(graph, k, edges, notes)
            in_shapes[k] = out_shapes[k] = shape
            continue
        fwd = [s for s, is_back in preds[k] if not is_back]
        shape = out_shapes[fwd[0]]
        for s in fwd[1:]:
            if out_shapes[s] != shape:
                raise GraphError(
                    f"node '{k}' sums inputs of different shapes: '{fwd[0]}' gives "
                    f"{_fmt(shape)}, '{s}' gives {_fmt(out_shapes[s])}"
                )
        in_shapes[k] = shape
        out_shapes[k] = _node_output_shape(k, node, shape, fwd[0], notes)
    for a, b in back:
        if out_shapes[a] != in_shapes[b]:
            raise GraphError(
                f"inconsistent shapes on recurrent edge ('{a}', '{b}'): '{a}' gives "
                f"{_fmt(out_shapes[a])}, '{b}' takes {_fmt(in_shapes[b])}"
            )
    return GraphInfo(
        input_node=inp, output_node=out, order=order,
        back_edges=[e for e in edges if e in back], preds=preds,
        in_shapes=in_shapes, out_shapes=out_shapes, notes=notes,
    )


def _check_finite(name: str, node: nir.NIRNode) -> None:
    for key, val in vars(node).items():
        if key in _TYPE_FIELDS or isinstance(val, (str, bytes, dict)) or val is None:
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


def _input_shape(graph: nir.NIRGraph, name: str, edges, notes: list[str]) -> Shape:
    node = graph.nodes[name]
    shape = _declared(node, "output_type") or _declared(node, "input_type")
    if shape is None:
        raise GraphError(f"Input node '{name}' has no shape")
    # nirtorch-based exporters (Norse, snnTorch) record the sample's batch dimension.
    if len(shape) > 1 and shape[0] == 1:
        wants = [_expected_input(graph.nodes[b]) for a, b in edges if a == name]
        if wants and all(w == shape[1:] for w in wants):
            notes.append(
                f"Input node '{name}' declares shape {_fmt(shape)} with a leading batch "
                f"dimension of 1; using {_fmt(shape[1:])}"
            )
            return shape[1:]
    return shape


def _expected_input(node: nir.NIRNode) -> Shape | None:
    """The input shape a node's own parameters imply (None where they do not fix it)."""
    if isinstance(node, (nir.Affine, nir.Linear)):
        return (int(as_array(node.weight).shape[-1]),)
    return None


def _neuron_param_shape(name: str, node: nir.NIRNode) -> Shape:
    shapes = []
    for key, val in vars(node).items():
        if key in _TYPE_FIELDS or val is None:
            continue
        shapes.append(as_array(val).shape)
    try:
        return tuple(np.broadcast_shapes(*shapes)) if shapes else ()
    except ValueError:
        raise GraphError(
            f"node '{name}' ({type(node).__name__}): parameter shapes "
            f"{[list(s) for s in shapes]} do not broadcast together"
        ) from None


def _mismatch(src: str, dst: str, got: Shape, want: Any) -> GraphError:
    return GraphError(
        f"inconsistent shapes on edge ('{src}', '{dst}'): '{src}' gives {_fmt(got)}, "
        f"'{dst}' expects {want if isinstance(want, str) else _fmt(want)}"
    )


def _conv_out(size: int, k: int, s: int, p: int, d: int) -> int:
    return (size + 2 * p - d * (k - 1) - 1) // s + 1


def conv_geometry(name: str, node: nir.NIRNode) -> dict[str, Any]:
    """Stride, padding (ints or 'same'/'valid'), dilation and groups of a Conv node."""
    nd = 1 if isinstance(node, nir.Conv1d) else 2
    pad = node.padding
    if isinstance(pad, np.ndarray) and pad.dtype.kind in "SOU":  # a string read back by h5py
        pad = pad.reshape(-1)[0]
    if isinstance(pad, bytes):
        pad = pad.decode()
    if isinstance(pad, np.str_):
        pad = str(pad)
    padding: Any = pad if isinstance(pad, str) else as_ints(pad, nd, "padding", name)
    if isinstance(padding, str) and padding not in ("same", "valid"):
        raise GraphError(f"node '{name}': padding '{padding}' is not 'same', 'valid' or integers")
    return dict(
        stride=as_ints(node.stride, nd, "stride", name),
        padding=padding,
        dilation=as_ints(node.dilation, nd, "dilation", name),
        groups=int(as_array(node.groups).reshape(-1)[0]) if np.size(as_array(node.groups)) else 1,
    )


def _node_output_shape(name: str, node: nir.NIRNode, shape: Shape, src: str, notes) -> Shape:
    if isinstance(node, nir.Output):
        declared = _declared(node, "output_type") or _declared(node, "input_type")
        if declared is not None and declared != shape:
            if math.prod(declared) != math.prod(shape):
                raise _mismatch(src, name, shape, declared)
            notes.append(
                f"Output node '{name}' declares shape {_fmt(declared)} but receives "
                f"{_fmt(shape)}; using {_fmt(shape)}"
            )
        return shape
    if isinstance(node, (nir.Affine, nir.Linear)):
        w = as_array(node.weight)
        if w.ndim != 2:
            raise GraphError(
                f"node '{name}' ({type(node).__name__}): weight must be 2-D, got {list(w.shape)}"
            )
        if shape != (w.shape[1],):
            raise _mismatch(src, name, shape, (w.shape[1],))
        if isinstance(node, nir.Affine) and node.bias is not None:
            b = as_array(node.bias)
            if b.shape not in ((w.shape[0],), (), (1,)):
                raise GraphError(
                    f"node '{name}': bias shape {list(b.shape)} does not match weight "
                    f"{list(w.shape)}"
                )
        return (int(w.shape[0]),)
    if isinstance(node, (nir.Scale, nir.Threshold)):
        p = as_array(node.scale if isinstance(node, nir.Scale) else node.threshold)
        try:
            ok = np.broadcast_shapes(p.shape, shape) == shape
        except ValueError:
            ok = False
        if not ok:
            raise _mismatch(src, name, shape, p.shape)
        return shape
    if isinstance(node, (nir.Conv1d, nir.Conv2d)):
        nd = 1 if isinstance(node, nir.Conv1d) else 2
        w = as_array(node.weight)
        g = conv_geometry(name, node)
        if w.ndim != nd + 2:
            raise GraphError(
                f"node '{name}': {type(node).__name__} weight must be {nd + 2}-D, "
                f"got {list(w.shape)}"
            )
        cin = int(w.shape[1]) * g["groups"]
        if len(shape) != nd + 1 or shape[0] != cin:
            raise _mismatch(src, name, shape, f"[{cin}, " + ", ".join(["*"] * nd) + "]")
        spatial = shape[1:]
        declared = getattr(node, "input_shape", None)
        if declared is not None:
            dec = as_ints(declared, nd, "input_shape", name)
            if dec != spatial:
                raise _mismatch(src, name, shape, (cin, *dec))
        if g["padding"] == "same":
            out = spatial
        else:
            pad = (0,) * nd if g["padding"] == "valid" else g["padding"]
            out = tuple(
                _conv_out(spatial[i], int(w.shape[2 + i]), g["stride"][i], pad[i], g["dilation"][i])
                for i in range(nd)
            )
        if min(out) <= 0:
            raise GraphError(f"node '{name}': convolution of {_fmt(shape)} gives an empty output")
        if node.bias is not None and as_array(node.bias).size not in (0, 1, int(w.shape[0])):
            raise GraphError(
                f"node '{name}': bias has {as_array(node.bias).size} values for "
                f"{w.shape[0]} channels"
            )
        return (int(w.shape[0]), *out)
    if isinstance(node, (nir.SumPool2d, nir.AvgPool2d)):
        if len(shape) != 3:
            raise _mismatch(src, name, shape, "[C, H, W]")
        k = as_ints(node.kernel_size, 2, "kernel_size", name)
        s = as_ints(node.stride, 2, "stride", name) if node.stride is not None else k
        p = as_ints(node.padding, 2, "padding", name) if node.padding is not None else (0, 0)
        out = tuple(_conv_out(shape[1 + i], k[i], s[i], p[i], 1) for i in range(2))
        if min(out) <= 0:
            raise GraphError(f"node '{name}': pooling of {_fmt(shape)} gives an empty output")
        return (shape[0], *out)
    if isinstance(node, nir.Flatten):
        declared = _declared(node, "input_type")
        if declared is not None and declared != shape:
            raise _mismatch(src, name, shape, declared)
        nd = len(shape)
        start, end = int(meta_value(node.start_dim)), int(meta_value(node.end_dim))
        start, end = (start + nd if start < 0 else start), (end + nd if end < 0 else end)
        if not (0 <= start <= end < nd):
            raise GraphError(
                f"node '{name}': Flatten start_dim={node.start_dim}, end_dim={node.end_dim} "
                f"do not fit its input shape {_fmt(shape)}"
            )
        return (*shape[:start], math.prod(shape[start:end + 1]), *shape[end + 1:])
    if isinstance(node, NEURON_TYPES):
        pshape = _neuron_param_shape(name, node)
        try:
            ok = np.broadcast_shapes(pshape, shape) == shape
        except ValueError:
            ok = False
        if not ok:
            raise _mismatch(src, name, shape, pshape)
        return shape
    raise GraphError(f"node '{name}' has unsupported type {type(node).__name__}")  # unreachable


# --------------------------------------------------------------------------- timing


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
