"""A uniformly random driver: the floor every learned policy must beat."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import gymnasium as gym
import numpy as np


class RandomAgent:
    """Samples actions uniformly from the action space with its own seeded generator.

    Args:
        action_space: the env's action space (a `Box`).
        seed: seed of the agent's generator.
    """

    name = "random"

    def __init__(self, action_space: gym.spaces.Box, *, seed: int = 0) -> None:
        self.action_space = action_space
        self._seed = seed
        self.rng = np.random.default_rng(seed)

    def reset(self) -> None:
        """Keep drawing from the same stream (episodes differ)."""

    def act(
        self, obs: Mapping[str, np.ndarray], info: Mapping[str, Any] | None = None
    ) -> np.ndarray:
        """A uniform sample from the action space."""
        low, high = self.action_space.low, self.action_space.high
        return self.rng.uniform(low, high).astype(np.float32)
