"""Puts tests/backends on sys.path: the exporter tests share its plain-module QGraph
builders (qgraph_builders, onnx_graphs), also when this folder runs on its own."""

from __future__ import annotations

import sys
from pathlib import Path

_BUILDERS = str(Path(__file__).resolve().parents[1] / "backends")
if _BUILDERS not in sys.path:
    sys.path.insert(0, _BUILDERS)
