"""Synthetic event stream: deterministic, balanced, class-dependent."""

from __future__ import annotations

import numpy as np
import pytest

from snn2hw.common.errors import DatasetError
from snn2hw.data import load_dataset, make_synthetic_events


def test_same_seed_gives_identical_events_and_another_seed_differs():
    a = make_synthetic_events(20, shape=(2, 16, 16), n_frames=8, seed=3)
    b = make_synthetic_events(20, shape=(2, 16, 16), n_frames=8, seed=3)
    c = make_synthetic_events(20, shape=(2, 16, 16), n_frames=8, seed=4)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    assert not np.array_equal(a[0], c[0])


def test_events_are_binary_frames_with_balanced_labels():
    x, y = make_synthetic_events(50, n_classes=5, n_frames=6)
    assert x.shape == (50, 6, 2, 34, 34) and x.dtype == np.float32 and y.dtype == np.int64
    assert set(np.unique(x)) <= {0.0, 1.0}
    assert np.bincount(y).tolist() == [10] * 5


def test_noise_rate_sets_the_background_activity():
    x, _ = make_synthetic_events(10, n_frames=5, rate=0.0)
    quiet = x.mean()
    x, _ = make_synthetic_events(10, n_frames=5, rate=0.2)
    assert quiet < 0.02 and abs(x.mean() - quiet - 0.2) < 0.03


def test_classes_move_in_different_directions():
    x, y = make_synthetic_events(40, n_classes=4, n_frames=10, rate=0.0)
    # Centre of mass of ON activity: last frames minus first frames = direction of motion.
    grid_y, grid_x = np.mgrid[0:34, 0:34]

    def com(frames):
        w = frames[:, 1].sum(0)
        return np.array([(w * grid_x).sum(), (w * grid_y).sum()]) / w.sum()

    motion = np.array([com(s[-3:]) - com(s[:3]) for s in x])
    expected = {0: (1, 0), 1: (0, 1), 2: (-1, 0), 3: (0, -1)}  # angle 2*pi*c/4 in (x, y)
    for c, (dx, dy) in expected.items():
        m = motion[y == c].mean(0)
        assert np.dot(m, (dx, dy)) > 4 and abs(np.cross(m, (dx, dy))) < 2


def test_registered_dataset_has_fixed_split_and_options():
    ds = load_dataset("synthetic-events", n_train=30, n_test=10, n_frames=4, shape=(2, 12, 12))
    assert ds.temporal and ds.input_shape == (2, 12, 12) and ds.n_steps == 4
    assert ds.x_train.shape == (30, 4, 2, 12, 12) and ds.x_test.shape == (10, 4, 2, 12, 12)
    again = load_dataset("synthetic-events", n_train=30, n_test=10, n_frames=4, shape=(2, 12, 12))
    np.testing.assert_array_equal(ds.x_test, again.x_test)


def test_invalid_arguments_are_refused():
    with pytest.raises(DatasetError, match="rate"):
        make_synthetic_events(4, rate=1.5)
    with pytest.raises(DatasetError, match="shape"):
        make_synthetic_events(4, shape=(34, 34))
