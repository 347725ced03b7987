"""``snn2hw demo`` / ``make demo``: the main job end to end on the embedded digits data.

train (digits LIF MLP) -> export to NIR -> quantize for Loihi -> compare float, torch-int,
event and Lava spike for spike -> energy for loihi and loihi2 -> report page.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import click

from snn2hw.common.atomic_io import atomic_write_text
from snn2hw.common.examples import examples_dir
from snn2hw.training.config import load_config
from snn2hw.training.train import train

COMPARE_SAMPLES = 50


def _step(i: int, n: int, what: str) -> None:
    click.echo(f"[{i}/{n}] {what}")


def run_demo(out: Path, device: str = "auto") -> dict[str, Any]:
    """Run every stage; returns (and writes to ``out/summary.json``) the headline numbers."""
    from snn2hw.compat.lava_py311 import lava_available
    from snn2hw.pipeline.compare import compare, write_comparison
    from snn2hw.pipeline.export import export

    t0 = time.monotonic()
    n = 5
    cfg = load_config(examples_dir() / "digits_lif.toml")
    _step(1, n, "training the digits LIF MLP (bundled config digits_lif)")
    res = train(cfg, out_dir=out / "train", device=device)
    click.echo(f"      float test accuracy {res.test.accuracy:.4f} in {res.seconds:.0f} s")

    _step(2, n, "exporting to NIR and quantizing for loihi")
    exp = export(res.best_checkpoint, "loihi", out / "export")
    click.echo(
        f"      wrote {exp.nir_path.name}, {exp.qgraph_path.name}; "
        f"{exp.report['resources']['total_cores']} cores"
    )
    click.echo(f"      {exp.check.summary()}")
    if not exp.check.passed:  # as `snn2hw export` would, the demo stops on a failed check
        raise click.ClickException(exp.check.error())

    backends = ["float", "torch-int", "event"] + (["lava"] if lava_available() else [])
    _step(3, n, f"comparing {', '.join(backends)} on {COMPARE_SAMPLES} test samples")
    cmp = compare(exp.qgraph_path, backends, COMPARE_SAMPLES, device="cpu")
    write_comparison(cmp, exp.qgraph_path, out / "export")
    click.echo(cmp.table())
    click.echo(
        "      integer backends agree on every spike"
        if cmp.integer_equal
        else f"      MISMATCH: {cmp.divergences[0].describe()}"
    )

    _step(4, n, "estimating energy and latency (loihi, loihi2) from event-simulator activity")
    from snn2hw.chip.energy import write_energy
    from snn2hw.pipeline.energy import energy_for_targets
    from snn2hw.quant.qgraph import QGraph
    from snn2hw.reporting.report import write_report

    graph = QGraph.load(exp.qgraph_path)
    reports, run = energy_for_targets(graph, ["loihi", "loihi2"], samples=COMPARE_SAMPLES)
    write_energy(reports, out / "export")
    for rep in reports:
        total = rep.total_pj
        click.echo(
            f"      {rep.target}: "
            + (
                f"{total / 1e6:.3f} uJ/inference (modelled, pre-silicon constants), "
                if total is not None
                else "no published per-op energy; "
            )
            + f"{rep.synops:,.0f} SynOps/inference"
        )
    energy = {rep.target: rep.to_dict() for rep in reports}

    _step(5, n, "writing the report")
    report = write_report(
        out,
        export_json=out / "export" / "export.json",
        compare_json=out / "export" / "compare.json",
        energy=reports,
        graph=graph,
        run=run,
    )
    click.echo(f"      report: {report}")

    summary = {
        "float_test_accuracy": res.test.accuracy,
        "train_seconds": res.seconds,
        "checkpoint": str(res.best_checkpoint),
        "qgraph": str(exp.qgraph_path),
        "cores": exp.report["resources"]["total_cores"],
        "compare": cmp.to_dict(),
        "energy": energy,
        "report": str(report) if report else None,
        "total_seconds": time.monotonic() - t0,
    }
    atomic_write_text(out / "summary.json", json.dumps(summary, indent=2, default=float))
    click.echo(f"done in {summary['total_seconds']:.0f} s; summary in {out / 'summary.json'}")
    if not cmp.integer_equal:
        raise click.ClickException("integer backends disagree (see compare.md)")
    return summary
