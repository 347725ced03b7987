"""``digits``: scikit-learn's embedded 8x8 handwritten digits (the default data set)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from snn2hw.data.base import Dataset, stratified_split

DESCRIPTION = "scikit-learn 8x8 handwritten digits, 1,437/360 split (embedded, no download)"

#: Largest pixel value in ``load_digits`` (4x4 blocks of a 32x32 bitmap, so 0..16).
_MAX_VALUE = 16.0


def load(data_dir: Path | None = None, seed: int = 0) -> Dataset:
    """1,797 images as float32 ``[N, 1, 8, 8]`` in [0, 1]; stratified 80/20 split by ``seed``."""
    from sklearn.datasets import load_digits

    bunch = load_digits()
    x = (bunch.images.astype(np.float32) / _MAX_VALUE).reshape(-1, 1, 8, 8)
    y = bunch.target.astype(np.int64)
    x_tr, y_tr, x_te, y_te = stratified_split(x, y, test_size=0.2, seed=seed)
    return Dataset(
        name="digits",
        x_train=np.ascontiguousarray(x_tr),
        y_train=y_tr,
        x_test=np.ascontiguousarray(x_te),
        y_test=y_te,
        input_shape=(1, 8, 8),
        num_classes=10,
        temporal=False,
        info={"source": "sklearn.datasets.load_digits", "split_seed": seed},
    )
