"""Evaluation of a :class:`~snn2hw.nn.model.SpikingNet` on one split: accuracy (the output
decision of :mod:`snn2hw.common.readout`), spikes per sample, per-layer firing rates and an
optional loss. :func:`evaluate` works on arrays; :func:`evaluate_checkpoint` rebuilds model
and data from a checkpoint (``snn2hw evaluate``: the test split by default, ``--split val``
for validation). Every :class:`EvalResult` names its split.

How much an accuracy on n samples can be trusted: one sample is worth ``1/n``
(:func:`sample_worth`), the binomial standard error is ``sqrt(p (1 - p) / n)``
(:func:`binomial_se`), and two accuracies on the same n samples that differ by fewer than two
samples are reported as not distinguishable (:func:`distinguishable`).

May import: ``snn2hw.nn``, ``snn2hw.data``, ``snn2hw.common``, other ``snn2hw.training``
modules. Never a backend, ``pipeline`` or ``cli``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from snn2hw.common.errors import ConfigError
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

#: Added to the experiment seed for the encoder of every float evaluation (val and test),
#: so training, ``snn2hw evaluate`` and QAT encode the same samples identically.
EVAL_SEED_OFFSET = 3


def eval_seed(cfg: dict[str, Any]) -> int:
    return int(cfg["experiment"]["seed"]) + EVAL_SEED_OFFSET


def sample_worth(n: int) -> float:
    """What one sample is worth in accuracy on ``n`` samples (``1/n``)."""
    return 1.0 / n if n else float("nan")


def binomial_se(p: float, n: int) -> float:
    """Binomial standard error ``sqrt(p (1 - p) / n)`` of an accuracy ``p`` on ``n`` samples."""
    return float(np.sqrt(p * (1.0 - p) / n)) if n else float("nan")


def distinguishable(a: float, b: float, n: int, min_samples: int = 2) -> bool:
    """Whether accuracies ``a`` and ``b`` on the same ``n`` samples differ by at least
    ``min_samples`` samples (fewer: "not distinguishable")."""
    return round(abs(a - b) * n) >= min_samples


@dataclass
class EvalResult:
    accuracy: float
    num_samples: int
    spikes_per_sample: float
    rates: dict[str, float] = field(default_factory=dict)  # mean spikes / neuron / step
    loss: float = float("nan")
    split: str = "test"  # which split the numbers come from: "val" or "test" (or "train")
    # per key of ``rates``: the layer as the config and the NIR export name it
    # ("layers.3", the neuron kind and its size), so users can find it
    layers: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "split": self.split,
            "accuracy": self.accuracy,
            "num_samples": self.num_samples,
            "sample_worth": sample_worth(self.num_samples),
            "binomial_se": binomial_se(self.accuracy, self.num_samples),
            "spikes_per_sample": self.spikes_per_sample,
            "rates": self.rates,
            "layers": self.layers,
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
    split: str = "test",
) -> EvalResult:
    """Accuracy (argmax of output spike counts) and per-layer firing rates of ``x, y``;
    ``split`` only labels the result (say which split ``x, y`` are)."""
    model.eval()
    device = torch.device(device)
    gen = torch.Generator().manual_seed(seed)
    preds: list[np.ndarray] = []
    total, spikes, loss_sum = 0, 0.0, 0.0
    rate_sum: dict[str, float] = {}
    sizes: dict[str, int] = {}
    for i in range(0, len(x), batch_size):
        xb = torch.from_numpy(x[i : i + batch_size]).to(device)
        yb = torch.from_numpy(y[i : i + batch_size]).to(device)
        out, rec = model(encode_batch(encoder, xb, num_steps, gen), record=True)
        preds.append(classify(out).cpu().numpy())
        total += len(yb)
        for name, s in rec.items():
            sizes[name] = int(np.prod(s.shape[2:]))
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
        split=split,
        layers=layer_labels(model, sizes),
    )


def layer_labels(model: SpikingNet, sizes: dict[str, int]) -> dict[str, str]:
    """A readable label for each neuron layer ``model(record=True)`` reports (by its key):
    its path in the model (the ``snn2hw_layer`` the NIR export records), neuron kind and
    number of neurons (``sizes``)."""
    kinds = {name: layer.describe()["kind"] for name, layer in model.layers.named_children()
             if name in sizes}
    return {k: f"layers.{k} ({kinds.get(k, 'neuron')}, {n} neurons)" for k, n in sizes.items()}


def evaluate_checkpoint(
    path: str | Path,
    *,
    device: str = "auto",
    samples: int | None = None,
    data_dir: str | None = None,
    trust_pickle: bool = False,
    split: str = "test",
) -> EvalResult:
    """Load ``path`` safely, rebuild its model and data pipeline, report the metrics of
    ``split``: ``"test"`` (default) or ``"val"`` (the validation split training selected
    on, carved with the checkpoint's own config and seed)."""
    if split not in ("val", "test"):
        raise ConfigError(f"split must be 'val' or 'test', got {split!r}")
    ck = load_checkpoint(path, trust_pickle=trust_pickle)
    cfg = validate_config(ck.config or {"model": {"layers": ck.arch["layers"]}}, str(path))
    model = ck.build_model(str(path))
    dev = resolve_device(device)
    model.to(dev)
    ds = load_config_dataset(cfg, data_dir)
    x, y = ds.split(split)
    if samples is not None:
        x, y = x[:samples], y[:samples]
    return evaluate(
        model,
        x,
        y,
        encoder=make_encoder(cfg, ds.temporal),
        num_steps=config_num_steps(cfg, ds),
        device=dev,
        seed=eval_seed(cfg),
        split=split,
    )
