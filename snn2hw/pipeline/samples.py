"""Input samples for export calibration, simulation and comparison.

A :class:`SampleSpec` (stored in a quantized graph's metadata) says where inputs come
from — a dataset split through the training encoder, or a ``.npy`` file — so
``simulate``, ``compare`` and ``energy`` regenerate exactly the inputs export used,
deterministically (fixed encoder seed).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from snn2hw.common.errors import DatasetError
from snn2hw.nn.encoders import SAMPLE_ENCODER_SEED
from snn2hw.quant.inputs import InputFormat, to_chip


@dataclass
class SampleSpec:
    dataset: str | None = None
    data_dir: str | None = None
    data_options: dict[str, Any] | None = None
    split_seed: int = 0
    # Validation share carved out of the training data with split_seed (a checkpoint's
    # [data].val_fraction): "train" samples are then the training part only, as in training.
    val_fraction: float = 0.0
    encoder: str = "direct"
    gain: float = 1.0
    threshold: float = 0.05
    num_steps: int = 8
    inputs_file: str | None = None  # .npy with frames [T, B, *shape] (time-major)
    labels_file: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> SampleSpec:
        return cls(**{k: v for k, v in d.items() if k in cls.__dataclass_fields__})


def spec_from_options(
    dataset: str | None,
    inputs_file: str | None,
    labels_file: str | None = None,
    encoder: str = "direct",
    num_steps: int = 8,
) -> SampleSpec | None:
    """The :class:`SampleSpec` that ``export --dataset/--inputs`` describe; None when neither
    is given (a checkpoint then brings its own)."""
    if not (dataset or inputs_file):
        return None
    return SampleSpec(
        dataset=dataset,
        encoder=encoder,
        num_steps=num_steps,
        inputs_file=inputs_file,
        labels_file=labels_file,
    )


@dataclass
class Samples:
    frames: torch.Tensor  # float [T, B, *shape] as the float path sees them
    ints: np.ndarray  # int64 [T, B, *shape] as the integer backends see them
    labels: np.ndarray | None
    fmt: InputFormat


def float_frames(
    spec: SampleSpec, split: str, n: int | None
) -> tuple[torch.Tensor, np.ndarray | None]:
    """Encoded float frames ``[T, B, ...]`` and labels for the first ``n`` samples of
    ``split`` ("train": the training part, "val" or "test")."""
    if spec.inputs_file:
        path = Path(spec.inputs_file)
        if not path.is_file():
            raise DatasetError(f"inputs file not found: {path}")
        try:
            x = np.load(path, allow_pickle=False)
        except (ValueError, OSError) as exc:
            raise DatasetError(f"{path}: not a readable .npy array ({exc})") from None
        if x.ndim < 3:
            raise DatasetError(f"{path}: frames must be [T, B, *shape], got shape {list(x.shape)}")
        labels = None
        if spec.labels_file:
            labels = np.load(spec.labels_file, allow_pickle=False).astype(np.int64)
        if n is not None:
            x = x[:, :n]
            labels = None if labels is None else labels[:n]
        return torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)), labels
    if not spec.dataset:
        raise DatasetError("no input samples: pass --dataset NAME or --inputs FRAMES.npy")
    from snn2hw.data import load_dataset
    from snn2hw.nn.encoders import Encoder

    ds = load_dataset(
        spec.dataset, spec.data_dir or None, seed=spec.split_seed,
        val_fraction=spec.val_fraction, **(spec.data_options or {})
    )
    x, y = ds.split(split)
    if n is not None:
        x, y = x[:n], y[:n]
    enc = Encoder("events" if ds.temporal else spec.encoder, spec.gain, spec.threshold)
    gen = torch.Generator().manual_seed(SAMPLE_ENCODER_SEED)
    frames = enc(torch.from_numpy(x), spec.num_steps, gen)
    return frames.float(), y


def load_samples(
    spec: SampleSpec, fmt: InputFormat, split: str = "test", n: int | None = None
) -> Samples:
    frames, labels = float_frames(spec, split, n)
    ints, deq = to_chip(frames, fmt)
    return Samples(deq, ints, labels, fmt)
