"""Resolving the artifact a command names: an export folder or a ``.qgraph`` file.

``simulate``, ``compare``, ``energy`` and ``report`` accept either; :func:`qgraph_path`
turns both into the path of one quantized graph (or a one-line error).

May import: :mod:`snn2hw.common` only.
"""

from __future__ import annotations

from pathlib import Path

from snn2hw.common.errors import Snn2hwError

__all__ = ["qgraph_path"]


def qgraph_path(artifact: str | Path) -> Path:
    """An export folder (its single .qgraph) or a .qgraph file."""
    p = Path(artifact)
    if p.is_dir():
        found = sorted(p.glob("*.qgraph"))
        if len(found) != 1:
            raise Snn2hwError(f"{p}: expected exactly one .qgraph file, found {len(found)}")
        return found[0]
    return p
