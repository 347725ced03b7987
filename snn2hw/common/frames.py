"""Input frames as every backend takes them in.

May import: numpy and ``snn2hw.common``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from snn2hw.common.errors import GraphError


def integer_frames(inputs: Any) -> np.ndarray:
    """``inputs`` (an array or anything ``np.asarray`` takes) as a numpy integer (or bool)
    array in the machine's byte order: frames read from a file with an explicit byte order
    (``'>i2'``) keep it, and numba and torch take native ones only. Raises
    :class:`GraphError` for any other dtype."""
    arr = np.asarray(inputs)
    if arr.dtype.kind not in "iub":
        raise GraphError(f"input frames must be integers, got dtype {arr.dtype}")
    if not arr.dtype.isnative:
        arr = arr.astype(arr.dtype.newbyteorder("="))
    return arr
