"""Chip inputs: how encoded float input frames become the integer frames a QGraph runs on.

One definition, used by export (calibration), simulate, compare and energy, so every
backend — float path included — sees exactly the same input:

* binary spikes (poisson/latency encoders, binary event frames): integers 0/1,
  ``message_bits = 0``, one integer unit = 1.0;
* analog values (direct encoder, graded event counts): ``x_int = round(x / unit)`` with
  ``unit = x_max / (2^bits - 1)``, sent as graded spikes of ``bits`` bits (Loihi 2
  payloads); the float path is fed ``x_int · unit``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from snn2hw.common.errors import GraphError

GRADED_BITS = 8


@dataclass(frozen=True)
class InputFormat:
    """How float input frames map to chip integers."""

    message_bits: int  # 0: binary spikes
    unit: float  # float value of one integer step

    def to_dict(self) -> dict:
        return {"message_bits": self.message_bits, "unit": self.unit}

    @classmethod
    def from_dict(cls, d: dict) -> InputFormat:
        return cls(int(d["message_bits"]), float(d["unit"]))


def infer_input_format(
    frames: torch.Tensor | np.ndarray, x_max: float | None = None
) -> InputFormat:
    """Binary if every value is 0 or 1; else graded with ``x_max`` (default: data max)."""
    x = torch.as_tensor(frames)
    if not torch.isfinite(x).all():
        raise GraphError("input frames contain NaN or Inf")
    if x.min() < 0:
        raise GraphError("input frames contain negative values; chip inputs are non-negative")
    if bool(((x == 0) | (x == 1)).all()):
        return InputFormat(0, 1.0)
    top = float(x_max if x_max is not None else x.max())
    return InputFormat(GRADED_BITS, top / (2**GRADED_BITS - 1) if top > 0 else 1.0)


def check_integer_frames(
    frames: np.ndarray, message_bits: int, *, clip: bool = False, what: str = "inputs"
) -> np.ndarray:
    """User-supplied integer frames as int64, refused unless every value is an integer the
    graph's input can carry: 0/1 for binary spikes (``message_bits = 0``), else
    ``0 .. 2^bits - 1``. With ``clip`` out-of-range values are clipped (non-integers and
    NaN are still refused). The first offending value is named with its index."""
    x = np.asarray(frames)
    hi = 1 if message_bits == 0 else 2**message_bits - 1
    kind = "binary spikes" if message_bits == 0 else f"{message_bits}-bit graded spikes"
    if x.dtype.kind not in "biuf":
        raise GraphError(f"{what}: frames must be numbers, got dtype {x.dtype}")
    if x.dtype.kind == "f":
        bad = ~np.isfinite(x) | (x != np.round(x))
        if bad.any():
            idx = tuple(int(i) for i in np.argwhere(bad)[0])
            raise GraphError(f"{what}: value {x[idx]!r} at index {list(idx)} is not an integer; "
                             f"the graph's input takes integers 0..{hi} ({kind})")
    out = x.astype(np.int64)
    bad = (out < 0) | (out > hi)
    if bad.any() and not clip:
        idx = tuple(int(i) for i in np.argwhere(bad)[0])
        raise GraphError(f"{what}: value {int(out[idx])} at index {list(idx)} is outside "
                         f"0..{hi} ({kind}; {int(bad.sum())} values out of range); pass "
                         "--clip-inputs to clip them")
    return np.clip(out, 0, hi)


def to_chip(frames: torch.Tensor | np.ndarray, fmt: InputFormat) -> tuple[np.ndarray, torch.Tensor]:
    """``(integer frames, the float frames they stand for)``, both ``[T, B, ...]``."""
    x = torch.as_tensor(frames, dtype=torch.float64)
    if fmt.message_bits == 0:
        ints = (x > 0.5).to(torch.int64)
    else:
        ints = torch.clamp(torch.round(x / fmt.unit), 0, 2**fmt.message_bits - 1).to(torch.int64)
    return ints.numpy(), ints.to(torch.float32) * fmt.unit
