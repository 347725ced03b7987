"""The :class:`Dataset` container and helpers shared by the loaders."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from snn2hw.common.errors import DatasetError

#: Environment variable naming the default folder of the file-based data sets.
DATA_DIR_ENV = "SNN2HW_DATA_DIR"


#: Validation fraction of the training data when a training config does not set one.
DEFAULT_VAL_FRACTION = 0.1
SPLITS = ("train", "val", "test")


@dataclass
class Dataset:
    """A train/(validation)/test split held in memory as numpy arrays.

    Static data sets: ``x`` is float32 ``[N, *input_shape]`` scaled to ``[0, 1]``.
    Temporal data sets (``temporal=True``): ``x`` is float32 ``[N, T, *input_shape]``.
    Labels are int64 ``[N]`` in ``range(num_classes)``. ``info`` carries loader details
    (files read, normalisation, binning) for logs; nothing depends on it.

    ``x_val``/``y_val`` are ``None`` until a validation split exists: a loader may set an
    official one, otherwise :meth:`with_validation` carves it out of the training data
    (``x_train`` is then the training part only). Validation is for model selection; the
    test split is for the one final measurement.
    """

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    input_shape: tuple[int, ...]
    num_classes: int
    temporal: bool
    info: dict[str, Any] = field(default_factory=dict)
    x_val: np.ndarray | None = None
    y_val: np.ndarray | None = None

    def __post_init__(self) -> None:
        self.input_shape = tuple(int(s) for s in self.input_shape)
        lead = 2 if self.temporal else 1
        if (self.x_val is None) != (self.y_val is None):
            raise DatasetError(f"{self.name}: x_val and y_val must be given together")
        for split in SPLITS if self.x_val is not None else ("train", "test"):
            x, y = getattr(self, f"x_{split}"), getattr(self, f"y_{split}")
            if not isinstance(x, np.ndarray) or x.dtype != np.float32:
                raise DatasetError(f"{self.name}: x_{split} must be a float32 numpy array")
            if x.ndim != lead + len(self.input_shape) or x.shape[lead:] != self.input_shape:
                raise DatasetError(
                    f"{self.name}: x_{split} has shape {x.shape}, expected "
                    f"[N{', T' if self.temporal else ''}, {', '.join(map(str, self.input_shape))}]"
                )
            if not isinstance(y, np.ndarray) or y.dtype != np.int64 or y.shape != x.shape[:1]:
                raise DatasetError(
                    f"{self.name}: y_{split} must be int64 with shape ({x.shape[0]},), "
                    f"got {getattr(y, 'dtype', type(y))} {getattr(y, 'shape', '')}"
                )
            if y.size and (y.min() < 0 or y.max() >= self.num_classes):
                raise DatasetError(
                    f"{self.name}: y_{split} has labels outside 0..{self.num_classes - 1}"
                )

    @property
    def n_steps(self) -> int | None:
        """Number of time steps T of a temporal data set, ``None`` for a static one."""
        return int(self.x_train.shape[1]) if self.temporal else None

    @property
    def has_validation(self) -> bool:
        return self.y_val is not None

    def split(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        """``(x, y)`` of split ``"train"``, ``"val"`` or ``"test"``."""
        if name not in SPLITS:
            raise DatasetError(f"{self.name}: unknown split {name!r}; known: {', '.join(SPLITS)}")
        if name == "val" and not self.has_validation:
            raise DatasetError(
                f"{self.name}: no validation split; load it with val_fraction > 0"
            )
        return getattr(self, f"x_{name}"), getattr(self, f"y_{name}")

    def with_validation(self, fraction: float, seed: int) -> Dataset:
        """This data set with a validation split; ``self`` if it already has one (official
        or carved). Otherwise :func:`carve_validation` takes ``fraction`` of the training
        data, stratified by class and fixed by ``seed``; the test split is untouched."""
        if self.has_validation:
            return self
        fraction = validation_fraction(self.name, fraction)
        val_idx, train_idx = carve_validation(self.y_train, fraction, seed)
        info = dict(self.info)
        info["validation"] = {"source": "carved from train", "fraction": fraction,
                              "seed": int(seed), "n_val": len(val_idx)}
        return replace(
            self,
            x_train=self.x_train[train_idx],
            y_train=self.y_train[train_idx],
            x_val=self.x_train[val_idx],
            y_val=self.y_train[val_idx],
            info=info,
        )

    def split_sizes(self) -> dict[str, int]:
        """Samples per split (``val`` 0 when there is none)."""
        return {
            "train": len(self.y_train),
            "val": len(self.y_val) if self.y_val is not None else 0,
            "test": len(self.y_test),
        }

    def summary(self) -> str:
        """One line: name, split sizes, sample shape, classes."""
        time = f"T={self.n_steps} x " if self.temporal else ""
        val = f"{len(self.y_val)} val / " if self.y_val is not None else ""
        return (
            f"{self.name}: {len(self.y_train)} train / {val}{len(self.y_test)} test, "
            f"{time}{self.input_shape}, {self.num_classes} classes"
        )


def validation_fraction(dataset: str, value: Any) -> float:
    """Validate a validation fraction: a number in ``(0, 0.5]``."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.floating)):
        raise DatasetError(f"{dataset}: val_fraction must be a number, got {value!r}")
    if not 0.0 < float(value) <= 0.5:
        raise DatasetError(f"{dataset}: val_fraction must be in (0, 0.5], got {value!r}")
    return float(value)


def carve_validation(y: np.ndarray, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices ``(val, train)`` into ``y``: per class, ``round(fraction * n_c)`` samples (at
    least 1 when the class has 2 or more) drawn by a generator seeded with ``seed``.

    Deterministic for ``(y, fraction, seed)``; both index arrays are sorted, so the
    remaining training samples keep their order."""
    rng = np.random.default_rng([int(seed), 0x5A1])  # own stream: not the split/test seed
    val: list[np.ndarray] = []
    for c in np.unique(y):
        idx = np.flatnonzero(y == c)
        k = int(round(fraction * len(idx)))
        k = min(max(k, 1 if len(idx) >= 2 else 0), len(idx) - 1) if len(idx) else 0
        val.append(rng.permutation(idx)[:k])
    val_idx = np.sort(np.concatenate(val)) if val else np.zeros(0, dtype=np.int64)
    keep = np.ones(len(y), dtype=bool)
    keep[val_idx] = False
    return val_idx.astype(np.int64), np.flatnonzero(keep).astype(np.int64)


def resolve_data_dir(data_dir: str | os.PathLike[str] | None) -> Path:
    """``data_dir`` or ``$SNN2HW_DATA_DIR`` or ``./data``, made absolute for messages."""
    if data_dir is None:
        data_dir = os.environ.get(DATA_DIR_ENV) or "data"
    return Path(data_dir).expanduser().resolve()


def describe_dirs(dirs: Sequence[Path]) -> str:
    """``/a``, ``/a or /b``, ``/a, /b or /c`` - for "not found in ..." messages."""
    names = [str(d) for d in dirs]
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} or {names[-1]}"


def find_file(
    dataset: str, filename: str, dirs: Sequence[Path], hint: str, *, gz: bool = False
) -> Path:
    """Return the first ``dir/filename`` (or ``dir/filename.gz`` when ``gz``) that exists.

    Raises a one-line :class:`DatasetError` naming the file, every folder tried and ``hint``.
    """
    for d in dirs:
        for candidate in (d / filename, d / f"{filename}.gz") if gz else (d / filename,):
            if candidate.is_file():
                return candidate
    also = " (also tried .gz)" if gz else ""
    raise DatasetError(
        f"{dataset}: file '{filename}' not found in {describe_dirs(dirs)}{also}; {hint}"
    )


def stratified_split(
    x: np.ndarray, y: np.ndarray, test_size: int | float, seed: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Deterministic stratified split (scikit-learn) -> ``x_train, y_train, x_test, y_test``."""
    from sklearn.model_selection import train_test_split

    x_tr, x_te, y_tr, y_te = train_test_split(
        x, y, test_size=test_size, stratify=y, random_state=int(seed)
    )
    return x_tr, y_tr, x_te, y_te


def positive_int(dataset: str, option: str, value: Any) -> int:
    """Validate an integer option > 0 (bools are refused: ``True`` is not a frame count)."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value <= 0:
        raise DatasetError(f"{dataset}: option {option} must be a positive integer, got {value!r}")
    return int(value)


def shape_option(dataset: str, option: str, value: Any, ndim: int) -> tuple[int, ...]:
    """Validate a shape option: a sequence of ``ndim`` positive integers."""
    if not isinstance(value, Sequence) or isinstance(value, str) or len(value) != ndim:
        raise DatasetError(
            f"{dataset}: option {option} must be {ndim} positive integers, got {value!r}"
        )
    return tuple(positive_int(dataset, option, v) for v in value)
