"""Run setup shared by training, evaluation and QAT: device, seeding, dataset, encoder.

Holds :func:`resolve_device`, :func:`seed_everything`, :func:`make_encoder`,
:func:`load_config_dataset` and :func:`config_num_steps` — the small steps every entry point
(``train``, ``evaluate_checkpoint``, ``finetune``) takes in the same way.

May import: ``snn2hw.nn``, ``snn2hw.data``, ``snn2hw.common``. Nothing else in snn2hw.
"""

from __future__ import annotations

import random
from typing import Any

import numpy as np
import torch

from snn2hw.common.errors import ConfigError
from snn2hw.nn.encoders import Encoder


def resolve_device(name: str) -> torch.device:
    """``auto`` -> CUDA when available, else CPU; ``cuda`` without a GPU is an error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError("device 'cuda' requested but no CUDA GPU is available; use --device cpu")
    return torch.device(name)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def make_encoder(cfg: dict[str, Any], temporal: bool) -> Encoder:
    """The config's input encoder; temporal (event) datasets always use ``events``."""
    e = cfg["encoder"]
    kind = "events" if temporal else e["kind"]
    return Encoder(kind, float(e["gain"]), float(e["threshold"]))


def load_config_dataset(cfg: dict[str, Any], data_dir: str | None = None):
    """The dataset of a validated config, split with the experiment seed: train (the
    training part), val (``[data].val_fraction`` of the training data, or the data set's
    official validation split) and test."""
    from snn2hw.data import load_dataset

    return load_dataset(
        cfg["data"]["dataset"],
        data_dir or cfg["data"]["data_dir"] or None,
        seed=cfg["experiment"]["seed"],
        val_fraction=float(cfg["data"]["val_fraction"]),
        **cfg["data"]["options"],
    )


def config_validation(cfg: dict[str, Any], ds):
    """``ds`` with the config's validation split (a no-op when it already has one)."""
    return ds.with_validation(float(cfg["data"]["val_fraction"]), int(cfg["experiment"]["seed"]))


def config_num_steps(cfg: dict[str, Any], ds) -> int:
    """Time steps per sample: the recording length for temporal data, else ``[train].num_steps``."""
    return ds.x_train.shape[1] if ds.temporal else int(cfg["train"]["num_steps"])
