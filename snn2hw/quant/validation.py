"""Checks that a quantized graph is well formed; every failure is a :class:`GraphError`
naming the offending node (or edge).

* graph level (:func:`validate_graph`): non-empty, ``dt > 0``, ``num_steps >= 1``, one
  input node, edges between existing nodes stored in topological order (only an edge
  into a LIF that closes a loop may point backwards), node names match their keys,
  every node fed, shapes agree on every edge, outputs read spikes, at least one output;
* node level (:func:`validate_node`): integer fields, geometry, and the integer ranges of
  the graph's number formats (``QGraph.formats``, :class:`~snn2hw.quant.formats.NumberFormats`;
  Loihi: decays 0..4095, 17-bit threshold, 13-bit bias mantissa and exponent 0..7, 9-bit
  stored weights, weight exponents -7..7, ``num_weight_bits`` up to the mantissa bits) and
  the graded input payload (at most 24 bits, :data:`~snn2hw.quant.nodes.MESSAGE_BITS_MAX`).

Dependencies: numpy, :mod:`snn2hw.common`, :mod:`snn2hw.quant.nodes` and
:mod:`snn2hw.quant.formats`; the graph type
is only used for annotations (no import of :mod:`snn2hw.quant.qgraph` at run time).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np

from snn2hw.common.errors import GraphError
from snn2hw.quant.formats import LOIHI_FORMATS, NumberFormats
from snn2hw.quant.nodes import (
    MESSAGE_BITS_MAX,
    ConvNode,
    DenseNode,
    InputNode,
    LIFNode,
    Node,
    OutputNode,
    SumPoolNode,
    node_in_shape,
    node_out_shape,
)

if TYPE_CHECKING:
    from snn2hw.quant.qgraph import QGraph

__all__ = ["validate_graph", "validate_node"]

_INTEGER_FIELDS = ("du", "dv", "vth", "weight_exp", "num_weight_bits", "message_bits", "groups")


# ----- graph level -------------------------------------------------------------------------


def validate_graph(g: QGraph) -> QGraph:
    """Check shapes, integer ranges and topology of ``g``; returns ``g``."""
    _check_globals(g)
    _check_edges(g)
    formats = getattr(g, "formats", None)
    if not isinstance(formats, NumberFormats):
        raise GraphError(f"quantized graph formats must be NumberFormats, got {formats!r}")
    for name, node in g.nodes.items():
        if node.name != name:
            raise GraphError(f"node stored under '{name}' calls itself '{node.name}'")
        validate_node(node, formats)
        _check_node_inputs(g, name, node)
    if not g.output_nodes:
        raise GraphError("quantized graph has no output node")
    return g


def _check_globals(g: QGraph) -> None:
    """Non-empty, a positive finite ``dt``, ``num_steps >= 1`` and exactly one input."""
    if not g.nodes:
        raise GraphError("quantized graph is empty: it has no nodes")
    if not (np.isfinite(g.dt) and g.dt > 0):
        raise GraphError(f"quantized graph has an invalid dt={g.dt!r}: it must be > 0")
    if g.num_steps <= 0:
        raise GraphError(f"quantized graph has num_steps={g.num_steps}; must be >= 1")
    _ = g.input_node


def _check_edges(g: QGraph) -> None:
    """Edges name existing nodes, and point forward in storage order — except an edge
    into a LIF that closes a loop (recurrence); ``QGraph.depth()`` relies on the order."""
    order = {name: i for i, name in enumerate(g.nodes)}
    for s, d in g.edges:
        for end in (s, d):
            if end not in g.nodes:
                raise GraphError(f"edge {s!r} -> {d!r} names a node '{end}' that does not exist")
        if order[s] >= order[d] and (
            not isinstance(g.nodes[d], LIFNode) or not g._reachable(d, s)
        ):
            raise GraphError(
                f"edge {s!r} -> {d!r}: nodes must be stored in topological order "
                "(only an edge into a LIF node that closes a loop may point backwards)"
            )


def _check_node_inputs(g: QGraph, name: str, node: Node) -> None:
    """The incoming edges of one node: count, shapes, and what an output may read."""
    preds = g.predecessors(name)
    if isinstance(node, InputNode):
        if preds:
            raise GraphError(f"input node '{name}' must not have incoming edges")
        return
    if not preds:
        raise GraphError(f"node '{name}' ({node.kind}) has no incoming edge")
    want = node_in_shape(node)
    for p in preds:
        got = node_out_shape(g.nodes[p])
        if int(np.prod(got)) != int(np.prod(want)) or (
            len(got) > 1 and len(want) > 1 and got != want
        ):
            raise GraphError(
                f"shape mismatch on edge '{p}' -> '{name}': '{p}' emits {list(got)}, "
                f"'{name}' ({node.kind}) expects {list(want)}"
            )
    if isinstance(node, LIFNode):
        g.synapse_paths(name)
    elif isinstance(node, OutputNode):
        src = g.nodes[g.source_of_output(name)]
        if not isinstance(src, (LIFNode, InputNode)):
            raise GraphError(f"output node '{name}' must read spikes from a LIF node")
    elif len(preds) != 1:
        raise GraphError(f"synaptic node '{name}' must have exactly one incoming edge")


# ----- node level --------------------------------------------------------------------------


def validate_node(node: Node, formats: NumberFormats = LOIHI_FORMATS) -> None:
    """Check one node's field types, geometry and integer ranges (those of ``formats``)."""

    def bad(msg: str) -> GraphError:
        return GraphError(f"node '{node.name}' ({node.kind}): {msg}")

    _check_common_fields(node, bad)
    for kind, check in _KIND_CHECKS.items():
        if isinstance(node, kind):
            check(node, bad, formats)
            return


_Bad = Callable[[str], GraphError]
_F = NumberFormats


def _check_common_fields(node: Node, bad: _Bad) -> None:
    """Integer scalars, the name, window geometry and ``shape`` (whichever the node has)."""
    for key in _INTEGER_FIELDS:
        if not hasattr(node, key):
            continue
        val = getattr(node, key)
        if isinstance(val, bool) or not isinstance(val, (int, np.integer)):
            raise bad(f"{key} must be an integer, got {type(val).__name__} {val!r}")
    if not isinstance(node.name, str) or not node.name:
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


def _int_array(arr: Any, what: str, bad: _Bad) -> np.ndarray:
    a = np.asarray(arr)
    if a.dtype.kind not in "iu":
        raise bad(f"{what} must be integers, got dtype {a.dtype}")
    return a


def _check_weight_range(w: np.ndarray, bad: _Bad, f: _F) -> None:
    """Stored weights lie in the union of the target's clip ranges (Loihi: 9-bit signed,
    [-256, 255])."""
    lo, hi = f.weight_stored_range
    if w.size and (w.min() < lo or w.max() > hi):
        raise bad(f"weights span [{w.min()}, {w.max()}], outside [{lo}, {hi}] (the "
                  "target's stored weight range, formats.weight_range_*)")


def _check_weight_exp(node: DenseNode | ConvNode, bad: _Bad, f: _F) -> None:
    if not f.weight_exp_min <= node.weight_exp <= f.weight_exp_max:
        raise bad(f"weight_exp={node.weight_exp} outside {f.weight_exp_min}..{f.weight_exp_max} "
                  "(formats.weight_exp_min/max)")


def _check_input(node: InputNode, bad: _Bad, f: _F) -> None:
    if not node.shape or any(s <= 0 for s in node.shape):
        raise bad(f"invalid shape {list(node.shape)}")
    if not 0 <= node.message_bits <= MESSAGE_BITS_MAX:
        raise bad(f"message_bits={node.message_bits} outside 0..{MESSAGE_BITS_MAX}")


def _check_dense(node: DenseNode, bad: _Bad, f: _F) -> None:
    w = _int_array(node.weight, "weight", bad)
    if w.ndim != 2:
        raise bad(f"weight must be 2-D (N_out, N_in), got shape {list(w.shape)}")
    if not 1 <= node.num_weight_bits <= f.weight_mantissa_bits:
        raise bad(f"num_weight_bits={node.num_weight_bits} outside 1..{f.weight_mantissa_bits} "
                  "(formats.weight_mantissa_bits)")
    _check_weight_range(w, bad, f)
    _check_weight_exp(node, bad, f)
    _check_delay(node.delay, w.shape, bad, f)


def _check_delay(delay: Any, weight_shape: tuple[int, ...], bad: _Bad, f: _F) -> None:
    """A delay is an int or (dense only) an int array of the weight's shape, each value in
    ``0..formats.max_synaptic_delay`` (docs/qgraph.md "Synaptic delays")."""
    if isinstance(delay, np.ndarray):
        d = _int_array(delay, "delay", bad)
        if d.shape != tuple(weight_shape):
            raise bad(f"delay has shape {list(d.shape)}, expected the weight's "
                      f"{list(weight_shape)}")
    elif isinstance(delay, bool) or not isinstance(delay, (int, np.integer)):
        raise bad(f"delay must be an integer or an integer array, got {type(delay).__name__}")
    else:
        d = np.asarray(int(delay))
    if d.size == 0:
        return
    lo, hi = int(d.min()), int(d.max())
    if lo < 0:
        raise bad(f"delay {lo} is negative")
    if hi > f.max_synaptic_delay:
        where = ("the target has no synaptic delays" if f.max_synaptic_delay == 0
                 else f"the target's limit is {f.max_synaptic_delay} (max_synaptic_delay)")
        raise bad(f"delay {hi} exceeds what the target allows: {where}")


def _check_conv(node: ConvNode, bad: _Bad, f: _F) -> None:
    w = _int_array(node.weight, "weight", bad)
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
    _check_weight_range(w, bad, f)
    _check_weight_exp(node, bad, f)
    _check_delay(node.delay, (), bad, f)
    if any(s <= 0 for s in node.out_shape):
        raise bad(f"output shape {list(node.out_shape)} is empty")


def _check_sumpool(node: SumPoolNode, bad: _Bad, f: _F) -> None:
    if len(node.input_shape) != 3:
        raise bad(f"input_shape must be (C, H, W), got {list(node.input_shape)}")
    if any(s <= 0 for s in node.out_shape):
        raise bad(f"output shape {list(node.out_shape)} is empty")


def _check_lif(node: LIFNode, bad: _Bad, f: _F) -> None:
    dmax = f.decay_max
    if not 0 <= node.dv <= dmax:
        raise bad(f"dv={node.dv} outside 0..{dmax} ({f.decay_bits}-bit decay)")
    if not -1 <= node.du <= dmax:
        raise bad(f"du={node.du} outside -1..{dmax} ({f.decay_bits}-bit decay)")
    if not 0 <= node.vth <= f.vth_max:
        raise bad(f"vth={node.vth} outside 0..{f.vth_max} ({f.threshold_bits} bits)")
    bm = _int_array(node.bias_mant, "bias_mant", bad)
    be = _int_array(node.bias_exp, "bias_exp", bad)
    for arr, what in ((bm, "bias_mant"), (be, "bias_exp")):
        if arr.shape != tuple(node.shape):
            raise bad(f"{what} has shape {list(arr.shape)}, expected {list(node.shape)}")
    m_lo, m_hi = f.bias_mant_range
    if bm.size and (bm.min() < m_lo or bm.max() > m_hi):
        raise bad(f"bias_mant spans [{bm.min()}, {bm.max()}], outside the "
                  f"{f.bias_mant_bits}-bit signed range {m_lo}..{m_hi}")
    if be.size and (be.min() < f.bias_exp_min or be.max() > f.bias_exp_max):
        raise bad(
            f"bias_exp spans [{be.min()}, {be.max()}], outside {f.bias_exp_min}..{f.bias_exp_max}"
        )
    _check_max_spikes(node, bad, f)
    _check_periodic_reset(node, bad)


def _check_periodic_reset(node: LIFNode, bad: _Bad) -> None:
    """``reset_interval`` 0 (none) or >= 1 with ``0 <= reset_offset < reset_interval``."""
    iv, off = node.reset_interval, node.reset_offset
    for key, val in (("reset_interval", iv), ("reset_offset", off)):
        if isinstance(val, bool) or not isinstance(val, (int, np.integer)):
            raise bad(f"{key} must be an integer, got {val!r}")
    if iv < 0 or (iv == 0 and off != 0) or (iv > 0 and not 0 <= off < iv):
        raise bad(f"reset_interval={iv}, reset_offset={off}: need interval 0 (no periodic "
                  "reset, offset 0) or interval >= 1 with 0 <= offset < interval")


def _check_max_spikes(node: LIFNode, bad: _Bad, f: _F) -> None:
    """``max_spikes > 1`` (multi-spike output) needs graded messages wide enough for the
    count and a threshold of at least 1 (the count divides by it)."""
    n = node.max_spikes
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise bad(f"max_spikes must be an integer >= 1, got {n!r}")
    if n == 1:
        return
    bits = int(n).bit_length()
    if bits > f.max_message_bits:
        raise bad(f"multi-spike output (max_spikes={n}) needs {bits}-bit graded spikes; the "
                  f"target carries {f.max_message_bits} (max_message_bits): use a target "
                  "with graded spikes (e.g. loihi2) or single spikes")
    if node.vth < 1:
        raise bad("multi-spike output needs vth >= 1")


_KIND_CHECKS: dict[type, Callable[[Any, _Bad, _F], None]] = {
    InputNode: _check_input,
    DenseNode: _check_dense,
    ConvNode: _check_conv,
    SumPoolNode: _check_sumpool,
    LIFNode: _check_lif,
}
