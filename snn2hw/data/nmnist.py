"""``nmnist``: N-MNIST event recordings (Orchard et al. 2015), binned into frames.

Layout: ``<root>/Train/<digit>/*.bin`` and ``<root>/Test/<digit>/*.bin``. Every event is 5 bytes:
byte 0 = x (0..33), byte 1 = y (0..33), bit 7 of byte 2 = polarity (1 = ON), and bits 6..0 of
byte 2 followed by bytes 3 and 4 = a 23-bit timestamp in microseconds.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from snn2hw.common.errors import DatasetError
from snn2hw.data.base import Dataset, describe_dirs, positive_int

DESCRIPTION = "N-MNIST 60,000/10,000 event recordings binned to [T, 2, 34, 34] frames"

SENSOR_SHAPE = (2, 34, 34)
#: Structured dtype returned by :func:`read_nmnist_events`.
EVENT_DTYPE = np.dtype([("x", np.int16), ("y", np.int16), ("p", np.int8), ("t", np.int64)])
_EVENT_BYTES = 5
# Orchard's reference reader (Read_Ndataset.m, also used by tonic): an event with y == 240 is
# not an event but a timestamp overflow marker adding 2**13 us to every later event.
_OVERFLOW_Y = 240
_OVERFLOW_US = 1 << 13
_HINT = (
    "download Train.zip and Test.zip of N-MNIST (www.garrickorchard.com/datasets/n-mnist), "
    "unzip them there and pass --data-dir"
)


def read_nmnist_events(path: str | Path) -> np.ndarray:
    """Read one N-MNIST ``.bin`` file -> structured array with fields ``x, y, p, t`` (us).

    Overflow markers are applied and dropped; events keep their file order (time order).
    Raises :class:`DatasetError` if the file size is not a whole number of 5-byte events.
    """
    path = Path(path)
    try:
        raw = np.fromfile(path, dtype=np.uint8)
    except OSError as err:
        raise DatasetError(f"nmnist: cannot read {path}: {err}") from err
    if raw.size % _EVENT_BYTES:
        raise DatasetError(
            f"nmnist: file {path} is corrupt ({raw.size} bytes is not a whole number of "
            "5-byte events); download it again"
        )
    ev = raw.reshape(-1, _EVENT_BYTES).astype(np.int64)
    t = ((ev[:, 2] & 0x7F) << 16) | (ev[:, 3] << 8) | ev[:, 4]
    overflow = ev[:, 1] == _OVERFLOW_Y
    if overflow.any():
        t = t + np.cumsum(overflow) * _OVERFLOW_US
    keep = ~overflow
    out = np.empty(int(keep.sum()), dtype=EVENT_DTYPE)
    out["x"] = ev[keep, 0]
    out["y"] = ev[keep, 1]
    out["p"] = ev[keep, 2] >> 7
    out["t"] = t[keep]
    return out


def bin_events(
    events: np.ndarray,
    n_frames: int,
    window_us: int | None,
    shape: tuple[int, int, int] = SENSOR_SHAPE,
    binary: bool = True,
) -> np.ndarray:
    """Count events per ``(frame, polarity, y, x)`` -> float32 ``[n_frames, *shape]``.

    Time starts at the first event ``t0``. With ``window_us`` the frames split
    ``[t0, t0 + window_us)`` evenly and later events are dropped; with ``window_us`` None or 0
    (TOML has no null) they split the sample's own duration ``[t0, t_last]``. An event at
    ``t`` lands in frame ``(t - t0) * n_frames // window``. Events outside ``shape`` are
    dropped. ``binary`` clips counts to 1 (spike / no spike).
    """
    n_frames = positive_int("nmnist", "n_frames", n_frames)
    n_pol, height, width = (int(s) for s in shape)
    frames = np.zeros((n_frames, n_pol, height, width), dtype=np.float32)
    if len(events) == 0:
        return frames
    t = events["t"].astype(np.int64)
    t0 = int(t.min())
    window = (
        int(t.max()) - t0 + 1
        if window_us is None or window_us == 0
        else positive_int("nmnist", "window_us", window_us)
    )
    frame = (t - t0) * n_frames // window
    x, y, p = (events[k].astype(np.int64) for k in ("x", "y", "p"))
    ok = (frame < n_frames) & (p >= 0) & (p < n_pol) & (y >= 0) & (y < height)
    ok &= (x >= 0) & (x < width)
    flat = ((frame[ok] * n_pol + p[ok]) * height + y[ok]) * width + x[ok]
    counts = np.bincount(flat, minlength=frames.size).reshape(frames.shape)
    if binary:
        np.minimum(counts, 1, out=counts)
    frames[...] = counts
    return frames


def _find_root(data_dir: Path) -> Path:
    dirs = [data_dir, data_dir / "nmnist", data_dir / "N-MNIST", data_dir / "NMNIST"]
    for d in dirs:
        if (d / "Train").is_dir() and (d / "Test").is_dir():
            return d
    raise DatasetError(
        f"nmnist: folders 'Train' and 'Test' not found in {describe_dirs(dirs)}; {_HINT}"
    )


def _list_split(root: Path, split: str, max_per_class: int | None) -> list[tuple[Path, int]]:
    files: list[tuple[Path, int]] = []
    for digit in range(10):
        found = sorted((root / split / str(digit)).glob("*.bin"))
        files += [(f, digit) for f in found[:max_per_class]]
    if not files:
        raise DatasetError(
            f"nmnist: no .bin files in {root / split}/<digit>/ (expected folders 0..9); {_HINT}"
        )
    return files


def load(
    data_dir: Path,
    seed: int = 0,
    *,
    n_frames: int = 30,
    window_us: int | None = 300_000,
    binary: bool = True,
    max_per_class: int | None = None,
) -> Dataset:
    """Temporal float32 ``[N, n_frames, 2, 34, 34]``; each split shuffled by ``seed``.

    ``window_us`` None or 0 bins each sample over its own duration (see :func:`bin_events`).
    ``max_per_class`` keeps the first k files (sorted by name) of each digit, for quick runs.
    The full set is large: 60,000 x 30 frames is about 8.3 GB as float32.
    """
    n_frames = positive_int("nmnist", "n_frames", n_frames)
    if window_us == 0:
        window_us = None  # 0 = per-sample duration, spelled so it fits a TOML config
    if window_us is not None:
        window_us = positive_int("nmnist", "window_us", window_us)
    if max_per_class is not None:
        max_per_class = positive_int("nmnist", "max_per_class", max_per_class)
    root = _find_root(data_dir)
    rng = np.random.default_rng(seed)
    out: dict[str, np.ndarray] = {}
    for split, key in (("Train", "train"), ("Test", "test")):
        files = _list_split(root, split, max_per_class)
        # Shuffle so that a prefix (e.g. a quick evaluation) is not all zeros.
        order = rng.permutation(len(files))
        x = np.empty((len(files), n_frames, *SENSOR_SHAPE), dtype=np.float32)
        y = np.empty(len(files), dtype=np.int64)
        for i, j in enumerate(order):
            path, digit = files[j]
            x[i] = bin_events(read_nmnist_events(path), n_frames, window_us, SENSOR_SHAPE, binary)
            y[i] = digit
        out[f"x_{key}"], out[f"y_{key}"] = x, y
    return Dataset(
        name="nmnist",
        input_shape=SENSOR_SHAPE,
        num_classes=10,
        temporal=True,
        info={"root": str(root), "n_frames": n_frames, "window_us": window_us, "binary": binary},
        **out,
    )
