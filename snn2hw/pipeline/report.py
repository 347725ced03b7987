"""Report for an exported artifact: gathers what the pipeline produced next to a quantized
graph (export.json, compare.json), runs the event simulator for activity and energy, and hands
it all to :func:`snn2hw.reporting.report.write_report`; ``snn2hw report``."""

from __future__ import annotations

from pathlib import Path

from snn2hw.reporting.report import write_report


def write_report_for_artifact(
    qgraph_path: str | Path,
    out_dir: Path | None = None,
    *,
    targets: list[str] | None = None,
    samples: int = 50,
) -> Path:
    """Report for an exported graph (a .qgraph file or an export folder): reads
    export.json/compare.json next to it (when present), runs the event simulator for
    activity and energy, writes ``report/``."""
    from snn2hw.pipeline.artifacts import qgraph_path as resolve_qgraph
    from snn2hw.pipeline.energy import energy_for_targets
    from snn2hw.quant.qgraph import QGraph

    qgraph_path = resolve_qgraph(qgraph_path)
    folder = qgraph_path.parent
    g = QGraph.load(qgraph_path)
    reports, run = energy_for_targets(g, targets or ["loihi", "loihi2"], samples=samples)
    exp = folder / "export.json"
    cmp_ = (out_dir or folder) / "compare.json"
    if not cmp_.is_file():
        cmp_ = folder / "compare.json"
    return write_report(
        out_dir or folder,
        export_json=exp if exp.is_file() else None,
        compare_json=cmp_ if cmp_.is_file() else None,
        energy=reports, graph=g, run=run,
    )
