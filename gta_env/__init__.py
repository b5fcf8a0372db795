"""gta_env: GTA5 — or the embedded driving world — as the Gymnasium environment `GTA5Drive-v0`.

Importing this package registers the environment (by string entry point, so nothing heavy is
imported until an env is made)::

    import gymnasium as gym
    env = gym.make("gta_env:GTA5Drive-v0")   # imports gta_env first, then makes the env
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import gymnasium as gym

from gta_env.config import CAMERA_PRESETS, EnvConfig
from gta_env.game import FRAME_DT, CollisionEvent, Controls, Game, Telemetry

if TYPE_CHECKING:
    from gta_env.env import GTA5DriveEnv

__all__ = [
    "CAMERA_PRESETS",
    "FRAME_DT",
    "CollisionEvent",
    "Controls",
    "EnvConfig",
    "GTA5DriveEnv",
    "Game",
    "Telemetry",
]

ENV_ID = "GTA5Drive-v0"
MAX_EPISODE_STEPS = 3600  # two minutes of game time at frame_skip=1

if ENV_ID not in gym.registry:
    gym.register(
        id=ENV_ID,
        entry_point="gta_env.env:GTA5DriveEnv",
        max_episode_steps=MAX_EPISODE_STEPS,
    )


def __getattr__(name: str) -> Any:
    if name == "GTA5DriveEnv":
        from gta_env.env import GTA5DriveEnv

        return GTA5DriveEnv
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
