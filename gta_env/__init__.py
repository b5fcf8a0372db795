"""gta_env: GTA5 — or the embedded driving world — as the Gymnasium environment `GTA5Drive-v0`.

Importing this package registers the environment (by string entry point, so nothing heavy is
imported until an env is made)::

    import gymnasium as gym
    env = gym.make("gta_env:GTA5Drive-v0")   # imports gta_env first, then makes the env

Beside it, ``GTA5DriveSmall-v0`` is the same env with small, short settings already filled in
(embedded world, hood 45×80, 1,000-step episodes), for tools that take only an env id
(CleanRL scripts, RL Zoo's ``record_video``, Minari's ``recover_environment``).

Both also have a native batched form, N towns in one process rendered by one graphics engine
into one tiled buffer::

    envs = gym.make_vec("GTA5Drive-v0", num_envs=64, vectorization_mode="vector_entry_point")
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
    "ENV_ID",
    "SMALL_ENV_ID",
    "EnvConfig",
    "GTA5DriveEnv",
    "Game",
    "Telemetry",
]

ENV_ID = "GTA5Drive-v0"
VECTOR_ENTRY_POINT = "gta_env.vector:GTA5DriveVectorEnv"
"""``gym.make_vec(ENV_ID, num_envs=N, vectorization_mode="vector_entry_point")``: N towns in
one process rendered in one pass (see `gta_env.vector.GTA5DriveVectorEnv`)."""
MAX_EPISODE_STEPS = 3600  # two minutes of game time at frame_skip=1

SMALL_ENV_ID = "GTA5DriveSmall-v0"
SMALL_ENV_KWARGS: dict[str, Any] = {"backend": "sim", "hood_size": (45, 80)}
"""``GTA5DriveSmall-v0``'s settings (its kwargs can still be overridden by ``gym.make``)."""
SMALL_MAX_EPISODE_STEPS = 1000  # 33 s of game time: short enough for quick RL iterations

if ENV_ID not in gym.registry:
    gym.register(
        id=ENV_ID,
        entry_point="gta_env.env:GTA5DriveEnv",
        vector_entry_point=VECTOR_ENTRY_POINT,
        max_episode_steps=MAX_EPISODE_STEPS,
    )
if SMALL_ENV_ID not in gym.registry:
    gym.register(
        id=SMALL_ENV_ID,
        entry_point="gta_env.env:GTA5DriveEnv",
        vector_entry_point=VECTOR_ENTRY_POINT,
        max_episode_steps=SMALL_MAX_EPISODE_STEPS,
        kwargs=dict(SMALL_ENV_KWARGS),
    )


def __getattr__(name: str) -> Any:
    if name == "GTA5DriveEnv":
        from gta_env.env import GTA5DriveEnv

        return GTA5DriveEnv
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
