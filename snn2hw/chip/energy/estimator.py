"""Energy per inference of a quantized graph on a target chip, from counted activity.

Everything in this package is a *model* built from counted activity and published
per-operation constants (``snn2hw/chip/targets/data/<name>.toml`` ``[energy]``/``[latency]``,
``snn2hw/chip/targets/data/baselines.toml``); measuring (wall time, GPU energy through
NVML) lives in ``snn2hw.pipeline.measure``. Every output says which numbers are modelled
and which measured.

Activity (per inference = per sample, averaged over the run's samples), from a
:class:`~snn2hw.chip.energy.activity.RunActivity` (the event backend's counters, built by
``snn2hw.pipeline.energy.activity_from_run``):

* SynOps: (event, non-zero synapse) pairs processed; the dense count includes zero weights.
* neuron updates: *active* when the neuron had input or non-zero state/bias (the event
  backend's rule); *inactive* = neurons x steps - active.
* spikes per layer; spike deliveries and tile hops from :func:`snn2hw.chip.mapping.spike_hops`
  on per-neuron spike counts (one message per (spike, destination core)). External inputs
  are injected from off the mesh: their deliveries are counted, their I/O energy is not.

Energy per inference (target constants, docs/sources.md#loihi-energy)::

    synaptic = SynOps x synop_pj
    neuron   = active x neuron_update_active_pj + inactive x neuron_update_inactive_pj
    routing  = within-tile deliveries x spike_within_tile_pj + hops_ew x hop_ew_pj
               + hops_ns x hop_ns_pj
    static   = cores x steps x static_per_core_step_<unit>   (only if the target gives it)

A target whose ``[energy]`` says ``available = false`` (Loihi 2) gets activity counts and
no energy figure. Latency per time step (simple model, documented in
:class:`.latency.Latency`)::

    step = busiest core's work (its SynOps x synop_ns + updates x neuron_update_ns)
           + the longest spike route used in that step (hops x hop latency)

``synop_ns`` / ``neuron_update_ns`` are optional latency constants; Loihi 1's Table 2 has
none, so for it only the routing part is modelled and the report says so. Per inference =
the sum over the run's steps.

Baselines: :mod:`.baselines`; the SNN-paper convention: :mod:`.convention`.

May import: ``snn2hw.chip.mapping``, ``snn2hw.chip.targets``, ``snn2hw.quant``,
``snn2hw.common`` and the sibling modules. Never a backend or ``snn2hw.pipeline``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from snn2hw.chip.energy.activity import LayerActivity, RunActivity, SourceTraffic
from snn2hw.chip.energy.baselines import BaselineRow, baseline_rows, measured_rows
from snn2hw.chip.energy.constants import MODELLED, STATIC_KEY_PREFIX
from snn2hw.chip.energy.convention import snn_convention_energy
from snn2hw.chip.energy.latency import model_latency
from snn2hw.chip.energy.report import EnergyReport, EnergyTerm
from snn2hw.chip.mapping import Mapping, spike_hops
from snn2hw.chip.targets import Baselines, Constant, Target, load_baselines
from snn2hw.common.errors import GraphError, Snn2hwError
from snn2hw.quant.qgraph import QGraph


def _input_counts(graph: QGraph, inputs: np.ndarray | None, steps: int) -> np.ndarray | None:
    """Messages per input neuron summed over samples: a non-zero value is one message.
    Frame k is integrated at step k + 1, so only frames[: steps - 1] reach a layer."""
    if inputs is None:
        return None
    arr = np.asarray(inputs)
    node = graph.input_node
    n = int(np.prod(node.shape))
    if arr.ndim < 2 or int(np.prod(arr.shape[2:])) != n:
        raise GraphError(f"inputs have shape {list(arr.shape)}; expected [F, B, "
                         f"{', '.join(map(str, node.shape))}]")
    used = arr[: max(steps - 1, 0)]
    return (used.reshape(used.shape[0], used.shape[1], n) != 0).sum(axis=(0, 1))


def _energy_terms(target: Target, report_layers: list[LayerActivity],
                  traffic: list[SourceTraffic], cores: int, steps: int
                  ) -> tuple[list[EnergyTerm], list[Constant]]:
    e = target.energy
    synop = e["synop_pj"]
    act, inact = e["neuron_update_active_pj"], e["neuron_update_inactive_pj"]
    within, hop_ew, hop_ns = e["spike_within_tile_pj"], e["hop_ew_pj"], e["hop_ns_pj"]
    syn_upd = e["syn_update_pj"]
    synops = sum(la.synops for la in report_layers)
    active = sum(la.updates_active for la in report_layers)
    inactive = sum(la.updates_inactive for la in report_layers)
    w = sum(t.within_tile for t in traffic)
    ew = sum(t.hops_ew for t in traffic)
    ns = sum(t.hops_ns for t in traffic)
    terms = [
        EnergyTerm("synaptic", "SynOps (non-zero weights)", synops, synop, synops * synop.value),
        EnergyTerm("neuron", "active neuron updates", active, act, active * act.value),
        EnergyTerm("neuron", "inactive neuron updates", inactive, inact,
                   inactive * inact.value),
        EnergyTerm("routing", "spike deliveries within a tile", w, within, w * within.value),
        EnergyTerm("routing", "tile hops east-west", ew, hop_ew, ew * hop_ew.value),
        EnergyTerm("routing", "tile hops north-south", ns, hop_ns, ns * hop_ns.value),
        EnergyTerm("learning", "synaptic updates (no on-chip learning used)", 0, syn_upd, 0.0),
    ]
    consts = [synop, act, inact, within, hop_ew, hop_ns, syn_upd]
    static_keys = [k for k in e if k.startswith(STATIC_KEY_PREFIX)]
    if static_keys:
        sc = e[static_keys[0]]
        terms.append(EnergyTerm("static", "core x time steps (static / leakage)",
                                cores * steps, sc, cores * steps * sc.si / 1e-12))
        consts.append(sc)
    else:
        terms.append(EnergyTerm("static", "static / leakage power: not given by the target",
                                0, None, None))
    return terms, consts


def estimate_energy(
    graph: QGraph,
    target: Target,
    activity: RunActivity,
    mapping: Mapping,
    *,
    baselines: Baselines | None = None,
    measured: dict[str, Any] | None = None,
    inputs: np.ndarray | None = None,
) -> EnergyReport:
    """Energy and latency per inference of ``activity`` (counted by the event backend, see
    :func:`snn2hw.pipeline.energy.activity_from_run`) on ``target``.

    ``mapping`` must come from :func:`snn2hw.chip.mapping.map_to_cores` for the same target;
    ``inputs`` (the integer frames of the run) adds the external input's deliveries;
    ``measured`` is :func:`snn2hw.pipeline.measure.measure_torch_paths`' result (shown as
    measured rows)."""
    if mapping.target != target.name:
        raise Snn2hwError(f"the mapping was made for target '{mapping.target}', the energy "
                          f"estimate is for '{target.name}'; map the graph onto that target")
    b = baselines if baselines is not None else load_baselines()
    lifs = graph.lif_nodes
    if not lifs:
        raise GraphError("quantized graph has no LIF layer")
    missing = [n.name for n in lifs if n.name not in activity.layers]
    if missing:
        raise Snn2hwError(f"the run has no spikes for layer(s) {', '.join(missing)}")
    first = activity.spikes(lifs[0].name)
    steps, samples = int(first.shape[0]), int(first.shape[1])
    if samples == 0:
        raise Snn2hwError("the run has no samples")

    layers: list[LayerActivity] = []
    for lif in lifs:
        n = int(np.prod(lif.shape))
        syn = activity.counter(lif.name, "synops") / samples
        dense = activity.counter(lif.name, "synops_dense") / samples
        upd = activity.counter(lif.name, "neuron_updates") / samples
        # events, not payloads: a multi-spike neuron's count travels as one graded message
        spk = activity.spikes(lif.name).reshape(steps, samples, -1) > 0
        per_step = spk.sum(axis=(1, 2), dtype=np.int64) / samples
        macs = activity.macs_dense(lif.name)
        active = float(upd.sum())
        layers.append(LayerActivity(
            lif.name, n, float(per_step.sum()), float(syn.sum()), float(dense.sum()),
            active, float(n * steps - active), macs, syn.tolist(), per_step.tolist(),
        ))

    traffic: list[SourceTraffic] = []
    notes: list[str] = []
    inp = graph.input_node
    counts = _input_counts(graph, inputs, steps)
    if counts is not None:
        try:
            r = spike_hops(mapping, inp.name, counts)
        except GraphError:  # the input feeds no mapped layer
            r = None
        if r is not None:
            traffic.append(SourceTraffic(inp.name, False, float(counts.sum()) / samples,
                                         r.deliveries / samples, 0, 0, 0, 0))
    else:
        notes.append(f"input '{inp.name}': its deliveries are not counted (no input frames "
                     "were given)")
    for lif in lifs:
        per_neuron = (activity.spikes(lif.name).reshape(steps, samples, -1) > 0).sum(
            axis=(0, 1), dtype=np.int64)
        r = spike_hops(mapping, lif.name, per_neuron)
        traffic.append(SourceTraffic(lif.name, True, float(per_neuron.sum()) / samples,
                                     r.deliveries / samples, r.within_tile / samples,
                                     r.hops_ew / samples, r.hops_ns / samples,
                                     r.chip_crossings / samples))
    if inp.message_bits > target.formats.max_message_bits:
        notes.append(f"input '{inp.name}' carries {inp.message_bits}-bit graded values; "
                     f"{target.name} sends binary spikes, so each non-zero input value is "
                     "counted as one event (a spiking input encoder on silicon would send "
                     "more events)")
    notes.append("external inputs are injected from off the neuro-core mesh; their I/O "
                 "energy (host / x86 -> chip) has no per-operation constant and is not included")
    if any(t.chip_crossings for t in traffic):
        notes.append("some spikes cross chips: their tile hops are counted; the inter-chip "
                     "link energy and latency have no constant and are not included")

    if target.energy.available:
        terms, consts = _energy_terms(target, layers, traffic, mapping.total_cores, steps)
        if any(c.pre_silicon for c in consts):
            notes.append(f"{target.name} per-operation energies are pre-silicon estimates "
                         "(see the constants' sources); the modelled energy inherits that")
    else:
        terms, consts = [], []

    latency = model_latency(graph, target, activity, mapping, layers, steps, samples)
    macs = int(sum(la.macs_dense_per_step for la in layers))
    synops = float(sum(la.synops for la in layers))
    conv = snn_convention_energy(synops, macs, b)
    rows, bconsts = baseline_rows(b, macs, steps, synops, conv)
    if target.energy.available:
        total = sum(t.energy_pj for t in terms if t.energy_pj is not None)
        rows.insert(0, BaselineRow(
            f"SNN on {target.name} (this estimate)", MODELLED, float(total),
            "target per-operation constants"
            + (" (pre-silicon)" if any(c.pre_silicon for c in consts) else ""),
            count=synops, group="target"))
    else:
        rows.insert(0, BaselineRow(f"SNN on {target.name}", MODELLED, None,
                                   "no per-operation energy published: not estimated",
                                   count=synops, group="target"))
    rows += measured_rows(measured)
    return EnergyReport(
        target=target.name, target_description=target.description, backend=activity.source,
        samples=samples, steps=steps, cores=mapping.total_cores, chips=mapping.chips,
        layers=layers, traffic=traffic, energy_available=target.energy.available,
        energy_note=target.energy.note, terms=terms, constants=consts, latency=latency,
        convention=conv, baselines=rows, macs_per_forward=macs, measured=measured,
        notes=notes, baseline_constants=bconsts,
    )
