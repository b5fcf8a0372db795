"""Shared fixtures for the environment tests."""

from __future__ import annotations

from collections.abc import Iterator

import gymnasium as gym
import pytest

import gta_env  # noqa: F401  (registers GTA5Drive-v0)


@pytest.fixture
def make_env() -> Iterator:
    """Factory for `GTA5Drive-v0` on the embedded world; closes what it made."""
    made: list[gym.Env] = []

    def factory(**kwargs):
        kwargs.setdefault("backend", "sim")
        env = gym.make("GTA5Drive-v0", **kwargs)
        made.append(env)
        return env

    yield factory
    for env in made:
        env.close()
