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

from snn2hw.common.atomic_io import atomic_path, file_sha256
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
    # In an artifact both files are copies inside its folder, named by file name and hash
    # (bundle_sample_files), so the artifact reads the same samples from any directory.
    inputs_sha256: str | None = None
    labels_sha256: str | None = None

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


_SAMPLE_FILES = (("inputs_file", "inputs_sha256", "inputs"), ("labels_file", "labels_sha256",
                                                                 "labels"))


def bundle_sample_files(spec: SampleSpec, folder: Path, stem: str) -> SampleSpec:
    """Copy ``spec``'s inputs/labels files into ``folder`` (``<stem>.inputs.npy``,
    ``<stem>.labels.npy``, written atomically) and return the spec an artifact stores: plain
    file names and their SHA-256, so simulate/compare find them relative to the artifact
    whatever their working directory."""
    out = SampleSpec.from_dict(spec.to_dict())
    for key, sha_key, tag in _SAMPLE_FILES:
        src = getattr(spec, key)
        if not src:
            continue
        src_path = Path(src)
        if not src_path.is_file():
            raise DatasetError(f"{tag} file not found: {src_path}")
        name = f"{stem}.{tag}.npy"
        dst = folder / name
        if src_path.resolve() != dst.resolve():
            with atomic_path(dst) as tmp:
                tmp.write_bytes(src_path.read_bytes())
        setattr(out, key, name)
        setattr(out, sha_key, file_sha256(dst))
    return out


def resolve_sample_files(spec: SampleSpec, folder: Path | None) -> SampleSpec:
    """The spec an artifact stored, with its sample files resolved inside ``folder`` (the
    artifact's folder). Metadata never makes us read elsewhere: a name with a folder part
    or ``..``, a missing folder or a file whose SHA-256 differs is refused (pass the file
    on the command line with --inputs instead)."""
    out = SampleSpec.from_dict(spec.to_dict())
    for key, sha_key, tag in _SAMPLE_FILES:
        name = getattr(spec, key)
        if not name:
            continue
        if Path(name).name != name or name in (".", ".."):
            raise DatasetError(
                f"the quantized graph names its {tag} file as {name!r}, outside its own "
                "folder; re-export it, or pass the file with --inputs"
            )
        if folder is None:
            raise DatasetError(f"the {tag} file {name!r} is read from the quantized graph's "
                               "folder, which is unknown for a graph not loaded from a file")
        path = Path(folder) / name
        if not path.is_file():
            raise DatasetError(f"{path}: the {tag} file recorded by the export is missing; "
                               "copy it next to the .qgraph or re-run `snn2hw export`")
        want = getattr(spec, sha_key)
        if want and file_sha256(path) != want:
            raise DatasetError(f"{path} is not the {tag} file this graph was exported with "
                               "(SHA-256 differs); re-run `snn2hw export`")
        setattr(out, key, str(path))
    return out


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
