"""Latency model: per time step, the busiest core's work plus the longest spike route.

See :class:`Latency` for what is and is not modelled. Takes counted activity as data.

May import: ``snn2hw.chip.mapping``, ``snn2hw.chip.targets``, ``snn2hw.quant`` and the
sibling modules ``.activity`` / ``.constants``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from snn2hw.chip.energy.activity import LayerActivity, RunActivity
from snn2hw.chip.energy.constants import MODELLED, NEURON_LATENCY, SYNOP_LATENCY, const_dict
from snn2hw.chip.mapping import Mapping, fan_in_counts
from snn2hw.chip.targets import Constant, Target
from snn2hw.quant.qgraph import QGraph


@dataclass
class Latency:
    """Latency model (per sample, averaged over samples).

    Per step: ``compute`` = the busiest core's SynOps x ``synop_ns`` + neuron updates x
    ``neuron_update_ns`` (per-core shares: SynOps in proportion to the summed structural
    fan-in of the core's neurons, updates in proportion to its neurons; the busiest core is
    the one with the most modelled time, or with the most operations when per-op latencies
    are missing) plus ``routing`` = the longest route any spike used in that step (0 hops:
    ``spike_within_tile_ns``; else ``hops_ew x hop_ew_ns + hops_ns x hop_ns_ns``). Off-mesh
    input injection, inter-chip links and barrier synchronisation are not modelled."""

    available: bool
    note: str = ""
    steps: int = 0
    routing_ns_per_step: list[float] = field(default_factory=list)
    compute_ns_per_step: list[float] | None = None
    busiest_core: dict[str, Any] = field(default_factory=dict)
    covers: str = ""
    not_modelled: list[str] = field(default_factory=list)
    constants: list[Constant] = field(default_factory=list)

    @property
    def per_step_ns(self) -> list[float]:
        comp = self.compute_ns_per_step or [0.0] * len(self.routing_ns_per_step)
        return [a + b for a, b in zip(self.routing_ns_per_step, comp, strict=True)]

    @property
    def per_inference_ns(self) -> float | None:
        return float(sum(self.per_step_ns)) if self.available else None

    @property
    def mean_step_ns(self) -> float | None:
        s = self.per_step_ns
        return float(np.mean(s)) if self.available and s else None

    @property
    def max_step_ns(self) -> float | None:
        s = self.per_step_ns
        return float(np.max(s)) if self.available and s else None

    def to_dict(self) -> dict[str, Any]:
        return {
            "available": self.available, "note": self.note, "steps": self.steps,
            "per_step_ns": self.per_step_ns if self.available else None,
            "routing_ns_per_step": self.routing_ns_per_step if self.available else None,
            "compute_ns_per_step": self.compute_ns_per_step,
            "mean_step_ns": self.mean_step_ns, "max_step_ns": self.max_step_ns,
            "per_inference_ns": self.per_inference_ns,
            "busiest_core": self.busiest_core, "covers": self.covers,
            "not_modelled": self.not_modelled,
            "constants": [const_dict(c) for c in self.constants], "kind": MODELLED,
        }


def _routes(mapping: Mapping, source: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per route (source neuron -> destination core): owner neuron, E-W hops, N-S hops,
    same-tile flag (only for on-mesh sources)."""
    indptr, cores = mapping.destinations(source)
    n = indptr.size - 1
    owner = np.repeat(np.arange(n), np.diff(indptr))
    layer = mapping.layers[source]
    src = layer.core_of(owner) if owner.size else np.zeros(0, dtype=np.int64)
    x0, y0 = mapping.position(src)
    x1, y1 = mapping.position(cores)
    chip0, local0 = np.divmod(src, mapping.cores_per_chip)
    chip1, local1 = np.divmod(cores, mapping.cores_per_chip)
    same_tile = (chip0 == chip1) & (
        local0 // mapping.cores_per_tile == local1 // mapping.cores_per_tile)
    return owner, np.abs(x1 - x0), np.abs(y1 - y0), same_tile


def model_latency(graph: QGraph, target: Target, activity: RunActivity, mapping: Mapping,
                  layers: list[LayerActivity], steps: int, samples: int) -> Latency:
    """The :class:`Latency` of ``activity`` mapped by ``mapping`` onto ``target``."""
    table = target.latency
    if not table.available:
        return Latency(False, note=table.note, steps=steps,
                       not_modelled=["all latency (no published constants)"])
    within, ew_c, ns_c = (table["spike_within_tile_ns"], table["hop_ew_ns"],
                          table["hop_ns_ns"])
    consts = [within, ew_c, ns_c]
    syn_c = table[SYNOP_LATENCY] if SYNOP_LATENCY in table else None
    neu_c = table[NEURON_LATENCY] if NEURON_LATENCY in table else None
    consts += [c for c in (syn_c, neu_c) if c is not None]

    # Routing: per (step, sample) the longest route any spike of that step used.
    route_ns = np.zeros((steps, samples))
    for lif in graph.lif_nodes:
        owner, ew, ns, same = _routes(mapping, lif.name)
        if owner.size == 0:
            continue
        lat = np.where(same, within.value, ew * ew_c.value + ns * ns_c.value)
        per_neuron = np.zeros(int(np.prod(lif.shape)))
        np.maximum.at(per_neuron, owner, lat)
        spk = activity.spikes(lif.name).reshape(steps, samples, -1)
        for n in range(steps):  # one step at a time bounds memory on large layers
            m = np.where(spk[n] > 0, per_neuron[None, :], 0.0).max(axis=1)
            np.maximum(route_ns[n], m, out=route_ns[n])
    routing = route_ns.mean(axis=1).tolist()

    # Busiest core: per-core shares of the layer's per-step work (see Latency docstring).
    best: dict[str, Any] = {}
    compute = np.zeros(steps)
    work_best = -1.0
    per_op = syn_c is not None and neu_c is not None
    for la in layers:
        lm = mapping.layers[la.name]
        fan = fan_in_counts(graph, la.name).astype(np.float64)
        tot = fan.sum()
        syn = np.asarray(la.synops_per_step)
        upd = activity.counter(la.name, "neuron_updates") / samples
        for core in lm.cores:
            share = fan[core.start:core.stop].sum() / tot if tot > 0 else core.neurons / la.neurons
            s_c, u_c = syn * share, upd * core.neurons / la.neurons
            if per_op:
                t_c = s_c * syn_c.value + u_c * neu_c.value
                compute = np.maximum(compute, t_c)
                work = float(t_c.sum())
            else:
                work = float((s_c + u_c).sum())
            if work > work_best:
                work_best = work
                best = {"core": int(core.core), "layer": la.name,
                        "neurons": int(core.neurons),
                        "synops_per_step": float(s_c.mean()) if steps else 0.0,
                        "updates_per_step": float(u_c.mean()) if steps else 0.0,
                        "synops_max_step": float(s_c.max()) if steps else 0.0}
    not_modelled = ["off-mesh input injection", "inter-chip links",
                    "barrier synchronisation and host / x86 management-core time"]
    if per_op:
        covers = ("the busiest core's SynOps and neuron updates x per-op latencies, plus the "
                  "longest spike route of each step.")
    else:
        missing = [k for k in (SYNOP_LATENCY, NEURON_LATENCY) if k not in table]
        covers = ("spike routing only: the longest route any spike used in each step "
                  f"(within-tile or tile hops). The target gives no {' / '.join(missing)} "
                  "constant, so the cores' synaptic and neuron-update time is not included.")
        not_modelled.insert(0, "per-core compute time (SynOps and neuron updates)")
    return Latency(True, note=table.note, steps=steps, routing_ns_per_step=routing,
                   compute_ns_per_step=compute.tolist() if per_op else None,
                   busiest_core=best, covers=covers, not_modelled=not_modelled,
                   constants=consts)
