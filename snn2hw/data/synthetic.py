"""``synthetic-events``: a deterministic, learnable event stream for tests and smoke runs.

Class ``c`` is a blob that starts near the centre and moves outward in direction
``2*pi*c / n_classes``. The ON channel fires where the blob is now, the OFF channel where it was
one frame earlier (its trailing edge), and every pixel also fires at random with probability
``rate`` per frame. Each sample jitters the start point and speed, so the classes differ by
where the activity goes and in which order - learnable by a small network, not a lookup table.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from snn2hw.common.errors import DatasetError
from snn2hw.data.base import Dataset, positive_int, shape_option

DESCRIPTION = "synthetic moving-blob event frames, one direction per class (generated, for tests)"

#: Peak probability that a pixel at the blob centre fires in a frame.
_PEAK = 0.9
_CHUNK = 64


def make_synthetic_events(
    n_samples: int,
    n_classes: int = 10,
    shape: tuple[int, int, int] = (2, 34, 34),
    n_frames: int = 30,
    rate: float = 0.03,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """Generate ``(x, y)``: binary float32 ``[n_samples, n_frames, *shape]`` and int64 labels.

    Labels are balanced (``n_samples // n_classes`` or one more each) in a seeded random order.
    The same arguments always give the same arrays.
    """
    name = "synthetic-events"
    n_samples = positive_int(name, "n_samples", n_samples)
    n_classes = positive_int(name, "n_classes", n_classes)
    n_frames = positive_int(name, "n_frames", n_frames)
    n_pol, height, width = shape_option(name, "shape", shape, 3)
    if not 0.0 <= float(rate) < 1.0:
        raise DatasetError(f"{name}: option rate must be in [0, 1), got {rate!r}")
    rng = np.random.default_rng(seed)
    y = rng.permutation(np.arange(n_samples) % n_classes).astype(np.int64)

    size = float(min(height, width))
    sigma = max(1.0, 0.06 * size)
    angle = 2.0 * np.pi * y / n_classes
    direction = np.stack([np.cos(angle), np.sin(angle)], axis=1)  # (x, y) per sample
    centre = np.array([(width - 1) / 2.0, (height - 1) / 2.0])
    jitter = rng.uniform(-0.06 * size, 0.06 * size, size=(n_samples, 2))
    start = centre + 0.1 * size * direction + jitter
    length = 0.3 * size * rng.uniform(0.85, 1.15, size=n_samples)
    # Position in frame k = start + k/(T-1) * length * direction; index -1 is the OFF trail of
    # frame 0, and the OFF channel of frame 0 is masked below (nothing was there before).
    steps = np.arange(-1, n_frames) / max(n_frames - 1, 1)
    pos = start[:, None, :] + steps[None, :, None] * (length[:, None] * direction)[:, None, :]

    gy, gx = np.mgrid[0:height, 0:width].astype(np.float64)
    x = np.zeros((n_samples, n_frames, n_pol, height, width), dtype=np.float32)
    for lo in range(0, n_samples, _CHUNK):
        hi = min(lo + _CHUNK, n_samples)
        p = pos[lo:hi]
        d2 = (gx - p[..., 0, None, None]) ** 2 + (gy - p[..., 1, None, None]) ** 2
        blob = _PEAK * np.exp(-d2 / (2.0 * sigma**2))  # [n, T+1, H, W]
        prob = np.full((hi - lo, n_frames, n_pol, height, width), float(rate))
        # A pixel fires if the signal or the noise fires: 1 - (1 - s)(1 - rate).
        prob[:, :, -1] = 1.0 - (1.0 - blob[:, 1:]) * (1.0 - rate)  # ON: current position
        if n_pol >= 2:
            off = 1.0 - (1.0 - blob[:, :-1]) * (1.0 - rate)  # OFF: previous position
            off[:, 0] = rate
            prob[:, :, 0] = off
        x[lo:hi] = rng.random(prob.shape) < prob
    return x, y


def load(
    data_dir: Path | None = None,
    seed: int = 0,
    *,
    n_train: int = 500,
    n_test: int = 100,
    n_classes: int = 10,
    shape: tuple[int, int, int] = (2, 34, 34),
    n_frames: int = 30,
    rate: float = 0.03,
) -> Dataset:
    """Temporal float32 ``[N, n_frames, *shape]``; the first ``n_train`` samples of one seeded
    stream are the training set and the next ``n_test`` the test set."""
    n_train = positive_int("synthetic-events", "n_train", n_train)
    n_test = positive_int("synthetic-events", "n_test", n_test)
    x, y = make_synthetic_events(n_train + n_test, n_classes, shape, n_frames, rate, seed)
    return Dataset(
        name="synthetic-events",
        x_train=x[:n_train],
        y_train=y[:n_train],
        x_test=x[n_train:],
        y_test=y[n_train:],
        input_shape=tuple(shape),
        num_classes=n_classes,
        temporal=True,
        info={"seed": seed, "rate": rate},
    )
