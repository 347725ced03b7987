"""Data sets that ship inside installed packages: digits, mnist5k, mnist1d."""

from __future__ import annotations

import random

import numpy as np
import pytest

from snn2hw.common.errors import DatasetError
from snn2hw.data import Dataset, load_dataset


def _check_static(ds: Dataset, n_train: int, n_test: int, shape: tuple[int, ...]) -> None:
    assert ds.x_train.shape == (n_train, *shape) and ds.x_test.shape == (n_test, *shape)
    assert ds.x_train.dtype == np.float32 and ds.y_train.dtype == np.int64
    assert ds.input_shape == shape and not ds.temporal and ds.num_classes == 10
    assert 0.0 <= ds.x_train.min() and ds.x_train.max() <= 1.0


def test_digits_is_the_default_with_1437_360_split_scaled_to_unit_range():
    ds = load_dataset()
    assert ds.name == "digits"
    _check_static(ds, 1437, 360, (1, 8, 8))
    assert ds.x_train.max() == 1.0


def test_digits_split_is_deterministic_for_a_seed_and_changes_with_it():
    a, b, c = load_dataset("digits"), load_dataset("digits", seed=0), load_dataset("digits", seed=1)
    np.testing.assert_array_equal(a.x_train, b.x_train)
    np.testing.assert_array_equal(a.y_test, b.y_test)
    assert not np.array_equal(a.y_test, c.y_test)


def test_digits_split_is_stratified():
    ds = load_dataset("digits")
    train = np.bincount(ds.y_train, minlength=10) / len(ds.y_train)
    test = np.bincount(ds.y_test, minlength=10) / len(ds.y_test)
    assert np.abs(train - test).max() < 0.01


def test_digits_splits_are_disjoint_and_cover_all_samples():
    ds = load_dataset("digits")
    rows = {r.tobytes() for r in ds.x_train} | {r.tobytes() for r in ds.x_test}
    # load_digits has a handful of exact duplicate images, so compare with the unique count.
    from sklearn.datasets import load_digits

    unique = {(r.astype(np.float32) / 16).reshape(1, 8, 8).tobytes() for r in load_digits().images}
    assert rows == unique


def test_mnist5k_has_4000_1000_stratified_split_of_28x28_images():
    ds = load_dataset("mnist5k")
    _check_static(ds, 4000, 1000, (1, 28, 28))
    assert np.bincount(ds.y_train).tolist() == [400] * 10
    assert np.bincount(ds.y_test).tolist() == [100] * 10
    again = load_dataset("mnist5k")
    np.testing.assert_array_equal(ds.y_train, again.y_train)


def test_mnist5k_arrays_are_not_shared_between_loads():
    a = load_dataset("mnist5k")
    a.x_train[:] = 7.0
    assert load_dataset("mnist5k").x_train.max() == 1.0


def test_mnist1d_is_temporal_40_steps_one_channel():
    ds = load_dataset("mnist1d")
    assert ds.temporal and ds.input_shape == (1,) and ds.num_classes == 10
    assert ds.x_train.shape == (4000, 40, 1) and ds.x_test.shape == (1000, 40, 1)
    assert ds.x_train.dtype == np.float32 and ds.y_test.dtype == np.int64
    assert ds.n_steps == 40
    # The library standardises the whole set: mean ~0, std ~1.
    assert abs(float(ds.x_train.mean())) < 0.05 and abs(float(ds.x_train.std()) - 1) < 0.05


def test_mnist1d_minmax_maps_training_range_to_unit_interval():
    ds = load_dataset("mnist1d", normalize="minmax")
    assert ds.x_train.min() == 0.0 and ds.x_train.max() == 1.0
    assert 0.0 <= ds.x_test.min() and ds.x_test.max() <= 1.0
    with pytest.raises(DatasetError, match="normalize"):
        load_dataset("mnist1d", normalize="zscore")


def test_mnist1d_generation_leaves_global_random_state_alone():
    random.seed(123)
    np.random.seed(123)
    expected = (random.random(), np.random.rand())
    random.seed(123)
    np.random.seed(123)
    from snn2hw.data import mnist1d

    mnist1d._generate.cache_clear()
    load_dataset("mnist1d")
    assert (random.random(), np.random.rand()) == expected
