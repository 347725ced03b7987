"""The validation split: carved from the training data, stratified, seeded, disjoint from
train and test; one test per data-set family (embedded, generated, file-based, official)."""

from __future__ import annotations

import numpy as np
import pytest
from test_data_idx import write_idx_set

from snn2hw.common.errors import DatasetError
from snn2hw.data import Dataset, carve_validation, load_dataset


def _row_ids(x: np.ndarray) -> list[bytes]:
    return [r.tobytes() for r in x]


def _sorted_rows(x: np.ndarray) -> np.ndarray:
    return np.sort(x.reshape(len(x), -1), axis=0)


def _check_carve(full: Dataset, carved: Dataset, fraction: float, seed: int) -> None:
    """carved = full with validation: val + train part == full train (by index), test intact,
    per-class counts round(fraction * n_c)."""
    val_idx, train_idx = carve_validation(full.y_train, fraction, seed)
    assert set(val_idx).isdisjoint(train_idx)
    assert sorted([*val_idx, *train_idx]) == list(range(len(full.y_train)))
    np.testing.assert_array_equal(carved.x_val, full.x_train[val_idx])
    np.testing.assert_array_equal(carved.x_train, full.x_train[train_idx])
    np.testing.assert_array_equal(carved.y_val, full.y_train[val_idx])
    np.testing.assert_array_equal(carved.x_test, full.x_test)  # test never changes
    np.testing.assert_array_equal(carved.y_test, full.y_test)
    for c in np.unique(full.y_train):
        n_c = int((full.y_train == c).sum())
        expect = min(max(round(fraction * n_c), 1 if n_c >= 2 else 0), max(n_c - 1, 0))
        assert int((carved.y_val == c).sum()) == expect
    assert carved.info["validation"] == {"source": "carved from train", "fraction": fraction,
                                         "seed": seed, "n_val": len(val_idx)}


def test_digits_validation_is_disjoint_stratified_and_deterministic():
    full = load_dataset("digits", seed=0)
    a = load_dataset("digits", seed=0, val_fraction=0.1)
    _check_carve(full, a, 0.1, 0)
    assert len(a.y_val) == 142 and len(a.y_train) == 1437 - 142 and len(a.y_test) == 360
    # As sample rows too (digits has a few duplicate images: compare as multisets).
    assert sorted(_row_ids(a.x_train) + _row_ids(a.x_val)) == sorted(_row_ids(full.x_train))
    only_test = set(_row_ids(full.x_test)) - set(_row_ids(full.x_train))
    assert not set(_row_ids(a.x_val)) & only_test
    share = np.bincount(a.y_val, minlength=10) / len(a.y_val)
    assert np.abs(share - np.bincount(a.y_train, minlength=10) / len(a.y_train)).max() < 0.01
    b = load_dataset("digits", seed=0, val_fraction=0.1)
    np.testing.assert_array_equal(a.y_val, b.y_val)
    np.testing.assert_array_equal(a.x_val, b.x_val)
    c = load_dataset("digits", seed=1, val_fraction=0.1)
    assert not np.array_equal(_sorted_rows(a.x_val), _sorted_rows(c.x_val))
    assert "142 val" in a.summary()


def test_mnist1d_keeps_its_own_test_split_and_carves_validation_from_train():
    full = load_dataset("mnist1d")
    carved = load_dataset("mnist1d", val_fraction=0.2)
    _check_carve(full, carved, 0.2, 0)
    assert len(carved.y_val) + len(carved.y_train) == 4000 and len(carved.y_test) == 1000


def test_synthetic_validation_is_disjoint_stratified_and_deterministic():
    opts = {"n_train": 60, "n_test": 20, "n_frames": 3, "shape": (2, 8, 8)}
    full = load_dataset("synthetic-events", seed=5, **opts)
    carved = load_dataset("synthetic-events", seed=5, val_fraction=0.1, **opts)
    _check_carve(full, carved, 0.1, 5)
    assert np.bincount(carved.y_val).tolist() == [1] * 10  # 6 per class -> 1 each
    again = load_dataset("synthetic-events", seed=5, val_fraction=0.1, **opts)
    np.testing.assert_array_equal(carved.x_val, again.x_val)


def test_file_based_dataset_carves_validation_from_its_official_train_split(tmp_path):
    write_idx_set(tmp_path / "mnist", n_train=40, n_test=10)
    full = load_dataset("mnist", tmp_path)
    carved = load_dataset("mnist", tmp_path, seed=3, val_fraction=0.25)
    _check_carve(full, carved, 0.25, 3)
    assert carved.split_sizes() == {"train": 30, "val": 10, "test": 10}


def test_an_official_validation_split_is_used_as_is():
    rng = np.random.default_rng(0)

    def arr(n):
        return rng.random((n, 1, 2, 2), dtype=np.float32), np.arange(n, dtype=np.int64) % 2

    (xt, yt), (xv, yv), (xe, ye) = arr(8), arr(4), arr(4)
    ds = Dataset("own", xt, yt, xe, ye, (1, 2, 2), 2, False, x_val=xv, y_val=yv)
    assert ds.with_validation(0.3, seed=1) is ds
    assert ds.split("val")[0] is xv and ds.split_sizes() == {"train": 8, "val": 4, "test": 4}


def test_validation_options_are_checked():
    with pytest.raises(DatasetError, match="val_fraction must be in"):
        load_dataset("digits", val_fraction=0.9)
    with pytest.raises(DatasetError, match="no validation split"):
        load_dataset("digits").split("val")
    with pytest.raises(DatasetError, match="unknown split"):
        load_dataset("digits").split("dev")
    x = np.zeros((4, 1), np.float32)
    with pytest.raises(DatasetError, match="together"):
        Dataset("d", x, np.zeros(4, np.int64), x, np.zeros(4, np.int64), (1,), 2, False, x_val=x)


def test_a_class_with_one_sample_stays_in_training():
    y = np.array([0, 0, 0, 0, 1], dtype=np.int64)
    val, train = carve_validation(y, 0.5, seed=0)
    assert 4 in train and len(val) == 2 and set(y[val]) == {0}
