"""Shared fixtures. Tests read third-party reference data from ../shared/external."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parent.parent
EXTERNAL = Path(os.environ.get("SNN2HW_EXTERNAL", ROOT.parent / "shared" / "external"))

torch.set_num_threads(2)


@pytest.fixture(scope="session")
def external() -> Path:
    """Folder of real third-party artifacts (../shared/external)."""
    if not EXTERNAL.is_dir():
        pytest.fail(f"reference data folder missing: {EXTERNAL} (set SNN2HW_EXTERNAL)")
    return EXTERNAL
