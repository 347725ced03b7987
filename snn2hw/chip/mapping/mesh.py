"""Mesh placement geometry: where a core sits, and tile hops between two places.

Cores are numbered layer after layer; ``cores_per_tile`` cores share a mesh tile; tiles
fill a chip's square-ish grid (:func:`_grid`) in snake order (:func:`_snake`), chips fill a
square-ish grid of chips the same way. A spike from core a to core b crosses ``|dx|``
east-west and ``|dy|`` north-south tile hops (dimension-order routing), see :class:`Hops`.
:meth:`snn2hw.chip.mapping.Mapping.position` applies this to a mapping.

May import: numpy and the standard library; nothing of ``snn2hw``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Hops:
    """Tile hops of one route: east-west (x) and north-south (y)."""

    ew: int
    ns: int

    @property
    def total(self) -> int:
        return self.ew + self.ns


def _snake(i: np.ndarray, width: int) -> tuple[np.ndarray, np.ndarray]:
    """Snake (boustrophedon) order on a grid ``width`` wide: consecutive indices adjacent."""
    y = i // width
    x = np.where(y % 2 == 0, i % width, width - 1 - i % width)
    return x, y


def _grid(n: int) -> tuple[int, int]:
    """(width, height) of a square-ish grid holding n cells: the most square exact
    factorisation, or a ceil(sqrt) square when n has no useful factorisation."""
    if n <= 0:
        return 1, 1
    h = max(d for d in range(1, math.isqrt(n) + 1) if n % d == 0)
    if h == 1 and n > 3:
        w = math.ceil(math.sqrt(n))
        return w, math.ceil(n / w)
    return n // h, h
