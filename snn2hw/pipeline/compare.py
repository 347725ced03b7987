"""Spike-for-spike equivalence of backends on the same inputs; ``snn2hw compare``.

The integer backends (torch-int, event, lava) execute the same quantized graph and must
agree exactly: per layer we report each backend's spikes, the spike overlap with the
reference backend (the first one listed): matched spikes / union, 0 when one side is silent
and the other is not, n/a when both are silent (:mod:`snn2hw.pipeline.alignment`), the
fraction of (sample, step, neuron) values that agree, and the first divergence (sample,
step, layer, neuron, with u and v on both sides, re-run with state recording). A layer or
output silent on every sample in some backend is a warning: agreement of silence proves
nothing. The float path (``float``: the NIR graph executed in float, no hop delays,
unquantized) is compared after aligning each layer by its hop depth (stated in the output);
it is expected to differ a little, and never fails the comparison.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from snn2hw.backends import registry
from snn2hw.backends.base import SimResult
from snn2hw.common.errors import Snn2hwError
from snn2hw.common.tables import markdown_table
from snn2hw.nir.delays import flush_steps
from snn2hw.pipeline.alignment import (
    SpikeOverlap,
    align,
    hop_depths,
    silence_warnings,
    spike_overlap,
)
from snn2hw.pipeline.delay_report import pad_for_delays
from snn2hw.pipeline.simulate import BackendRun, graph_samples, predictions, run_backend
from snn2hw.quant.qgraph import QGraph


@dataclass
class Divergence:
    """The first (sample, step, layer, neuron) where backend ``other`` disagrees with the
    reference backend: earliest step, then sample, then layer order, then neuron.

    ``neuron`` is the C-order flat index in the layer; ``index`` the same neuron as an index
    into the layer's shape (for multi-dimensional layers, e.g. ``(channel, y, x)``).
    ``spike``, ``u`` and ``v`` are ``(reference, other)`` at that point; ``u``/``v`` come
    from re-running that sample on both backends with state recording (after the step's
    reset) and are None when either backend does not record state."""

    sample: int
    step: int
    layer: str
    neuron: int
    reference: str
    other: str
    spike: tuple[int, int]
    u: tuple[int, int] | None = None
    v: tuple[int, int] | None = None
    index: tuple[int, ...] | None = None

    def to_dict(self) -> dict[str, Any]:
        return dict(vars(self))

    def _pair(self, what: str, pair: tuple[int, int]) -> str:
        return f"{what} {self.reference}={pair[0]} {self.other}={pair[1]}"

    def describe(self) -> str:
        where = f"neuron {self.neuron}"
        if self.index is not None and len(self.index) > 1:
            where += f" (index {tuple(self.index)})"
        s = (
            f"first divergence {self.reference} vs {self.other}: sample {self.sample}, step "
            f"{self.step}, layer '{self.layer}', {where}: {self._pair('spike', self.spike)}"
        )
        if self.u is not None and self.v is not None:
            s += f", {self._pair('u', self.u)}, {self._pair('v', self.v)}"
        else:
            s += " (u/v not recorded by both backends)"
        return s


def divergence_table(divergences: list[Divergence]) -> str:
    """The divergences as a Markdown table (one row per backend that differs)."""
    def pair(p: tuple[int, int] | None) -> str:
        return "-" if p is None else f"{p[0]} / {p[1]}"

    header = ["reference / other", "sample", "step", "layer", "neuron", "spike", "u", "v"]
    rows = [[f"{d.reference} / {d.other}", str(d.sample), str(d.step), d.layer,
             str(d.neuron) if d.index is None or len(d.index) < 2
             else f"{d.neuron} {tuple(d.index)}",
             pair(d.spike), pair(d.u), pair(d.v)] for d in divergences]
    return markdown_table(header, rows)


@dataclass
class Comparison:
    backends: list[str]
    samples: int
    agreement: dict[str, dict[str, float]]  # backend -> layer -> fraction agreeing with reference
    accuracy: dict[str, float | None]
    wall_s: dict[str, float]
    divergences: list[Divergence] = field(default_factory=list)
    float_agreement: dict[str, float] = field(default_factory=dict)
    runs: dict[str, SimResult] = field(default_factory=dict, repr=False)
    energy: dict[str, str] = field(default_factory=dict)  # backend -> energy per inference
    # backend -> layer -> spikes and overlap with the reference backend (float: hop-aligned)
    overlap: dict[str, dict[str, SpikeOverlap]] = field(default_factory=dict)
    hop_depth: dict[str, int] = field(default_factory=dict)  # float alignment, per layer
    warnings: list[str] = field(default_factory=list)

    @property
    def integer_equal(self) -> bool:
        return not self.divergences

    @property
    def reference(self) -> str:
        return next(b for b in self.backends if b != "float")

    def to_dict(self) -> dict[str, Any]:
        return {
            "backends": self.backends,
            "samples": self.samples,
            "agreement": self.agreement,
            "accuracy": self.accuracy,
            "wall_s": self.wall_s,
            "samples_per_s": {
                k: self.samples / v if v > 0 else None for k, v in self.wall_s.items()
            },
            "integer_backends_equal": self.integer_equal,
            "divergences": [d.to_dict() for d in self.divergences],
            "float_agreement": self.float_agreement,
            "reference": self.reference,
            "spikes": {b: {k: o.spikes for k, o in lay.items()}
                       for b, lay in self.overlap.items()},
            "overlap": {b: {k: o.to_dict() for k, o in lay.items()}
                        for b, lay in self.overlap.items()},
            "overlap_definition": OVERLAP_DEFINITION,
            "hop_depth": self.hop_depth,
            "warnings": self.warnings,
            "energy_per_inference": self.energy,
        }

    def table(self) -> str:
        """The comparison as a Markdown table: one row per backend, one column per layer;
        each cell is the spike overlap with the reference backend and the backend's spikes
        (float: aligned by hop depth, marked *)."""
        layers = list(next(iter(self.agreement.values()), {}).keys())
        e_col = bool(self.energy)
        header = ["backend", "accuracy", "wall s", "samples/s",
                  *(["energy / inference"] if e_col else []),
                  *(f"{layer} overlap (spikes)" for layer in layers)]
        rows = []
        for b in self.backends:
            acc = self.accuracy.get(b)
            mark = "*" if b == "float" else ""
            cells = []
            for layer in layers:
                o = self.overlap.get(b, {}).get(layer)
                cells.append("-" if o is None else f"{o.cell()}{mark} ({o.spikes})")
            w = self.wall_s.get(b, float("nan"))
            rows.append([b, "-" if acc is None else f"{acc:.4f}", f"{w:.3f}",
                         f"{self.samples / w if w else float('nan'):.1f}",
                         *([self.energy.get(b, "-")] if e_col else []), *cells])
        return markdown_table(header, rows)

    def legend(self) -> str:
        """What the table's cells mean, with the float path's hop depths."""
        text = (f"Overlap: {OVERLAP_DEFINITION}, against {self.reference}.")
        if "float" in self.backends:
            depths = ", ".join(f"{k} {v}" for k, v in self.hop_depth.items())
            text += (" `*` float path: integer spikes of a layer at hop depth d are compared "
                     f"at step t + d with the float spikes at step t (hop depth: {depths}); "
                     "not expected to be exact.")
        return text

    def describe(self) -> str:
        """What ``snn2hw compare`` prints: the table, the legend, warnings, then each
        divergence (or agreement)."""
        lines = [self.table(), self.legend()]
        lines += [f"warning: {w}" for w in self.warnings]
        lines += [d.describe() for d in self.divergences] or [
            "integer backends agree on every spike"
        ]
        return "\n".join(lines)


OVERLAP_DEFINITION = ("matched spikes / union of spikes over all (sample, step, neuron); "
                      "0 when one side is silent and the other is not, n/a (null) when both "
                      "are silent")


def _first_divergence(
    graph: QGraph, ref: SimResult, other: SimResult
) -> tuple[int, int, str, int] | None:
    best = None
    for lif in graph.lif_nodes:
        a = ref.spikes[lif.name]
        b = other.spikes[lif.name]
        diff = np.argwhere((a != b).reshape(a.shape[0], a.shape[1], -1))
        if len(diff):
            # earliest step first, then sample, then layer order
            step, sample, neuron = min(diff.tolist(), key=lambda r: (r[0], r[1], r[2]))
            cand = (step, sample, lif.name, neuron)
            if best is None or cand[:2] < best[:2]:
                best = cand
    if best is None:
        return None
    step, sample, layer, neuron = best
    return sample, step, layer, neuron


def float_path_spikes(
    graph: QGraph, frames: torch.Tensor, nir_dir: Path
) -> tuple[dict[str, np.ndarray], float]:
    """Spikes of the float NIR graph the quantized graph came from, per LIF layer."""
    import time

    from snn2hw.pipeline.float_model import float_net_for

    net = float_net_for(graph, nir_dir)
    t0 = time.perf_counter()
    with torch.no_grad():  # a graph with Delay nodes needs extra steps to flush
        _, rec = net(pad_for_delays(frames, flush_steps(net.graph, net.dt)), record=True)
    wall = time.perf_counter() - t0
    lifs = {n.name for n in graph.lif_nodes}
    return {k: v.numpy().astype(np.uint8) for k, v in rec.items() if k in lifs}, wall


def compare(
    qgraph_path: str | Path,
    backends: list[str],
    samples: int,
    *,
    device: str = "cpu",
    energy_target: str | None = None,
) -> Comparison:
    """Run ``backends`` on the same inputs and compare them spike for spike. With
    ``energy_target``, each row also gets an energy per inference: modelled for the chip
    simulators (event, lava, torch-int as a chip model) from the event simulator's
    activity, and measured (NVML) for the torch paths when they ran on a CUDA device."""
    qgraph_path = Path(qgraph_path)
    graph = QGraph.load(qgraph_path)
    integer = registry.names()
    unknown = [b for b in backends if b not in (*integer, "float")]
    if unknown:
        raise Snn2hwError(f"unknown backend(s) {unknown}; known: float, {', '.join(integer)}")
    ints_backends = [b for b in backends if b in integer]
    if not ints_backends:
        raise Snn2hwError(f"compare needs at least one integer backend ({', '.join(integer)})")
    smp = graph_samples(graph, samples)
    n_steps = graph.num_steps + graph.depth()
    runs: dict[str, SimResult] = {}
    for b in ints_backends:  # run_backend hands ``device`` only to backends that use one
        runs[b] = run_backend(b, graph, smp.ints, num_steps=n_steps, device=device)
    ref = runs[ints_backends[0]]
    agreement: dict[str, dict[str, float]] = {}
    divergences: list[Divergence] = []
    for b in ints_backends:
        agreement[b] = {
            lif.name: float((runs[b].spikes[lif.name] == ref.spikes[lif.name]).mean())
            for lif in graph.lif_nodes
        }
        if b == ref.backend:
            continue
        first = _first_divergence(graph, ref, runs[b])
        if first is not None:
            sample, step, layer, neuron = first
            x1 = smp.ints[:, sample : sample + 1]
            r1 = run_backend(ref.backend, graph, x1, num_steps=n_steps, record_state=True)
            r2 = run_backend(b, graph, x1, num_steps=n_steps, record_state=True)

            def at(trace: dict[str, np.ndarray], layer=layer, step=step, neuron=neuron) -> int:
                return int(trace[layer][step, 0].reshape(-1)[neuron])

            divergences.append(
                Divergence(
                    sample,
                    step,
                    layer,
                    neuron,
                    ref.backend,
                    b,
                    (
                        int(ref.spikes[layer][step, sample].reshape(-1)[neuron]),
                        int(runs[b].spikes[layer][step, sample].reshape(-1)[neuron]),
                    ),
                    (at(r1.u), at(r2.u)) if r1.u and r2.u else None,
                    (at(r1.v), at(r2.v)) if r1.v and r2.v else None,
                    tuple(int(i) for i in np.unravel_index(
                        neuron, ref.spikes[layer].shape[2:])),
                )
            )
    accuracy: dict[str, float | None] = {}
    wall = {b: runs[b].wall_s for b in ints_backends}
    for b in ints_backends:
        accuracy[b] = (
            None
            if smp.labels is None
            else float((predictions(graph, runs[b].spikes) == smp.labels).mean())
        )
    overlap = {b: {lif.name: spike_overlap(ref.spikes[lif.name], runs[b].spikes[lif.name])
                   for lif in graph.lif_nodes} for b in ints_backends}
    spikes = {b: runs[b].spikes for b in ints_backends}
    float_agree: dict[str, float] = {}
    if "float" in backends:
        fs, wall["float"] = float_path_spikes(graph, smp.frames, qgraph_path.parent)
        spikes["float"] = fs
        overlap["float"] = {}
        # chip step = float step + the layer's shift (hop depth, or export's delay alignment)
        for name, (f, i) in align(graph, fs, ref.spikes).items():
            float_agree[name] = float((i == f).mean())
            overlap["float"][name] = spike_overlap(i, f)
        src = graph.source_of_output(graph.output_nodes[0].name)
        if smp.labels is not None and src in fs:
            accuracy["float"] = float((predictions(graph, fs) == smp.labels).mean())
        else:
            accuracy["float"] = None
    order = [b for b in backends if b in runs or b == "float"]
    cmp = Comparison(
        order, int(smp.ints.shape[1]), agreement, accuracy, wall, divergences, float_agree, runs,
        overlap={b: overlap[b] for b in order}, hop_depth=hop_depths(graph),
        warnings=silence_warnings(graph, {b: spikes[b] for b in order}),
    )
    if energy_target:
        cmp.energy = _energy_column(graph, smp, runs, backends, energy_target, device,
                                    qgraph_path.parent)
    return cmp


def _energy_column(graph: QGraph, smp, runs: dict[str, BackendRun], backends: list[str],
                   target: str, device: str, nir_dir: Path) -> dict[str, str]:
    from snn2hw.common.formatting import format_energy
    from snn2hw.pipeline.energy import energy_for_graph
    from snn2hw.pipeline.measure import measure_torch_paths

    rep, _, _ = energy_for_graph(graph, target, run=runs.get("event"), inputs=smp.ints)
    chip = (f"{format_energy(rep.total_pj)} modelled on {target}" if rep.total_pj is not None
            else f"not published for {target}")
    out = {b: chip for b in backends if b in ("event", "lava", "onnx")}
    float_net = None
    if "float" in backends:
        from snn2hw.pipeline.float_model import float_net_for

        float_net = float_net_for(graph, nir_dir)
    meas = measure_torch_paths(graph, smp.ints, device, float_net=float_net,
                               float_frames=smp.frames if float_net is not None else None)
    for name, rec in meas["paths"].items():
        if name not in backends:
            continue
        e = rec.get("energy_j_per_inference")
        out[name] = (f"{format_energy(e * 1e12)} measured on {meas['device']}" if e is not None
                     else f"not measured ({meas['energy_note'].split(': ', 1)[-1]}); "
                          f"chip: {chip}")
    return out


def write_comparison(res: Comparison, qgraph_path: Path, out: Path) -> dict[str, Path]:
    """compare.json, compare.md and a raster PNG (first divergence, or sample 0)."""
    import json

    from snn2hw.common.atomic_io import atomic_write_text
    from snn2hw.reporting import plots

    out.mkdir(parents=True, exist_ok=True)
    ref = res.runs[next(b for b in res.backends if b in res.runs)]
    if res.divergences:
        d = res.divergences[0]
        png = plots.raster(
            ref.spikes,
            d.sample,
            out / "compare_raster.png",
            title=(f"first divergence (red circle): sample {d.sample}, step {d.step}, "
                   f"'{d.layer}' neuron {d.neuron}; {d.reference} (black) vs "
                   f"{d.other} (red x where it differs)"),
            mark=(d.step, d.layer, d.neuron),
            other=res.runs[d.other].spikes,
        )
    else:
        png = plots.raster(
            ref.spikes,
            0,
            out / "compare_raster.png",
            title=f"sample 0 ({', '.join(res.runs)} agree on every spike)",
        )
    atomic_write_text(out / "compare.json", json.dumps(res.to_dict(), indent=2, default=float))
    md = [
        f"# Backend comparison: `{qgraph_path.name}`",
        "",
        f"{res.samples} samples.",
        "",
        res.table(),
        "",
        res.legend(),
        "",
        *[f"- **warning**: {w}" for w in res.warnings],
        *([""] if res.warnings else []),
    ]
    if res.divergences:
        md += ["## First divergence", "",
               "Spike, u and v as reference / other at that point (u and v after the "
               "step's reset, from a re-run of that sample with state recording).", "",
               divergence_table(res.divergences), ""]
        md += [f"- {d.describe()}" for d in res.divergences]
    else:
        md += ["- integer backends agree on every spike"]
    md += ["", f"![raster]({png.name})", ""]
    atomic_write_text(out / "compare.md", "\n".join(md))
    return {"json": out / "compare.json", "md": out / "compare.md", "png": png}


def compare_artifact(
    artifact: str | Path,
    backends: list[str],
    samples: int,
    *,
    device: str = "auto",
    out_dir: str | Path | None = None,
    report: bool = True,
    energy_target: str | None = None,
) -> Comparison:
    """``snn2hw compare``: :func:`compare` on the graph of ``artifact`` (a .qgraph or an
    export folder), then compare.json/.md and the raster into ``out_dir`` (default: the
    graph's folder) and, with ``report``, the deployment report there."""
    from snn2hw.pipeline.artifacts import qgraph_path
    from snn2hw.training.runtime import resolve_device

    path = qgraph_path(artifact)
    res = compare(path, backends, samples, device=str(resolve_device(device)),
                  energy_target=energy_target)
    out = Path(out_dir) if out_dir else path.parent
    write_comparison(res, path, out)
    if report:
        from snn2hw.pipeline.report import write_report_for_artifact

        write_report_for_artifact(path, out)
    return res
