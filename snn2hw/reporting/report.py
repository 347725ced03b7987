"""The deployment report: one self-contained HTML page plus the same content in Markdown.

:func:`write_report` gathers what the pipeline has produced so far — ``export.json``
(float accuracy, quantization, resources), ``compare.json`` (backend agreement and
accuracies), an :class:`~snn2hw.chip.energy.EnergyReport` per target, and one backend run of the
quantized graph (spikes, activity counters) — and writes ``<out_dir>/report/``:

* ``index.html``: self-contained (inline CSS, plots embedded as PNG data URIs; no network
  or file references), readable without snn2hw;
* ``README.md``: the same sections in Markdown, linking the PNG files next to it;
* ``*.png``: the plots (written atomically by :mod:`snn2hw.reporting.plots`).

Every section says in one sentence what it shows; a section whose input is missing says
"not run" (and which command produces it) instead of failing. This module holds the
sections; the page format (headings, tables, images -> HTML and Markdown) is
:mod:`snn2hw.reporting.document`.

May import: ``snn2hw.chip``, ``snn2hw.quant``, ``snn2hw.common`` and ``snn2hw.reporting``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from snn2hw.chip.energy import MEASURED, MODELLED, EnergyReport
from snn2hw.common.atomic_io import atomic_write_text
from snn2hw.common.errors import Snn2hwError
from snn2hw.common.formatting import format_energy, format_time
from snn2hw.quant.qgraph import QGraph
from snn2hw.reporting.document import Doc

__all__ = ["write_report"]

NOT_RUN = "not run"


class ActivityRun(Protocol):
    """What the report reads of one backend run (the pipeline's simulation result)."""

    backend: str
    spikes: dict[str, np.ndarray]  # per LIF layer, [steps, samples, ...]
    stats: dict[str, Any]  # activity counters; "synops" per layer when the backend counts


# ----- inputs -----------------------------------------------------------------------------------
def _read_json(path: Path | None, what: str) -> tuple[dict[str, Any] | None, str]:
    """(data, why missing). A missing file is 'not run'; a corrupt one is an error."""
    if path is None:
        return None, f"{what} {NOT_RUN}"
    p = Path(path)
    if not p.is_file():
        return None, f"{what} {NOT_RUN} ({p} does not exist)"
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise Snn2hwError(f"{p}: not a readable JSON file ({exc})") from None
    if not isinstance(data, dict):
        raise Snn2hwError(f"{p}: expected a JSON object")
    return data, ""


def _fmt(v: Any, digits: int = 4) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.{digits}f}" if abs(v) < 1e4 else f"{v:,.0f}"
    if isinstance(v, int):
        return f"{v:,}"
    return str(v)


def _bits(b: int | float) -> str:
    b = int(b)
    return f"{b / 8192:,.1f} KiB" if b >= 8192 else f"{b:,} bits"


# ----- sections ---------------------------------------------------------------------------------
def _summary(doc: Doc, exp: dict[str, Any] | None, cmp_: dict[str, Any] | None,
             energies: list[EnergyReport], graph: QGraph | None, run: ActivityRun | None) -> None:
    doc.h(2, "Summary")
    doc.p("The deployment at a glance; the sections below give the details. Numbers are "
          f"**{MODELLED}** (computed from counted activity and published per-operation "
          f"constants) unless marked **{MEASURED}**.")
    rows: list[list[str]] = []
    if exp:
        rows += [["source model", str(exp.get("source", "-"))],
                 ["target chip", str(exp.get("target", "-"))],
                 ["time step dt", f"{exp.get('dt', '-')} s"]]
        fmt = exp.get("input_format") or {}
        if fmt:
            mb = int(fmt.get("message_bits", 0))
            rows.append(["input", "binary spikes" if mb == 0 else f"{mb}-bit graded spikes"])
        rows.append(["float accuracy (export, test samples)", _fmt(exp.get("float_accuracy"))])
        res = exp.get("resources") or {}
        if res:
            rows.append(["neuro-cores used", f"{res.get('total_cores', '-')} on "
                                             f"{res.get('chips', '-')} chip(s)"])
    elif graph is not None:
        rows += [["target chip (graph)", graph.target], ["time step dt", f"{graph.dt} s"]]
    if graph is not None:
        rows.append(["LIF layers", ", ".join(f"{n.name} {list(n.shape)}"
                                             for n in graph.lif_nodes)])
        rows.append(["input frames per sample", str(graph.num_steps)])
    if cmp_:
        for b, acc in (cmp_.get("accuracy") or {}).items():
            rows.append([f"accuracy, {b} backend ({cmp_.get('samples')} samples)", _fmt(acc)])
        eq = cmp_.get("integer_backends_equal")
        rows.append(["integer backends agree spike for spike",
                     "yes" if eq else "NO (see the comparison)" if eq is not None else "-"])
    for e in energies:
        val = (format_energy(e.total_pj) + (" (pre-silicon constants)" if e.pre_silicon else "")
               if e.energy_available else "not available (no per-operation energy published)")
        rows.append([f"energy per inference on {e.target} ({MODELLED})", val])
        if e.latency.available:
            rows.append([f"latency per inference on {e.target} ({MODELLED})",
                         format_time(e.latency.per_inference_ns)
                         + " (spike routing only; core compute time not modelled)"
                         if e.latency.compute_ns_per_step is None
                         else format_time(e.latency.per_inference_ns)])
    if run is not None:
        rows.append(["activity run", f"{run.backend} backend, "
                                     f"{next(iter(run.spikes.values())).shape[1]} sample(s)"])
    if rows:
        doc.table(["what", "value"], rows)
    else:
        doc.note(f"Nothing to summarise: no export, comparison, energy or run given ({NOT_RUN}).")


def _accuracy(doc: Doc, out: Path, exp: dict[str, Any] | None, cmp_: dict[str, Any] | None,
              why_exp: str, why_cmp: str) -> None:
    from snn2hw.reporting import plots

    doc.h(2, "Accuracy: float versus quantized")
    doc.p("What you are looking at: the classification accuracy of the float model (trained "
          "weights, no quantization) next to the quantized integer graph on each backend; "
          "a gap is the cost of quantization.")
    values: dict[str, float | None] = {}
    if exp and exp.get("float_accuracy") is not None:
        values["float (export, test split)"] = float(exp["float_accuracy"])
    if cmp_:
        n = cmp_.get("samples")
        for b, acc in (cmp_.get("accuracy") or {}).items():
            label = f"{b} ({n} samples)" if b != "float" else f"float path ({n} samples)"
            values[label] = None if acc is None else float(acc)
    if not values:
        doc.note(f"{NOT_RUN}: {why_exp}; {why_cmp}. Run `snn2hw export` and `snn2hw compare`.")
        return
    if all(v is None for v in values.values()):
        doc.note(f"{NOT_RUN}: no labels for the samples, so no accuracy.")
        return
    png = plots.accuracy_bars(values, out / "accuracy.png", title="accuracy")
    doc.img(png, "accuracy: float vs quantized")
    doc.table(["model / backend", "accuracy"],
              [[k, NOT_RUN if v is None else f"{v:.4f}"] for k, v in values.items()])
    missing = [w for w in (why_exp, why_cmp) if w]
    if missing:
        doc.note("; ".join(missing))


def _comparison(doc: Doc, cmp_: dict[str, Any] | None, why: str) -> None:
    doc.h(2, "Backend comparison")
    doc.p("What you are looking at: every integer backend runs the same quantized graph on "
          "the same inputs; each cell is the spike overlap with the reference backend "
          "(matched spikes / union: 1.0000 = identical spikes, 0 when one side is silent and "
          "the other is not, n/a when both are silent) and the backend's spike count. The "
          "float path (marked *) is aligned by hop depth and not expected to be exact.")
    if not cmp_:
        doc.note(f"{why}. Run `snn2hw compare <export folder>`.")
        return
    agreement: dict[str, dict[str, float]] = cmp_.get("agreement") or {}
    layers = list(next(iter(agreement.values()), {}).keys())
    overlap: dict[str, dict[str, Any]] = cmp_.get("overlap") or {}
    fa = cmp_.get("float_agreement") or {}
    rows = []
    for b in cmp_.get("backends", []):
        acc = (cmp_.get("accuracy") or {}).get(b)
        wall = (cmp_.get("wall_s") or {}).get(b)
        sps = (cmp_.get("samples_per_s") or {}).get(b)
        mark = "*" if b == "float" else ""
        cells = []
        for layer in layers:
            o = (overlap.get(b) or {}).get(layer)
            if o is not None:  # compare.json with spike overlap
                val = o.get("overlap")
                cells.append(f"{'n/a' if val is None else f'{val:.4f}'}{mark} "
                             f"({o.get('spikes')})")
            elif b == "float":  # older compare.json: fraction of equal values only
                cells.append(f"{fa[layer]:.4f}*" if layer in fa else "-")
            else:
                cells.append(_fmt((agreement.get(b) or {}).get(layer)))
        rows.append([b, _fmt(acc), _fmt(wall, 3), _fmt(sps, 1), *cells])
    doc.table(["backend", "accuracy", f"wall s, all samples ({MEASURED})", "samples/s",
               *layers], rows)
    for w in cmp_.get("warnings") or []:
        doc.note(f"Warning: {w}.")
    divs = cmp_.get("divergences") or []
    if divs:
        d = divs[0]
        doc.note(f"First divergence {d.get('reference')} vs {d.get('other')}: sample "
                 f"{d.get('sample')}, step {d.get('step')}, layer '{d.get('layer')}', neuron "
                 f"{d.get('neuron')} (spike {d.get('spike')}, u {d.get('u')}, v {d.get('v')}).")
    else:
        doc.p(f"The integer backends agree on every spike ({cmp_.get('samples')} samples).")


def _deployment_check(doc: Doc, exp: dict[str, Any] | None, why: str) -> None:
    doc.h(2, "Deployment check")
    doc.p("What you are looking at: export ran the float path and torch-int on the "
          "calibration samples; per layer, the spikes on both sides (integer shifted back by "
          "the layer's hop depth), the change of the spike count, the overlap of spike counts "
          "per (sample, neuron) and of spikes per step, and the likely cause where a layer is "
          "over the limit (docs/deployment-check.md).")
    chk = (exp or {}).get("deployment_check")
    if not chk:
        doc.note(f"{why or 'export.json has no deployment check'}. Run `snn2hw export`.")
        return
    lim = chk.get("limits") or {}
    doc.p(f"Verdict: **{chk.get('verdict')}** on {chk.get('samples')} samples (limits: output "
          f"spike change {_fmt(lim.get('max_spike_change'))}, accuracy drop "
          f"{_fmt(lim.get('max_accuracy_drop_pp'), 2)} pp); accuracy float "
          f"{_fmt(chk.get('float_accuracy'))}, integer {_fmt(chk.get('integer_accuracy'))}.")
    rows = []
    for lay in chk.get("layers") or []:
        ch = lay.get("spike_change")
        rows.append([lay.get("layer") + (" (output)" if lay.get("output") else ""),
                     _fmt(lay.get("hop_depth")), _fmt(lay.get("float_spikes")),
                     _fmt(lay.get("integer_spikes")),
                     "silent in float" if ch is None else f"{ch:+.1%}",
                     _fmt(lay.get("count_overlap")), _fmt(lay.get("timing_overlap")),
                     "; ".join(lay.get("causes") or []) or "-"])
    doc.table(["layer", "hop depth", "float spikes", "integer spikes", "spike change",
               "count overlap", "timing overlap", "likely cause"], rows)
    for f in chk.get("failures") or []:
        doc.note(f)


def _activity(doc: Doc, out: Path, graph: QGraph | None, run: ActivityRun | None,
              energies: list[EnergyReport], sample: int) -> None:
    from snn2hw.reporting import plots

    doc.h(2, "Spiking activity")
    if run is None and not energies:
        doc.note(f"{NOT_RUN}: no backend run given. Run `snn2hw simulate` (event backend).")
        return
    names = ([n.name for n in graph.lif_nodes] if graph is not None
             else list(run.spikes) if run is not None else [la.name for la in energies[0].layers])
    if run is not None:
        spikes = {k: run.spikes[k] for k in names if k in run.spikes}
        n_samples = next(iter(spikes.values())).shape[1]
        s = min(sample, n_samples - 1)
        doc.h(3, f"Spike raster, sample {s}")
        doc.p("What you are looking at: one mark per spike; x is the time step, y the neuron "
              "index within the layer (one panel per layer, first layer at the top). Each "
              "layer starts one step after the layer feeding it (the hop delay).")
        png = plots.layer_raster(spikes, s, out / "raster.png",
                                 title=f"spike raster, sample {s} ({run.backend} backend)")
        doc.img(png, "spike raster")
        rates = {k: float(v.mean()) for k, v in spikes.items()}
        steps = next(iter(spikes.values())).shape[0]
        per_step = {k: v.reshape(steps, n_samples, -1).sum(axis=(1, 2)) / n_samples
                    for k, v in spikes.items()}
        synops = None
        if run.stats.get("synops"):
            synops = {k: np.asarray(run.stats["synops"][k], dtype=float) / n_samples
                      for k in names if k in run.stats["synops"]}
        source = f"{run.backend} backend, {n_samples} sample(s), {steps} steps"
    else:
        e = energies[0]
        rates = {la.name: la.rate for la in e.layers}
        synops = {la.name: np.asarray(la.synops_per_step) for la in e.layers}
        per_step = {la.name: np.asarray(la.spikes_per_step) for la in e.layers}
        source = f"energy estimate's run ({e.backend}, {e.samples} sample(s), {e.steps} steps)"
        doc.note(f"Spike raster {NOT_RUN}: no spikes were passed to the report.")

    doc.h(3, "Firing rate per layer")
    doc.p("What you are looking at: the mean number of spikes per neuron per time step in "
          f"each layer ({source}); lower rates mean fewer synaptic events and less energy.")
    doc.img(plots.rate_bars(rates, out / "rates.png", title="firing rate per layer"),
            "firing rate per layer")
    doc.h(3, "Synaptic operations (SynOps)")
    if synops:
        doc.p("What you are looking at: left, the SynOps per inference received by each "
              "layer (one SynOp = one spike reaching one non-zero synapse); right, how they "
              "are spread over the time steps. SynOps drive most of the chip's energy.")
        doc.img(plots.synops_panels(synops, out / "synops.png",
                                    title=f"synaptic operations per inference ({source})"),
                "SynOps per layer and per step")
    else:
        doc.note(f"SynOps {NOT_RUN}: the {run.backend if run else '?'} backend records spikes "
                 "only; the event backend counts SynOps.")
        doc.img(plots.lines(per_step, out / "spikes_per_step.png",
                            title="spikes per time step (per inference)", xlabel="time step",
                            ylabel="spikes"), "spikes per step")


def _energy(doc: Doc, out: Path, energies: list[EnergyReport]) -> None:
    from snn2hw.reporting import plots

    doc.h(2, "Energy and latency")
    if not energies:
        doc.note(f"{NOT_RUN}: no energy estimate given. Run `snn2hw energy`.")
        return
    doc.p("What you are looking at: the energy one inference costs on each target, split into "
          "synaptic operations, neuron updates and spike routing, computed as counted "
          f"activity x published per-operation energies (**{MODELLED}**, not measured). "
          "Targets without a published per-operation table get no bar rather than an "
          "invented one.")
    bd = {e.target: (e.breakdown_pj if e.energy_available else None) for e in energies}
    png = plots.energy_breakdown(bd, out / "energy_breakdown.png",
                                 title=f"energy per inference ({MODELLED})")
    doc.img(png, "energy breakdown per target")
    for e in energies:
        doc.h(3, f"Target {e.target}")
        doc.p(f"{e.target_description}. {e.steps} time steps per inference, {e.samples} "
              f"sample(s), {e.cores} core(s) on {e.chips} chip(s).")
        if e.energy_available and e.pre_silicon:
            doc.note(f"The {e.target} per-operation energies are pre-silicon estimates; so is "
                     "every energy figure derived from them.")
        for title, expl, header, rows in e.tables():
            doc.p(f"**{title}.** {expl}")
            if header:
                doc.table(header, rows)
        if e.notes:
            doc.p("**Notes.**")
            doc.ul(e.notes)


def _resources(doc: Doc, exp: dict[str, Any] | None, why: str) -> None:
    doc.h(2, "Resources")
    doc.p("What you are looking at: how each LIF layer is split over the target's "
          "neuro-cores and what limits it (neurons, input/output axons, synaptic memory per "
          "core). Columns show the per-core maximum; the last column names the limit that "
          "forced the split.")
    res = (exp or {}).get("resources")
    if not res:
        doc.note(f"{why}. Run `snn2hw export`.")
        return
    lim = res.get("limits_per_core") or {}
    rows = []
    for lm in res.get("layers", []):
        rows.append([lm.get("name"), _fmt(lm.get("neurons")), _fmt(lm.get("cores")),
                     _fmt(lm.get("max_neurons_per_core")), _fmt(lm.get("max_input_axons")),
                     _fmt(lm.get("max_output_axons")), _fmt(lm.get("synapses")),
                     _bits(lm.get("max_synaptic_memory_bits", 0)),
                     lm.get("limited_by") or "-"])
    rows.append(["total", _fmt(sum(int(lm.get("neurons", 0)) for lm in res.get("layers", []))),
                 _fmt(res.get("total_cores")), "", "", "",
                 _fmt(sum(int(lm.get("synapses", 0)) for lm in res.get("layers", []))), "", ""])
    doc.table(["layer", "neurons", "cores", "neurons/core", "in-axons", "out-axons",
               "synapses", "syn. memory/core", "limited by"], rows)
    if lim:
        doc.p(f"Per-core limits on {res.get('target')}: {_fmt(lim.get('neurons'))} neurons, "
              f"{_fmt(lim.get('input_axons'))} input axons, {_fmt(lim.get('output_axons'))} "
              f"output axons, {_bits(lim.get('synaptic_memory_bits', 0))} synaptic memory; "
              f"{res.get('total_cores')} core(s) on {res.get('chips')} chip(s) of "
              f"{res.get('cores_per_chip')} cores.")
    doc.ul([f"assumed: {a}" for a in res.get("assumptions", [])])


def _quantization(doc: Doc, exp: dict[str, Any] | None, why: str) -> None:
    doc.h(2, "Quantization")
    doc.p("What you are looking at: the integer parameters chosen for each layer (threshold "
          "vth, current and voltage decays du/dv, weight exponent, largest weight) and the "
          "fraction of weights that became zero; 'limited by' names what fixed the scale.")
    layers = ((exp or {}).get("quantization") or {}).get("layers")
    if not layers:
        doc.note(f"{why}. Run `snn2hw export`.")
        return
    rows = []
    for lr in layers:
        zf = lr.get("zero_weight_fraction")
        rows.append([lr.get("name"), lr.get("nir_type", "-"), lr.get("shape", "-"),
                     lr.get("vth", "-"), lr.get("du", "-"), lr.get("dv", "-"),
                     lr.get("weight_exps", "-"), lr.get("max_weight", "-"),
                     f"{zf:.1%}" if isinstance(zf, (int, float)) else "-",
                     lr.get("limited_by", "-")])
    doc.table(["layer", "type", "shape", "vth", "du", "dv", "weight_exp", "max weight",
               "zero weights", "limited by"], rows)


# ----- entry point ------------------------------------------------------------------------------
def write_report(
    out_dir: str | Path,
    *,
    export_json: Path | None = None,
    compare_json: Path | None = None,
    energy: EnergyReport | Sequence[EnergyReport] | None = None,
    graph: QGraph | None = None,
    run: ActivityRun | None = None,
    title: str | None = None,
    sample: int = 0,
) -> Path:
    """Write ``<out_dir>/report/index.html`` and ``README.md`` (+ PNG plots); return the path
    of ``index.html``. An ``out_dir`` already named ``report`` is used as it is (``-o
    report/`` means that folder, not ``report/report/``). Every input is optional; missing
    ones give a "not run" section."""
    out = Path(out_dir) if Path(out_dir).name == "report" else Path(out_dir) / "report"
    out.mkdir(parents=True, exist_ok=True)
    exp, why_exp = _read_json(export_json, "export")
    cmp_, why_cmp = _read_json(compare_json, "backend comparison")
    energies = ([] if energy is None else [energy] if isinstance(energy, EnergyReport)
                else list(energy))
    target = (exp or {}).get("target") or (graph.target if graph is not None else None)
    name = Path(str((exp or {}).get("source", ""))).name
    page_title = title or f"snn2hw deployment report{f': {name}' if name else ''}" + (
        f" on {target}" if target else "")

    doc = Doc()
    doc.h(1, page_title)
    doc.p("This page describes one spiking network taken from PyTorch to a neuromorphic chip "
          "by snn2hw: how accurate it stays after quantization, whether the bit-exact "
          "simulators agree, how it spikes, how it is spread over the chip's cores, and what "
          "one inference is estimated to cost in energy and time. "
          f"Generated {time.strftime('%Y-%m-%d %H:%M')}.")
    _summary(doc, exp, cmp_, energies, graph, run)
    _accuracy(doc, out, exp, cmp_, why_exp, why_cmp)
    _deployment_check(doc, exp, why_exp)
    _comparison(doc, cmp_, why_cmp)
    _activity(doc, out, graph, run, energies, sample)
    _energy(doc, out, energies)
    _resources(doc, exp, why_exp)
    _quantization(doc, exp, why_exp)
    doc.h(2, "Assumptions and notes")
    notes = list((exp or {}).get("assumptions") or [])
    if not notes and not energies:
        doc.p("None recorded (no export or energy estimate given).")
    doc.ul(notes)
    doc.p(f"**{MODELLED}**: computed from counted activity and constants with cited sources. "
          f"**{MEASURED}**: timed or metered on the machine that produced the file.")

    atomic_write_text(out / "README.md", doc.markdown())
    index = out / "index.html"
    atomic_write_text(index, doc.html(page_title))
    return index
