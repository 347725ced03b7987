"""Partition: place every LIF layer's neurons on cores within the target's limits.

Model (Loihi 1 style, limits from ``snn2hw/chip/targets/data/<name>.toml`` ``[resources]``):

* A core holds neurons of ONE layer, a contiguous range in the layer's C-order flattening,
  at most ``neurons_per_core`` of them.
* **Input axons** of a core: distinct source neurons (inputs or LIF neurons, over all
  synapse paths into the layer) with at least one non-zero synapse into the core's neurons
  (structure from :mod:`.connectivity`).
* **Output axons** of a core: each of its neurons needs one output axon per destination
  core it reaches (one spike message per destination core); summed over the core.
  External inputs are injected from off the neuro-core mesh and use no output axons here.
* **Synaptic memory** of a core: non-zero synapses into its neurons x ``bits_per_synapse``,
  where ``bits_per_synapse`` is the target's weight bits (``[formats]
  weight_mantissa_bits``) plus ``[resources] synapse_index_bits`` (Loihi 1: 8 + 10 = 18;
  ``Target.bits_per_synapse``). This is an ASSUMED, simplified model of Loihi's
  compressed synapse formats: every non-zero synapse is stored explicitly as weight +
  target-compartment index; conv weight sharing is not credited.
* **Synaptic delays** (:mod:`.delays`): per-synapse delay fields add bits per synapse to
  the layer's synaptic memory; delayed neurons' extra accumulator slots are reported per
  core as ``delay_buffer_bits``.

Greedy contiguous, O(neurons) per layer: extend the current core neuron by neuron while
every limit still holds, else open a new core. Every limit is monotone in the range, so
this gives the fewest cores of any contiguous partition. Output axons depend on the
destination layers' partitions, so layers are first split on input-side limits, then any
layer whose cores exceed ``output_axons_per_core`` is re-split (bounded iterations).
Finally each source's routes (neuron -> destination cores) are recorded on the
:class:`~snn2hw.chip.mapping.result.Mapping` for spike routing.

Holds :func:`map_to_cores` and its helpers.

May import: ``snn2hw.quant``, ``snn2hw.common``, ``snn2hw.chip.targets`` (the target
description) and the sibling ``connectivity`` and ``result`` modules; nothing else.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from snn2hw.chip.mapping.connectivity import _FanIn, _Ops, _source_size
from snn2hw.chip.mapping.delays import LayerDelays, layer_delays
from snn2hw.chip.mapping.result import CoreUse, LayerMapping, Mapping
from snn2hw.chip.targets import Target
from snn2hw.common.errors import GraphError, ResourceError
from snn2hw.quant.qgraph import LIFNode, QGraph

_REASONS = ("neurons", "input_axons", "synaptic_memory", "output_axons")


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
    fan: _FanIn, lim: _Limits, out_need: np.ndarray | None, dly: LayerDelays | None = None
) -> _Part:
    """Greedy contiguous partition of one layer (see module docstring); ``dly``: the
    layer's delay memory (per-synapse delay bits count into synaptic memory)."""
    layer = fan.layer
    bits = lim.bits_per_synapse + (dly.delay_bits_per_synapse if dly else 0)
    buf = dly.buffer_bits_per_neuron if dly else 0
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
        cores.append(CoreUse(-1, start, stop, ax, syn, syn * bits, out, (stop - start) * buf))

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


def _limits(target: Target) -> _Limits:
    r = target.resources
    return _Limits(
        neurons=r.neurons_per_core,
        input_axons=r.input_axons_per_core,
        output_axons=r.output_axons_per_core,
        memory_bits=r.synaptic_memory_bits_per_core,
        bits_per_synapse=target.bits_per_synapse,
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
    delays: dict[str, LayerDelays] = {}
    done: list[tuple[str, int]] = []
    for name in lif_names:
        fans[name] = _FanIn(graph, ops, name)
        delays[name] = layer_delays(graph, name)
        parts[name] = _partition(fans[name], lim, None, delays[name])
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
            parts[name] = _partition(fans[name], lim, need[name], delays[name])
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
        layers[name] = LayerMapping(name, tuple(node.shape), part.cores, part.max_fan_in, limited,
                                    delays[name].max_delay)

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
