"""Frame stacking for the camera keys of a Dict observation.

Gymnasium's :class:`~gymnasium.wrappers.FrameStackObservation` stacks the *whole* observation
(purpose and speed too) on a new leading axis. Models here want the last ``k`` camera frames
concatenated on the channel axis (oldest first, newest last) while purpose and speed stay as they
are, so this wrapper stacks only the camera keys. At reset the first frame is repeated ``k``
times, which is also how the trainer pads the start of a stored episode
(:func:`stack_channels`).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from wrappers.camera import CAMERA_KEYS


def stack_channels(frames: Sequence[np.ndarray]) -> np.ndarray:
    """Concatenate frames on the channel axis, oldest first.

    Args:
        frames: ``k`` arrays ``(..., H, W, C)``, oldest first.

    Returns:
        array ``(..., H, W, k*C)``.
    """
    return np.concatenate(list(frames), axis=-1)


class FrameStackCameras(gym.Wrapper):
    """Stack the last ``num_frames`` frames of each camera key on the channel axis.

    The camera key ``(H, W, C)`` becomes ``(H, W, num_frames*C)``, oldest frame first. Other keys
    pass through unchanged.

    Args:
        env: environment with a Dict observation holding uint8 camera keys.
        num_frames: frames to stack (>= 1; 1 is the identity).
        keys: camera keys to stack; default: those of ``("hood", "cinematic")`` present.
    """

    def __init__(self, env: gym.Env, num_frames: int, *, keys: Sequence[str] | None = None) -> None:
        super().__init__(env)
        if not isinstance(env.observation_space, spaces.Dict):
            raise TypeError(
                f"FrameStackCameras needs a Dict observation, got {env.observation_space}"
            )
        if int(num_frames) < 1:
            raise ValueError(f"num_frames must be >= 1, got {num_frames}")
        self.num_frames = int(num_frames)
        wanted = tuple(keys) if keys is not None else CAMERA_KEYS
        self.keys = tuple(k for k in wanted if k in env.observation_space.spaces)
        if not self.keys:
            raise ValueError(f"observation has none of the camera keys {list(wanted)}")
        new = dict(env.observation_space.spaces)
        for key in self.keys:
            shape = new[key].shape
            assert shape is not None and len(shape) == 3
            h, w, c = shape
            new[key] = spaces.Box(0, 255, (h, w, c * self.num_frames), np.uint8)
        self.observation_space = spaces.Dict(new)
        self._frames: dict[str, deque[np.ndarray]] = {}

    def _observe(self, obs: dict) -> dict:
        out = dict(obs)
        for key in self.keys:
            out[key] = stack_channels(self._frames[key])
        return out

    def reset(self, *, seed: int | None = None, options: dict | None = None) -> tuple[Any, dict]:
        obs, info = self.env.reset(seed=seed, options=options)
        self._frames = {
            key: deque([obs[key]] * self.num_frames, maxlen=self.num_frames) for key in self.keys
        }
        return self._observe(obs), info

    def step(self, action: Any) -> tuple[Any, float, bool, bool, dict]:
        obs, reward, terminated, truncated, info = self.env.step(action)
        for key in self.keys:
            self._frames[key].append(obs[key])
        return self._observe(obs), float(reward), terminated, truncated, info
