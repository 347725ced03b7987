"""Spike routing: deliveries, tile hops and chip crossings of counted spikes on a mapping.

Given spikes per neuron of one source, :func:`spike_hops` sends each spike to every
destination core its neuron reaches (one delivery per spike and destination core) and sums
the tile hops between source and destination positions on the mesh (:mod:`.mesh`), which
the energy and latency models price.

May import: ``snn2hw.common`` and the sibling ``result`` module; nothing else of ``snn2hw``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from snn2hw.chip.mapping.result import Mapping
from snn2hw.common.errors import GraphError


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
