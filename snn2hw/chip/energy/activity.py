"""Activity as plain data: what the estimator is given (:class:`RunActivity`, counters of a
run per LIF layer) and what it reports per inference (:class:`LayerActivity`,
:class:`SourceTraffic`).

The chip side never runs a simulator: ``snn2hw.pipeline.energy.activity_from_run`` builds a
:class:`RunActivity` from the event backend's counters, and the keyword-spotting check
synthesizes one. Counters (all summed over the run's samples):

* ``spikes``: the spike raster ``[steps, samples, ...]`` (routing and latency need which
  neuron spiked when);
* ``synops`` / ``synops_dense``: per step, (event, non-zero synapse) pairs / including zeros;
* ``neuron_updates``: per step, active neuron updates;
* ``macs_dense``: dense MACs of one forward step into the layer.

May import: ``snn2hw.common``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from snn2hw.common.errors import Snn2hwError

COUNTERS = ("synops", "synops_dense", "neuron_updates")


@dataclass(frozen=True)
class LayerCounts:
    """Counters of one LIF layer over a run (None: the run did not count it)."""

    spikes: np.ndarray
    synops: np.ndarray | None = None
    synops_dense: np.ndarray | None = None
    neuron_updates: np.ndarray | None = None
    macs_dense: int | None = None


@dataclass(frozen=True)
class RunActivity:
    """Activity of one run per LIF layer; ``source`` names what counted it (``'event'``)."""

    source: str
    layers: dict[str, LayerCounts]

    def spikes(self, layer: str) -> np.ndarray:
        return self.layers[layer].spikes

    def counter(self, layer: str, key: str) -> np.ndarray:
        """Per-step counter ``key`` (one of :data:`COUNTERS`) of ``layer`` as float64."""
        value = getattr(self.layers[layer], key) if layer in self.layers else None
        if value is None:
            raise Snn2hwError(
                f"energy estimation needs the activity counter '{key}' for layer '{layer}'; "
                f"run the 'event' backend (backend '{self.source}' records spikes only)"
            )
        return np.asarray(value, dtype=np.float64)

    def macs_dense(self, layer: str) -> int:
        value = self.layers[layer].macs_dense if layer in self.layers else None
        if value is None:
            raise Snn2hwError(f"the run has no 'macs_dense' counter for '{layer}'; run the "
                              "'event' backend")
        return int(value)


@dataclass
class LayerActivity:
    """Activity of one LIF layer per inference (SynOps are those *into* the layer)."""

    name: str
    neurons: int
    spikes: float
    synops: float
    synops_dense: float
    updates_active: float
    updates_inactive: float
    macs_dense_per_step: int
    synops_per_step: list[float] = field(default_factory=list)
    spikes_per_step: list[float] = field(default_factory=list)

    @property
    def rate(self) -> float:
        """Spikes per neuron per step."""
        steps = max(1, len(self.spikes_per_step))
        return self.spikes / (self.neurons * steps) if self.neurons else 0.0

    def to_dict(self) -> dict[str, Any]:
        d = dict(vars(self))
        d["rate"] = self.rate
        return d


@dataclass
class SourceTraffic:
    """Routed spike traffic of one source (a LIF layer or the external input) per inference."""

    source: str
    on_mesh: bool
    spikes: float
    deliveries: float
    within_tile: float
    hops_ew: float
    hops_ns: float
    chip_crossings: float

    def to_dict(self) -> dict[str, Any]:
        return dict(vars(self))
