"""The original's dead-zone translation as an action wrapper.

A game ignores stick values inside a dead zone around 0, so a model that predicts a small
steering correction would have no effect at all. The original mapped every non-zero prediction
outside the dead zone: ``a -> sign(a) * (dz + (1 - dz) * |a|)``. Zero stays zero, ``±1`` stays
``±1``, the smallest non-zero value lands just outside ``±dz``, and a dead zone of 0 is the
identity.
"""

from __future__ import annotations

from collections.abc import Sequence

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from gymnasium.wrappers import TransformAction


def dead_zone_translate(
    action: np.ndarray, dead_zone: float | Sequence[float] | np.ndarray
) -> np.ndarray:
    """Map non-zero values of ``action`` (in [-1, 1]) outside a dead zone.

    Args:
        action: array ``(..., n)`` of values in [-1, 1].
        dead_zone: one dead zone for every component, or one per component, each in [0, 1).

    Returns:
        float32 array of the same shape: ``sign(a) * (dz + (1 - dz) * |a|)``, 0 where ``a`` is 0.
    """
    a = np.clip(np.asarray(action, dtype=np.float32), -1.0, 1.0)
    dz = np.asarray(dead_zone, dtype=np.float32)
    if np.any(dz < 0) or np.any(dz >= 1):
        raise ValueError(f"dead zone must be in [0, 1), got {dead_zone}")
    return (np.sign(a) * (dz + (1.0 - dz) * np.abs(a))).astype(np.float32)


class DeadZoneAction(TransformAction):
    """Translate actions outside the game's dead zone before the env sees them.

    Args:
        env: environment with a ``Box(-1, 1)`` action space.
        dead_zone: dead zone in [0, 1) for every action component, or one per component (e.g.
            ``(0.0, 0.2)`` for throttle/brake and steering).
    """

    def __init__(self, env: gym.Env, dead_zone: float | Sequence[float]) -> None:
        space = env.action_space
        if not isinstance(space, spaces.Box):
            raise TypeError(f"DeadZoneAction needs a Box action space, got {space}")
        dz = np.broadcast_to(np.asarray(dead_zone, dtype=np.float32), space.shape).copy()
        if np.any(dz < 0) or np.any(dz >= 1):
            raise ValueError(f"dead zone must be in [0, 1), got {dead_zone}")
        self.dead_zone = dz
        super().__init__(env, lambda a: dead_zone_translate(a, dz), space)
