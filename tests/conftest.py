"""Shared fixtures. Tests read third-party reference data from tests/reference_data (in the
repository; its README names each file's origin and licence), or from ``SNN2HW_EXTERNAL``."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parent.parent
EXTERNAL = Path(os.environ.get("SNN2HW_EXTERNAL", ROOT / "tests" / "reference_data"))

torch.set_num_threads(2)


@pytest.fixture(scope="session")
def external() -> Path:
    """Folder of real third-party artifacts (tests/reference_data)."""
    if not EXTERNAL.is_dir():
        pytest.fail(f"reference data folder missing: {EXTERNAL} (set SNN2HW_EXTERNAL)")
    return EXTERNAL
