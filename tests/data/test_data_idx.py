"""MNIST / Fashion-MNIST from IDX files written by the tests (plain and gzip)."""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np
import pytest

from snn2hw.common.errors import DatasetError
from snn2hw.data import load_dataset, read_idx

NAMES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}


def idx_bytes(array: np.ndarray) -> bytes:
    """Encode a uint8 array as IDX (type code 0x08)."""
    header = struct.pack(">HBB", 0, 0x08, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.astype(np.uint8).tobytes()


def write_idx_set(folder: Path, n_train=12, n_test=5, size=28, gz=False, seed=0) -> dict:
    rng = np.random.default_rng(seed)
    arrays = {
        "train_images": rng.integers(0, 256, (n_train, size, size), dtype=np.uint8),
        "train_labels": (np.arange(n_train) % 10).astype(np.uint8),
        "test_images": rng.integers(0, 256, (n_test, size, size), dtype=np.uint8),
        "test_labels": (np.arange(n_test)[::-1] % 10).astype(np.uint8),
    }
    folder.mkdir(parents=True, exist_ok=True)
    for key, array in arrays.items():
        data = idx_bytes(array)
        if gz:
            (folder / f"{NAMES[key]}.gz").write_bytes(gzip.compress(data))
        else:
            (folder / NAMES[key]).write_bytes(data)
    return arrays


@pytest.mark.parametrize("gz", [False, True])
def test_mnist_loads_idx_files_scaled_to_unit_range(tmp_path, gz):
    arrays = write_idx_set(tmp_path, gz=gz)
    ds = load_dataset("mnist", tmp_path)
    assert ds.x_train.shape == (12, 1, 28, 28) and ds.x_test.shape == (5, 1, 28, 28)
    assert ds.input_shape == (1, 28, 28) and not ds.temporal and ds.num_classes == 10
    assert ds.x_train.dtype == np.float32 and ds.y_train.dtype == np.int64
    np.testing.assert_allclose(ds.x_train[:, 0] * 255, arrays["train_images"], atol=1e-3)
    np.testing.assert_array_equal(ds.y_test, arrays["test_labels"])


def test_fashion_mnist_prefers_its_own_subfolder_over_data_dir(tmp_path):
    write_idx_set(tmp_path, n_train=3, seed=1)  # e.g. MNIST files at the top level
    fashion = write_idx_set(tmp_path / "fashion-mnist", n_train=4, seed=2)
    ds = load_dataset("fashion-mnist", tmp_path)
    assert len(ds.y_train) == 4
    np.testing.assert_array_equal(ds.y_train, fashion["train_labels"])


def test_mnist_finds_torchvision_raw_layout(tmp_path):
    write_idx_set(tmp_path / "MNIST" / "raw", gz=True)
    assert len(load_dataset("mnist", tmp_path).y_train) == 12


def test_missing_file_message_names_file_folder_and_what_to_do(tmp_path):
    write_idx_set(tmp_path)
    (tmp_path / NAMES["test_labels"]).unlink()
    with pytest.raises(DatasetError) as err:
        load_dataset("mnist", tmp_path)
    msg = str(err.value)
    assert msg.startswith("mnist: file 't10k-labels-idx1-ubyte' not found in ")
    assert str(tmp_path.resolve()) in msg and "also tried .gz" in msg and "--data-dir" in msg
    assert "\n" not in msg


def _corrupt_cases() -> dict[str, bytes]:
    good = idx_bytes(np.zeros((3, 28, 28), np.uint8))
    return {
        "truncated": good[:-7],
        "short header": good[:3],
        "bad magic": b"\x12\x34" + good[2:],
        "trailing": good + b"\x00",
        "bad gzip": gzip.compress(good)[:-12],
        "not gzip": b"\x1f\x8b" + b"garbage" * 10,
    }


@pytest.mark.parametrize(
    "case", ["truncated", "short header", "bad magic", "trailing", "bad gzip", "not gzip"]
)
def test_corrupt_idx_file_is_refused_naming_the_file(tmp_path, case):
    path = tmp_path / "train-images-idx3-ubyte"
    path.write_bytes(_corrupt_cases()[case])
    with pytest.raises(DatasetError) as err:
        read_idx(path, dataset="mnist")
    assert str(path) in str(err.value) and "corrupt" in str(err.value)


def test_truncated_file_inside_a_dataset_fails_the_load(tmp_path):
    write_idx_set(tmp_path)
    target = tmp_path / NAMES["train_images"]
    target.write_bytes(target.read_bytes()[:-100])
    with pytest.raises(DatasetError, match="train-images-idx3-ubyte is corrupt"):
        load_dataset("mnist", tmp_path)


def test_header_with_huge_dimensions_is_refused_without_allocating(tmp_path):
    path = tmp_path / "x"
    path.write_bytes(struct.pack(">HBB", 0, 0x08, 3) + struct.pack(">3I", 2**31, 2**31, 2**31))
    with pytest.raises(DatasetError, match="implausible"):
        read_idx(path)


def test_read_idx_decodes_big_endian_types(tmp_path):
    values = np.array([[1, -2], [300, 70000]], dtype=">i4")
    path = tmp_path / "ints"
    path.write_bytes(struct.pack(">HBB", 0, 0x0C, 2) + struct.pack(">2I", 2, 2) + values.tobytes())
    out = read_idx(path)
    np.testing.assert_array_equal(out, values)
    assert out.dtype.isnative


def test_swapped_images_and_labels_are_refused(tmp_path):
    write_idx_set(tmp_path)
    images, labels = tmp_path / NAMES["test_images"], tmp_path / NAMES["test_labels"]
    data = images.read_bytes()
    images.write_bytes(labels.read_bytes())
    labels.write_bytes(data)
    with pytest.raises(DatasetError, match="expected uint8 images"):
        load_dataset("mnist", tmp_path)


def test_image_and_label_counts_must_match(tmp_path):
    write_idx_set(tmp_path)
    (tmp_path / NAMES["train_labels"]).write_bytes(idx_bytes(np.zeros(11, np.uint8)))
    with pytest.raises(DatasetError, match="12 images but .* 11 labels"):
        load_dataset("mnist", tmp_path)
