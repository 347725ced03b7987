"""``snn2hw demo`` / ``make demo``: the main job end to end on the embedded digits data."""

from __future__ import annotations

import json
import time
from pathlib import Path

import click

from snn2hw.config import load_config
from snn2hw.io_utils import atomic_write_text
from snn2hw.train import train

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def run_demo(out: Path, device: str = "auto") -> dict:
    """Train the digits LIF MLP and evaluate it; returns the summary it writes."""
    t0 = time.monotonic()
    cfg = load_config(EXAMPLES / "digits_lif.toml")
    click.echo("[1/1] training the digits LIF MLP (examples/digits_lif.toml)")
    res = train(cfg, out_dir=out / "train", device=device)
    summary = {
        "checkpoint": str(res.best_checkpoint),
        "float_test_accuracy": res.test.accuracy,
        "spikes_per_sample": res.test.spikes_per_sample,
        "rates": res.test.rates,
        "train_seconds": res.seconds,
        "total_seconds": time.monotonic() - t0,
    }
    atomic_write_text(out / "summary.json", json.dumps(summary, indent=2))
    click.echo(
        f"float test accuracy {res.test.accuracy:.4f}; {res.test.spikes_per_sample:.1f} "
        f"spikes/sample; summary in {out / 'summary.json'}"
    )
    return summary
