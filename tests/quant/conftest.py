"""Fixtures shared by the quant tests."""

from __future__ import annotations

from pathlib import Path

import pytest
from qgraph_samples import two_layer_dense_graph


@pytest.fixture
def saved(tmp_path: Path) -> Path:
    path = tmp_path / "g.qgraph"
    two_layer_dense_graph().save(path)
    return path
