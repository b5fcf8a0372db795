"""Shared helpers for the agent tests: tiny checkpoints, scripted agents and envs."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from gymnasium import spaces

from imitation.checkpoint import save_checkpoint
from imitation.models import ModelConfig, model_from_config

TINY = ModelConfig(backbone="pilotnet", image_size=(24, 48), dense=16)
"""A model small enough to build and run in milliseconds."""


def write_checkpoint(path: Path, *, step: int, seed: int = 0, config: ModelConfig = TINY) -> Path:
    """An untrained checkpoint with weights from ``seed``."""
    torch.manual_seed(seed)
    model = model_from_config(config)
    return save_checkpoint(path, model=model, step=step)


class ScriptedAgent:
    """Returns the given actions in turn (the last one forever)."""

    name = "scripted"

    def __init__(self, actions: Sequence[Sequence[float]]) -> None:
        self.actions = [np.asarray(a, np.float32) for a in actions]
        self.i = 0

    def reset(self) -> None:
        self.i = 0

    def act(
        self, obs: Mapping[str, np.ndarray], info: Mapping[str, Any] | None = None
    ) -> np.ndarray:
        a = self.actions[min(self.i, len(self.actions) - 1)]
        self.i += 1
        return a


class RecordActions(gym.Wrapper):
    """Keeps every action the env received."""

    def __init__(self, env: gym.Env) -> None:
        super().__init__(env)
        self.received: list[np.ndarray] = []

    def step(self, action: Any) -> Any:
        self.received.append(np.asarray(action, np.float32).copy())
        return self.env.step(action)


class ScriptedInfoEnv(gym.Env):
    """Reports the info a `GTA5Drive-v0` env would, following a script of infractions.

    The car advances 0.5 m per step along a fixed route of ``route_m`` metres (until step
    ``stall_at``, after which it stands still); ``events`` maps a step number to that step's
    ``info["events"]``; ``off_road`` lists steps with the car off the road; from step
    ``deviate_at`` on it is 40 m off the route.
    """

    metadata: dict[str, Any] = {"render_modes": []}

    def __init__(
        self,
        *,
        events: Mapping[int, list[dict[str, Any]]],
        off_road: Sequence[int] = (),
        route_m: float = 1000.0,
        stall_at: int | None = None,
        deviate_at: int | None = None,
    ) -> None:
        self.observation_space = spaces.Dict(
            {
                "hood": spaces.Box(0, 255, (8, 8, 3), np.uint8),
                "purpose": spaces.Box(-1, 1, (3,), np.float32),
                "speed": spaces.Box(0, 50, (1,), np.float32),
            }
        )
        self.action_space = spaces.Box(-1.0, 1.0, (2,), np.float32)
        self.events = events
        self.off_road = set(off_road)
        self.route_m = route_m
        self.stall_at = stall_at
        self.deviate_at = deviate_at

        class _Cfg:
            frame_skip = 1

        self.config = _Cfg()

    def _obs(self) -> dict[str, np.ndarray]:
        return {
            "hood": np.zeros((8, 8, 3), np.uint8),
            "purpose": np.zeros(3, np.float32),
            "speed": np.array([15.0], np.float32),
        }

    def _info(self) -> dict[str, Any]:
        evs = list(self.events.get(self.t, []))
        on_road = self.t not in self.off_road
        if not on_road:
            evs.append({"kind": "off_road"})
        self.collisions += sum(e["kind"] == "collision" for e in evs)
        stop = min(t for t in (self.stall_at, self.deviate_at, self.t) if t is not None)
        moved = 0.5 * stop  # nothing more is covered off the route
        deviated = self.deviate_at is not None and self.t >= self.deviate_at
        return {
            "route_length": self.route_m,
            "route_covered": min(moved, self.route_m),
            "route_deviation": 40.0 if deviated else 0.5,
            "weather": "clear",
            "route_remaining": self.route_m - moved,
            "unstuck_phase": None,
            "unstucks": 0,
            "purposes_reached": 0,
            "events": evs,
            "speed": 15.0,
            "on_road": on_road,
            "distance": moved,
            "position": np.array([0.0, moved]),
            "collisions": self.collisions,
        }

    def reset(self, *, seed: int | None = None, options: dict | None = None) -> Any:
        super().reset(seed=seed)
        self.t = 0
        self.collisions = 0
        return self._obs(), self._info()

    def step(self, action: Any) -> Any:
        self.t += 1
        return self._obs(), 0.0, False, False, self._info()
