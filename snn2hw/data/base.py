"""The :class:`Dataset` container and helpers shared by the loaders."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from snn2hw.common.errors import DatasetError

#: Environment variable naming the default folder of the file-based data sets.
DATA_DIR_ENV = "SNN2HW_DATA_DIR"


@dataclass
class Dataset:
    """A train/test split held in memory as numpy arrays.

    Static data sets: ``x`` is float32 ``[N, *input_shape]`` scaled to ``[0, 1]``.
    Temporal data sets (``temporal=True``): ``x`` is float32 ``[N, T, *input_shape]``.
    Labels are int64 ``[N]`` in ``range(num_classes)``. ``info`` carries loader details
    (files read, normalisation, binning) for logs; nothing depends on it.
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

    def __post_init__(self) -> None:
        self.input_shape = tuple(int(s) for s in self.input_shape)
        lead = 2 if self.temporal else 1
        for split in ("train", "test"):
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

    def summary(self) -> str:
        """One line: name, split sizes, sample shape, classes."""
        time = f"T={self.n_steps} x " if self.temporal else ""
        return (
            f"{self.name}: {len(self.y_train)} train / {len(self.y_test)} test, "
            f"{time}{self.input_shape}, {self.num_classes} classes"
        )


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
