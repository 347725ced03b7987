"""Data sets as in-memory numpy arrays, loaded offline.

``digits``, ``mnist5k`` and ``mnist1d`` come from installed packages (no download);
``synthetic-events`` is generated; ``mnist``, ``fashion-mnist``, ``cifar10`` and ``nmnist`` read
the standard files from ``data_dir`` (default ``$SNN2HW_DATA_DIR`` or ``./data``). Nothing here
downloads. Every failure is a one-line :class:`~snn2hw.common.errors.DatasetError`.
``load_dataset(..., val_fraction=0.1)`` also carves a seeded, stratified validation split out
of the training data (training does; the test split never changes).

>>> ds = load_dataset("digits")
>>> ds.x_train.shape, ds.input_shape
((1437, 1, 8, 8), (1, 8, 8))
"""

from snn2hw.data.base import (
    DATA_DIR_ENV,
    DEFAULT_VAL_FRACTION,
    SPLITS,
    Dataset,
    carve_validation,
    resolve_data_dir,
)
from snn2hw.data.cifar import RestrictedUnpickler, read_cifar_batch
from snn2hw.data.idx import read_idx
from snn2hw.data.nmnist import EVENT_DTYPE, bin_events, read_nmnist_events
from snn2hw.data.registry import (
    DEFAULT_DATASET,
    DatasetEntry,
    available_datasets,
    load_dataset,
    register_dataset,
)
from snn2hw.data.synthetic import make_synthetic_events

__all__ = [
    "DATA_DIR_ENV",
    "DEFAULT_DATASET",
    "DEFAULT_VAL_FRACTION",
    "EVENT_DTYPE",
    "Dataset",
    "DatasetEntry",
    "RestrictedUnpickler",
    "SPLITS",
    "available_datasets",
    "bin_events",
    "carve_validation",
    "load_dataset",
    "make_synthetic_events",
    "read_cifar_batch",
    "read_idx",
    "read_nmnist_events",
    "register_dataset",
    "resolve_data_dir",
]
