"""N-MNIST: reading 5-byte events, exact binning into frames, and the folder loader."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from snn2hw.common.errors import DatasetError
from snn2hw.data import bin_events, load_dataset, read_nmnist_events
from snn2hw.data.nmnist import EVENT_DTYPE


def encode(events: list[tuple[int, int, int, int]]) -> bytes:
    """(x, y, p, t_us) tuples -> N-MNIST 40-bit records."""
    out = bytearray()
    for x, y, p, t in events:
        out += bytes([x, y, (p << 7) | ((t >> 16) & 0x7F), (t >> 8) & 0xFF, t & 0xFF])
    return bytes(out)


def events(rows: list[tuple[int, int, int, int]]) -> np.ndarray:
    return np.array(rows, dtype=EVENT_DTYPE)


def test_read_nmnist_events_decodes_every_field(tmp_path):
    rows = [(0, 0, 0, 0), (33, 12, 1, 0x7FFFFF), (5, 33, 1, 0x012345), (7, 8, 0, 300_000)]
    path = tmp_path / "00001.bin"
    path.write_bytes(encode(rows))
    ev = read_nmnist_events(path)
    assert ev.dtype.names == ("x", "y", "p", "t")
    assert [tuple(int(v) for v in e) for e in ev] == rows


def test_overflow_markers_add_2_pow_13_us_to_later_events(tmp_path):
    path = tmp_path / "a.bin"
    path.write_bytes(encode([(1, 1, 1, 10), (0, 240, 0, 0), (2, 2, 0, 5)]))
    ev = read_nmnist_events(path)
    assert ev["t"].tolist() == [10, 5 + 8192] and ev["x"].tolist() == [1, 2]


def test_file_that_is_not_whole_events_is_refused_naming_it(tmp_path):
    path = tmp_path / "bad.bin"
    path.write_bytes(encode([(1, 1, 1, 10)]) + b"\x00\x01")
    with pytest.raises(DatasetError, match=r"bad\.bin is corrupt"):
        read_nmnist_events(path)


def test_bin_events_fixed_window_puts_events_in_exact_frames():
    ev = events(
        [
            (0, 0, 0, 0),  # frame 0
            (0, 0, 0, 99),  # frame 0, same pixel: count 2
            (1, 2, 1, 100),  # frame 1, ON channel, y=2, x=1
            (33, 33, 1, 299),  # frame 2, last pixel
            (4, 4, 0, 300),  # beyond the window: dropped
        ]
    )
    counts = bin_events(ev, n_frames=3, window_us=300, binary=False)
    assert counts.shape == (3, 2, 34, 34) and counts.dtype == np.float32
    assert counts[0, 0, 0, 0] == 2 and counts[1, 1, 2, 1] == 1 and counts[2, 1, 33, 33] == 1
    assert counts.sum() == 4
    binary = bin_events(ev, n_frames=3, window_us=300)
    assert binary[0, 0, 0, 0] == 1 and binary.sum() == 3


def test_bin_events_measures_time_from_the_first_event():
    ev = events([(0, 0, 0, 1000), (0, 0, 0, 1149), (0, 0, 0, 1150)])
    counts = bin_events(ev, n_frames=2, window_us=300, binary=False)
    assert counts[:, 0, 0, 0].tolist() == [2, 1]


def test_bin_events_without_window_spans_the_sample_duration():
    ev = events([(0, 0, 0, 50), (0, 0, 0, 59), (0, 0, 0, 60), (0, 0, 0, 149)])
    # duration 100 us over 10 frames: frame = (t - 50) * 10 // 100
    counts = bin_events(ev, n_frames=10, window_us=None, binary=False)
    assert counts[:, 0, 0, 0].tolist() == [2, 1, 0, 0, 0, 0, 0, 0, 0, 1]
    np.testing.assert_array_equal(bin_events(ev, 10, 0, binary=False), counts)


def test_bin_events_drops_out_of_sensor_events_and_handles_empty_input():
    ev = events([(34, 0, 0, 0), (0, 40, 1, 0), (3, 3, 1, 0)])
    assert bin_events(ev, 2, 100).sum() == 1
    assert bin_events(events([]), 4, 100).shape == (4, 2, 34, 34)


def _write_tree(root: Path, per_class: int = 2) -> None:
    for split in ("Train", "Test"):
        for digit in range(10):
            folder = root / split / str(digit)
            folder.mkdir(parents=True)
            for k in range(per_class):
                # One ON event at x = digit, y = k, t = 10 ms * digit (frame `digit` with 10 ms
                # frames), plus an OFF event at the start.
                rows = [(0, 0, 0, 0), (digit, k, 1, 10_000 * digit + 5)]
                (folder / f"{k:05d}.bin").write_bytes(encode(rows))


def test_nmnist_loader_reads_train_test_folders_into_frames(tmp_path):
    _write_tree(tmp_path / "N-MNIST")
    ds = load_dataset("nmnist", tmp_path, n_frames=10, window_us=100_000)
    assert ds.temporal and ds.input_shape == (2, 34, 34) and ds.num_classes == 10
    assert ds.x_train.shape == (20, 10, 2, 34, 34) and ds.x_test.shape == (20, 10, 2, 34, 34)
    assert ds.x_train.dtype == np.float32 and ds.y_train.dtype == np.int64
    assert sorted(ds.y_train.tolist()) == sorted(list(range(10)) * 2)
    for x, y in zip(ds.x_train, ds.y_train, strict=True):
        on = np.argwhere(x[:, 1])
        assert on.shape == (1, 3) and on[0, 0] == y and on[0, 2] == y  # frame and x = digit
        assert x[0, 0, 0, 0] == 1 and x.sum() == 2


def test_nmnist_loader_shuffles_by_seed_and_limits_per_class(tmp_path):
    _write_tree(tmp_path, per_class=3)
    a = load_dataset("nmnist", tmp_path, seed=0, n_frames=2)
    b = load_dataset("nmnist", tmp_path, seed=0, n_frames=2)
    c = load_dataset("nmnist", tmp_path, seed=1, n_frames=2)
    np.testing.assert_array_equal(a.y_train, b.y_train)
    assert not np.array_equal(a.y_train, c.y_train)
    small = load_dataset("nmnist", tmp_path, n_frames=2, max_per_class=1)
    assert sorted(small.y_test.tolist()) == list(range(10))


def test_nmnist_missing_folders_message_names_where_it_looked(tmp_path):
    with pytest.raises(DatasetError) as err:
        load_dataset("nmnist", tmp_path)
    msg = str(err.value)
    assert "'Train'" in msg and str(tmp_path.resolve()) in msg and "--data-dir" in msg


def test_nmnist_bad_option_values_are_refused(tmp_path):
    _write_tree(tmp_path, per_class=1)
    with pytest.raises(DatasetError, match="n_frames"):
        load_dataset("nmnist", tmp_path, n_frames=0)
    with pytest.raises(DatasetError, match="window_us"):
        load_dataset("nmnist", tmp_path, window_us=-5)
