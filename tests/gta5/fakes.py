"""Fakes shared by the GTA5 backend tests: a token, telemetry and a tiny bridge server."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from gta_env.game import CollisionEvent, Controls, Telemetry
from gta_env.gta5.bridge import BridgeServer, CommandError

TOKEN = "t0ken-for-tests"


def fake_telemetry(frame: int = 0, camera: str = "hood") -> dict[str, Any]:
    return {
        "frame": frame,
        "game_time_ms": frame * 33,
        "position": [1.0 * frame, 2.0, 30.0],
        "heading_deg": 90.0,
        "speed": 5.0,
        "on_road": True,
        "purpose": [100.0, 200.0],
        "route_remaining": 150.0,
        "collisions": [],
        "camera": camera,
        "npc": {"active": False, "throttle": 0.0, "brake": 0.0, "steer": 0.0},
    }


class EchoServer(BridgeServer):
    """A minimal server: counts frames, remembers commands, pushes telemetry on step."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("token", TOKEN)
        super().__init__(**kwargs)
        self.frame = 0
        self.camera = "hood"
        self.calls: list[tuple[str, dict[str, Any]]] = []

    def handle(self, command: str, fields: dict[str, Any]) -> dict[str, Any]:
        self.calls.append((command, fields))
        return super().handle(command, fields)

    def handle_telemetry(self) -> dict[str, Any]:
        return {"telemetry": fake_telemetry(self.frame, self.camera)}

    def handle_step(self, frames: int = 1) -> dict[str, Any]:
        self.frame += frames
        telemetry = fake_telemetry(self.frame, self.camera)
        self.push_telemetry(telemetry)
        return {"telemetry": telemetry}

    def handle_set_camera(self, camera: str) -> dict[str, Any]:
        self.camera = camera
        return {"camera": camera, "frame": self.frame}

    def handle_weather(self, weather: str) -> None:
        if weather == "XMAS":
            raise CommandError("no snow today")


class LineGame:
    """A trivial ``Game``: a car on a straight road; frames encode camera and frame number.

    The expert always drives at throttle 0.5 and steers 0.1; hood frames are ``frame % 256``
    in the red channel, cinematic frames are ``255 - frame % 256`` in the green channel, with a
    gradient in blue so resizes are checked too.
    """

    name = "line"

    def __init__(self, *, sizes: dict[str, tuple[int, int]] | None = None) -> None:
        self.sizes = sizes or {"hood": (9, 16), "cinematic": (18, 32)}
        self.x = 0.0
        self.speed = 0.0
        self.frame = 0
        self.fade = 0.0
        self.purpose = (0.0, 100.0)
        self.applied: list[Controls] = []
        self.loaded_seed: int | None = None
        self.closed = False

    def load(self, seed: int) -> None:
        self.loaded_seed = seed
        self.x, self.speed, self.frame = float(seed % 7), 0.0, 0

    def step(self, controls: Controls) -> Telemetry:
        self.applied.append(controls)
        self.speed = max(self.speed + (controls.throttle - controls.brake) * 0.3, 0.0)
        self.x += self.speed / 30
        self.frame += 1
        return self.telemetry()

    def telemetry(self) -> Telemetry:
        hit = (CollisionEvent("static", "pole", 2.0),) if self.frame == 3 else ()
        return Telemetry(
            position=(self.x, 0.0),
            heading=-math.pi / 2,
            speed=self.speed,
            on_road=True,
            purpose=self.purpose,
            route_remaining=abs(self.purpose[1]) + 5.0,
            collisions=hit,
            frame=self.frame,
        )

    def render(self, cameras: tuple[str, ...]) -> dict[str, np.ndarray]:
        out = {}
        for camera in cameras:
            h, w = self.sizes[camera]
            frame = np.zeros((h, w, 3), np.uint8)
            channel = 0 if camera == "hood" else 1
            value = self.frame % 256 if camera == "hood" else 255 - self.frame % 256
            frame[:, :, channel] = value
            frame[:, :, 2] = (np.arange(w) * 7 % 256)[None, :]
            out[camera] = (frame * (1.0 - self.fade)).astype(np.uint8)
        return out

    def new_purpose(self, rng: np.random.Generator) -> tuple[float, float]:
        self.purpose = (float(rng.integers(100)), 100.0)
        return self.purpose

    def route_point(self, ahead: float) -> tuple[float, float] | None:
        return None

    def teleport(self, rng: np.random.Generator) -> None:
        self.x, self.speed = float(rng.integers(1000)), 0.0

    def set_weather(self, name: str, rng: np.random.Generator) -> str:
        self.weather = name
        return name

    def set_fade(self, level: float) -> None:
        self.fade = level

    def expert_action(self) -> Controls | None:
        return Controls(0.5, 0.0, 0.1)

    def expert_target_speed(self) -> float | None:
        return None

    def close(self) -> None:
        self.closed = True
