"""Where a chip spends memory on synaptic delays: per-synapse delay fields and the
dendritic accumulator slots of each delayed neuron.

Model (ASSUMED; Intel publishes no Loihi 2 delay-memory figures), read from how Lava's
``DelayDense`` (lava-nc 0.10.0, ``proc/dense/process.py`` and ``proc/dense/models.py``,
docs/sources.md#loihi-2-synaptic-delays) holds delays:

* **delay fields in synaptic memory**: ``DelayDense`` keeps a delay per synapse next to its
  weight (``delays``, shape ``(n_out, n_in)``). A layer reached by per-synapse delays (a
  dense op whose delay is an array with more than one value) stores, per non-zero synapse,
  ``bit_length(max_synaptic_delay)`` more bits (Loihi 2: 6 bits for 0..63), counted into
  the core's synaptic memory and so into its limit. A delay that is one value for a whole
  op is a property of the connection and costs no per-synapse bits.
* **accumulator slots**: ``DelayDense`` keeps, per output neuron, a ring of
  ``max_delay + 1`` accumulators (``a_buff``, shape ``(n_out, max_delay + 1)``, 16-bit
  precision in ``PyDelayDenseModelBitAcc``). Every neuron has the first slot anyway; a layer
  whose longest incoming path delay is ``d`` adds ``d`` slots of
  :data:`ACCUMULATOR_BITS` per neuron, reported per core as delay-buffer memory (no
  per-core limit for it is published, so it is reported, not enforced).

May import: ``snn2hw.quant`` and ``snn2hw.common``; nothing else of ``snn2hw``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from snn2hw.quant.qgraph import DenseNode, QGraph

ACCUMULATOR_BITS = 16  # Lava PyDelayDenseModelBitAcc: a_buff int32 with precision=16


@dataclass(frozen=True)
class LayerDelays:
    """Delay memory of one LIF layer (module doc)."""

    max_delay: int  # longest delay (steps) on any path into the layer
    per_synapse: bool  # some synapse path carries per-synapse delays
    delay_bits_per_synapse: int  # extra synaptic-memory bits per non-zero synapse
    buffer_bits_per_neuron: int  # extra accumulator bits per neuron


def layer_delays(graph: QGraph, layer: str) -> LayerDelays:
    """What delays cost in ``layer`` of ``graph`` (module doc)."""
    longest, per_synapse = 0, False
    for path in graph.synapse_paths(layer):
        total = 0
        for op in path[1:]:
            d = getattr(graph.nodes[op], "delay", 0)
            if isinstance(d, np.ndarray):
                total += int(d.max()) if d.size else 0
                per_synapse |= isinstance(graph.nodes[op], DenseNode) and bool(
                    d.size and np.any(d != d.flat[0]))
            else:
                total += int(d)
        longest = max(longest, total)
    field_bits = int(graph.formats.max_synaptic_delay).bit_length() if per_synapse else 0
    return LayerDelays(longest, per_synapse, field_bits, longest * ACCUMULATOR_BITS)
