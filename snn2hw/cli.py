"""The ``snn2hw`` command line (click): the entry point only.

Each command parses its options, calls one pipeline function (artifact resolution, sample
specs and output text live in :mod:`snn2hw.pipeline`) and prints the result.

Every command prints a one-line reason and exits non-zero on failure; ``--json`` gives
machine-readable output where scripts consume it.
"""

from __future__ import annotations

import json
import math
import os
import signal
import sys
from pathlib import Path
from typing import Any

import click

from snn2hw.backends import registry as backend_registry
from snn2hw.common.errors import Snn2hwError
from snn2hw.pipeline.deviation import DEFAULT_MAX_ACCURACY_DROP_PP, DEFAULT_MAX_SPIKE_CHANGE

DEVICE = click.Choice(["auto", "cpu", "cuda"])
POSITIVE = click.IntRange(min=1)  # counts (samples, epochs, steps): 0 or less is a mistake


def _terminate(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


class _Group(click.Group):
    """Turns snn2hw errors into one-line messages with exit code 1."""

    def invoke(self, ctx: click.Context) -> Any:
        # SIGTERM ends a run like Ctrl-C: cleanup code runs, so no temporary file is left.
        signal.signal(signal.SIGTERM, _terminate)
        try:
            return super().invoke(ctx)
        except Snn2hwError as exc:
            click.echo(f"error: {exc}", err=True)
            sys.exit(1)
        except KeyboardInterrupt:
            click.echo(
                "interrupted; outputs already written are complete (writes are atomic)", err=True
            )
            sys.exit(130)


REPORT_OPTION = click.option(
    "--report/--no-report", default=True, show_default=True,
    help="Also write report/ (HTML + Markdown with plots).",
)


WORKERS_OPTION = click.option(
    "--workers", type=POSITIVE, default=1, show_default=True,
    help="Split the samples across N local processes (torch.distributed, gloo); under "
    "torchrun leave it at 1: every rank torchrun starts is a worker.",
)


def artifact_out_option(help_text: str):
    """``-o/--out`` folder that defaults to the artifact's own folder."""
    return click.option("-o", "--out", "out_dir", type=click.Path(file_okay=False),
                        default=None, help=help_text)


def _json_safe(value: Any) -> Any:
    """NaN/Inf become null: JSON has no NaN, and scripts reading --json must parse it."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    return value


def _emit(data: dict[str, Any], as_json: bool, human: str) -> None:
    if as_json:
        text = json.dumps(data, default=float)  # numpy scalars -> float, then NaN -> null
        click.echo(json.dumps(_json_safe(json.loads(text)), indent=2, allow_nan=False))
    else:
        click.echo(human)


@click.group(cls=_Group)
@click.version_option(package_name="snn2hw")
@click.option("--targets-dir", "targets_dirs", multiple=True,
              type=click.Path(file_okay=False, exists=True),
              help="A folder of user target files (*.toml), searched before the bundled "
                   "ones; repeatable. Same as $SNN2HW_TARGETS_DIR.")
@click.option("--threads", type=click.IntRange(min=1), default=None,
              help="CPU threads for torch, numba and the event simulator's batch split "
                   "(default: the cores this process may use).")
def main(targets_dirs: tuple[str, ...] = (), threads: int | None = None) -> None:
    """snn2hw: train spiking networks, quantize them for neuromorphic chips, export to NIR,
    simulate bit-accurately and estimate energy.

    \b
    Quick start:
      snn2hw train digits_lif
      snn2hw evaluate runs/digits_lif/best.pt
    """
    from snn2hw.common.threads import configure_threads

    configure_threads(threads)  # deliberate: the cores we may use, not torch's guess
    if targets_dirs:  # ahead of the environment's folders; child processes inherit it
        from snn2hw.chip.targets.files import TARGETS_ENV

        old = [p for p in os.environ.get(TARGETS_ENV, "").split(os.pathsep) if p]
        os.environ[TARGETS_ENV] = os.pathsep.join([*targets_dirs, *old])


@main.command()
@click.argument("config")
@click.option(
    "--out", "out_dir", type=click.Path(file_okay=False), help="Run folder (default runs/<name>)."
)
@click.option("--device", type=DEVICE, default=None, help="Overrides [experiment].device.")
@click.option(
    "--resume", type=click.Path(dir_okay=False), help="Continue from a checkpoint (last.pt)."
)
@click.option("--epochs", type=POSITIVE, default=None, help="Overrides [train].epochs.")
@click.option(
    "--data-dir", type=click.Path(file_okay=False), default=None, help="Folder of dataset files."
)
@click.option("--json", "as_json", is_flag=True, help="Print the final metrics as JSON.")
@click.option("--quiet", is_flag=True, help="No progress bars.")
def train(config, out_dir, device, resume, epochs, data_dir, as_json, quiet) -> None:
    """Train a spiking network with surrogate-gradient BPTT.

    CONFIG is a TOML file or the name of a bundled example config (digits_lif,
    digits_conv, digits_srm, digits_spikeseq, digits_resnet, mnist5k_lif, mnist5k_conv).
    Under torchrun it trains data parallel (DistributedDataParallel; [data].batch_size is
    the global batch).

    \b
    Examples:
      snn2hw train digits_lif --out runs/digits_lif
      torchrun --nproc-per-node 2 -m snn2hw.cli train mnist5k_lif --out runs/mnist5k
    """
    from snn2hw.common.distributed import env_world
    from snn2hw.common.examples import resolve_config
    from snn2hw.training.config import load_config
    from snn2hw.training.train import train as run_train

    cfg = load_config(resolve_config(config))
    if epochs is not None:
        cfg["train"]["epochs"] = epochs
    if data_dir:
        cfg["data"]["data_dir"] = data_dir
    res = run_train(cfg, out_dir=out_dir, device=device, resume=resume, progress=not quiet)
    if not env_world().is_main:  # under torchrun rank 0 alone prints (every rank has res)
        return
    data = {
        "checkpoint": str(res.checkpoint),
        "best_checkpoint": str(res.best_checkpoint),
        "best_epoch": res.best_epoch,
        "val": res.val.to_dict() if res.val else None,
        "test": res.test.to_dict(),
        "epochs": len(res.history),
        "seconds": res.seconds,
    }
    _emit(
        data,
        as_json,
        f"best.pt: epoch {res.best_epoch}, chosen by validation accuracy "
        f"{res.val.accuracy if res.val else float('nan'):.4f}\n"
        f"test accuracy {res.test.accuracy:.4f} ({res.test.num_samples} test samples, "
        f"measured once for best.pt), {res.test.spikes_per_sample:.1f} spikes/sample, "
        f"{res.seconds:.1f} s\n"
        f"checkpoints: {res.checkpoint} (last), {res.best_checkpoint} (best)",
    )


@main.command()
@click.argument("checkpoint", type=click.Path(dir_okay=False))
@click.option("--device", type=DEVICE, default="auto")
@click.option("--samples", type=POSITIVE, default=None, help="Evaluate on the first N samples.")
@click.option("--split", type=click.Choice(["test", "val"]), default="test", show_default=True,
              help="test, or val: the validation split training selected best.pt on.")
@click.option("--data-dir", type=click.Path(file_okay=False), default=None)
@click.option("--trust-pickle", is_flag=True, help="Allow unpickling (only for files you trust).")
@click.option("--json", "as_json", is_flag=True)
def evaluate(checkpoint, device, samples, split, data_dir, trust_pickle, as_json) -> None:
    """Accuracy and mean spikes per neuron per step, per layer, on the test split
    (--split val: the validation split).

    \b
    Example:
      snn2hw evaluate runs/digits_lif/best.pt --json
    """
    from snn2hw.training.evaluation import evaluate_checkpoint

    res = evaluate_checkpoint(
        checkpoint, device=device, samples=samples, data_dir=data_dir, trust_pickle=trust_pickle,
        split=split,
    )
    lines = [f"accuracy {res.accuracy:.4f} on {res.num_samples} {split} samples "
             f"(one sample = {100 / max(res.num_samples, 1):.2f} pp)"]
    lines += [f"  {res.layers.get(k, f'layer {k}')}: {v:.4f} spikes/neuron/step"
              for k, v in res.rates.items()]
    _emit(res.to_dict(), as_json, "\n".join(lines))


@main.command()
@click.argument("source", type=click.Path(dir_okay=False))
@click.option(
    "--target", default="loihi", show_default=True,
    help="Target chip (see `snn2hw targets`), or 'onnx' for integer + float ONNX models.",
)
@click.option(
    "-o", "--out", "out_dir", type=click.Path(file_okay=False), default="build", show_default=True
)
@click.option("--dt", type=click.FloatRange(min=0, min_open=True), default=None,
              help="Seconds per step (NIR files store none).")
@click.option(
    "--convention",
    default=None,
    help="How to read a foreign NIR file: snntorch, norse, spikingjelly, sinabs, rockpool, "
         "nir; options after a colon, e.g. snntorch:reset=zero,reset_delay=false "
         "(docs/nir.md \"Framework conventions\").",
)
@click.option(
    "--approximate",
    type=click.Choice(["reset", "threshold", "spikes"]),
    multiple=True,
    help="Accept the target's reset / spike comparison / one spike per step where the "
         "source's neurons differ (otherwise refused, naming the node). Repeatable.",
)
@click.option(
    "--reset",
    type=click.Choice(["hard", "subtract"]),
    default=None,
    help="Override the reset the source was trained with.",
)
@click.option(
    "--dataset", default=None, help="Calibration/test data for a NIR file (snn2hw datasets)."
)
@click.option(
    "--inputs",
    "inputs_file",
    type=click.Path(dir_okay=False),
    default=None,
    help="Input frames [T, B, ...] (.npy) for a NIR or netx file.",
)
@click.option(
    "--labels",
    "labels_file",
    type=click.Path(dir_okay=False),
    default=None,
    help="Labels (.npy) for --inputs.",
)
@click.option("--encoder", default="direct", show_default=True, help="Encoder for --dataset.")
@click.option(
    "--num-steps", type=POSITIVE, default=16, show_default=True, help="Time steps for --dataset."
)
@click.option("--calib-samples", type=POSITIVE, default=128, show_default=True)
@click.option("--trust-pickle", is_flag=True, help="Allow unpickling (only for files you trust).")
@click.option("--max-spike-change", type=click.FloatRange(min=0),
              default=100 * DEFAULT_MAX_SPIKE_CHANGE,
              show_default=True, help="Deployment check: largest change (%) of an output "
              "layer's spike count, integer vs float, on the calibration samples.")
@click.option("--max-accuracy-drop", type=click.FloatRange(min=0),
              default=DEFAULT_MAX_ACCURACY_DROP_PP,
              show_default=True, help="Deployment check: largest accuracy drop (percentage "
              "points), integer vs float, on the calibration samples (needs labels).")
@click.option("--accept-deviation", is_flag=True,
              help="Exit 0 although the deployment check fails; export.md records it.")
@click.option("--netx-reset-interval", type=POSITIVE, default=None,
              help="netx source: reset u and v of every layer each N steps, as lava-dl netx's "
                   "Network(reset_interval=N) (docs/netx.md).")
@click.option("--netx-reset-offset", type=click.IntRange(min=0), default=0, show_default=True,
              help="netx source: the reset phase, netx's reset_offset (layer i one step later).")
@REPORT_OPTION
@click.option("--json", "as_json", is_flag=True)
def export(
    source,
    target,
    out_dir,
    dt,
    convention,
    approximate,
    reset,
    dataset,
    inputs_file,
    labels_file,
    encoder,
    num_steps,
    calib_samples,
    trust_pickle,
    max_spike_change,
    max_accuracy_drop,
    accept_deviation,
    netx_reset_interval,
    netx_reset_offset,
    report,
    as_json,
) -> None:
    """Export a checkpoint, a NIR file or a lava-dl netx network (.net) for a target: NIR +
    quantized graph + report (a .net keeps its chip integers; docs/netx.md).

    Every export runs the float path and torch-int on the calibration samples and reports
    per layer what deployment changes (export.md, "Deployment check"). Exits with code 2,
    after writing every file, when an output layer's spike count changes by more than
    --max-spike-change or the accuracy drops by more than --max-accuracy-drop, unless
    --accept-deviation (docs/deployment-check.md).

    \b
    Examples:
      snn2hw export runs/digits_lif/best.pt --target loihi -o build/
      snn2hw export net.nir --convention snntorch --inputs x.npy --target loihi
      snn2hw export model.net --inputs frames.npy --labels y.npy --target loihi
      snn2hw export tiny.net --inputs frames.npy --netx-reset-interval 17
      snn2hw export runs/digits_lif/best.pt --target onnx -o build/onnx/
    """
    from snn2hw.pipeline.deviation import DeviationLimits
    from snn2hw.pipeline.export import export_artifact
    from snn2hw.pipeline.samples import spec_from_options

    if netx_reset_interval is None and netx_reset_offset:
        from snn2hw.common.errors import ConfigError

        raise ConfigError(f"{source}: --netx-reset-offset needs --netx-reset-interval")
    extra = ({} if netx_reset_interval is None
             else {"netx_reset": (netx_reset_interval, netx_reset_offset)})
    res = export_artifact(
        source, target, out_dir, report=report, dt=dt, convention=convention, reset=reset,
        spec=spec_from_options(dataset, inputs_file, labels_file, encoder, num_steps),
        calib_samples=calib_samples, trust_pickle=trust_pickle, approximate=tuple(approximate),
        limits=DeviationLimits(max_spike_change / 100.0, max_accuracy_drop),
        accept_deviation=accept_deviation, **extra,
    )
    _emit(res.report, as_json, res.describe())
    if res.check is not None and not res.check.passed:
        click.echo(("warning: " if accept_deviation else "error: ") + res.check.error(),
                   err=True)
        if not accept_deviation:
            sys.exit(2)


@main.command()
@click.argument("checkpoint", type=click.Path(dir_okay=False))
@click.option("--target", default="loihi", show_default=True)
@click.option(
    "-o",
    "--out",
    "out_path",
    type=click.Path(dir_okay=False),
    required=True,
    help="Where to write the fine-tuned checkpoint.",
)
@click.option("--epochs", type=POSITIVE, default=5, show_default=True)
@click.option("--lr", type=click.FloatRange(min=0, min_open=True), default=None,
              help="Default: 0.2 x the training lr.")
@click.option("--device", type=DEVICE, default="auto")
@click.option("--trust-pickle", is_flag=True, help="Allow unpickling (only for files you trust).")
@click.option("--hop-delays", is_flag=True,
              help="Fine-tune with the chip's one-step hop per layer (for targets without "
                   "synaptic delays); the result keeps that timing.")
@click.option("--json", "as_json", is_flag=True)
@click.option("--quiet", is_flag=True)
def finetune(checkpoint, target, out_path, epochs, lr, device, trust_pickle, hop_delays, as_json,
             quiet) -> None:
    """Quantization-aware fine-tuning toward the target's integer arithmetic.

    Reports float, PTQ and QAT accuracy (torch integer mode on the exported graph).

    \b
    Example:
      snn2hw finetune runs/digits_conv/best.pt --target loihi -o runs/digits_conv/qat.pt
    """
    from snn2hw.pipeline.finetune import finetune as run_finetune

    res = run_finetune(
        checkpoint, target, out_path, epochs=epochs, lr=lr, device=device, progress=not quiet,
        trust_pickle=trust_pickle, hop_delays=hop_delays,
    )
    _emit(
        res.to_dict(),
        as_json,
        f"float {res.float_accuracy:.4f} | PTQ {res.ptq_accuracy:.4f} | QAT {res.qat_accuracy:.4f}"
        f" (integer accuracy on {target}; all of {checkpoint} on the same {res.test_samples} "
        f"test samples, one sample = {100 / max(res.test_samples, 1):.2f} pp); "
        f"wrote {res.checkpoint}",
    )


@main.command()
@click.argument("qgraph", type=click.Path(dir_okay=False))
@click.option(
    "--backend",
    type=click.Choice(backend_registry.names()),
    default="event",
    show_default=True,
)
@click.option("--samples", type=POSITIVE, default=100, show_default=True)
@click.option("--device", type=DEVICE, default="auto", help="torch-int only.")
@click.option("--inputs", "inputs_file", type=click.Path(dir_okay=False), default=None,
              help="Integer input frames [T, B, ...] (.npy) instead of the exported samples; "
              "every frame runs, plus the graph's hop depth.")
@click.option("--clip-inputs", is_flag=True,
              help="Clip out-of-range --inputs values instead of refusing them.")
@WORKERS_OPTION
@click.option("--json", "as_json", is_flag=True)
def simulate(qgraph, backend, samples, device, inputs_file, clip_inputs, workers,
             as_json) -> None:
    """Run a quantized graph on one integer backend: accuracy, spikes and SynOps per layer.

    \b
    Examples:
      snn2hw simulate build/best.qgraph --backend event --samples 200
      snn2hw simulate build/best.qgraph --backend lava --samples 1000 --workers 4
    """
    from snn2hw.pipeline.sharding import session
    from snn2hw.pipeline.simulate import simulate_artifact

    with session(workers) as driver:
        if not driver:  # a torchrun rank > 0: it ran its shards for rank 0
            return
        res = simulate_artifact(qgraph, backend, samples, device=device,
                                inputs_file=inputs_file, clip_inputs=clip_inputs)
        _emit(res.to_dict(), as_json, res.describe())


@main.command()
@click.argument("artifact", type=click.Path())
@click.option(
    "--backends",
    default="torch-int,event,lava",
    show_default=True,
    help=f"Comma-separated: float, {', '.join(backend_registry.names())} "
    "(the first integer one is the reference).",
)
@click.option("--samples", type=POSITIVE, default=50, show_default=True)
@click.option("--device", type=DEVICE, default="auto", help="Device of the torch paths.")
@artifact_out_option("Folder for compare.json/.md and the raster PNG (default: the artifact's).")
@REPORT_OPTION
@click.option("--energy", "energy_target", default=None,
              help="Add energy per inference: modelled for this target, measured (NVML) on GPU.")
@WORKERS_OPTION
@click.option("--json", "as_json", is_flag=True)
def compare(artifact, backends, samples, device, out_dir, report, energy_target, workers,
            as_json) -> None:
    """Run the same inputs through several backends and compare spike for spike.

    Per layer: each backend's spikes and their overlap with the reference (matched /
    union; n/a when both are silent), and a warning for a layer silent on every sample.
    Exits with code 2 when the integer backends disagree anywhere.

    \b
    Examples:
      snn2hw compare build/best.qgraph --backends float,torch-int,event,lava --samples 50
      snn2hw compare build/best.qgraph --backends torch-int,lava --samples 1000 --workers 4
    """
    from snn2hw.pipeline.compare import compare_artifact
    from snn2hw.pipeline.sharding import session

    names = [b.strip() for b in backends.split(",") if b.strip()]
    with session(workers) as driver:
        if not driver:  # a torchrun rank > 0: it ran its shards for rank 0
            return
        res = compare_artifact(artifact, names, samples, device=device, out_dir=out_dir,
                               report=report, energy_target=energy_target)
        _emit(res.to_dict(), as_json, res.describe())
    if not res.integer_equal:
        sys.exit(2)


@main.command()
@click.argument("artifact", type=click.Path())
@click.option(
    "--target",
    "targets_",
    multiple=True,
    default=("loihi",),
    show_default=True,
    help="Target(s); repeat for several (e.g. --target loihi --target loihi2).",
)
@click.option("--samples", type=POSITIVE, default=100, show_default=True)
@click.option(
    "--measure",
    is_flag=True,
    help="Also time the torch paths (and GPU power via NVML when available).",
)
@click.option("--device", type=DEVICE, default="auto", help="Device for --measure.")
@artifact_out_option("Where to write energy.json/.md (default: next to the artifact).")
@WORKERS_OPTION
@click.option("--json", "as_json", is_flag=True)
def energy(artifact, targets_, samples, measure, device, out_dir, workers, as_json) -> None:
    """Energy and latency per inference from measured activity (event simulator) and the
    target's constants, with sources, plus ANN/GPU baselines.

    \b
    Example:
      snn2hw energy build/best.qgraph --target loihi --target loihi2
    """
    from snn2hw.pipeline.energy import energy_for_artifact
    from snn2hw.pipeline.sharding import session

    with session(workers) as driver:  # the event run's activity, summed over the ranks
        if not driver:
            return
        reports = energy_for_artifact(artifact, targets_, samples=samples, measure=measure,
                                      device=device, out_dir=out_dir)
        data = [r.to_dict() for r in reports]
        _emit({"reports": data}, as_json, "\n\n".join(r.markdown() for r in reports))


@main.command()
@click.argument("artifact", type=click.Path())
@artifact_out_option("Folder for report/ (default: next to the artifact); a folder named "
                     "report is used as it is.")
@click.option("--target", "targets_", multiple=True, default=("loihi", "loihi2"), show_default=True)
@click.option("--samples", type=POSITIVE, default=50, show_default=True)
def report(artifact, out_dir, targets_, samples) -> None:
    """Write an HTML + Markdown report with plots (rasters, rates, SynOps, energy, accuracy,
    comparison table, resources) for an exported artifact.

    \b
    Example:
      snn2hw report build/ -o build/
    """
    from snn2hw.pipeline.report import write_report_for_artifact

    path = write_report_for_artifact(
        artifact,
        Path(out_dir) if out_dir else None,
        targets=list(targets_),
        samples=samples,
    )
    click.echo(f"wrote {path}")


@main.group(invoke_without_command=True)
@click.pass_context
def targets(ctx) -> None:
    """List target chips, or `targets show NAME` for one (constants with sources)."""
    if ctx.invoked_subcommand is None:
        from snn2hw.chip.targets import list_targets, load_target

        for name in list_targets():
            click.echo(f"{name}: {load_target(name).description}")


@targets.command("show")
@click.argument("name")
def targets_show(name) -> None:
    """Print one target: formats, resources, energy constants and their sources."""
    from snn2hw.chip.targets import format_target, load_target

    click.echo(format_target(load_target(name)))


@main.command()
@click.option("--out", "out_dir", type=click.Path(file_okay=False), default="build/demo")
@click.option("--device", type=DEVICE, default="auto")
def demo(out_dir, device) -> None:
    """Run the main job end to end on the embedded digits data.

    \b
    Example:
      snn2hw demo --out build/demo
    """
    from snn2hw.pipeline.demo import run_demo

    run_demo(Path(out_dir), device=device)


@main.command("install-lava")
@click.option("--dry-run", is_flag=True, help="Print the pip commands instead of running them.")
def install_lava(dry_run) -> None:
    """Install lava-nc 0.10.0 into this Python (it declares python<3.11, so plain pip and
    the snn2hw[lava] extra cannot; docs/lava.md "Version and installation").

    \b
    Example:
      snn2hw install-lava
    """
    import shlex
    import subprocess

    from snn2hw.compat.lava_install import install_commands

    for cmd in install_commands():
        click.echo(shlex.join(cmd))
        if not dry_run and subprocess.run(cmd).returncode != 0:
            raise Snn2hwError(f"`{shlex.join(cmd)}` failed; see pip's message above")


if __name__ == "__main__":  # pragma: no cover
    main()
