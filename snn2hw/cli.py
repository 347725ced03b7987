"""The ``snn2hw`` command line (click).

Every command prints a one-line reason and exits non-zero on failure; ``--json`` gives
machine-readable output where scripts consume it.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

from snn2hw.errors import Snn2hwError

DEVICE = click.Choice(["auto", "cpu", "cuda"])


class _Group(click.Group):
    """Turns snn2hw errors into one-line messages with exit code 1."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except Snn2hwError as exc:
            click.echo(f"error: {exc}", err=True)
            sys.exit(1)
        except KeyboardInterrupt:
            click.echo("interrupted; outputs already written are complete (writes are atomic)", err=True)
            sys.exit(130)


def _emit(data: dict[str, Any], as_json: bool, human: str) -> None:
    click.echo(json.dumps(data, indent=2, default=float) if as_json else human)


@click.group(cls=_Group)
@click.version_option(package_name="snn2hw")
def main() -> None:
    """snn2hw: train spiking networks, quantize them for neuromorphic chips, export to NIR,
    simulate bit-accurately and estimate energy.

    \b
    Quick start:
      snn2hw train examples/digits_lif.toml
      snn2hw evaluate runs/digits_lif/best.pt
    """


@main.command()
@click.argument("config", type=click.Path(dir_okay=False))
@click.option("--out", "out_dir", type=click.Path(file_okay=False), help="Run folder (default runs/<name>).")
@click.option("--device", type=DEVICE, default=None, help="Overrides [experiment].device.")
@click.option("--resume", type=click.Path(dir_okay=False), help="Continue from a checkpoint (last.pt).")
@click.option("--epochs", type=int, default=None, help="Overrides [train].epochs.")
@click.option("--data-dir", type=click.Path(file_okay=False), default=None, help="Folder of dataset files.")
@click.option("--json", "as_json", is_flag=True, help="Print the final metrics as JSON.")
@click.option("--quiet", is_flag=True, help="No progress bars.")
def train(config, out_dir, device, resume, epochs, data_dir, as_json, quiet) -> None:
    """Train a spiking network with surrogate-gradient BPTT.

    \b
    Example:
      snn2hw train examples/digits_lif.toml --out runs/digits_lif
    """
    from snn2hw.config import load_config
    from snn2hw.train import train as run_train

    cfg = load_config(config)
    if epochs is not None:
        if epochs < 1:
            raise click.BadParameter("--epochs must be >= 1")
        cfg["train"]["epochs"] = epochs
    if data_dir:
        cfg["data"]["data_dir"] = data_dir
    res = run_train(cfg, out_dir=out_dir, device=device, resume=resume, progress=not quiet)
    data = {
        "checkpoint": str(res.checkpoint),
        "best_checkpoint": str(res.best_checkpoint),
        "test": res.test.to_dict(),
        "epochs": len(res.history),
        "seconds": res.seconds,
    }
    _emit(
        data, as_json,
        f"test accuracy {res.test.accuracy:.4f} ({res.test.num_samples} samples), "
        f"{res.test.spikes_per_sample:.1f} spikes/sample, {res.seconds:.1f} s\n"
        f"checkpoints: {res.checkpoint} (last), {res.best_checkpoint} (best)",
    )


@main.command()
@click.argument("checkpoint", type=click.Path(dir_okay=False))
@click.option("--device", type=DEVICE, default="auto")
@click.option("--samples", type=int, default=None, help="Evaluate on the first N test samples.")
@click.option("--data-dir", type=click.Path(file_okay=False), default=None)
@click.option("--trust-pickle", is_flag=True, help="Allow unpickling (only for files you trust).")
@click.option("--json", "as_json", is_flag=True)
def evaluate(checkpoint, device, samples, data_dir, trust_pickle, as_json) -> None:
    """Accuracy and mean spikes per neuron per step, per layer, on the test split.

    \b
    Example:
      snn2hw evaluate runs/digits_lif/best.pt --json
    """
    from snn2hw.evaluation import evaluate_checkpoint

    res = evaluate_checkpoint(
        checkpoint, device=device, samples=samples, data_dir=data_dir, trust_pickle=trust_pickle
    )
    lines = [f"accuracy {res.accuracy:.4f} on {res.num_samples} test samples"]
    lines += [f"  layer {k}: {v:.4f} spikes/neuron/step" for k, v in res.rates.items()]
    _emit(res.to_dict(), as_json, "\n".join(lines))


@main.command()
@click.option("--out", "out_dir", type=click.Path(file_okay=False), default="build/demo")
@click.option("--device", type=DEVICE, default="auto")
def demo(out_dir, device) -> None:
    """Run the main job end to end on the embedded digits data.

    \b
    Example:
      snn2hw demo --out build/demo
    """
    from snn2hw.demo import run_demo

    run_demo(Path(out_dir), device=device)


if __name__ == "__main__":  # pragma: no cover
    main()
