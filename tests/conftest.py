"""Shared fixtures: where the shared samples live, and a clean settings cache per test."""

from __future__ import annotations

from pathlib import Path

import pytest

SHARED = Path(__file__).resolve().parents[2] / "shared"
SAMPLES = SHARED / "samples"


@pytest.fixture
def samples_dir() -> Path:
    """The shared sample passes and certificates, or a skip when they are absent."""
    if not SAMPLES.is_dir():
        pytest.skip(f"shared samples not found at {SAMPLES}")
    return SAMPLES
