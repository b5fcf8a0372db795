"""Fixtures of the GTA5 backend tests: an isolated config dir and a running fake bridge."""

from __future__ import annotations

import pytest

from .fakes import EchoServer


@pytest.fixture(autouse=True)
def _isolated_config(tmp_path, monkeypatch):
    """Never touch the real user's config dir or token."""
    monkeypatch.setenv("GTA5DRIVE_CONFIG_DIR", str(tmp_path / "config"))
    monkeypatch.delenv("GTA5DRIVE_BRIDGE_TOKEN", raising=False)


@pytest.fixture
def echo_server():
    server = EchoServer().start()
    yield server
    server.close()
