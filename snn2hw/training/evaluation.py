"""Evaluation of a :class:`~snn2hw.nn.model.SpikingNet` on a test split: accuracy (the output
decision of :mod:`snn2hw.common.readout`), spikes per sample, per-layer firing rates and an
optional loss. :func:`evaluate` works on arrays; :func:`evaluate_checkpoint` rebuilds model
and data from a checkpoint (``snn2hw evaluate``).

May import: ``snn2hw.nn``, ``snn2hw.data``, ``snn2hw.common``, other ``snn2hw.training``
modules. Never a backend, ``pipeline`` or ``cli``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from snn2hw.common.readout import accuracy, classify
from snn2hw.nn.encoders import Encoder
from snn2hw.nn.losses import spike_loss
from snn2hw.nn.model import SpikingNet
from snn2hw.training.checkpoint import load_checkpoint
from snn2hw.training.config import validate_config
from snn2hw.training.loop import encode_batch
from snn2hw.training.runtime import (
    config_num_steps,
    load_config_dataset,
    make_encoder,
    resolve_device,
)


@dataclass
class EvalResult:
    accuracy: float
    num_samples: int
    spikes_per_sample: float
    rates: dict[str, float] = field(default_factory=dict)  # mean spikes / neuron / step
    loss: float = float("nan")

    def to_dict(self) -> dict[str, Any]:
        return {
            "accuracy": self.accuracy,
            "num_samples": self.num_samples,
            "spikes_per_sample": self.spikes_per_sample,
            "rates": self.rates,
            "loss": self.loss,
        }


@torch.no_grad()
def evaluate(
    model: SpikingNet,
    x: np.ndarray,
    y: np.ndarray,
    *,
    encoder: Encoder,
    num_steps: int,
    batch_size: int = 256,
    device: torch.device | str = "cpu",
    seed: int = 1234,
    loss_kind: str | None = None,
    loss_options: dict[str, Any] | None = None,
) -> EvalResult:
    """Accuracy (argmax of output spike counts) and per-layer firing rates."""
    model.eval()
    device = torch.device(device)
    gen = torch.Generator().manual_seed(seed)
    preds: list[np.ndarray] = []
    total, spikes, loss_sum = 0, 0.0, 0.0
    rate_sum: dict[str, float] = {}
    for i in range(0, len(x), batch_size):
        xb = torch.from_numpy(x[i : i + batch_size]).to(device)
        yb = torch.from_numpy(y[i : i + batch_size]).to(device)
        out, rec = model(encode_batch(encoder, xb, num_steps, gen), record=True)
        preds.append(classify(out).cpu().numpy())
        total += len(yb)
        for name, s in rec.items():
            rate_sum[name] = rate_sum.get(name, 0.0) + float(s.mean()) * len(yb)
            spikes += float(s.sum())
        if loss_kind:
            loss_sum += float(spike_loss(loss_kind, out, yb, **(loss_options or {}))) * len(yb)
    n = max(total, 1)
    return EvalResult(
        accuracy=accuracy(np.concatenate(preds) if preds else np.zeros(0), y[:total]),
        num_samples=total,
        spikes_per_sample=spikes / n,
        rates={k: v / n for k, v in rate_sum.items()},
        loss=loss_sum / n if loss_kind else float("nan"),
    )


def evaluate_checkpoint(
    path: str | Path,
    *,
    device: str = "auto",
    samples: int | None = None,
    data_dir: str | None = None,
    trust_pickle: bool = False,
) -> EvalResult:
    """Load ``path`` safely, rebuild its model and data pipeline, report test metrics."""
    ck = load_checkpoint(path, trust_pickle=trust_pickle)
    cfg = validate_config(ck.config or {"model": {"layers": ck.arch["layers"]}}, str(path))
    model = ck.build_model(str(path))
    dev = resolve_device(device)
    model.to(dev)
    ds = load_config_dataset(cfg, data_dir)
    x, y = ds.x_test, ds.y_test
    if samples is not None:
        x, y = x[:samples], y[:samples]
    return evaluate(
        model,
        x,
        y,
        encoder=make_encoder(cfg, ds.temporal),
        num_steps=config_num_steps(cfg, ds),
        device=dev,
        seed=cfg["experiment"]["seed"] + 3,
    )
