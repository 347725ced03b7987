"""``snn2hw export model.net``: a lava-dl netx network -> quantized graph + resources + report.

No NIR stage and no quantization: the netx file holds Loihi integers, mapped block by block
(:mod:`snn2hw.netx.to_qgraph`, docs/netx.md). The samples given with ``--inputs`` (integer
frames ``[T, B, *input_shape]``) or ``--dataset`` are recorded so ``simulate``, ``compare``,
``energy`` and the report regenerate them.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from snn2hw.common.atomic_io import atomic_write_text, file_sha256
from snn2hw.common.errors import DatasetError
from snn2hw.common.tables import markdown_table
from snn2hw.pipeline.samples import (
    SampleSpec,
    bundle_sample_files,
    load_samples,
    resolve_sample_files,
)
from snn2hw.quant.inputs import InputFormat


def export_netx(source: Path, target: str, out: Path, spec: SampleSpec | None,
                netx_reset: tuple[int, int] | None = None) -> Any:
    """Write ``<stem>.qgraph``, ``export.json`` and ``export.md`` for a netx file; returns
    the :class:`~snn2hw.pipeline.export.ExportResult`. ``netx_reset``: netx ``Network``'s
    ``(reset_interval, reset_offset)`` build options (None: no periodic reset), mapped to
    each LIF's periodic state reset (docs/netx.md "Timing: what runs when")."""
    from snn2hw.chip.mapping import format_mapping, map_to_cores
    from snn2hw.chip.targets import load_target
    from snn2hw.netx import netx_to_qgraph, read_netx
    from snn2hw.pipeline.export import ExportResult

    t0 = time.monotonic()
    tgt = load_target(target)
    if spec is None:
        raise DatasetError(f"{source}: input samples needed: pass --inputs FRAMES.npy (integer "
                           "frames [T, B, *input_shape]) or --dataset NAME")
    # the sample files travel with the artifact (metadata names the copies in `out`)
    stored_spec = bundle_sample_files(spec, out, source.stem)
    spec = resolve_sample_files(stored_spec, out)
    net = read_netx(source)
    # inputs/labels files travel with the artifact (read relative to it, never outside)
    stored_spec = bundle_sample_files(spec, out, source.stem)
    spec = resolve_sample_files(stored_spec, out)
    interval, offset = netx_reset if netx_reset is not None else (None, 0)
    res = netx_to_qgraph(net, target=tgt.name, formats=tgt.number_formats,
                         reset_interval=interval, reset_offset=offset)
    graph = res.graph
    fmt = InputFormat(graph.input_node.message_bits, 1.0)
    samples = load_samples(spec, fmt, "test", 1)
    graph.num_steps = int(samples.ints.shape[0])
    graph.metadata.update({
        "source": str(source), "netx_sha256": file_sha256(source),
        "samples": stored_spec.to_dict(), "input_format": fmt.to_dict(), "notes": res.notes,
    })
    nir_path, float_acc, rates = _float_path(graph, out / f"{source.stem}.nir", spec, fmt,
                                             res.notes)
    mapping = map_to_cores(graph, tgt)
    qpath = out / f"{source.stem}.qgraph"
    report = {
        "source": str(source), "source_format": "lava-dl netx", "target": tgt.name,
        "dt": graph.dt, "convention": "loihi (netx integers)", "assumptions": res.notes,
        "input_format": fmt.to_dict(), "samples": stored_spec.to_dict(),
        "float_accuracy": float_acc,
        "float_rates": rates, "blocks": _blocks(graph), "resources": mapping.to_dict(),
        "netx_reset": ({"interval": interval, "offset": offset} if interval is not None
                       else None),
        "files": {"qgraph": str(qpath), "nir": str(nir_path) if nir_path else None},
        "seconds": time.monotonic() - t0,
    }
    graph.save(qpath)
    atomic_write_text(out / "export.json", json.dumps(report, indent=2, default=float))
    atomic_write_text(out / "export.md", _markdown(report, format_mapping(mapping)))
    return ExportResult(out, nir_path or out / "export.json", qpath, report)


def _float_path(graph: Any, nir_path: Path, spec: SampleSpec, fmt: InputFormat,
                notes: list[str]) -> tuple[Path | None, float | None, dict[str, float]]:
    """Write the NIR graph of the netx network (the float path), record it in the graph's
    metadata and measure the float accuracy and rates on the test samples. A network
    without a NIR form (delays, a neuron NIR lacks) gets a note instead."""
    import torch

    from snn2hw.netx import NetxError
    from snn2hw.netx.to_nir import qgraph_to_nir
    from snn2hw.nir import NIRNet, resolve_timing
    from snn2hw.pipeline.export import FLOAT_EVAL_SAMPLES, _float_accuracy, write_nir_graph

    try:
        ng = qgraph_to_nir(graph)
    except NetxError as exc:
        notes.append(f"no NIR file / float path: {exc}")
        return None, None, {}
    write_nir_graph(ng, nir_path)
    graph.metadata.update({"nir_file": nir_path.name, "nir_sha256": file_sha256(nir_path),
                           "convention": "snn2hw"})
    dt, conv, _ = resolve_timing(ng, graph.dt, "snn2hw")
    net = NIRNet(ng, dt, conv).eval()
    test = load_samples(spec, fmt, "test", FLOAT_EVAL_SAMPLES)
    with torch.no_grad():
        fout, frec = net(test.frames, record=True)
    lifs = {n.name for n in graph.lif_nodes}
    rates = {k: float(v.float().mean()) for k, v in frec.items() if k in lifs}
    return nir_path, _float_accuracy(fout, test.labels), rates


def _blocks(graph: Any) -> list[dict[str, Any]]:
    rows = []
    for n in graph.nodes.values():
        row: dict[str, Any] = {"name": n.name, "kind": n.kind}
        if n.kind == "lif":
            row.update(shape=list(n.shape), du=n.du, dv=n.dv, vth=n.vth,
                       reset_interval=int(n.reset_interval), reset_offset=int(n.reset_offset))
        elif n.kind in ("dense", "conv"):
            row.update(weight_shape=list(n.weight.shape), weight_exp=n.weight_exp)
        rows.append(row)
    return rows


def _markdown(r: dict[str, Any], mapping_table: str) -> str:
    lif_rows = [[b["name"], b["shape"], b["du"], b["dv"], b["vth"],
                 f"{b['reset_offset']} mod {b['reset_interval']}" if b["reset_interval"]
                 else "-"] for b in r["blocks"] if b["kind"] == "lif"]
    reset = r.get("netx_reset")
    return "\n".join([
        f"# Export of `{r['source']}` (lava-dl netx) for {r['target']}",
        "",
        f"- dt: {r['dt']} s; integers taken from the netx file unchanged (docs/netx.md)",
        "- input: " + (f"{bits}-bit graded frames" if (bits := r["input_format"]["message_bits"])
                       else "binary spikes"),
        "- periodic state reset: " + (
            f"netx reset_interval {reset['interval']}, reset_offset {reset['offset']} (u and "
            "v of each layer zeroed at the steps in the table; docs/netx.md, Timing)"
            if reset else "none (every layer starts each sample at rest only)"),
        "",
        "## Assumptions",
        *([f"- {a}" for a in r["assumptions"]] or ["- none"]),
        "",
        "## Neurons",
        markdown_table(["layer", "shape", "du", "dv", "vth", "u, v reset at step"], lif_rows),
        "", "## Resources", "```", mapping_table, "```", "",
    ])
