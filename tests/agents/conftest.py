"""Fixtures for the agent tests."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _torch_on_one_thread(one_thread: None) -> None:
    """Every test here runs torch on one thread (fixture in tests/conftest.py)."""
