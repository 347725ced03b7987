"""Run setup shared by training, evaluation and QAT: device, seeding, dataset, encoder.

Holds :func:`resolve_device`, :func:`seed_everything`, :func:`make_encoder`,
:func:`load_config_dataset` and :func:`config_num_steps` — the small steps every entry point
(``train``, ``evaluate_checkpoint``, ``finetune``) takes in the same way — plus
:func:`rng_state` / :func:`set_rng_state` (bit-identical ``--resume``) and
:func:`check_output_path` (refuse an unwritable output before training).

May import: ``snn2hw.nn``, ``snn2hw.data``, ``snn2hw.common``. Nothing else in snn2hw.
"""

from __future__ import annotations

import os
import random
from pathlib import Path
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


def rng_state(generators: dict[str, torch.Generator | None]) -> dict[str, Any]:
    """Every random-number state a training epoch consumes, as tensors and plain numbers
    (loadable with ``torch.load(weights_only=True)``): torch's CPU generator (weight init,
    dropout masks), CUDA's when in use, numpy's, Python's ``random`` and the named
    ``generators`` (data order, encoder, augmentation)."""
    version, internal, gauss = random.getstate()
    _, keys, pos, has_gauss, cached = np.random.get_state()
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy": {"keys": torch.from_numpy(np.asarray(keys, dtype=np.int64)), "pos": int(pos),
                  "has_gauss": int(has_gauss), "cached_gaussian": float(cached)},
        "python": {"version": int(version),
                   "internal": torch.tensor(list(internal), dtype=torch.int64),
                   "gauss_next": gauss},
        "generators": {k: g.get_state() for k, g in generators.items() if g is not None},
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any], generators: dict[str, torch.Generator | None]) -> None:
    """Restore what :func:`rng_state` saved (the named ``generators`` in place)."""
    torch.set_rng_state(state["torch"])
    npst = state["numpy"]
    np.random.set_state(("MT19937", npst["keys"].numpy().astype(np.uint32), npst["pos"],
                         npst["has_gauss"], npst["cached_gaussian"]))
    py = state["python"]
    random.setstate((py["version"], tuple(int(v) for v in py["internal"].tolist()),
                     py["gauss_next"]))
    for name, saved in state.get("generators", {}).items():
        gen = generators.get(name)
        if gen is not None:
            gen.set_state(saved)
    cuda = state.get("cuda")
    if cuda and torch.cuda.is_available() and len(cuda) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(cuda)


def check_output_path(path: str | Path, what: str, *, folder: bool = False) -> Path:
    """Fail before any work when ``path`` (a file, or a folder with ``folder=True``) cannot
    be written: a file in its way, a read-only folder. One-line :class:`ConfigError`."""
    path = Path(path)
    if path.exists():
        if folder and not path.is_dir():
            raise ConfigError(f"{what} {path} is a file, not a folder")
        if not folder and path.is_dir():
            raise ConfigError(f"{what} {path} is a folder; give a file name")
    probe = path if folder and path.is_dir() else path.parent
    while not probe.exists():
        if probe.is_symlink() or probe == probe.parent:
            break
        probe = probe.parent
    if probe.exists() and not probe.is_dir():
        raise ConfigError(f"cannot write {what} {path}: {probe} is a file, not a folder")
    if not os.access(probe, os.W_OK | os.X_OK):
        raise ConfigError(f"cannot write {what} {path}: folder {probe} is not writable")
    return path
