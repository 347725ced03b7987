"""Input encodings that lava-dl's netx tutorials feed their networks, as integer frames.

* :func:`events_to_frames`: SLAYER's ``read_np_spikes`` + ``to_tensor`` for 1-D event files
  (columns x, channel, t in ms; ``round(t)`` bins, OR binning), used by the oxford
  tutorial (``tutorials/lava/lib/dl/netx/oxford/run.ipynb``, lava-dl d825ac5);
* :func:`rate_frames`: the integrate-and-fire rate encoder of the MNIST tutorial
  (``tutorials/lava/lib/dl/netx/mnist/run.ipynb``, ``PyInpImgToSpkModel.run_spk``):
  ``v += x`` (pixels in [0, 1]), spike when ``v > 1``, then ``v = 0``.

``python -m snn2hw.netx.encoding mnist5k OUT_DIR [STEPS]`` writes ``frames.npy`` and
``labels.npy`` of the mnist5k test split for ``snn2hw export/simulate --inputs``.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np


def events_to_frames(events: np.ndarray, num_neurons: int, num_steps: int) -> np.ndarray:
    """Binary frames ``[num_steps, num_neurons]`` from an ``(N, 3)`` event array (x, c, t)."""
    ev = np.asarray(events, dtype=np.float64)
    if ev.ndim != 2 or ev.shape[1] != 3:
        raise ValueError(f"events must be (N, 3) x, channel, t; got {list(ev.shape)}")
    x = np.round(ev[:, 0]).astype(np.int64)
    t = np.round(ev[:, 2]).astype(np.int64)
    ok = (x >= 0) & (x < num_neurons) & (t >= 0) & (t < num_steps)
    out = np.zeros((num_steps, num_neurons), np.int64)
    out[t[ok], x[ok]] = 1
    return out


def rate_frames(images: np.ndarray, num_steps: int) -> np.ndarray:
    """Binary frames ``[num_steps, B, F]`` of the tutorial's IF rate encoder for images
    ``[B, ...]`` in [0, 1] (flattened C-order). float64 as the tutorial's numpy model."""
    x = np.asarray(images, dtype=np.float64).reshape(len(images), -1)
    v = np.zeros_like(x)
    out = np.zeros((num_steps, *x.shape), np.int64)
    for n in range(num_steps):
        v += x
        spk = v > 1.0
        v[spk] = 0.0
        out[n] = spk
    return out


def _main(argv: list[str]) -> int:
    if len(argv) < 2 or argv[0] != "mnist5k":
        print("usage: python -m snn2hw.netx.encoding mnist5k OUT_DIR [STEPS]", file=sys.stderr)
        return 2
    from snn2hw.data import load_dataset

    out = Path(argv[1])
    steps = int(argv[2]) if len(argv) > 2 else 32
    ds = load_dataset("mnist5k")
    x, y = ds.split("test")
    out.mkdir(parents=True, exist_ok=True)
    np.save(out / "frames.npy", rate_frames(x, steps))
    np.save(out / "labels.npy", np.asarray(y, np.int64))
    print(f"wrote {out / 'frames.npy'} ({steps} steps x {len(y)} images) and labels.npy")
    return 0


if __name__ == "__main__":
    raise SystemExit(_main(sys.argv[1:]))
