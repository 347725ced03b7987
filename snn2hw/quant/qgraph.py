"""The quantized graph: the single contract between all integer backends.

A :class:`QGraph` holds integers only (weights, exponents, decays, thresholds, biases),
the topology, ``dt`` and the target name. Backends (torch integer mode, the event-driven
reference simulator, Lava, ONNX) execute it; none of them re-derives quantization.
Its execution semantics are written down once, in ``docs/qgraph.md`` (which builds on
SPEC.md §1–2); its on-disk format is described there too.

Node kinds
----------
Sources of spikes: :class:`InputNode` and :class:`LIFNode`. Stateless synaptic operators:
:class:`DenseNode`, :class:`ConvNode`, :class:`SumPoolNode`, :class:`FlattenNode`.
Sink: :class:`OutputNode`. Every path from a source to a :class:`LIFNode` passes only
through synaptic operators and costs exactly one time step (the Loihi hop delay).
"""

from __future__ import annotations

import io
import json
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from snn2hw.common.atomic_io import atomic_write_bytes
from snn2hw.common.errors import GraphError

FORMAT_NAME = "snn2hw.qgraph"
FORMAT_VERSION = 1

# Declared Loihi ranges (SPEC.md §1); checked by QGraph.validate().
U_V_BITS = 24
DECAY_MAX = 4095
VTH_MAX = 131071
BIAS_MANT_MIN, BIAS_MANT_MAX = -4096, 4095
BIAS_EXP_MIN, BIAS_EXP_MAX = 0, 7
WEIGHT_EXP_MIN, WEIGHT_EXP_MAX = -7, 7  # Loihi 1 weight exponent range (SPEC.md §6)
INT32_MAX = 2**31 - 1


def _tuple(x: Any) -> tuple[int, ...]:
    return tuple(int(v) for v in np.atleast_1d(np.asarray(x)).tolist())


@dataclass
class InputNode:
    """External input, ``shape`` without T and B. At 0-based step n it emits frame n
    (zero once the input runs out). ``message_bits == 0``: binary spikes; ``> 0``:
    graded non-negative integer payloads of that many bits."""

    name: str
    shape: tuple[int, ...]
    message_bits: int = 0
    kind: str = "input"


@dataclass
class DenseNode:
    """Fully connected synapses, Lava ``Dense`` fixed point (SPEC.md §2).

    ``weight`` is int (N_out, N_in). Per step: ``acc = W' @ x`` (W' after sign-mode clip
    and LSB truncation to ``num_weight_bits``), then ``acc << weight_exp`` or
    ``acc >> -weight_exp`` (floor), no saturation."""

    name: str
    weight: np.ndarray
    weight_exp: int = 0
    num_weight_bits: int = 8
    kind: str = "dense"

    @property
    def in_shape(self) -> tuple[int, ...]:
        return (int(self.weight.shape[1]),)

    @property
    def out_shape(self) -> tuple[int, ...]:
        return (int(self.weight.shape[0]),)


@dataclass
class ConvNode:
    """2-D convolution (PyTorch cross-correlation semantics), weight int (C_out, C_in/groups,
    kH, kW), input (C, H, W). Per step: ``acc = conv(x, W)`` (no clipping or truncation of
    W), shifted by ``weight_exp`` like Dense, then wrapped to signed 24 bits (Lava Conv)."""

    name: str
    weight: np.ndarray
    input_shape: tuple[int, int, int]
    weight_exp: int = 0
    stride: tuple[int, int] = (1, 1)
    padding: tuple[int, int] = (0, 0)
    dilation: tuple[int, int] = (1, 1)
    groups: int = 1
    kind: str = "conv"

    @property
    def in_shape(self) -> tuple[int, ...]:
        return tuple(self.input_shape)

    @property
    def out_shape(self) -> tuple[int, ...]:
        c, h, w = self.input_shape
        kh, kw = self.weight.shape[2], self.weight.shape[3]
        oh = (h + 2 * self.padding[0] - self.dilation[0] * (kh - 1) - 1) // self.stride[0] + 1
        ow = (w + 2 * self.padding[1] - self.dilation[1] * (kw - 1) - 1) // self.stride[1] + 1
        return (int(self.weight.shape[0]), int(oh), int(ow))


@dataclass
class SumPoolNode:
    """Sum pooling over (C, H, W) inputs: exact integer sums, no shift, no wrap."""

    name: str
    input_shape: tuple[int, int, int]
    kernel_size: tuple[int, int]
    stride: tuple[int, int]
    padding: tuple[int, int] = (0, 0)
    kind: str = "sumpool"

    @property
    def in_shape(self) -> tuple[int, ...]:
        return tuple(self.input_shape)

    @property
    def out_shape(self) -> tuple[int, ...]:
        c, h, w = self.input_shape
        oh = (h + 2 * self.padding[0] - self.kernel_size[0]) // self.stride[0] + 1
        ow = (w + 2 * self.padding[1] - self.kernel_size[1]) // self.stride[1] + 1
        return (int(c), int(oh), int(ow))


@dataclass
class FlattenNode:
    """Row-major (C-order) flatten of ``input_shape`` to one dimension."""

    name: str
    input_shape: tuple[int, ...]
    kind: str = "flatten"

    @property
    def in_shape(self) -> tuple[int, ...]:
        return tuple(self.input_shape)

    @property
    def out_shape(self) -> tuple[int, ...]:
        return (int(np.prod(self.input_shape)),)


@dataclass
class LIFNode:
    """Loihi CUBA LIF population, fixed point (SPEC.md §1). ``du``, ``dv``, ``vth`` are one
    value per population; ``bias_mant``/``bias_exp`` are int arrays of ``shape``."""

    name: str
    shape: tuple[int, ...]
    du: int
    dv: int
    vth: int
    bias_mant: np.ndarray
    bias_exp: np.ndarray
    kind: str = "lif"


@dataclass
class OutputNode:
    """Marks a LIF population whose spikes are the network output."""

    name: str
    shape: tuple[int, ...]
    kind: str = "output"


Node = InputNode | DenseNode | ConvNode | SumPoolNode | FlattenNode | LIFNode | OutputNode
SYNAPSE_KINDS = ("dense", "conv", "sumpool", "flatten")
_ARRAY_FIELDS = {"dense": ("weight",), "conv": ("weight",), "lif": ("bias_mant", "bias_exp")}
_NODE_TYPES: dict[str, type] = {
    "input": InputNode,
    "dense": DenseNode,
    "conv": ConvNode,
    "sumpool": SumPoolNode,
    "flatten": FlattenNode,
    "lif": LIFNode,
    "output": OutputNode,
}


def node_out_shape(node: Node) -> tuple[int, ...]:
    """Shape of what ``node`` emits each step (spikes for sources, integers for synapses)."""
    if isinstance(node, (InputNode, LIFNode, OutputNode)):
        return tuple(node.shape)
    return node.out_shape


def node_in_shape(node: Node) -> tuple[int, ...]:
    """Shape ``node`` expects on its input edge(s)."""
    if isinstance(node, (LIFNode, OutputNode)):
        return tuple(node.shape)
    if isinstance(node, InputNode):
        return ()
    return node.in_shape


@dataclass
class QGraph:
    """A quantized spiking network for one target.

    ``nodes`` is ordered (insertion order is a valid topological order ignoring recurrent
    edges); ``edges`` are (src, dst) names. ``num_steps`` is the number of input frames the
    graph was calibrated for; backends run ``num_steps + depth()`` steps by default so the
    last frame reaches the output despite the hop delays.
    """

    nodes: dict[str, Node]
    edges: list[tuple[str, str]]
    dt: float
    target: str
    num_steps: int
    metadata: dict[str, Any] = field(default_factory=dict)

    # ----- topology helpers -------------------------------------------------------------
    def predecessors(self, name: str) -> list[str]:
        return [s for s, d in self.edges if d == name]

    def successors(self, name: str) -> list[str]:
        return [d for s, d in self.edges if s == name]

    @property
    def input_node(self) -> InputNode:
        ins = [n for n in self.nodes.values() if isinstance(n, InputNode)]
        if len(ins) != 1:
            raise GraphError(f"quantized graph must have exactly one input node, found {len(ins)}")
        return ins[0]

    @property
    def lif_nodes(self) -> list[LIFNode]:
        return [n for n in self.nodes.values() if isinstance(n, LIFNode)]

    @property
    def output_nodes(self) -> list[OutputNode]:
        return [n for n in self.nodes.values() if isinstance(n, OutputNode)]

    def source_of_output(self, out: str) -> str:
        """The LIF (or input) node whose spikes feed output node ``out``."""
        preds = self.predecessors(out)
        if len(preds) != 1:
            raise GraphError(f"output node '{out}' must have exactly one incoming edge")
        return preds[0]

    def synapse_paths(self, lif: str) -> list[list[str]]:
        """All paths ``[source, syn_1, ..., syn_k]`` that end in LIF node ``lif``.

        ``source`` is an input or LIF node; ``syn_i`` are synaptic operators applied in
        order. Each path delivers its result one step after the source spiked."""
        paths: list[list[str]] = []

        def walk(node: str, tail: list[str]) -> None:
            n = self.nodes[node]
            if isinstance(n, (InputNode, LIFNode)):
                paths.append([node, *tail])
                return
            preds = self.predecessors(node)
            if len(preds) != 1:
                raise GraphError(
                    f"synaptic node '{node}' must have exactly one incoming edge, has {len(preds)}"
                )
            walk(preds[0], [node, *tail])

        for p in self.predecessors(lif):
            walk(p, [])
        return paths

    def depth(self) -> int:
        """Longest feed-forward chain of hops from the input to any output (recurrent
        edges ignored): the number of extra steps needed to flush the last frame."""
        best: dict[str, int] = {}
        for name, node in self.nodes.items():  # nodes are in topological order
            if isinstance(node, InputNode):
                best[name] = 0
                continue
            preds = [p for p in self.predecessors(name) if p in best]
            d = max((best[p] for p in preds), default=0)
            best[name] = d + 1 if isinstance(node, LIFNode) else d
        return max((best[n.name] for n in self.output_nodes), default=max(best.values(), default=0))

    def _reachable(self, start: str, goal: str) -> bool:
        seen, stack = {start}, [start]
        while stack:
            n = stack.pop()
            if n == goal:
                return True
            for m in self.successors(n):
                if m not in seen:
                    seen.add(m)
                    stack.append(m)
        return False

    # ----- validation -------------------------------------------------------------------
    def validate(self) -> QGraph:
        """Check shapes, integer ranges and topology; raise :class:`GraphError` naming the
        offending node. Returns ``self`` so it can be chained."""
        if not self.nodes:
            raise GraphError("quantized graph is empty: it has no nodes")
        if not (np.isfinite(self.dt) and self.dt > 0):
            raise GraphError(f"quantized graph has an invalid dt={self.dt!r}: it must be > 0")
        if self.num_steps <= 0:
            raise GraphError(f"quantized graph has num_steps={self.num_steps}; must be >= 1")
        _ = self.input_node
        order = {name: i for i, name in enumerate(self.nodes)}
        for s, d in self.edges:
            for end in (s, d):
                if end not in self.nodes:
                    raise GraphError(
                        f"edge {s!r} -> {d!r} names a node '{end}' that does not exist"
                    )
            # Only edges into a LIF may point backwards, and only to close a loop
            # (recurrence); depth() relies on the order.
            if order[s] >= order[d] and (
                not isinstance(self.nodes[d], LIFNode) or not self._reachable(d, s)
            ):
                raise GraphError(
                    f"edge {s!r} -> {d!r}: nodes must be stored in topological order "
                    "(only an edge into a LIF node that closes a loop may point backwards)"
                )
        for name, node in self.nodes.items():
            if node.name != name:
                raise GraphError(f"node stored under '{name}' calls itself '{node.name}'")
            _validate_node(node)
            if isinstance(node, InputNode):
                if self.predecessors(name):
                    raise GraphError(f"input node '{name}' must not have incoming edges")
                continue
            preds = self.predecessors(name)
            if not preds:
                raise GraphError(f"node '{name}' ({node.kind}) has no incoming edge")
            want = node_in_shape(node)
            for p in preds:
                got = node_out_shape(self.nodes[p])
                if int(np.prod(got)) != int(np.prod(want)) or (
                    len(got) > 1 and len(want) > 1 and got != want
                ):
                    raise GraphError(
                        f"shape mismatch on edge '{p}' -> '{name}': '{p}' emits {list(got)}, "
                        f"'{name}' ({node.kind}) expects {list(want)}"
                    )
            if isinstance(node, LIFNode):
                self.synapse_paths(name)
            elif isinstance(node, OutputNode):
                src = self.nodes[self.source_of_output(name)]
                if not isinstance(src, (LIFNode, InputNode)):
                    raise GraphError(f"output node '{name}' must read spikes from a LIF node")
            elif len(preds) != 1:
                raise GraphError(f"synaptic node '{name}' must have exactly one incoming edge")
        if not self.output_nodes:
            raise GraphError("quantized graph has no output node")
        return self

    # ----- serialization ----------------------------------------------------------------
    def save(self, path: str | Path) -> None:
        """Write the graph to one ``.qgraph`` file (a zip of a JSON header and ``.npy``
        arrays; see docs/qgraph.md), atomically."""
        self.validate()
        header: dict[str, Any] = {
            "format": FORMAT_NAME,
            "version": FORMAT_VERSION,
            "dt": float(self.dt),
            "target": self.target,
            "num_steps": int(self.num_steps),
            "metadata": _jsonable(self.metadata),
            "edges": [list(e) for e in self.edges],
            "nodes": [],
        }
        arrays: dict[str, np.ndarray] = {}
        for name, node in self.nodes.items():
            rec: dict[str, Any] = {}
            for key, val in vars(node).items():
                if key in _ARRAY_FIELDS.get(node.kind, ()):
                    ref = f"{len(arrays):04d}_{name}.{key}"
                    arrays[ref] = np.ascontiguousarray(val, dtype=np.int64)
                    rec[key] = {"array": ref}
                else:
                    rec[key] = _jsonable(val)
            header["nodes"].append(rec)
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as zf:
            zf.writestr("graph.json", json.dumps(header, indent=1))
            for ref, arr in arrays.items():
                npy = io.BytesIO()
                np.save(npy, arr, allow_pickle=False)
                zf.writestr(f"arrays/{ref}.npy", npy.getvalue())
        atomic_write_bytes(path, buf.getvalue())

    @classmethod
    def load(cls, path: str | Path) -> QGraph:
        """Read and validate a ``.qgraph`` file. Never unpickles anything."""
        path = Path(path)
        if not path.is_file():
            raise GraphError(f"quantized graph file not found: {path}")
        try:
            with zipfile.ZipFile(path) as zf:
                header = json.loads(zf.read("graph.json"))
                if not isinstance(header, dict):
                    raise GraphError(f"{path}: graph.json must hold an object")
                if header.get("format") != FORMAT_NAME:
                    raise GraphError(f"{path}: not a snn2hw quantized graph (format field)")
                if int(header.get("version", -1)) > FORMAT_VERSION:
                    raise GraphError(
                        f"{path}: quantized graph format version {header.get('version')} is newer "
                        f"than this snn2hw supports ({FORMAT_VERSION}); upgrade snn2hw"
                    )
                nodes: dict[str, Node] = {}
                for rec in header["nodes"]:
                    kind = rec.get("kind")
                    if kind not in _NODE_TYPES:
                        raise GraphError(
                            f"{path}: node {rec.get('name')!r} has unknown kind {kind!r}"
                        )
                    kwargs = {}
                    for key, val in rec.items():
                        if isinstance(val, dict) and "array" in val:
                            with zf.open(f"arrays/{val['array']}.npy") as fh:
                                kwargs[key] = np.load(io.BytesIO(fh.read()), allow_pickle=False)
                        elif isinstance(val, list):
                            kwargs[key] = tuple(val)
                        else:
                            kwargs[key] = val
                    node = _NODE_TYPES[kind](**kwargs)
                    if node.name in nodes:
                        raise GraphError(f"{path}: two nodes are called {node.name!r}")
                    nodes[node.name] = node
                g = cls(
                    nodes=nodes,
                    edges=[(str(s), str(d)) for s, d in header["edges"]],
                    dt=float(header["dt"]),
                    target=str(header["target"]),
                    num_steps=int(header["num_steps"]),
                    metadata=dict(header.get("metadata", {})),
                )
        except GraphError:
            raise
        except (zipfile.BadZipFile, zlib.error, NotImplementedError, KeyError, ValueError,
                TypeError, AttributeError, OSError, EOFError) as exc:
            raise GraphError(
                f"{path}: corrupt or truncated quantized graph ({type(exc).__name__}: {exc}); "
                "re-run `snn2hw export`"
            ) from None
        return g.validate()


def _validate_node(node: Node) -> None:
    name, kind = node.name, node.kind

    def bad(msg: str) -> GraphError:
        return GraphError(f"node '{name}' ({kind}): {msg}")

    for key in ("du", "dv", "vth", "weight_exp", "num_weight_bits", "message_bits", "groups"):
        if not hasattr(node, key):
            continue
        val = getattr(node, key)
        if isinstance(val, bool) or not isinstance(val, (int, np.integer)):
            raise bad(f"{key} must be an integer, got {type(val).__name__} {val!r}")
    if not isinstance(name, str) or not name:
        raise bad("node name must be a non-empty string")
    for key in ("stride", "dilation", "kernel_size"):
        val = getattr(node, key, None)
        if val is not None and (len(val) != 2 or any(int(v) < 1 for v in val)):
            raise bad(f"{key}={list(val)} must be two integers >= 1")
    pad = getattr(node, "padding", None)
    if pad is not None and (len(pad) != 2 or any(int(v) < 0 for v in pad)):
        raise bad(f"padding={list(pad)} must be two integers >= 0")
    shape = getattr(node, "shape", None)
    if shape is not None and (not shape or any(int(v) < 1 for v in shape)):
        raise bad(f"invalid shape {list(shape)}")

    def int_array(arr: Any, what: str) -> np.ndarray:
        a = np.asarray(arr)
        if a.dtype.kind not in "iu":
            raise bad(f"{what} must be integers, got dtype {a.dtype}")
        return a

    if isinstance(node, InputNode):
        if not node.shape or any(s <= 0 for s in node.shape):
            raise bad(f"invalid shape {list(node.shape)}")
        if not 0 <= node.message_bits <= 24:
            raise bad(f"message_bits={node.message_bits} outside 0..24")
    elif isinstance(node, DenseNode):
        w = int_array(node.weight, "weight")
        if w.ndim != 2:
            raise bad(f"weight must be 2-D (N_out, N_in), got shape {list(w.shape)}")
        if not 1 <= node.num_weight_bits <= 8:
            raise bad(f"num_weight_bits={node.num_weight_bits} outside 1..8")
        if w.size and (w.min() < -256 or w.max() > 255):
            raise bad(f"weights span [{w.min()}, {w.max()}], outside the 9-bit range [-256, 255]")
        if not WEIGHT_EXP_MIN <= node.weight_exp <= WEIGHT_EXP_MAX:
            raise bad(f"weight_exp={node.weight_exp} outside {WEIGHT_EXP_MIN}..{WEIGHT_EXP_MAX}")
    elif isinstance(node, ConvNode):
        w = int_array(node.weight, "weight")
        if w.ndim != 4:
            raise bad(f"weight must be 4-D (C_out, C_in/groups, kH, kW), got {list(w.shape)}")
        if len(node.input_shape) != 3:
            raise bad(f"input_shape must be (C, H, W), got {list(node.input_shape)}")
        if node.groups < 1 or node.input_shape[0] != w.shape[1] * node.groups:
            raise bad(
                f"input has {node.input_shape[0]} channels but weight expects "
                f"{w.shape[1]} x groups={node.groups}"
            )
        if w.shape[0] % node.groups:
            raise bad(f"C_out={w.shape[0]} not divisible by groups={node.groups}")
        if w.size and (w.min() < -256 or w.max() > 255):
            raise bad(f"weights span [{w.min()}, {w.max()}], outside [-256, 255]")
        if not WEIGHT_EXP_MIN <= node.weight_exp <= WEIGHT_EXP_MAX:
            raise bad(f"weight_exp={node.weight_exp} outside {WEIGHT_EXP_MIN}..{WEIGHT_EXP_MAX}")
        if any(s <= 0 for s in node.out_shape):
            raise bad(f"output shape {list(node.out_shape)} is empty")
    elif isinstance(node, SumPoolNode):
        if len(node.input_shape) != 3:
            raise bad(f"input_shape must be (C, H, W), got {list(node.input_shape)}")
        if any(s <= 0 for s in node.out_shape):
            raise bad(f"output shape {list(node.out_shape)} is empty")
    elif isinstance(node, LIFNode):
        if not 0 <= node.dv <= DECAY_MAX:
            raise bad(f"dv={node.dv} outside 0..{DECAY_MAX}")
        if not -1 <= node.du <= DECAY_MAX:
            raise bad(f"du={node.du} outside -1..{DECAY_MAX}")
        if not 0 <= node.vth <= VTH_MAX:
            raise bad(f"vth={node.vth} outside 0..{VTH_MAX} (17 bits)")
        bm = int_array(node.bias_mant, "bias_mant")
        be = int_array(node.bias_exp, "bias_exp")
        for arr, what in ((bm, "bias_mant"), (be, "bias_exp")):
            if arr.shape != tuple(node.shape):
                raise bad(f"{what} has shape {list(arr.shape)}, expected {list(node.shape)}")
        if bm.size and (bm.min() < BIAS_MANT_MIN or bm.max() > BIAS_MANT_MAX):
            raise bad(f"bias_mant spans [{bm.min()}, {bm.max()}], outside 13-bit signed range")
        if be.size and (be.min() < BIAS_EXP_MIN or be.max() > BIAS_EXP_MAX):
            raise bad(f"bias_exp spans [{be.min()}, {be.max()}], outside 0..7")


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


def as_shape(x: Any) -> tuple[int, ...]:
    """Normalise a shape-like value to a tuple of ints."""
    return _tuple(x)
