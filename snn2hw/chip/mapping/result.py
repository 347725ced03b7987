"""The result of a mapping: per-core use, per-layer spread, and the whole :class:`Mapping`.

:class:`CoreUse` is one core (a contiguous neuron range of one layer and the input axons,
synapses, synaptic memory and output axons it uses); :class:`LayerMapping` one LIF layer's
cores; :class:`Mapping` all layers with the target's limits, the mesh placement of cores
(:meth:`Mapping.position`, :meth:`Mapping.hops`), the destination cores of each spike
source (:meth:`Mapping.destinations`) and a JSON-friendly ``to_dict``. Built by
:func:`snn2hw.chip.mapping.map_to_cores`.

May import: ``snn2hw.common`` and the sibling ``mesh`` module; nothing else of ``snn2hw``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from snn2hw.chip.mapping.mesh import Hops, _grid, _snake
from snn2hw.common.errors import GraphError


@dataclass
class CoreUse:
    """One core: a contiguous neuron range of one layer and what it uses."""

    core: int  # global core index
    start: int
    stop: int
    input_axons: int
    synapses: int
    synaptic_memory_bits: int  # includes per-synapse delay fields (mapping.delays)
    output_axons: int = 0
    delay_buffer_bits: int = 0  # extra dendritic accumulator slots for delays (mapping.delays)

    @property
    def neurons(self) -> int:
        return self.stop - self.start


@dataclass
class LayerMapping:
    """How one LIF layer is spread over cores."""

    name: str
    shape: tuple[int, ...]
    cores: list[CoreUse]
    max_fan_in: int  # largest number of source neurons of a single neuron
    limited_by: str  # the limit that most often closed a core ("" when one core suffices)
    max_delay: int = 0  # longest synaptic delay into the layer, steps

    @property
    def total_delay_buffer_bits(self) -> int:
        return sum(c.delay_buffer_bits for c in self.cores)

    @property
    def neurons(self) -> int:
        return int(np.prod(self.shape))

    @property
    def num_cores(self) -> int:
        return len(self.cores)

    @property
    def first_core(self) -> int:
        return self.cores[0].core

    @property
    def neurons_per_core(self) -> list[int]:
        return [c.neurons for c in self.cores]

    @property
    def max_input_axons(self) -> int:
        return max(c.input_axons for c in self.cores)

    @property
    def max_output_axons(self) -> int:
        return max(c.output_axons for c in self.cores)

    @property
    def synapses(self) -> int:
        return sum(c.synapses for c in self.cores)

    @property
    def max_synaptic_memory_bits(self) -> int:
        return max(c.synaptic_memory_bits for c in self.cores)

    @property
    def total_synaptic_memory_bits(self) -> int:
        return sum(c.synaptic_memory_bits for c in self.cores)

    def core_of(self, neurons: np.ndarray | int) -> np.ndarray:
        """Global core index of each neuron index (C-order) of this layer."""
        starts = np.array([c.start for c in self.cores])
        return self.first_core + np.searchsorted(starts, np.asarray(neurons), side="right") - 1

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "shape": list(self.shape),
            "neurons": self.neurons,
            "cores": self.num_cores,
            "first_core": self.first_core,
            "max_fan_in": self.max_fan_in,
            "limited_by": self.limited_by,
            "synapses": self.synapses,
            "max_neurons_per_core": max(self.neurons_per_core),
            "max_input_axons": self.max_input_axons,
            "max_output_axons": self.max_output_axons,
            "max_synaptic_memory_bits": self.max_synaptic_memory_bits,
            "total_synaptic_memory_bits": self.total_synaptic_memory_bits,
            "max_delay": self.max_delay,
            "total_delay_buffer_bits": self.total_delay_buffer_bits,
            "per_core": {
                "neurons": self.neurons_per_core,
                "input_axons": [c.input_axons for c in self.cores],
                "output_axons": [c.output_axons for c in self.cores],
                "synapses": [c.synapses for c in self.cores],
                "synaptic_memory_bits": [c.synaptic_memory_bits for c in self.cores],
                "delay_buffer_bits": [c.delay_buffer_bits for c in self.cores],
            },
        }


@dataclass
class Mapping:
    """Result of :func:`map_to_cores`."""

    target: str
    layers: dict[str, LayerMapping]
    limits: dict[str, int]
    bits_per_synapse: int
    cores_per_chip: int
    cores_per_tile: int
    max_chips: int
    iterations: int = 1  # partition rounds needed to satisfy output-axon limits
    _routes: dict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict, repr=False)

    @property
    def total_cores(self) -> int:
        return sum(layer.num_cores for layer in self.layers.values())

    @property
    def chips(self) -> int:
        return math.ceil(self.total_cores / self.cores_per_chip)

    @property
    def tiles_per_chip(self) -> int:
        return math.ceil(self.cores_per_chip / self.cores_per_tile)

    def position(self, core: np.ndarray | int) -> tuple[np.ndarray, np.ndarray]:
        """Global tile coordinates (x, y) of core index/indices on the mesh of chips."""
        c = np.asarray(core, dtype=np.int64)
        tiles_x, tiles_y = _grid(self.tiles_per_chip)
        chips_x = math.ceil(math.sqrt(max(1, self.chips)))
        chip, local = np.divmod(c, self.cores_per_chip)
        tx, ty = _snake(local // self.cores_per_tile, tiles_x)
        cx, cy = _snake(chip, chips_x)
        return cx * tiles_x + tx, cy * tiles_y + ty

    def hops(self, src_core: int, dst_core: int) -> Hops:
        """Tile hops from ``src_core`` to ``dst_core`` (Manhattan, X then Y routing)."""
        (x0, y0), (x1, y1) = self.position(src_core), self.position(dst_core)
        return Hops(ew=int(abs(x1 - x0)), ns=int(abs(y1 - y0)))

    def destinations(self, source: str) -> tuple[np.ndarray, np.ndarray]:
        """CSR (indptr, cores): the destination cores of each neuron of ``source``."""
        if source not in self._routes and source in self.layers:
            # a layer whose spikes leave the mesh (network output): no destination cores
            n = self.layers[source].neurons
            return np.zeros(n + 1, dtype=np.int64), np.zeros(0, dtype=np.int64)
        if source not in self._routes:
            raise GraphError(
                f"'{source}' sends no spikes to any mapped layer; sources: "
                f"{', '.join(self._routes)}"
            )
        return self._routes[source]

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly summary (for ``--json``)."""
        tiles_x, tiles_y = _grid(self.tiles_per_chip)
        return {
            "target": self.target,
            "total_cores": self.total_cores,
            "chips": self.chips,
            "cores_per_chip": self.cores_per_chip,
            "max_chips": self.max_chips,
            "limits_per_core": dict(self.limits),
            "bits_per_synapse": self.bits_per_synapse,
            "mesh": {"cores_per_tile": self.cores_per_tile, "tiles_per_chip_x": tiles_x,
                     "tiles_per_chip_y": tiles_y},
            "iterations": self.iterations,
            "layers": [layer.to_dict() for layer in self.layers.values()],
            "assumptions": [
                f"synaptic memory = non-zero synapses x {self.bits_per_synapse} bits "
                "(weight + target index; simplified model, no weight sharing)",
                "one layer per core; contiguous neuron ranges in C order",
                "external inputs are injected from off the mesh (no cores, no output axons)",
                "synaptic delays (snn2hw.chip.mapping.delays): per-synapse delay fields add "
                "bit_length(max_synaptic_delay) bits per synapse to synaptic memory; each "
                "delayed neuron adds max_delay accumulator slots of 16 bits (Lava DelayDense), "
                "reported as delay_buffer_bits, no published limit",
            ],
        }
