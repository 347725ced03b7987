"""Energy stage: run the event backend for activity, then the chip estimator; ``snn2hw energy``.

The chip package (:mod:`snn2hw.chip.energy`) never runs a simulator; this module turns a
:class:`~snn2hw.pipeline.simulate.BackendRun` into the plain
:class:`~snn2hw.chip.energy.RunActivity` it takes (:func:`activity_from_run`), and runs the
event backend when no run is given (:func:`energy_for_graph`, :func:`energy_for_targets`);
:func:`energy_for_artifact` is the whole ``snn2hw energy`` command.

May import: ``snn2hw.chip``, ``snn2hw.quant``, ``snn2hw.common``, ``snn2hw.pipeline`` and
``snn2hw.training.runtime`` (device names).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from snn2hw.chip.energy import EnergyReport, LayerCounts, RunActivity, estimate_energy
from snn2hw.chip.mapping import map_to_cores
from snn2hw.chip.targets import Baselines, Target, load_baselines, load_target
from snn2hw.pipeline import simulate
from snn2hw.pipeline.simulate import BackendRun
from snn2hw.quant.qgraph import QGraph

__all__ = ["activity_from_run", "energy_for_artifact", "energy_for_graph", "energy_for_targets"]


def activity_from_run(run: BackendRun) -> RunActivity:
    """The run's spikes and (event backend) activity counters per LIF layer, as plain data.
    Counters the run does not have stay None; the estimator names the missing one."""
    stats = run.stats or {}

    def get(key: str, layer: str) -> Any:
        return stats.get(key, {}).get(layer)

    layers = {
        name: LayerCounts(
            spikes=spikes,
            synops=get("synops", name),
            synops_dense=get("synops_dense", name),
            neuron_updates=get("neuron_updates", name),
            macs_dense=get("macs_dense", name),
        )
        for name, spikes in run.spikes.items()
    }
    return RunActivity(run.backend, layers)


def energy_for_graph(
    graph: QGraph,
    target: str | Path | Target,
    *,
    run: BackendRun | None = None,
    inputs: np.ndarray | None = None,
    samples: int = 100,
    measured: dict[str, Any] | None = None,
    baselines: Baselines | None = None,
) -> tuple[EnergyReport, BackendRun, np.ndarray]:
    """Load ``target`` (TargetError first, before any work), regenerate the graph's inputs
    if none are given, run the event backend if no run is given, map and estimate.
    Returns ``(report, run, inputs)`` so several targets can share one run."""
    tgt = target if isinstance(target, Target) else load_target(target)
    b = baselines if baselines is not None else load_baselines()
    if inputs is None:
        inputs = simulate.graph_samples(graph, samples).ints
    if run is None:
        run = simulate.run_backend("event", graph, inputs)
    mapping = map_to_cores(graph, tgt)
    rep = estimate_energy(graph, tgt, activity_from_run(run), mapping, baselines=b,
                          measured=measured, inputs=inputs)
    return rep, run, inputs


def energy_for_targets(
    graph: QGraph,
    targets: Sequence[str | Path],
    *,
    inputs: np.ndarray | None = None,
    samples: int = 100,
    measured: dict[str, Any] | None = None,
) -> tuple[list[EnergyReport], BackendRun]:
    """One event run shared by several targets (all targets are loaded first, so a bad
    target name or file fails before any simulation)."""
    tgts = [load_target(t) for t in targets]
    b = load_baselines()
    reports: list[EnergyReport] = []
    run: BackendRun | None = None
    for t in tgts:
        rep, run, inputs = energy_for_graph(graph, t, run=run, inputs=inputs, samples=samples,
                                            measured=measured, baselines=b)
        reports.append(rep)
    assert run is not None
    return reports, run


def energy_for_artifact(
    artifact: str | Path,
    targets: Sequence[str | Path],
    *,
    samples: int = 100,
    measure: bool = False,
    device: str = "auto",
    out_dir: str | Path | None = None,
) -> list[EnergyReport]:
    """``snn2hw energy``: one event run over the first ``samples`` recorded inputs of the
    graph in ``artifact`` (a .qgraph or an export folder), a report per target, with
    ``measure`` also the torch paths timed on ``device``; writes energy.json/.md into
    ``out_dir`` (default: the graph's folder)."""
    from snn2hw.chip.energy import write_energy
    from snn2hw.pipeline.artifacts import qgraph_path
    from snn2hw.pipeline.measure import measure_torch_paths
    from snn2hw.training.runtime import resolve_device

    path = qgraph_path(artifact)
    g = QGraph.load(path)
    ints = simulate.graph_samples(g, samples).ints
    meas = measure_torch_paths(g, ints, str(resolve_device(device))) if measure else None
    reports, _ = energy_for_targets(g, list(targets), inputs=ints, measured=meas)
    write_energy(reports, Path(out_dir) if out_dir else path.parent)
    return reports
