"""``cifar10``: the CIFAR-10 "python version" batches, unpickled safely.

The batches are pickles written by Python 2 (protocol 2): a dict with ``b'data'`` (uint8
[10000, 3072], channel-major RGB rows), ``b'labels'`` (list of int), ``b'batch_label'`` and
``b'filenames'``. Rebuilding the array needs exactly three globals:
``numpy.core.multiarray._reconstruct``, ``numpy.ndarray`` and ``numpy.dtype``. A pickle can
call any importable function, so :class:`RestrictedUnpickler` allows only those (plus
``_codecs.encode`` limited to latin-1, which Python 3 emits for ``bytes`` at protocol 2, so
batches re-saved by Python 3 also load) and refuses everything else before it runs.
"""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import numpy as np

from snn2hw.common.errors import DatasetError
from snn2hw.data.base import Dataset, describe_dirs, find_file

DESCRIPTION = "CIFAR-10 50,000/10,000 3x32x32 colour images from the python batches"

TRAIN_BATCHES = tuple(f"data_batch_{i}" for i in range(1, 6))
TEST_BATCH = "test_batch"
_HINT = (
    "download cifar-10-python.tar.gz from www.cs.toronto.edu/~kriz/cifar.html, "
    "extract it and pass --data-dir"
)

# The array-rebuild function, taken from numpy itself so it works whether numpy calls its
# core package numpy.core (1.x) or numpy._core (2.x).
_RECONSTRUCT = np.ndarray.__reduce__(np.zeros(0))[0]


def _latin1_encode(text: str, encoding: str = "latin1", errors: str = "strict") -> bytes:
    # Stand-in for _codecs.encode: Python 3 pickles bytes at protocol 2 as
    # _codecs.encode(<str>, 'latin1'); any other codec is refused rather than looked up.
    if not isinstance(text, str) or encoding.replace("-", "").lower() != "latin1":
        raise pickle.UnpicklingError(f"_codecs.encode with codec {encoding!r} is not allowed")
    return text.encode("latin1", errors)


_ALLOWED_GLOBALS: dict[tuple[str, str], Any] = {
    ("numpy.core.multiarray", "_reconstruct"): _RECONSTRUCT,
    ("numpy._core.multiarray", "_reconstruct"): _RECONSTRUCT,
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
    ("_codecs", "encode"): _latin1_encode,
}


class RestrictedUnpickler(pickle.Unpickler):
    """Unpickler that resolves only the globals a CIFAR batch needs; anything else -> error.

    Every way a pickle can reach a callable (GLOBAL, STACK_GLOBAL, INST, OBJ, EXT*) goes
    through ``find_class``, so refusing here means no foreign code runs.
    """

    def __init__(self, file: Any, path: Path, dataset: str = "cifar10") -> None:
        super().__init__(file, encoding="bytes")
        self._path = path
        self._dataset = dataset

    def find_class(self, module: str, name: str) -> Any:
        try:
            return _ALLOWED_GLOBALS[(module, name)]
        except KeyError:
            raise DatasetError(
                f"{self._dataset}: file {self._path} refers to {module}.{name}, which a "
                "CIFAR batch never needs; refusing to unpickle it (replace it with the "
                "original file)"
            ) from None


def read_cifar_batch(path: str | Path, dataset: str = "cifar10") -> tuple[np.ndarray, np.ndarray]:
    """Safely read one CIFAR-10 batch -> uint8 ``[N, 3, 32, 32]`` images and int64 labels."""
    path = Path(path)

    def bad(why: str) -> DatasetError:
        return DatasetError(f"{dataset}: file {path} is not a valid CIFAR-10 batch ({why})")

    try:
        with open(path, "rb") as fh:
            obj = RestrictedUnpickler(fh, path, dataset).load()
    except DatasetError:
        raise
    except Exception as err:  # damaged pickles raise many kinds (ValueError, MemoryError...)
        raise bad(f"{type(err).__name__}: {err}") from err
    if not isinstance(obj, dict):
        raise bad(f"holds a {type(obj).__name__}, expected a dict")
    data = obj.get(b"data", obj.get("data"))
    labels = obj.get(b"labels", obj.get("labels"))
    if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2:
        raise bad("'data' is not a uint8 [N, 3072] array")
    if data.shape[1] != 3 * 32 * 32:
        raise bad(f"'data' rows have {data.shape[1]} values, expected 3072")
    try:
        y = np.asarray(labels, dtype=np.int64)
    except (TypeError, ValueError) as err:
        raise bad(f"'labels' is not a list of integers: {err}") from err
    if y.shape != (len(data),):
        raise bad(f"{len(data)} images but labels of shape {y.shape}")
    if y.size and (y.min() < 0 or y.max() > 9):
        raise bad("labels outside 0..9")
    return data.reshape(-1, 3, 32, 32), y


def load(data_dir: Path, seed: int = 0) -> Dataset:
    """Float32 ``[N, 3, 32, 32]`` in [0, 1]; the official 50,000/10,000 split (``seed`` unused)."""
    dirs = [data_dir, data_dir / "cifar-10-batches-py"]
    # Use the folder holding the first batch so all batches come from the same extraction.
    first = find_file("cifar10", TRAIN_BATCHES[0], dirs, _HINT)
    folder = first.parent
    paths = [find_file("cifar10", f, [folder], _HINT) for f in (*TRAIN_BATCHES, TEST_BATCH)]
    batches = [read_cifar_batch(p) for p in paths]
    x_train = np.concatenate([b[0] for b in batches[:-1]]).astype(np.float32) / 255.0
    y_train = np.concatenate([b[1] for b in batches[:-1]])
    x_test = batches[-1][0].astype(np.float32) / 255.0
    return Dataset(
        name="cifar10",
        x_train=x_train,
        y_train=y_train,
        x_test=x_test,
        y_test=batches[-1][1],
        input_shape=(3, 32, 32),
        num_classes=10,
        temporal=False,
        info={"folder": str(folder), "searched": describe_dirs(dirs)},
    )
