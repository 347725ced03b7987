"""``mnist1d``: MNIST-1D (Greydanus 2020) generated locally as a temporal data set.

``mnist1d.data.make_dataset(get_dataset_args())`` returns a dict with ``x`` float64 [4000, 40],
``y`` int64 [4000], ``x_test`` [1000, 40], ``y_test`` [1000], ``t`` [40] (the rescaled time
axis) and ``templates``. The 4,000/1,000 split is the library's own (not stratified: test classes
hold 89..106 samples). Its x is already standardised over all 5,000 samples (mean 0, std 1,
range about -5.5..4.5); each of the 40 positions becomes one time step with one input channel.
We never call ``get_dataset()``, which downloads.
"""

from __future__ import annotations

import functools
import random
from pathlib import Path

import numpy as np

from snn2hw.common.errors import DatasetError
from snn2hw.data.base import Dataset

DESCRIPTION = "MNIST-1D, 40-step sequences x 1 channel, 4,000/1,000 (generated, no download)"

_NORMALIZATIONS = ("standard", "minmax")


@functools.lru_cache(maxsize=1)
def _generate() -> dict[str, np.ndarray]:
    from mnist1d.data import get_dataset_args, make_dataset

    # make_dataset reseeds the global `random` and `np.random` generators (seed 42); restore
    # them so loading data does not change the caller's random streams.
    py_state, np_state = random.getstate(), np.random.get_state()
    try:
        data = make_dataset(get_dataset_args())
    finally:
        random.setstate(py_state)
        np.random.set_state(np_state)
    return {k: np.asarray(data[k]) for k in ("x", "y", "x_test", "y_test")}


def load(data_dir: Path | None = None, seed: int = 0, *, normalize: str = "standard") -> Dataset:
    """Float32 ``[N, 40, 1]`` sequences (temporal), labels int64.

    ``normalize="standard"`` keeps the library's standardisation (signed values, fed as input
    current); ``"minmax"`` maps the training range to [0, 1] and clips the test set into it.
    ``seed`` is unused: the canonical generator seed (42) and split are kept so results compare
    with published MNIST-1D numbers.
    """
    if normalize not in _NORMALIZATIONS:
        raise DatasetError(
            f"mnist1d: option normalize must be one of {', '.join(_NORMALIZATIONS)}, "
            f"got {normalize!r}"
        )
    raw = _generate()
    x_tr, x_te = raw["x"].astype(np.float32), raw["x_test"].astype(np.float32)
    if normalize == "minmax":
        lo, hi = float(x_tr.min()), float(x_tr.max())
        x_tr = np.clip((x_tr - lo) / (hi - lo), 0.0, 1.0)
        x_te = np.clip((x_te - lo) / (hi - lo), 0.0, 1.0)
    return Dataset(
        name="mnist1d",
        x_train=np.ascontiguousarray(x_tr[:, :, None], dtype=np.float32),
        y_train=raw["y"].astype(np.int64),
        x_test=np.ascontiguousarray(x_te[:, :, None], dtype=np.float32),
        y_test=raw["y_test"].astype(np.int64),
        input_shape=(1,),
        num_classes=10,
        temporal=True,
        info={"source": "mnist1d.data.make_dataset", "normalize": normalize, "generator_seed": 42},
    )
