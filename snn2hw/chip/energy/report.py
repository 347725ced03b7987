"""The energy report: :class:`EnergyReport` (what :func:`estimate_energy` returns), its
JSON form, tables and Markdown, and :func:`write_energy` (``energy.json`` / ``energy.md``).

May import: ``snn2hw.chip.targets``, ``snn2hw.common`` and the sibling data modules
(``.activity``, ``.baselines``, ``.constants``, ``.convention``, ``.latency``).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from snn2hw.chip.energy.activity import LayerActivity, SourceTraffic
from snn2hw.chip.energy.baselines import BaselineRow
from snn2hw.chip.energy.constants import MEASURED, MODELLED, const_dict, const_flags
from snn2hw.chip.energy.convention import ConventionEnergy
from snn2hw.chip.energy.latency import Latency
from snn2hw.chip.targets import Constant
from snn2hw.common.atomic_io import atomic_write_text
from snn2hw.common.formatting import format_count, format_energy, format_time
from snn2hw.common.tables import markdown_table


@dataclass
class EnergyTerm:
    """One line of the breakdown: count x constant = energy (pJ per inference)."""

    component: str  # synaptic | neuron | routing | static | learning
    what: str
    count: float
    constant: Constant | None
    energy_pj: float | None

    def to_dict(self) -> dict[str, Any]:
        return {"component": self.component, "what": self.what, "count": self.count,
                "constant": const_dict(self.constant) if self.constant else None,
                "energy_pj": self.energy_pj}


@dataclass
class EnergyReport:
    """Result of :func:`~snn2hw.chip.energy.estimator.estimate_energy` (the model is in that
    module's docstring)."""

    target: str
    target_description: str
    backend: str
    samples: int
    steps: int
    cores: int
    chips: int
    layers: list[LayerActivity]
    traffic: list[SourceTraffic]
    energy_available: bool
    energy_note: str
    terms: list[EnergyTerm]
    constants: list[Constant]
    latency: Latency
    convention: ConventionEnergy
    baselines: list[BaselineRow]
    macs_per_forward: int
    measured: dict[str, Any] | None = None
    notes: list[str] = field(default_factory=list)
    baseline_constants: list[Constant] = field(default_factory=list)

    # ----- totals ---------------------------------------------------------------------
    @property
    def synops(self) -> float:
        return float(sum(la.synops for la in self.layers))

    @property
    def synops_dense(self) -> float:
        return float(sum(la.synops_dense for la in self.layers))

    @property
    def updates_active(self) -> float:
        return float(sum(la.updates_active for la in self.layers))

    @property
    def updates_inactive(self) -> float:
        return float(sum(la.updates_inactive for la in self.layers))

    @property
    def spikes(self) -> float:
        return float(sum(la.spikes for la in self.layers))

    def component_pj(self, component: str) -> float | None:
        """Energy of one component per inference; None when not given / not available."""
        vals = [t.energy_pj for t in self.terms if t.component == component]
        if not self.energy_available or not vals or any(v is None for v in vals):
            return None
        return float(sum(v for v in vals if v is not None))

    @property
    def breakdown_pj(self) -> dict[str, float | None]:
        """synaptic / neuron / routing / static per inference (None: not given)."""
        return {c: self.component_pj(c) for c in ("synaptic", "neuron", "routing", "static")}

    @property
    def total_pj(self) -> float | None:
        """Sum of the modelled components (static only when the target gives it)."""
        if not self.energy_available:
            return None
        return float(sum(v for v in self.breakdown_pj.values() if v is not None))

    @property
    def pre_silicon(self) -> bool:
        return any(c.pre_silicon for c in self.constants)

    # ----- output ---------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly (``energy.json``)."""
        return {
            "target": self.target,
            "target_description": self.target_description,
            "backend": self.backend,
            "samples": self.samples,
            "steps_per_inference": self.steps,
            "cores": self.cores,
            "chips": self.chips,
            "per": "inference (one sample), averaged over the run's samples",
            "activity": {
                "kind": "counted by the event simulator (exact for the simulated inputs)",
                "synops": self.synops, "synops_dense": self.synops_dense,
                "neuron_updates_active": self.updates_active,
                "neuron_updates_inactive": self.updates_inactive,
                "spikes": self.spikes,
                "layers": [la.to_dict() for la in self.layers],
                "traffic": [t.to_dict() for t in self.traffic],
            },
            "energy": {
                "kind": MODELLED,
                "available": self.energy_available,
                "note": self.energy_note,
                "pre_silicon": self.pre_silicon,
                "breakdown_pj": self.breakdown_pj,
                "total_pj": self.total_pj,
                "static": "not given" if self.breakdown_pj.get("static") is None else "given",
                "terms": [t.to_dict() for t in self.terms],
                "constants": [const_dict(c) for c in self.constants],
            },
            "latency": self.latency.to_dict(),
            "snn_convention": self.convention.to_dict(),
            "macs_per_forward": self.macs_per_forward,
            "baselines": [b.to_dict() for b in self.baselines],
            "measured": self.measured,
            "notes": self.notes,
        }

    def tables(self) -> list[tuple[str, str, list[str], list[list[str]]]]:
        """``(title, explanation, header, rows)`` of every table (markdown and HTML)."""
        out: list[tuple[str, str, list[str], list[list[str]]]] = []
        rows = [[la.name, f"{la.neurons:,}", format_count(la.spikes), f"{la.rate:.4f}",
                 format_count(la.synops), format_count(la.synops_dense),
                 format_count(la.updates_active), format_count(la.updates_inactive),
                 f"{la.macs_dense_per_step:,}"]
                for la in self.layers]
        rows.append(["total", f"{sum(la.neurons for la in self.layers):,}",
                     format_count(self.spikes), "", format_count(self.synops),
                     format_count(self.synops_dense),
                     format_count(self.updates_active), format_count(self.updates_inactive),
                     f"{self.macs_per_forward:,}"])
        out.append((
            "Activity per inference",
            f"Counted by the {self.backend} simulator over {self.samples} sample(s), "
            f"{self.steps} time steps per inference; SynOps are the synaptic events into "
            "each layer (non-zero weights; 'dense' includes zero weights).",
            ["layer", "neurons", "spikes", "spikes/neuron/step", "SynOps", "SynOps (dense)",
             "updates active", "updates inactive", "dense MACs/step"],
            rows,
        ))
        out.append((
            "Spike traffic per inference",
            "One delivery per (spike, destination core); hops on the tile mesh of the "
            "mapping. The external input is injected from off the mesh (deliveries only).",
            ["source", "on mesh", "spikes", "deliveries", "within tile", "hops E-W",
             "hops N-S", "chip crossings"],
            [[t.source, "yes" if t.on_mesh else "no (off-mesh input)", format_count(t.spikes),
              format_count(t.deliveries), format_count(t.within_tile), format_count(t.hops_ew),
              format_count(t.hops_ns), format_count(t.chip_crossings)] for t in self.traffic],
        ))
        if self.energy_available:
            flag = "; pre-silicon estimates" if self.pre_silicon else ""
            erows = []
            for t in self.terms:
                c = t.constant
                erows.append([
                    t.component, t.what, format_count(t.count) if c else "-",
                    f"{c.value:g} {c.unit}" if c else "not given",
                    format_energy(t.energy_pj),
                    (const_flags(c) or "published") if c else "-",
                ])
            erows.append(["total", "sum of the modelled components", "", "",
                          format_energy(self.total_pj), MODELLED + flag])
            out.append((
                f"Energy per inference on {self.target} ({MODELLED}{flag})",
                "count x per-operation constant; the constants and their sources are listed "
                "below. Static / leakage power: "
                + ("included." if self.breakdown_pj.get("static") is not None
                   else "not given by the target (not included, not zero)."),
                ["component", "what", "count", "constant", "energy", "basis"],
                erows,
            ))
        else:
            out.append((
                f"Energy on {self.target}: not available",
                f"No per-operation energy is published for {self.target}; no energy figure "
                f"is given (the activity counts above are what a model would need). "
                f"Target note: {self.energy_note}",
                [], [],
            ))
        crow = [[c.name, f"{c.value:g}", c.unit, const_flags(c) or "published", c.source]
                for c in self.constants + self.latency.constants]
        conv = self.convention
        crow += [[c.name, f"{c.value:g}", c.unit, const_flags(c) or "published", c.source]
                 for c in (conv.e_ac, conv.e_mac)]
        crow += [[c.name, f"{c.value:g}", c.unit, const_flags(c) or "published", c.source]
                 for c in self.baseline_constants]
        out.append(("Constants used", "Every number with its unit and source.",
                     ["constant", "value", "unit", "flags", "source"], crow))
        lat = self.latency
        if lat.available:
            bc = lat.busiest_core
            lrows = [
                ["per time step (mean)", format_time(lat.mean_step_ns), MODELLED],
                ["per time step (max)", format_time(lat.max_step_ns), MODELLED],
                [f"per inference ({lat.steps} steps)", format_time(lat.per_inference_ns),
                 MODELLED],
                ["routing part per step (mean)",
                 format_time(float(np.mean(lat.routing_ns_per_step))
                             if lat.routing_ns_per_step else 0.0), MODELLED],
                ["compute part per step (mean)",
                 format_time(float(np.mean(lat.compute_ns_per_step)))
                 if lat.compute_ns_per_step is not None else "not modelled", MODELLED],
            ]
            if bc:
                lrows.append([
                    "busiest core",
                    f"core {bc['core']} ({bc['layer']}): {bc['synops_per_step']:.4g} SynOps "
                    f"+ {bc['updates_per_step']:.4g} updates per step (mean)", MODELLED,
                ])
            out.append((f"Latency on {self.target} ({MODELLED})",
                        f"Covers: {lat.covers} Not modelled: {'; '.join(lat.not_modelled)}.",
                        ["quantity", "value", "kind"], lrows))
        else:
            out.append((f"Latency on {self.target}: not available",
                        f"No per-operation latency is published for {self.target}. "
                        f"Target note: {lat.note}", [], []))
        brows = []
        for b in self.baselines:
            modelled = ("" if b.kind != MODELLED else format_energy(b.energy_pj)
                        if b.energy_pj is not None or b.group != "target" else "not available")
            measured = ""
            if b.kind == MEASURED:
                measured = (format_energy(b.energy_pj) if b.energy_pj is not None
                            else "not measured")
            wall = format_time(b.wall_s * 1e9) if b.wall_s is not None else ""
            brows.append([b.name, modelled, measured, wall, b.basis])
        out.append((
            "Baselines on the same work (per inference)",
            "Modelled figures are operation counts x per-operation energies (compute only, no "
            "memory traffic unless stated); measured figures come from running the torch "
            "paths on this machine.",
            ["comparison", "energy (modelled)", "energy (measured)", "wall time (measured)",
             "basis"],
            brows,
        ))
        return out

    def markdown(self) -> str:
        """The report as Markdown (``energy.md``)."""
        lines = [f"# Energy and latency estimate: {self.target}", "",
                 f"{self.target_description}", "",
                 f"- per inference = one sample, averaged over {self.samples} sample(s); "
                 f"{self.steps} time steps per inference",
                 f"- mapping: {self.cores} core(s) on {self.chips} chip(s)",
                 "- activity: counted (exact for the simulated inputs); energy and latency: "
                 f"{MODELLED}; wall times / GPU energy: {MEASURED} (only where marked)",
                 ""]
        if self.energy_available:
            lines.insert(4, f"**Modelled energy per inference: {format_energy(self.total_pj)}**"
                         + (" (pre-silicon per-operation estimates)" if self.pre_silicon else "")
                         + "\n")
        for title, expl, header, rows in self.tables():
            lines += [f"## {title}", "", expl, ""]
            if header:
                lines += [markdown_table(header, rows), ""]
        if self.notes:
            lines += ["## Notes", ""] + [f"- {n}" for n in self.notes] + [""]
        return "\n".join(lines)

def write_energy(reports: EnergyReport | Sequence[EnergyReport], out_dir: str | Path
                 ) -> dict[str, Path]:
    """``energy.json`` (a list when several targets) and ``energy.md``, atomically."""
    reps = [reports] if isinstance(reports, EnergyReport) else list(reports)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    data: Any = reps[0].to_dict() if len(reps) == 1 else [r.to_dict() for r in reps]
    atomic_write_text(out / "energy.json", json.dumps(data, indent=2, default=float))
    atomic_write_text(out / "energy.md", "\n\n".join(r.markdown() for r in reps))
    return {"json": out / "energy.json", "md": out / "energy.md"}
