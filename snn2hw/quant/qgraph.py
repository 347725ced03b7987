"""The quantized graph: the single contract between all integer backends.

A :class:`QGraph` holds integers only (weights, exponents, decays, thresholds, biases),
the topology, ``dt``, the target name and the target's number formats
(:class:`~snn2hw.quant.formats.NumberFormats`: the ranges its values must lie in and the
arithmetic rules, such as u / v widths, overflow and reset, its backends execute).
Backends (torch integer mode, the event-driven reference simulator, Lava, ONNX) execute
it; none of them re-derives quantization.
Its execution semantics are written down once, in ``docs/qgraph.md`` (which builds on
Lava's bit-accurate models); its on-disk format is described there too.

This module holds the :class:`QGraph` container and its topology helpers. The rest of
the contract lives next to it, and every name is re-exported here so
``from snn2hw.quant.qgraph import ...`` keeps working:

* :mod:`snn2hw.quant.nodes`: the node kinds (each with its integer update in its
  docstring), the declared Loihi ranges and shape helpers;
* :mod:`snn2hw.quant.validation`: the checks behind :meth:`QGraph.validate`;
* :mod:`snn2hw.quant.qgraph_file`: the ``.qgraph`` file behind :meth:`QGraph.save` and
  :meth:`QGraph.load`.

Dependencies: numpy, :mod:`snn2hw.common` and those three modules; nothing in
``snn2hw.quant`` imports backends, pipeline, chip, training or the CLI.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from snn2hw.common.errors import GraphError
from snn2hw.quant.formats import LOIHI_FORMATS, NumberFormats
from snn2hw.quant.nodes import (
    BIAS_EXP_MAX,
    BIAS_EXP_MIN,
    BIAS_MANT_MAX,
    BIAS_MANT_MIN,
    DECAY_MAX,
    INT32_MAX,
    SYNAPSE_KINDS,
    U_V_BITS,
    VTH_MAX,
    WEIGHT_EXP_MAX,
    WEIGHT_EXP_MIN,
    ConvNode,
    DenseNode,
    FlattenNode,
    InputNode,
    LIFNode,
    Node,
    OutputNode,
    SumPoolNode,
    as_shape,
    max_delay,
    node_in_shape,
    node_out_shape,
)
from snn2hw.quant.qgraph_file import FORMAT_NAME, FORMAT_VERSION, load_qgraph, save_qgraph
from snn2hw.quant.validation import validate_graph

__all__ = [
    "BIAS_EXP_MAX",
    "BIAS_EXP_MIN",
    "BIAS_MANT_MAX",
    "BIAS_MANT_MIN",
    "DECAY_MAX",
    "FORMAT_NAME",
    "FORMAT_VERSION",
    "INT32_MAX",
    "SYNAPSE_KINDS",
    "U_V_BITS",
    "VTH_MAX",
    "WEIGHT_EXP_MAX",
    "WEIGHT_EXP_MIN",
    "ConvNode",
    "DenseNode",
    "FlattenNode",
    "InputNode",
    "LIFNode",
    "LOIHI_FORMATS",
    "Node",
    "NumberFormats",
    "OutputNode",
    "QGraph",
    "SumPoolNode",
    "as_shape",
    "max_delay",
    "node_in_shape",
    "node_out_shape",
]


@dataclass
class QGraph:
    """A quantized spiking network for one target.

    ``nodes`` is ordered (insertion order is a valid topological order ignoring recurrent
    edges); ``edges`` are (src, dst) names. ``num_steps`` is the number of input frames the
    graph was calibrated for; backends run ``num_steps + depth()`` steps by default so the
    last frame reaches the output despite the hop delays. ``formats`` are the number
    formats of the target the graph was made for (Loihi's by default); validation checks
    the node values against them and the backends execute their arithmetic rules.
    """

    nodes: dict[str, Node]
    edges: list[tuple[str, str]]
    dt: float
    target: str
    num_steps: int
    metadata: dict[str, Any] = field(default_factory=dict)
    formats: NumberFormats = LOIHI_FORMATS
    folder: Path | None = field(default=None, compare=False, repr=False)
    """The folder the graph was loaded from (not stored): files its metadata names (the NIR
    file, recorded inputs) are read from there and nowhere else."""

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
        """Longest feed-forward chain of hops from the input to any output, counting
        synaptic delays (recurrent edges ignored): the number of extra steps needed to flush
        the last frame."""
        best: dict[str, int] = {}
        for name, node in self.nodes.items():  # nodes are in topological order
            if isinstance(node, InputNode):
                best[name] = 0
                continue
            preds = [p for p in self.predecessors(name) if p in best]
            d = max((best[p] for p in preds), default=0) + max_delay(node)
            best[name] = d + 1 if isinstance(node, LIFNode) else d
        return max((best[n.name] for n in self.output_nodes), default=max(best.values(), default=0))

    def has_delays(self) -> bool:
        """Whether any synaptic operator carries a non-zero delay."""
        return any(max_delay(n) > 0 for n in self.nodes.values())

    def _reachable(self, start: str, goal: str) -> bool:
        """Whether ``goal`` can be reached from ``start`` along edges."""
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

    # ----- validation and files (see snn2hw.quant.validation / .qgraph_file) -------------
    def validate(self) -> QGraph:
        """Check shapes, integer ranges and topology; raise :class:`GraphError` naming the
        offending node. Returns ``self`` so it can be chained."""
        return validate_graph(self)

    def save(self, path: str | Path) -> None:
        """Write the graph to one ``.qgraph`` file (a zip of a JSON header and ``.npy``
        arrays; see docs/qgraph.md), atomically."""
        save_qgraph(self, path)

    @classmethod
    def load(cls, path: str | Path) -> QGraph:
        """Read and validate a ``.qgraph`` file. Never unpickles anything."""
        return load_qgraph(path, cls)
