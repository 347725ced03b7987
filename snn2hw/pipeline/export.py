"""``snn2hw export``: checkpoint or NIR file -> NIR + quantized graph + report, for a target.

Stages (each reads one representation and writes the next):
model.pt --to_nir--> model.nir --NIRNet (float path) + calibration--> quantize
--> model.qgraph --map_to_cores--> resources; everything summarised in export.json/.md.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from snn2hw.common.atomic_io import atomic_write_text, file_sha256
from snn2hw.common.errors import ConfigError, DatasetError, GraphError
from snn2hw.common.readout import accuracy, classify
from snn2hw.common.tables import markdown_table
from snn2hw.common.units import DEFAULT_DT
from snn2hw.pipeline.delay_report import delay_markdown, delay_section, pad_for_delays
from snn2hw.pipeline.deviation import DeploymentCheck, DeviationLimits, check_deployment
from snn2hw.pipeline.samples import (
    SampleSpec,
    bundle_sample_files,
    load_samples,
    resolve_sample_files,
)
from snn2hw.quant.inputs import infer_input_format

FLOAT_EVAL_SAMPLES = 2000  # test samples for the float accuracy in the export report


@dataclass
class ExportResult:
    out_dir: Path
    nir_path: Path
    qgraph_path: Path
    report: dict[str, Any] = field(default_factory=dict)
    check: DeploymentCheck | None = None  # float path vs torch-int on the calibration data

    def describe(self) -> str:
        """What ``snn2hw export`` prints: the files written and the headline numbers."""
        r = self.report
        cores = r["resources"].get("total_cores", "?")
        files = [self.nir_path, self.qgraph_path, self.out_dir / "export.md"]
        onnx = r.get("onnx") or {}
        files += [Path(onnx[k]) for k in ("integer_step_model", "float_model") if k in onnx]
        acc = r["float_accuracy"]
        acc_text = "n/a (no labels)" if acc is None else f"{acc:.4f} (test split, float path)"
        return (
            f"wrote {', '.join(str(f) for f in files)}\n"
            f"float accuracy {acc_text}; cores {cores}; "
            f"assumptions: {len(r['assumptions'])} (see export.md)"
            + (f"\n{self.check.summary()}\n{self.check.table()}"
               + "".join(f"\nwarning: {w}" for w in self.check.warnings) if self.check else "")
        )


def _float_accuracy(out: torch.Tensor, labels: np.ndarray | None) -> float | None:
    if labels is None:
        return None
    return accuracy(classify(out).numpy(), labels)


@dataclass
class _Source:
    """A source read as NIR: the float graph, its timing and where its samples come from."""

    graph: Any
    dt: float
    convention: Any
    spec: SampleSpec
    notes: list[str]


def export(
    source: str | Path,
    target: str,
    out_dir: str | Path,
    *,
    dt: float | None = None,
    convention: str | None = None,
    reset: str | None = None,
    spec: SampleSpec | None = None,
    calib_samples: int = 128,
    trust_pickle: bool = False,
    approximate: tuple[str, ...] = (),
    limits: DeviationLimits | None = None,
    accept_deviation: bool = False,
    netx_reset: tuple[int, int] | None = None,
) -> ExportResult:
    """Export ``source`` (a snn2hw checkpoint or a ``.nir`` file) for ``target``: write the
    NIR file, quantize on calibration samples, map onto cores, measure what deployment
    changes (the deployment check: float path vs torch-int on the calibration samples,
    against ``limits``), write the report. The check's verdict is ``result.check``; a failed
    check does not raise here (``snn2hw export`` exits 2 on it unless ``accept_deviation``,
    which is recorded in the report). ``approximate``: what the user accepts where the
    target's neurons cannot do what the source's do ("reset", "threshold", "spikes";
    docs/nir.md "Framework conventions on a target"); anything else is refused, naming the
    node. ``netx_reset``: netx's ``(reset_interval, reset_offset)`` (a ``.net`` source
    only)."""
    from snn2hw.chip.mapping import map_to_cores
    from snn2hw.chip.targets import load_target
    from snn2hw.nir import NIRNet

    t0 = time.monotonic()
    source = Path(source)
    out = Path(out_dir)
    created = not out.exists()
    out.mkdir(parents=True, exist_ok=True)
    try:
        if source.suffix == ".net":  # lava-dl netx: chip integers already, no NIR/quantization
            from snn2hw.pipeline.netx_export import export_netx

            _remove_previous_export(out, source.stem)
            return export_netx(source, target, out, spec, netx_reset)
        if netx_reset is not None:
            raise ConfigError(f"{source}: --netx-reset-interval/--netx-reset-offset apply to "
                              "lava-dl netx files (.net) only")
        tgt = load_target(target)
        nir_path = out / f"{source.stem}.nir"
        _remove_previous_export(out, source.stem)
        src = _read_source(source, nir_path, dt, convention, spec, trust_pickle)
        # inputs/labels files travel with the artifact: metadata names the copies in `out`
        stored_spec = bundle_sample_files(src.spec, out, source.stem)
        src.spec = resolve_sample_files(stored_spec, out)
        net = NIRNet(src.graph, src.dt, src.convention, reset=reset).eval()
        fmt, calib, rec = _calibrate(net, src.spec, calib_samples)
        neurons = net.discrete_neurons()
        qres = _quantize(src, net, neurons, rec, fmt, calib, tgt, {
            "source": str(source), "nir_file": nir_path.name, "nir_sha256": file_sha256(nir_path),
            "convention": src.convention.label,
            "reset": reset, "samples": stored_spec.to_dict(), "input_format": fmt.to_dict(),
            "notes": src.notes, "approximate": sorted(approximate),
        }, approximate)
        delays = delay_section(qres.graph, src.spec, fmt)
        check = check_deployment(qres.graph, {k: rec[k] for k in neurons if k in rec},
                                 calib.ints, calib.labels, limits=limits, neurons=neurons,
                                 accepted=accept_deviation)
        calib_check = check.rates()
        qres.notes += _quality_warnings(calib_check)
        mapping = map_to_cores(qres.graph, tgt)
        qpath = out / f"{source.stem}.qgraph"
        float_acc, rates = _float_test(net, src.spec, fmt, neurons)
        report = {
            "source": str(source),
            "target": tgt.name,
            "dt": src.dt,
            "convention": src.convention.label,
            "assumptions": src.notes + qres.notes,
            "input_format": fmt.to_dict(),
            "samples": stored_spec.to_dict(),
            "float_accuracy": float_acc,
            "float_rates": rates,
            "quantization": qres.to_dict(),
            "synaptic_delays": delays,
            "calibration_rates": calib_check,
            "deployment_check": check.to_dict(),
            "resources": mapping.to_dict(),
            "files": {"nir": str(nir_path), "qgraph": str(qpath)},
            "seconds": time.monotonic() - t0,
        }
        qres.graph.metadata["float_accuracy"] = float_acc
        _write_outputs(out, qres.graph, qpath, report, mapping, check)
        return ExportResult(out, nir_path, qpath, report, check)
    except BaseException:  # a failed or interrupted export leaves no empty folder
        if created and out.is_dir() and not any(out.iterdir()):
            out.rmdir()
        raise


def _remove_previous_export(out: Path, stem: str) -> None:
    """Delete a previous export's quantized graph and report before writing the new NIR
    file: an interrupted re-export then leaves no ``.qgraph`` at all rather than an old one
    beside a new ``.nir`` (the ``.qgraph`` is written last, and records its NIR's SHA-256)."""
    for name in (f"{stem}.qgraph", "export.json", "export.md"):
        (out / name).unlink(missing_ok=True)


def _read_source(source: Path, nir_path: Path, dt: float | None, convention: str | None,
                 spec: SampleSpec | None, trust_pickle: bool) -> _Source:
    """Read a ``.nir`` file or a checkpoint as a NIR graph, write it to ``nir_path`` and
    decide dt, the neuron convention and the sample spec (a checkpoint's own dataset)."""
    from snn2hw.nir import read_nir, resolve_timing, to_nir, write_nir

    if source.suffix == ".nir":
        from snn2hw.netx.reader import describe_file, hdf5_kind

        if source.is_file() and hdf5_kind(source) != "nir":
            raise GraphError(f"{source} is {describe_file(source)}, not a NIR graph"
                             + ("; name it .net" if hdf5_kind(source) == "netx" else ""))
        graph = read_nir(source)
        dt_, conv, notes = resolve_timing(graph, dt, convention)
        if spec is None:
            raise DatasetError(
                f"{source}: calibration inputs needed: pass --dataset NAME (with --num-steps) "
                "or --inputs FRAMES.npy"
            )
        write_nir_graph(graph, nir_path)
        return _Source(graph, dt_, conv, spec, list(notes))
    from snn2hw.training.checkpoint import load_checkpoint

    ck = load_checkpoint(source, trust_pickle=trust_pickle)
    model = ck.build_model(str(source)).eval()
    dt_ = float(dt or DEFAULT_DT)
    graph = to_nir(model, dt=dt_)
    write_nir(model, nir_path, dt=dt_)
    dt_, conv, notes = resolve_timing(graph, None, convention)
    return _Source(graph, dt_, conv, spec or _checkpoint_spec(ck, source), list(notes))


def _checkpoint_spec(ck: Any, source: Path) -> SampleSpec:
    """The samples a checkpoint was trained on (dataset, encoder, steps from its config)."""
    from snn2hw.training.config import validate_config

    cfg = validate_config(ck.config or {"model": {"layers": ck.arch["layers"]}}, str(source))
    return SampleSpec(
        dataset=cfg["data"]["dataset"],
        data_dir=cfg["data"]["data_dir"] or None,
        data_options=cfg["data"]["options"],
        split_seed=cfg["experiment"]["seed"],
        val_fraction=float(cfg["data"]["val_fraction"]),  # calibrate on the training part
        encoder=cfg["encoder"]["kind"],
        gain=float(cfg["encoder"]["gain"]),
        threshold=float(cfg["encoder"]["threshold"]),
        num_steps=int(ck.metrics.get("num_steps", cfg["train"]["num_steps"])),
    )


def _calibrate(net: Any, spec: SampleSpec, calib_samples: int) -> tuple[Any, Any, dict]:
    """Input format and float activity on training samples (never test samples)."""
    from snn2hw.pipeline.samples import float_frames

    raw, _ = float_frames(spec, "train", calib_samples)
    x_max = float(spec.gain) if spec.encoder == "direct" and not spec.inputs_file else None
    fmt = infer_input_format(raw, x_max=x_max)
    calib = load_samples(spec, fmt, "train", calib_samples)
    with torch.no_grad():
        _, rec = net(calib.frames, record=True)
    return fmt, calib, dict(rec)


def _quantize(src: _Source, net: Any, neurons: dict, rec: dict, fmt: Any, calib: Any, tgt: Any,
              metadata: dict[str, Any], approximate: tuple[str, ...] = ()) -> Any:
    """PTQ of the float graph for the target, plus the note on graded input spikes."""
    from snn2hw.quant.bounds import limits_from_formats
    from snn2hw.quant.ptq import quantize

    qres = quantize(
        src.graph, neurons, rec, dt=src.dt, target=tgt.name,
        num_steps=int(calib.frames.shape[0]), input_scale=fmt.unit,
        input_message_bits=fmt.message_bits, input_shape=tuple(net.input_shape),
        metadata=metadata, formats=tgt.number_formats,
        chip_limits=limits_from_formats(tgt.raw.get("formats", {})),
        capabilities=tgt.neuron_capabilities(), approximate=approximate,
    )
    if fmt.message_bits > _max_message_bits(tgt):
        qres.notes.append(
            f"input uses {fmt.message_bits}-bit graded spikes (Lava's Dense num_message_bits); "
            f"target '{tgt.name}' hardware sends binary spikes only, so on silicon the input "
            "layer needs a spiking encoder (poisson/latency)"
        )
    return qres


def _quality_warnings(calib_check: dict[str, Any]) -> list[str]:
    """Warnings for layers that fall silent or saturate after quantization."""
    out = []
    for name, row in calib_check.items():
        if row["integer_rate"] == 0.0 and row["float_rate"] > 0.0:
            out.append(f"WARNING '{name}' is silent after quantization on calibration data "
                       f"(float rate {row['float_rate']:.4f}); try `snn2hw finetune`")
        elif row["integer_rate"] >= 0.95 > row["float_rate"]:
            out.append(f"WARNING '{name}' fires at nearly every step after quantization "
                       f"(float rate {row['float_rate']:.4f})")
    return out


def _float_test(net: Any, spec: SampleSpec, fmt: Any, neurons: dict
                ) -> tuple[float | None, dict[str, float]]:
    """Float accuracy and per-layer rates on the test split, for the report."""
    from snn2hw.nir.delays import flush_steps

    test = load_samples(spec, fmt, "test", FLOAT_EVAL_SAMPLES)
    with torch.no_grad():
        fout, frec = net(pad_for_delays(test.frames, flush_steps(net.graph, net.dt)),
                         record=True)
    rates = {k: float(v.float().mean()) for k, v in frec.items() if k in neurons}
    return _float_accuracy(fout, test.labels), rates


def _write_outputs(out: Path, graph: Any, qpath: Path, report: dict[str, Any],
                   mapping: Any, check: DeploymentCheck) -> None:
    from snn2hw.chip.mapping import format_mapping

    graph.save(qpath)
    atomic_write_text(out / "export.json", json.dumps(report, indent=2, default=float))
    atomic_write_text(out / "export.md",
                      _markdown(report, format_mapping(mapping), check.markdown()))


def _max_message_bits(tgt) -> int:
    return int(
        getattr(tgt.formats, "max_message_bits", getattr(tgt.formats, "message_bits", 0)) or 0
    )


def write_nir_graph(graph, path: Path) -> None:
    """Write a NIR graph atomically."""
    import nir

    from snn2hw.common.atomic_io import atomic_path

    with atomic_path(path) as tmp:
        nir.write(str(tmp), graph)


def _input_words(bits: int) -> str:
    return "binary spikes" if bits == 0 else f"{bits}-bit graded spikes"


def _markdown(r: dict[str, Any], mapping_table: str, check_lines: list[str]) -> str:
    lines = [
        f"# Export of `{r['source']}` for {r['target']}",
        "",
        f"- dt: {r['dt']} s; convention: {r['convention']}",
        f"- input: {_input_words(r['input_format']['message_bits'])}",
        f"- float accuracy (test samples): {r['float_accuracy']}",
        "",
        "## Assumptions",
        *([f"- {a}" for a in r["assumptions"]] or ["- none"]),
        "",
        "## Quantization",
        markdown_table(
            ["layer", "type", "shape", "vth", "du", "dv", "weight_exp", "max weight",
             "zero weights", "limited by"],
            [[lr["name"], lr["nir_type"], lr["shape"], lr["vth"], lr["du"], lr["dv"],
              lr["weight_exps"], lr["max_weight"], f"{lr['zero_weight_fraction']:.1%}",
              lr["limited_by"]] for lr in r["quantization"]["layers"]],
        ),
        "",
        *delay_markdown(r["synaptic_delays"]),
        "## Predicted activity (float path)",
        markdown_table(["layer", "spikes/neuron/step"],
                       [[k, f"{v:.4f}"] for k, v in r["float_rates"].items()]),
        "", *check_lines, "## Resources", "```", mapping_table, "```", "",
    ]
    return "\n".join(lines)


def export_onnx(
    source: str | Path,
    out_dir: str | Path,
    *,
    chip_target: str = "loihi",
    **kwargs: Any,
) -> ExportResult:
    """``snn2hw export ... --target onnx``: the quantized graph (for ``chip_target``'s
    integer formats) as a bit-exact integer ONNX step model, plus the float model as ONNX
    for conventional deployment (docs/onnx.md). Also writes everything :func:`export` does."""
    from snn2hw.exporters.onnx_float import export_float_onnx
    from snn2hw.exporters.onnx_int import export_qgraph_onnx
    from snn2hw.pipeline.float_model import float_net_for
    from snn2hw.quant.qgraph import QGraph

    res = export(source, chip_target, out_dir, **kwargs)
    graph = QGraph.load(res.qgraph_path)
    stem = res.qgraph_path.stem
    int_info = export_qgraph_onnx(graph, res.out_dir / f"{stem}.int.onnx")
    net = float_net_for(graph, res.out_dir, res.nir_path)
    example = torch.zeros(graph.num_steps, 1, *net.input_shape)
    float_info = export_float_onnx(net, example, res.out_dir / f"{stem}.float.onnx")
    res.report["onnx"] = {
        "integer_step_model": str(int_info.path), "float_model": str(float_info.path),
        "opset": int_info.opset, "integer_inputs": int_info.inputs,
        "integer_outputs": int_info.outputs, "float_inputs": float_info.inputs,
        "float_outputs": float_info.outputs,
    }
    atomic_write_text(res.out_dir / "export.json", json.dumps(res.report, indent=2, default=float))
    return res


def export_artifact(
    source: str | Path,
    target: str,
    out_dir: str | Path,
    *,
    report: bool = True,
    **kwargs: Any,
) -> ExportResult:
    """``snn2hw export``: :func:`export_onnx` for target ``onnx``, else :func:`export` for a
    chip; then, with ``report``, the deployment report next to the quantized graph.
    ``kwargs`` go to :func:`export` unchanged."""
    if target == "onnx":
        res = export_onnx(source, out_dir, **kwargs)
    else:
        res = export(source, target, out_dir, **kwargs)
    if report:
        from snn2hw.pipeline.report import write_report_for_artifact

        write_report_for_artifact(res.qgraph_path)
    return res
