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


def to_chip(frames: torch.Tensor | np.ndarray, fmt: InputFormat) -> tuple[np.ndarray, torch.Tensor]:
    """``(integer frames, the float frames they stand for)``, both ``[T, B, ...]``."""
    x = torch.as_tensor(frames, dtype=torch.float64)
    if fmt.message_bits == 0:
        ints = (x > 0.5).to(torch.int64)
    else:
        ints = torch.clamp(torch.round(x / fmt.unit), 0, 2**fmt.message_bits - 1).to(torch.int64)
    return ints.numpy(), ints.to(torch.float32) * fmt.unit
