"""Shared test set-up: offscreen Qt when there is no display, few threads, seeded torch."""

from __future__ import annotations

import os
import sys

if not os.environ.get("DISPLAY") and not os.environ.get("WAYLAND_DISPLAY"):
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("OMP_NUM_THREADS", "2")

from pathlib import Path  # noqa: E402

import pytest  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data" / "rgbt_real"


@pytest.fixture(scope="session")
def rgbt_real() -> Path:
    """Real public EO/IR samples (read in place, never copied). Skips when absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real samples not found at {SHARED_DATA}")
    return SHARED_DATA


@pytest.fixture(autouse=True)
def _seed_torch():
    if "torch" in sys.modules:
        import torch

        torch.manual_seed(0)
    yield
