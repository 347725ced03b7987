"""Aligning merge points: the synaptic delays that make the chip sum what the float model sums.

The float model (and NIR, as snn2hw executes it) has no hop delay: a neuron integrates at
step ``t`` what its sources emit at step ``t`` (plus any explicit ``nir.Delay``), while on
the chip every path costs one step (docs/qgraph.md "Topology and timing"). In a chain the
difference is a pure time shift, but where paths of different hop counts meet (a residual
add, a skip connection into a deeper layer) the shorter path arrives early.

Each LIF ``L`` gets a **time shift** ``s(L)``: the chip's ``L`` at step ``n`` is the float
model's ``L`` at step ``n - s(L)``. With a path ``P`` from source ``S`` that carries the
float delay ``d_P`` (from ``nir.Delay`` nodes; 0 for a model without them), the chip must
give ``P`` the synaptic delay

    D_P = s(L) - s(S) - 1 + d_P          (feed-forward path; s(input) = 0)
    s(L) = max over feed-forward paths of  s(S) + 1 - min(d_P)

so every ``D_P >= 0`` and the longest-hop path gets none. A model without delays gets
``s`` = hop depth and ``D_P`` = the hop difference on the shorter paths; a model trained
with hop delays (``nir.Delay`` of one step before every neuron, :mod:`snn2hw.nn.model`)
gets ``s = 0`` and no delay at all. A recurrent path (source not before ``L`` in the
graph) is delivered one step late in float as on the chip, so ``D_P = s(L) - s(S) + d_P``;
when that is negative (a loop back to an earlier layer) it cannot be aligned and is
reported.

The delay goes on the path's last op that carries one (dense or conv; PTQ gives every path
its own ops). On a target with delays (``formats.max_synaptic_delay > 0``) every ``D_P``
is inserted; one above the limit is refused naming the layer, the delay and the limit. On
a target without delays nothing is inserted and the misalignment is reported per merge
node; a delay that the NIR graph itself asked for (``d_P > 0``) is refused there.

Dependencies: numpy, :mod:`snn2hw.common` and :mod:`snn2hw.quant` (nodes, qgraph).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import numpy as np

from snn2hw.common.errors import GraphError, QuantizationError
from snn2hw.quant.nodes import ConvNode, DenseNode, InputNode, LIFNode
from snn2hw.quant.qgraph import QGraph

__all__ = [
    "Alignment",
    "PathTiming",
    "aligned_twin",
    "align_graph",
    "layer_shifts",
    "plan_alignment",
]


@dataclass
class PathTiming:
    """One synapse path into a LIF and the delay the chip needs on it."""

    lif: str
    source: str
    op: str  # the op that carries the path's delay (its last dense/conv)
    float_delay: int  # largest float-time delay on the path (nir.Delay), in steps
    extra: int  # added to every synapse's float delay: s(L) - s(S) - 1 (recurrent: s(L) - s(S))
    recurrent: bool = False

    @property
    def chip_delay(self) -> int:
        """The largest synaptic delay the chip needs on this path (negative: a recurrent
        path that arrives late and cannot be aligned)."""
        return self.float_delay + self.extra

    def to_dict(self) -> dict[str, Any]:
        return {**vars(self), "chip_delay": self.chip_delay}


@dataclass
class Alignment:
    """The time shift of every LIF and the delay of every path (see the module doc)."""

    shifts: dict[str, int]
    paths: list[PathTiming]
    max_synaptic_delay: int
    applied: bool = False

    @property
    def misaligned(self) -> list[PathTiming]:
        """Paths the chip (without delays) delivers at another step than the float model
        sums them: every path that needs a non-zero delay."""
        return [p for p in self.paths if p.chip_delay != 0]

    @property
    def merge_nodes(self) -> list[str]:
        """LIFs with at least one input path that needs a delay."""
        return list(dict.fromkeys(p.lif for p in self.misaligned))

    @property
    def max_needed(self) -> int:
        return max((p.chip_delay for p in self.paths), default=0)

    def to_dict(self) -> dict[str, Any]:
        return {
            "shifts": dict(self.shifts),
            "paths": [p.to_dict() for p in self.paths],
            "max_synaptic_delay": self.max_synaptic_delay,
            "applied": self.applied,
            "merge_nodes": self.merge_nodes,
        }

    def describe(self) -> list[str]:
        """One line per path that needs a delay, for export.md."""
        lines = []
        for p in self.misaligned:
            if p.chip_delay < 0:
                lines.append(f"'{p.lif}': the recurrent path from '{p.source}' arrives "
                             f"{-p.chip_delay} step(s) later than in the float model (a loop to "
                             "an earlier layer cannot be aligned)")
            elif self.applied:
                lines.append(f"'{p.lif}': delay {p.chip_delay} on '{p.op}' (path from "
                             f"'{p.source}'"
                             + (f", {p.float_delay} of it from the NIR graph" if p.float_delay
                                else ", aligning it with the layer's longest path") + ")")
            else:
                lines.append(f"'{p.lif}': the path from '{p.source}' ('{p.op}') arrives "
                             f"{p.chip_delay} step(s) early (it needs a synaptic delay of "
                             f"{p.chip_delay}; the target has none)")
        return lines


# ----- planning ----------------------------------------------------------------------------


def _delay_op(g: QGraph, path: list[str]) -> str | None:
    """The last op of ``path`` that can carry a delay (dense or conv)."""
    for name in reversed(path[1:]):
        if isinstance(g.nodes[name], (DenseNode, ConvNode)):
            return name
    return None


def _path_delays(g: QGraph, path: list[str]) -> tuple[int, int]:
    """``(min, max)`` of the total delay along ``path`` (per-synapse arrays: their range)."""
    lo = hi = 0
    for name in path[1:]:
        d = getattr(g.nodes[name], "delay", 0)
        if isinstance(d, np.ndarray):
            lo += int(d.min()) if d.size else 0
            hi += int(d.max()) if d.size else 0
        else:
            lo += int(d)
            hi += int(d)
    return lo, hi


def plan_alignment(g: QGraph) -> Alignment:
    """Time shifts and per-path delays of ``g``, whose delays are read as the float model's
    (module doc); ``g`` is not changed."""
    order = {name: i for i, name in enumerate(g.nodes)}
    shifts: dict[str, int] = {g.input_node.name: 0}
    found: list[tuple[str, list[str], int, int, bool]] = []
    for name, node in g.nodes.items():  # stored in topological order
        if not isinstance(node, LIFNode):
            continue
        best = None
        for p in g.synapse_paths(name):
            # a path closes a loop when its source is not stored before the LIF it feeds
            back = not isinstance(g.nodes[p[0]], InputNode) and order[p[0]] >= order[name]
            lo, hi = _path_delays(g, p)
            found.append((name, p, lo, hi, back))
            if not back:
                cand = shifts[p[0]] + 1 - lo
                best = cand if best is None else max(best, cand)
        shifts[name] = 0 if best is None else best
    timings = []
    for lif, p, _lo, hi, back in found:
        extra = shifts[lif] - shifts[p[0]] - (0 if back else 1)
        op = _delay_op(g, p)
        if op is None and hi + extra != 0:
            raise GraphError(f"node '{lif}': the path from '{p[0]}' has no dense or conv op to "
                             "carry the delay that aligns it")
        timings.append(PathTiming(lif, p[0], op or p[-1], hi, extra, back))
    return Alignment(shifts, timings, int(g.formats.max_synaptic_delay))


# ----- applying ----------------------------------------------------------------------------


def _add_delay(node: DenseNode | ConvNode, extra: int) -> DenseNode | ConvNode:
    d = node.delay
    new = d + extra if isinstance(d, np.ndarray) else int(d) + int(extra)
    if np.any(np.asarray(new) < 0):
        raise GraphError(f"node '{node.name}': aligning its path would need a negative delay "
                         "on it (put the path's delays on its last dense or conv op)")
    return dataclasses.replace(node, delay=new)


def _check_shared(g: QGraph, timings: list[PathTiming]) -> None:
    """An op whose delay changes must belong to one path only."""
    for t in timings:
        if t.extra and t.op in g.nodes and len(g.successors(t.op)) > 1:
            raise GraphError(f"node '{t.op}' feeds {len(g.successors(t.op))} nodes; a delay "
                             f"that aligns only the path into '{t.lif}' needs an op of its own")


def _limit_error(g: QGraph, t: PathTiming, why: str) -> QuantizationError:
    lim = g.formats.max_synaptic_delay
    where = ("the target has no synaptic delays" if lim == 0
             else f"its limit is {lim} (max_synaptic_delay)")
    return QuantizationError(
        f"layer '{t.lif}': the path from '{t.source}' ('{t.op}') needs a synaptic delay of "
        f"{t.chip_delay} steps ({why}); target '{g.target}': {where}. Shorten the skip, or "
        "train with hop delays ([model].hop_delays = true, snn2hw finetune --hop-delays) so "
        "no delay is needed"
    )


def align_graph(g: QGraph) -> Alignment:
    """Turn the float-time delays on ``g``'s ops into chip delays, in place (module doc).
    With target delays every path gets its delay; without, no op keeps a delay and the
    misalignment is only recorded. Refuses a delay above the target's limit (naming the
    layer, the delay and the limit), and any delay the NIR graph asked for on a target
    without delays."""
    al = plan_alignment(g)
    lim = int(g.formats.max_synaptic_delay)
    _check_shared(g, al.paths)
    for t in al.paths:
        if lim > 0 and t.chip_delay > lim:
            why = ("to align it with the layer's other inputs" if not t.float_delay else
                   f"{t.float_delay} of them asked for by the NIR graph's Delay nodes")
            raise _limit_error(g, t, why)
        if lim == 0 and t.float_delay > 0 and t.chip_delay > 0:
            raise _limit_error(g, t, "asked for by the NIR graph's Delay nodes")
    for t in al.paths:
        node = g.nodes[t.op]
        if not isinstance(node, (DenseNode, ConvNode)):
            continue
        if lim > 0:
            if t.extra and not (t.recurrent and t.chip_delay < 0):
                g.nodes[t.op] = _add_delay(node, t.extra)
        else:  # the hops absorbed every float delay; nothing stays on the ops
            zero = np.zeros_like(node.delay) if isinstance(node.delay, np.ndarray) else 0
            g.nodes[t.op] = dataclasses.replace(node, delay=zero)
    al.applied = lim > 0
    return al


def aligned_twin(g: QGraph, al: Alignment) -> QGraph:
    """A copy of ``g`` (made for a target without delays, ``al`` not applied) with every
    alignment delay inserted and the delay limit raised to what they need: what the same
    integers compute with aligned merges. Only for measuring the cost of misalignment."""
    if al.applied:
        raise GraphError("aligned_twin needs an alignment that was not applied")
    nodes = dict(g.nodes)
    for t in al.paths:
        if t.chip_delay > 0:
            nodes[t.op] = _add_delay(nodes[t.op], t.chip_delay)
    fmts = dataclasses.replace(g.formats, max_synaptic_delay=max(al.max_needed, 0))
    twin = QGraph(nodes, list(g.edges), g.dt, g.target, g.num_steps,
                  {**g.metadata, "alignment": {**al.to_dict(), "applied": True}}, fmts)
    return twin.validate()


def layer_shifts(g: QGraph) -> dict[str, int]:
    """Per LIF: how many steps the chip runs behind the float model (``s(L)``), from the
    alignment recorded at export, else the hop depth (graphs exported before alignment)."""
    al = g.metadata.get("alignment")
    if isinstance(al, dict) and isinstance(al.get("shifts"), dict):
        return {str(k): int(v) for k, v in al["shifts"].items()}
    depth: dict[str, int] = {}
    for name, node in g.nodes.items():
        if isinstance(node, LIFNode):
            preds = [p[0] for p in g.synapse_paths(name)]
            depth[name] = 1 + max((depth.get(p, 0) for p in preds if p in depth), default=0)
    return depth
