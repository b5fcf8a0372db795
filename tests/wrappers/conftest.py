"""A small fake GTA5Drive env with exactly the real observation and action spaces."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
import pytest
from gymnasium import spaces


class FakeDriveEnv(gym.Env):
    """Deterministic stand-in for ``GTA5Drive-v0``: random frames, speed and purpose from a seed.

    Args:
        hood: hood camera (height, width).
        cinematic: cinematic camera (height, width), or ``None`` for no cinematic key.
        max_steps: episode length (truncation).
    """

    metadata: dict[str, Any] = {"render_modes": []}

    def __init__(
        self,
        *,
        hood: tuple[int, int] = (18, 32),
        cinematic: tuple[int, int] | None = None,
        max_steps: int = 20,
    ) -> None:
        obs: dict[str, spaces.Space] = {
            "hood": spaces.Box(0, 255, (*hood, 3), np.uint8),
            "purpose": spaces.Box(
                np.array([0, -1, -1], np.float32), np.array([1, 1, 1], np.float32), dtype=np.float32
            ),
            "speed": spaces.Box(0.0, 100.0, (1,), np.float32),
        }
        if cinematic is not None:
            obs["cinematic"] = spaces.Box(0, 255, (*cinematic, 3), np.uint8)
        self.observation_space = spaces.Dict(obs)
        self.action_space = spaces.Box(-1.0, 1.0, (2,), np.float32)
        self.max_steps = max_steps
        self._rng = np.random.default_rng(0)
        self._t = 0

    def _obs(self) -> dict[str, np.ndarray]:
        out: dict[str, np.ndarray] = {}
        assert isinstance(self.observation_space, spaces.Dict)
        for key, space in self.observation_space.spaces.items():
            if key in ("hood", "cinematic"):
                out[key] = self._rng.integers(0, 256, space.shape, dtype=np.uint8)
        out["purpose"] = np.array(
            [self._rng.uniform(0, 1), *self._unit(self._rng.uniform(-np.pi, np.pi))], np.float32
        )
        out["speed"] = np.array([self._rng.uniform(0, 20)], np.float32)
        return out

    @staticmethod
    def _unit(angle: float) -> tuple[float, float]:
        return float(np.sin(angle)), float(np.cos(angle))

    def reset(self, *, seed: int | None = None, options: dict | None = None) -> tuple[Any, dict]:
        super().reset(seed=seed)
        if seed is not None:
            self._rng = np.random.default_rng(seed)
        self._t = 0
        return self._obs(), {}

    def step(self, action: Any) -> tuple[Any, float, bool, bool, dict]:
        self._t += 1
        self.last_action = np.asarray(action, np.float32)
        return self._obs(), 0.0, False, self._t >= self.max_steps, {}


@pytest.fixture
def fake_env() -> FakeDriveEnv:
    return FakeDriveEnv()
