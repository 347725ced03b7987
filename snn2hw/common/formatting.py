"""Human-readable numbers for reports: energies (pJ in), times (ns in) and counts.

May import: the standard library only.
"""

from __future__ import annotations

import math


def format_energy(pj: float | None) -> str:
    """``1234.5`` pJ -> ``'1.23 nJ'``; None -> ``'not given'``."""
    if pj is None:
        return "not given"
    if not math.isfinite(pj):
        return str(pj)
    mag = abs(pj)
    for scale, unit in ((1e9, "mJ"), (1e6, "µJ"), (1e3, "nJ")):
        if mag >= scale:
            return f"{pj / scale:.3g} {unit}"
    return f"{pj:.3g} pJ"


def format_time(ns: float | None) -> str:
    """``1234`` ns -> ``'1.23 µs'``; None -> ``'not modelled'``."""
    if ns is None:
        return "not modelled"
    mag = abs(ns)
    for scale, unit in ((1e9, "s"), (1e6, "ms"), (1e3, "µs")):
        if mag >= scale:
            return f"{ns / scale:.3g} {unit}"
    return f"{ns:.3g} ns"


def format_count(x: float) -> str:
    """Counts per inference: integers with separators, fractions with 4 significant digits."""
    if float(x).is_integer():
        return f"{int(x):,}"
    return f"{x:,.1f}" if abs(x) >= 100 else f"{x:.4g}"
