"""A uniformly random driver: the floor every learned policy must beat."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import gymnasium as gym
import numpy as np


class RandomAgent:
    """Samples actions uniformly from the action space with its own seeded generator.

    With ``hold=1`` (the default) every step gets a fresh sample: the pedals cancel out on
    average and the car crawls (well under 1 km/h), so it seldom reaches a stop line. With
    ``hold=k`` each sample is held for ``k`` steps (*sticky* random actions, as in action-repeat
    exploration baselines): a second of full throttle or a held turn moves the car, so a random
    driver also meets the town's rules (red lights, walkers) and breaks them.

    Args:
        action_space: the env's action space (a `Box`).
        seed: seed of the agent's generator.
        hold: steps each sampled action is repeated (1: a new sample every step).
    """

    name = "random"

    def __init__(self, action_space: gym.spaces.Box, *, seed: int = 0, hold: int = 1) -> None:
        if int(hold) != hold or hold < 1:
            raise ValueError(f"hold must be a whole number of steps >= 1, got {hold!r}")
        self.action_space = action_space
        self.hold = int(hold)
        self._seed = seed
        self.rng = np.random.default_rng(seed)
        self._action: np.ndarray | None = None
        self._left = 0

    def reset(self) -> None:
        """Keep drawing from the same stream (episodes differ); a new episode starts with a
        fresh sample."""
        self._left = 0

    def act(
        self, obs: Mapping[str, np.ndarray], info: Mapping[str, Any] | None = None
    ) -> np.ndarray:
        """A uniform sample from the action space (the held one while it lasts)."""
        if self._left == 0 or self._action is None:
            low, high = self.action_space.low, self.action_space.high
            self._action = self.rng.uniform(low, high).astype(np.float32)
            self._left = self.hold
        self._left -= 1
        return self._action.copy()
