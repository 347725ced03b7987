"""``mnist`` and ``fashion-mnist`` from the standard IDX files (plain or gzip-compressed).

IDX format: two zero bytes, a type code, the number of dimensions, then one big-endian uint32
per dimension, then the data in big-endian C order. The parser checks every field and the exact
data length, so a truncated or corrupt download fails with the file's name instead of producing
garbage images.
"""

from __future__ import annotations

import gzip
import math
import zlib
from pathlib import Path
from typing import BinaryIO

import numpy as np

from snn2hw.common.errors import DatasetError
from snn2hw.data.base import Dataset, find_file

MNIST_DESCRIPTION = "MNIST 60,000/10,000 28x28 digits from IDX files in --data-dir"
FASHION_DESCRIPTION = "Fashion-MNIST 60,000/10,000 28x28 clothing images from IDX files"

#: IDX type code -> numpy dtype (big-endian, as the format prescribes).
IDX_DTYPES: dict[int, np.dtype] = {
    0x08: np.dtype(np.uint8),
    0x09: np.dtype(np.int8),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
#: Refuse headers declaring more than this many bytes: corrupt dims, not a real data set.
_MAX_BYTES = 1 << 32
_CHUNK = 1 << 24
_GZIP_MAGIC = b"\x1f\x8b"

IDX_FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}


def _read_exact(fh: BinaryIO, n: int) -> bytes:
    # Read in chunks so a header that lies about its size cannot make us allocate it up front.
    parts, left = [], n
    while left > 0:
        part = fh.read(min(left, _CHUNK))
        if not part:
            break
        parts.append(part)
        left -= len(part)
    return b"".join(parts)


def read_idx(path: str | Path, *, dataset: str = "idx") -> np.ndarray:
    """Read one IDX file (gzip detected from its magic bytes) into a native-endian array.

    Raises :class:`DatasetError` naming the file when the header is invalid, the data is
    shorter or longer than the header declares, or the gzip stream is damaged.
    """
    path = Path(path)

    def corrupt(why: str) -> DatasetError:
        return DatasetError(f"{dataset}: file {path} is corrupt ({why}); download it again")

    try:
        with open(path, "rb") as raw:
            compressed = raw.read(2) == _GZIP_MAGIC
        opener = gzip.open if compressed else open
        with opener(path, "rb") as fh:
            head = _read_exact(fh, 4)
            if len(head) < 4:
                raise corrupt(f"only {len(head)} header bytes")
            if head[0] != 0 or head[1] != 0 or head[2] not in IDX_DTYPES:
                raise corrupt(f"bad magic number 0x{head.hex()}, not an IDX file")
            ndim = head[3]
            if ndim == 0:
                raise corrupt("header declares 0 dimensions")
            dims_raw = _read_exact(fh, 4 * ndim)
            if len(dims_raw) < 4 * ndim:
                raise corrupt("truncated header")
            dims = tuple(int(d) for d in np.frombuffer(dims_raw, dtype=">u4"))
            dtype = IDX_DTYPES[head[2]]
            nbytes = math.prod(dims) * dtype.itemsize  # Python ints: no overflow
            if nbytes > _MAX_BYTES:
                raise corrupt(f"header declares an implausible shape {dims}")
            body = _read_exact(fh, nbytes)
            if len(body) < nbytes:
                raise corrupt(f"truncated: {len(body)} of {nbytes} data bytes for shape {dims}")
            if fh.read(1):
                raise corrupt(f"trailing bytes after the {nbytes} data bytes of shape {dims}")
    except (OSError, EOFError, zlib.error) as err:
        # BadGzipFile is an OSError; a cut-off gzip stream raises EOFError.
        raise corrupt(f"{type(err).__name__}: {err}") from err
    return np.frombuffer(body, dtype=dtype).reshape(dims).astype(dtype.newbyteorder("="))


def _candidate_dirs(root: Path, subdirs: tuple[str, ...]) -> list[Path]:
    # Dataset-specific sub-folders first (MNIST and Fashion-MNIST share file names, so the
    # specific folder must win), torchvision's <Name>/raw layout, then data_dir itself.
    return [root / s for s in subdirs] + [root]


def load_idx_dataset(
    name: str, root: Path, subdirs: tuple[str, ...], hint: str, num_classes: int = 10
) -> Dataset:
    """Load the four standard IDX files of an MNIST-like data set found under ``root``."""
    dirs = _candidate_dirs(root, subdirs)
    paths = {k: find_file(name, f, dirs, hint, gz=True) for k, f in IDX_FILES.items()}
    arrays = {k: read_idx(p, dataset=name) for k, p in paths.items()}
    out: dict[str, np.ndarray] = {}
    image_shape: tuple[int, ...] | None = None
    for split in ("train", "test"):
        images, labels = arrays[f"{split}_images"], arrays[f"{split}_labels"]
        ipath, lpath = paths[f"{split}_images"], paths[f"{split}_labels"]
        if images.ndim != 3 or images.dtype != np.uint8:
            raise DatasetError(
                f"{name}: file {ipath} holds {images.dtype} data of shape {images.shape}, "
                "expected uint8 images [N, H, W]; check it is the images file"
            )
        if labels.ndim != 1 or labels.dtype != np.uint8:
            raise DatasetError(
                f"{name}: file {lpath} holds {labels.dtype} data of shape {labels.shape}, "
                "expected uint8 labels [N]; check it is the labels file"
            )
        if len(images) != len(labels):
            raise DatasetError(
                f"{name}: {ipath} has {len(images)} images but {lpath} has {len(labels)} "
                "labels; the files come from different downloads"
            )
        if labels.size and labels.max() >= num_classes:
            raise DatasetError(
                f"{name}: file {lpath} has label {labels.max()} >= {num_classes}; download it again"
            )
        if image_shape is None:
            image_shape = images.shape[1:]
        elif images.shape[1:] != image_shape:
            raise DatasetError(
                f"{name}: train images are {image_shape} but {ipath} holds {images.shape[1:]}"
            )
        out[f"x_{split}"] = (images.astype(np.float32) / 255.0)[:, None]
        out[f"y_{split}"] = labels.astype(np.int64)
    assert image_shape is not None
    return Dataset(
        name=name,
        input_shape=(1, *image_shape),
        num_classes=num_classes,
        temporal=False,
        info={"files": {k: str(p) for k, p in paths.items()}},
        **out,
    )


def load_mnist(data_dir: Path, seed: int = 0) -> Dataset:
    """MNIST from IDX files; the official 60,000/10,000 split (``seed`` unused)."""
    return load_idx_dataset(
        "mnist",
        data_dir,
        ("mnist", "MNIST/raw"),
        "download it from the MNIST site (yann.lecun.com/exdb/mnist or a mirror) "
        "and pass --data-dir",
    )


def load_fashion_mnist(data_dir: Path, seed: int = 0) -> Dataset:
    """Fashion-MNIST from IDX files; the official 60,000/10,000 split (``seed`` unused)."""
    return load_idx_dataset(
        "fashion-mnist",
        data_dir,
        ("fashion-mnist", "fashion_mnist", "FashionMNIST/raw"),
        "download it from github.com/zalandoresearch/fashion-mnist and pass --data-dir",
    )
