"""Resource mapping: place each LIF layer of a quantized graph onto a target's neuro-cores.

Model (Loihi 1 style, limits from ``snn2hw/chip/targets/data/<name>.toml`` ``[resources]``):
a core holds a contiguous neuron range of ONE layer; it is limited by neurons, input axons (distinct
source neurons with a non-zero synapse into it), output axons (one per destination core
of each of its neurons) and synaptic memory (non-zero synapses x ``bits_per_synapse``, an
ASSUMED simplified model of Loihi's synapse formats). The details are in the docstrings of
the modules, one job each:

* ``connectivity``: structural 0/1 matrices of the synaptic operators (dense after the
  chip's weight preparation, conv / sumpool geometry, flatten, composed chains) and the
  fan-in of each layer (:func:`connectivity`, :func:`fan_in_counts`);
* ``partition``: the greedy contiguous partition of every layer under the limits, output
  axons re-split in rounds, spike routes recorded (:func:`map_to_cores`);
* ``result``: what a mapping is (:class:`CoreUse`, :class:`LayerMapping`, :class:`Mapping`
  with mesh positions, destinations and ``to_dict``);
* ``mesh``: placement geometry on the tile mesh, snake order, :class:`Hops`;
* ``routing``: deliveries and tile hops of counted spikes (:func:`spike_hops`);
* ``summary``: the table for people (:func:`format_mapping`).

May import: ``snn2hw.quant``, ``snn2hw.common`` and ``snn2hw.chip.targets``.
"""

from snn2hw.chip.mapping.connectivity import (
    Connectivity,
    SourceBlock,
    connectivity,
    fan_in_counts,
)
from snn2hw.chip.mapping.mesh import Hops
from snn2hw.chip.mapping.partition import map_to_cores
from snn2hw.chip.mapping.result import CoreUse, LayerMapping, Mapping
from snn2hw.chip.mapping.routing import SpikeRouting, spike_hops
from snn2hw.chip.mapping.summary import format_mapping

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
