"""History of past steps added to the Dict observation.

:class:`HistoryObservation` adds the key ``"history"``: the last ``N`` (default 60, the original's
choice: two seconds at 30 steps/s) steps as rows of ``(action, speed, purpose)``, oldest first and
newest last. Row ``k`` holds the action executed at step ``k`` together with the speed and purpose
*observed* when it was chosen, so the history at step ``t`` covers steps ``t-N … t-1`` and never
contains the current observation (which the model sees through its own inputs). Rows before the
start of an episode are zeros.

:class:`PreviousAction` adds ``"prev_action"``, the action executed at the previous step (zeros
after reset): what discrete-delta outputs are relative to.

The trainer builds the same arrays from stored samples with :func:`history_row`, so stored and
live histories cannot drift apart.
"""

from __future__ import annotations

from collections import deque
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

HISTORY_KEY = "history"
PREV_ACTION_KEY = "prev_action"
DEFAULT_HISTORY_STEPS = 60


def history_row(action: np.ndarray, speed: np.ndarray, purpose: np.ndarray) -> np.ndarray:
    """Concatenate (action, speed, purpose) into history rows.

    Args:
        action: ``(..., A)`` executed action.
        speed: ``(..., 1)`` speed in m/s.
        purpose: ``(..., 3)`` purpose vector.

    Returns:
        float32 ``(..., A + 4)``.
    """
    return np.concatenate(
        [
            np.asarray(action, np.float32),
            np.asarray(speed, np.float32),
            np.asarray(purpose, np.float32),
        ],
        axis=-1,
    )


def _check_dict(env: gym.Env, name: str) -> spaces.Dict:
    space = env.observation_space
    if not isinstance(space, spaces.Dict) or not {"speed", "purpose"} <= set(space.spaces):
        raise TypeError(f"{name} needs a Dict observation with 'speed' and 'purpose', got {space}")
    if not isinstance(env.action_space, spaces.Box) or len(env.action_space.shape) != 1:
        raise TypeError(f"{name} needs a 1-D Box action space, got {env.action_space}")
    return space


class HistoryObservation(gym.Wrapper):
    """Add ``"history"``: float32 ``(num_steps, A + 4)`` rows of (action, speed, purpose).

    Args:
        env: environment with a Dict observation holding ``speed`` (1,) and ``purpose`` (3,), and
            a 1-D Box action space of size ``A``.
        num_steps: rows kept (oldest first); default 60.
    """

    def __init__(self, env: gym.Env, num_steps: int = DEFAULT_HISTORY_STEPS) -> None:
        super().__init__(env)
        space = _check_dict(env, "HistoryObservation")
        if int(num_steps) < 1:
            raise ValueError(f"num_steps must be >= 1, got {num_steps}")
        if HISTORY_KEY in space.spaces:
            raise ValueError(f"observation already has a {HISTORY_KEY!r} key")
        self.num_steps = int(num_steps)
        act = env.action_space
        assert isinstance(act, spaces.Box)
        speed, purpose = space["speed"], space["purpose"]
        assert isinstance(speed, spaces.Box) and isinstance(purpose, spaces.Box)
        low = history_row(act.low, speed.low, purpose.low)
        high = history_row(act.high, speed.high, purpose.high)
        # Zero rows pad the start of an episode, so zero must be inside the bounds.
        low, high = np.minimum(low, 0), np.maximum(high, 0)
        self._low, self._high = low, high
        self.observation_space = spaces.Dict(
            {
                **space.spaces,
                HISTORY_KEY: spaces.Box(
                    np.tile(low, (self.num_steps, 1)),
                    np.tile(high, (self.num_steps, 1)),
                    dtype=np.float32,
                ),
            }
        )
        self._rows: deque[np.ndarray] = deque(maxlen=self.num_steps)
        self._last_obs: dict | None = None

    def _observe(self, obs: dict) -> dict:
        self._last_obs = obs
        return {**obs, HISTORY_KEY: np.stack(self._rows).astype(np.float32)}

    def reset(self, *, seed: int | None = None, options: dict | None = None) -> tuple[Any, dict]:
        obs, info = self.env.reset(seed=seed, options=options)
        zero = np.zeros_like(self._low)
        self._rows = deque([zero] * self.num_steps, maxlen=self.num_steps)
        return self._observe(obs), info

    def step(self, action: Any) -> tuple[Any, float, bool, bool, dict]:
        if self._last_obs is None:
            raise RuntimeError("call reset() before step()")
        prev = self._last_obs
        obs, reward, terminated, truncated, info = self.env.step(action)
        act = self.env.action_space
        assert isinstance(act, spaces.Box)
        executed = np.clip(np.asarray(action, np.float32), act.low, act.high)
        row = history_row(executed, prev["speed"], prev["purpose"])
        self._rows.append(np.clip(row, self._low, self._high))
        return self._observe(obs), float(reward), terminated, truncated, info


class PreviousAction(gym.Wrapper):
    """Add ``"prev_action"``: the action executed at the previous step (zeros after reset).

    Args:
        env: environment with a Dict observation and a 1-D Box action space.
    """

    def __init__(self, env: gym.Env) -> None:
        super().__init__(env)
        space = env.observation_space
        act = env.action_space
        if not isinstance(space, spaces.Dict):
            raise TypeError(f"PreviousAction needs a Dict observation, got {space}")
        if not isinstance(act, spaces.Box) or len(act.shape) != 1:
            raise TypeError(f"PreviousAction needs a 1-D Box action space, got {act}")
        self._low, self._high = np.minimum(act.low, 0), np.maximum(act.high, 0)
        self.observation_space = spaces.Dict(
            {**space.spaces, PREV_ACTION_KEY: spaces.Box(self._low, self._high, dtype=np.float32)}
        )
        self._prev = np.zeros(act.shape, np.float32)

    def reset(self, *, seed: int | None = None, options: dict | None = None) -> tuple[Any, dict]:
        obs, info = self.env.reset(seed=seed, options=options)
        self._prev = np.zeros_like(self._prev)
        return {**obs, PREV_ACTION_KEY: self._prev.copy()}, info

    def step(self, action: Any) -> tuple[Any, float, bool, bool, dict]:
        obs, reward, terminated, truncated, info = self.env.step(action)
        self._prev = np.clip(np.asarray(action, np.float32), self._low, self._high)
        return (
            {**obs, PREV_ACTION_KEY: self._prev.copy()},
            float(reward),
            terminated,
            truncated,
            info,
        )
