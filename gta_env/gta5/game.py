"""`GTA5Game`: the :class:`~gta_env.game.Game` protocol over screen capture, a pad and the bridge.

One :meth:`GTA5Game.step` holds the controls on the pad and asks the mod to advance one frame of
1/30 s game time (with ``lockstep`` the game is paused in between, so a slow model never loses
frames); the telemetry in the reply becomes :class:`~gta_env.game.Telemetry`. Frames come from the
screen: for each requested camera the mod switches to it and answers once it has been rendered,
the screen is grabbed, and the bridge is asked again which camera was on screen; a frame whose
camera does not match is grabbed again. The expert is the game's own NPC driver: with
``autopilot=True`` every purpose point starts an NPC drive task and :meth:`GTA5Game.expert_action`
returns the NPC's throttle, brake and steering read by the mod.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from gta_env.game import CollisionEvent, Controls, Telemetry
from gta_env.gta5.bridge import BridgeClient
from gta_env.gta5.capture import (
    GRABBERS,
    GTA5_WINDOW_TITLE,
    Region,
    ScreenCapture,
    resize_frame,
)
from gta_env.gta5.control import CONTROLLERS, DeadZones, Pad, make_pad
from gta_env.gta5.protocol import DEFAULT_PORT, WEATHERS

WEATHER_PRESETS: dict[str, tuple[str, int]] = {
    "clear": ("EXTRASUNNY", 12),
    "overcast": ("OVERCAST", 12),
    "fog": ("FOGGY", 10),
    "dusk": ("CLEAR", 19),
    "night": ("CLEAR", 23),
    "rain": ("RAIN", 12),
}
"""The environment's weather presets as GTA ``(weather, hour)``."""

DRIVING_STYLE_NORMAL = 786603
"""GTA V driving-style flags of a law-abiding driver (stops at lights, avoids cars and peds)."""

DRIVING_STYLE_RUSHED = 1074528293
"""Avoids traffic but ignores lights: faster data collection."""


def _positive_size(name: str, size: tuple[int, int]) -> None:
    if len(size) != 2 or min(size) <= 0:
        raise ValueError(f"GTA5Config.{name} must be (height, width) > 0, got {size}")


@dataclass(frozen=True)
class GTA5Config:
    """Settings of the real-game backend.

    Attributes:
        host: loopback address of the mod's bridge.
        port: its TCP port.
        token: shared secret; ``None`` reads (or creates) the token file.
        connect_timeout: seconds to wait for the bridge handshake.
        request_timeout: seconds to wait for any reply (a step, a teleport with fade).
        hood_size: ``(height, width)`` of hood frames.
        cinematic_size: ``(height, width)`` of cinematic (3rd-person) frames.
        cameras: cameras :meth:`GTA5Game.render` may be asked for.
        region: the screen rectangle of the game image; ``None`` uses the rectangle the bridge
            announces, else finds the window titled ``window_title``.
        window_title: the game window's title.
        grabber: ``"auto"``, ``"mss"``, ``"dxcam"`` or ``"bettercam"``.
        crop: ``(top, bottom, left, right)`` pixels dropped from the grabbed image.
        controller: ``"gamepad"`` (vgamepad), ``"keyboard"`` (pydirectinput), ``"bridge"``
            (controls sent through the bridge, held by the mod) or ``"fake"``.
        dead_zones: the game's stick/trigger dead zones, translated around by the pad.
        lockstep: pause the game between steps (time advances only in :meth:`GTA5Game.step`).
        autopilot: let the NPC driver drive to every purpose point (data collection).
        driving_style: GTA V driving-style flags for the NPC.
        autopilot_speed: the NPC's cruise speed, m/s.
        purpose_marker: show a marker (and map blip) at the purpose point.
        purpose_distance: ``(min, max)`` straight-line metres to a new purpose point.
        fade_ms: duration of a screen fade.
        teleport_fade_ms: fade the mod does itself around a teleport (0: the environment fades
            through :meth:`GTA5Game.set_fade`).
        weather: GTA weather to set on load (``None`` keeps the game's).
        hour: hour of day to set on load (``None`` keeps the game's).
        vehicle: model name of the car the player is put in when on foot.
        camera_retries: grabs per camera before giving up on a camera mismatch.
    """

    host: str = "127.0.0.1"
    port: int = DEFAULT_PORT
    token: str | None = None
    connect_timeout: float = 2.0
    request_timeout: float = 10.0
    hood_size: tuple[int, int] = (90, 160)
    cinematic_size: tuple[int, int] = (180, 320)
    cameras: tuple[str, ...] = ("hood",)
    region: Region | None = None
    window_title: str = GTA5_WINDOW_TITLE
    grabber: str = "auto"
    crop: tuple[int, int, int, int] = (0, 0, 0, 0)
    controller: str = "gamepad"
    dead_zones: DeadZones = field(default_factory=DeadZones)
    lockstep: bool = True
    autopilot: bool = False
    driving_style: int = DRIVING_STYLE_NORMAL
    autopilot_speed: float = 20.0
    purpose_marker: bool = False
    purpose_distance: tuple[float, float] = (150.0, 1500.0)
    fade_ms: int = 500
    teleport_fade_ms: int = 0
    weather: str | None = "EXTRASUNNY"
    hour: int | None = 12
    vehicle: str = "blista"
    camera_retries: int = 3

    def __post_init__(self) -> None:
        _positive_size("hood_size", self.hood_size)
        _positive_size("cinematic_size", self.cinematic_size)
        bad = [c for c in self.cameras if c not in ("hood", "cinematic")]
        if bad or not self.cameras:
            raise ValueError(
                f"GTA5Config.cameras must be from ('hood', 'cinematic'), got {self.cameras}"
            )
        if self.controller not in CONTROLLERS:
            raise ValueError(
                f"GTA5Config.controller must be one of {CONTROLLERS}, got {self.controller!r}"
            )
        if self.grabber not in GRABBERS:
            raise ValueError(f"GTA5Config.grabber must be one of {GRABBERS}, got {self.grabber!r}")
        if self.weather is not None and self.weather not in WEATHERS:
            raise ValueError(
                f"GTA5Config.weather must be None or one of {WEATHERS}, got {self.weather!r}"
            )
        if self.hour is not None and not 0 <= self.hour <= 23:
            raise ValueError(f"GTA5Config.hour must be None or in 0..23, got {self.hour}")
        lo, hi = self.purpose_distance
        if not 0 <= lo <= hi:
            raise ValueError(
                f"GTA5Config.purpose_distance must be 0 <= min <= max, got {self.purpose_distance}"
            )
        for name in ("fade_ms", "teleport_fade_ms"):
            if not 0 <= getattr(self, name) <= 10_000:
                raise ValueError(
                    f"GTA5Config.{name} must be in 0..10000, got {getattr(self, name)}"
                )
        if self.camera_retries < 1:
            raise ValueError(f"GTA5Config.camera_retries must be >= 1, got {self.camera_retries}")
        if not 0 < self.autopilot_speed <= 100:
            raise ValueError(
                f"GTA5Config.autopilot_speed must be in (0, 100] m/s, got {self.autopilot_speed}"
            )

    def size_of(self, camera: str) -> tuple[int, int]:
        return self.hood_size if camera == "hood" else self.cinematic_size


class CameraMismatch(RuntimeError):
    """The bridge kept reporting another camera than the one asked for."""


def telemetry_from_wire(wire: dict[str, Any]) -> Telemetry:
    """Convert the bridge's telemetry object (GTA conventions) into :class:`Telemetry`.

    GTA headings are degrees, 0 = north, counter-clockwise: the same convention as the
    ``Game`` protocol, in radians and wrapped to ``(-pi, pi]``.
    """
    x, y = float(wire["position"][0]), float(wire["position"][1])
    purpose = wire["purpose"]
    purpose_xy = (x, y) if purpose is None else (float(purpose[0]), float(purpose[1]))
    remaining = float(wire.get("route_remaining", -1.0))
    if remaining < 0:
        remaining = math.hypot(purpose_xy[0] - x, purpose_xy[1] - y)
    heading = math.radians(float(wire["heading_deg"]))
    heading = math.atan2(math.sin(heading), math.cos(heading))
    collisions = tuple(
        # The Game protocol has two categories; pedestrians count with the moving actors.
        CollisionEvent(
            kind="static" if c["kind"] == "static" else "vehicle",
            other="pedestrian" if c["kind"] == "ped" else c["other"],
            impulse=float(c.get("impulse", 0.0)),
        )
        for c in wire["collisions"]
    )
    return Telemetry(
        position=(x, y),
        heading=heading,
        speed=float(wire["speed"]),
        on_road=bool(wire["on_road"]),
        purpose=purpose_xy,
        route_remaining=remaining,
        collisions=collisions,
        frame=int(wire["frame"]),
    )


class GTA5Game:
    """Grand Theft Auto V behind the :class:`~gta_env.game.Game` protocol.

    Args:
        config: the backend's settings.
        client: a bridge client to use instead of one built from ``config`` (tests, posing).
        capture: a screen capture to use instead of one built from ``config``.
        pad: a pad to use instead of the one named by ``config.controller``.

    Raises:
        BridgeUnavailable: when the mod's bridge does not answer (the message says what to start).
        ControllerUnavailable: when the pad's package or driver is missing.
        CaptureUnavailable: when the grabber or the game window is missing.
    """

    name = "gta5"

    def __init__(
        self,
        *,
        config: GTA5Config | None = None,
        client: BridgeClient | None = None,
        capture: ScreenCapture | None = None,
        pad: Pad | None = None,
    ) -> None:
        self.config = cfg = config or GTA5Config()
        self.client = client or BridgeClient(
            host=cfg.host,
            port=cfg.port,
            token=cfg.token,
            timeout=cfg.request_timeout,
            connect_timeout=cfg.connect_timeout,
        )
        self.client.connect()
        try:
            self.pad: Pad = (
                pad
                if pad is not None
                else make_pad(cfg.controller, dead_zones=cfg.dead_zones, client=self.client)
            )
            if capture is None:
                region = cfg.region
                if region is None and self.client.window is not None:
                    region = Region.from_mapping(self.client.window)
                capture = ScreenCapture(
                    region=region, window_title=cfg.window_title, grabber=cfg.grabber, crop=cfg.crop
                )
            self.capture = capture
        except BaseException:
            self.client.close()
            raise
        self._wire: dict[str, Any] | None = None
        self._camera: str | None = None
        self.camera_mismatches = 0
        """Grabs thrown away because another camera was on screen."""

    @classmethod
    def from_env_config(
        cls, env_config: Any, cameras: tuple[str, ...], **overrides: Any
    ) -> GTA5Game:
        """Build from the environment's ``EnvConfig`` (sizes, marker, autopilot, bridge address).

        The controller comes from ``overrides``, else the ``GTA5DRIVE_CONTROLLER`` environment
        variable, else ``"gamepad"``.
        """
        import os

        fields: dict[str, Any] = {
            "host": env_config.bridge_host,
            "hood_size": tuple(env_config.hood_size),
            "cinematic_size": tuple(env_config.cinematic_size),
            "cameras": tuple(cameras),
            "purpose_marker": bool(env_config.purpose_marker),
            "autopilot": bool(getattr(env_config, "autopilot", False)),
            "controller": os.environ.get("GTA5DRIVE_CONTROLLER", "gamepad"),
        }
        if env_config.bridge_port is not None:
            fields["port"] = env_config.bridge_port
        fields.update(overrides)
        return cls(config=GTA5Config(**fields))

    # -- Game protocol ----------------------------------------------------------------------

    def load(self, seed: int) -> None:
        """Reset the mod's state for ``seed``: car, start spot, weather, time, lockstep."""
        cfg = self.config
        self.pad.release()
        self._update(self.client.request("reset", seed=int(seed) % 2**31, vehicle=cfg.vehicle))
        if cfg.weather is not None:
            self.client.request("weather", weather=cfg.weather)
        if cfg.hour is not None:
            self.client.request("time", hour=cfg.hour, minute=0)
        self.client.request("pause", paused=cfg.lockstep)
        self._camera = None
        self._show(cfg.cameras[0])

    def step(self, controls: Controls) -> Telemetry:
        """Hold ``controls`` on the pad for one frame of game time."""
        self.pad.apply(controls)
        return self._update(self.client.request("step", frames=1))

    def telemetry(self) -> Telemetry:
        if self._wire is None:
            self._update(self.client.request("telemetry"))
        assert self._wire is not None
        return telemetry_from_wire(self._wire)

    def render(self, cameras: tuple[str, ...]) -> dict[str, np.ndarray]:
        """Grab each camera from the screen, matched to the camera the bridge says was shown."""
        bad = [c for c in cameras if c not in self.config.cameras]
        if bad:
            raise ValueError(
                f"camera(s) {bad} not enabled; GTA5Config.cameras is {self.config.cameras}"
            )
        frames: dict[str, np.ndarray] = {}
        for camera in cameras:
            frames[camera] = self._grab_camera(camera)
        return frames

    def new_purpose(self, rng: np.random.Generator) -> tuple[float, float]:
        """Ask the mod for a random road point at the configured distance (and drive there)."""
        cfg = self.config
        reply = self.client.request(
            "new_purpose",
            seed=int(rng.integers(2**31 - 1)),
            min_distance=float(cfg.purpose_distance[0]),
            max_distance=float(cfg.purpose_distance[1]),
            marker=cfg.purpose_marker,
        )
        if cfg.autopilot:
            self._start_autopilot()
        self._update(self.client.request("telemetry"))
        x, y = reply["purpose"]
        return float(x), float(y)

    def route_point(self, ahead: float) -> tuple[float, float] | None:
        """None: the mod does not report the game's GPS route (``purpose_mode="route"`` needs one)."""
        return None

    def fix_route(
        self, rng: np.random.Generator, *, min_length: float, min_intersections: int
    ) -> float:
        """Not on the game: the mod does not report GTA's road graph, so it cannot plan a
        fixed route (the evaluation protocols need the embedded world)."""
        raise NotImplementedError(
            "route_length > 0 (a fixed route) needs a backend that plans routes on its road "
            "graph: use backend='sim' (the game's mod does not report GTA's road graph)"
        )

    def teleport(self, rng: np.random.Generator) -> None:
        """Teleport to a random road spot chosen by the mod from a seed drawn from ``rng``."""
        self.pad.release()
        fields: dict[str, Any] = {"seed": int(rng.integers(2**31 - 1))}
        if self.config.teleport_fade_ms:
            fields["fade_ms"] = self.config.teleport_fade_ms
        self.client.request("teleport", **fields)
        if self.config.autopilot and self._wire is not None and self._wire["purpose"] is not None:
            self._start_autopilot()
        self._update(self.client.request("telemetry"))

    def set_weather(self, name: str, rng: np.random.Generator) -> str:
        """Set a weather preset (see :data:`WEATHER_PRESETS`) or ``"random"``; returns the name."""
        if name == "random":
            name = sorted(WEATHER_PRESETS)[int(rng.integers(len(WEATHER_PRESETS)))]
        if name not in WEATHER_PRESETS:
            raise ValueError(f"weather={name!r} is not one of {(*WEATHER_PRESETS, 'random')}")
        weather, hour = WEATHER_PRESETS[name]
        self.client.request("weather", weather=weather)
        self.client.request("time", hour=hour, minute=0)
        return name

    def set_fade(self, level: float) -> None:
        self.client.request("fade", level=float(min(max(level, 0.0), 1.0)), ms=self.config.fade_ms)

    def expert_action(self) -> Controls | None:
        """The NPC driver's controls this frame, or None when no NPC is driving."""
        if self._wire is None:
            return None
        npc = self._wire["npc"]
        if not npc["active"]:
            return None
        return Controls(float(npc["throttle"]), float(npc["brake"]), float(npc["steer"]))

    def expert_target_speed(self) -> float | None:
        """None: the NPC AI drives by its own rules and reports pedals, not the speed it aims at."""
        return None

    def close(self) -> None:
        """Let go of the pad, unpause the game, close the bridge and the grabber."""
        try:
            self.pad.close()
        finally:
            try:
                if self.client.connected:
                    self.client.request("autopilot", enabled=False)
                    self.client.request("pause", paused=False)
            except Exception:  # noqa: BLE001 - closing is best effort
                pass
            self.client.close()
            self.capture.close()

    # -- extras -----------------------------------------------------------------------------

    @property
    def capture_fps(self) -> float:
        """Screen grabs per second over the last 60 grabs."""
        return self.capture.fps

    # -- internals --------------------------------------------------------------------------

    def _start_autopilot(self) -> None:
        self.client.request(
            "autopilot",
            enabled=True,
            speed=float(self.config.autopilot_speed),
            style=int(self.config.driving_style),
        )

    def _update(self, reply: dict[str, Any]) -> Telemetry:
        self._wire = reply["telemetry"]
        self._camera = self._wire["camera"]
        return telemetry_from_wire(self._wire)

    def _show(self, camera: str) -> None:
        if self._camera != camera:
            reply = self.client.request("set_camera", camera=camera)
            self._camera = reply["camera"]

    def _grab_camera(self, camera: str) -> np.ndarray:
        size = self.config.size_of(camera)
        for _ in range(self.config.camera_retries):
            self._show(camera)
            image = self.capture.grab()
            on_screen = self.client.request("telemetry")["telemetry"]["camera"]
            if on_screen == camera:
                self._camera = on_screen
                return resize_frame(image, size)
            self.camera_mismatches += 1
            self._camera = on_screen
        raise CameraMismatch(
            f"asked the game for the {camera!r} camera {self.config.camera_retries} times but the "
            f"bridge reported {self._camera!r} on screen each time; another script or a key press "
            "may be switching cameras (GTA's V key / camera cycling)"
        )
