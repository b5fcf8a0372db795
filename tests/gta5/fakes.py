"""Fakes shared by the GTA5 backend tests: a token, telemetry and a tiny bridge server."""

from __future__ import annotations

from typing import Any

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
