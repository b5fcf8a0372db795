"""`EnvConfig`: every setting of `GTA5Drive-v0`, frozen and validated.

Keyword arguments of ``gym.make("GTA5Drive-v0", ...)`` map one-to-one onto these fields; an
unknown key or a bad value raises `ValueError` naming it.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

from gta_env.sim.weather import WEATHERS

CAMERA_PRESETS: dict[str, tuple[int, int]] = {
    "small": (90, 160),
    "medium": (135, 240),
    "original": (270, 480),  # the original project's model input (480x270)
    "chase": (180, 320),
    "hd": (720, 1280),
}
"""Named camera sizes ``(height, width)`` accepted wherever a size is."""

BACKENDS = ("auto", "sim", "gta5")
ACTION_MODES = ("pedal", "separate")
ON_STUCK = ("teleport", "truncate")
RENDERERS = ("software", "gl")
PURPOSE_MODES = ("auto", "point", "route")


def _size(name: str, value: Any) -> tuple[int, int]:
    if isinstance(value, str):
        if value not in CAMERA_PRESETS:
            raise ValueError(
                f"{name}={value!r} is not a camera preset; choose from {sorted(CAMERA_PRESETS)} "
                "or give (height, width)"
            )
        return CAMERA_PRESETS[value]
    try:
        h, w = (int(v) for v in value)
    except (TypeError, ValueError):
        raise ValueError(
            f"{name} must be (height, width) or a preset name, got {value!r}"
        ) from None
    if not (16 <= h <= 2160 and 16 <= w <= 3840):
        raise ValueError(f"{name}={value!r}: height must be in [16, 2160] and width in [16, 3840]")
    return h, w


@dataclass(frozen=True)
class EnvConfig:
    """Settings of `GTA5DriveEnv`. See the env's docstring for what each one does.

    Attributes:
        backend: ``"auto"`` (the game if its bridge answers, else the embedded world),
            ``"sim"`` or ``"gta5"``.
        hood_size: hood camera ``(height, width)`` or a preset name (``"original"`` = 270×480).
        cinematic: add the 3rd-person chase camera to the observation.
        cinematic_size: chase camera ``(height, width)`` or a preset name.
        action_mode: ``"pedal"`` → ``[throttle_brake, steering]``; ``"separate"`` →
            ``[throttle, brake, steering]``.
        frame_skip: game frames (1/30 s each) per env step; the action is repeated.
        town_seed: fixed town for every reset; ``None`` → a new town per reset from the env RNG.
        town_grid: intersections per side of a generated town.
        traffic: number of traffic cars (embedded world); they obey the lights, queue, take
            turns at uncontrolled intersections and yield to pedestrians.
        traffic_lights: traffic lights at every four-way and a seeded share of the three-way
            intersections, with stop lines (embedded world; False: every intersection is
            uncontrolled).
        pedestrians: number of walkers who cross at the zebra crossings (embedded world).
        weather: ``"clear"``, ``"overcast"``, ``"fog"``, ``"dusk"``, ``"night"``, ``"rain"`` or
            ``"random"`` (a preset drawn and jittered per episode from the env RNG).
        purpose_marker: show a marker at the purpose point (visible from the hood).
        purpose_radius: metres from the purpose point that count as reaching it.
        purpose_distance_scale: metres that map to 1.0 in the purpose vector's distance.
        purpose_mode: what the purpose vector's bearing points at: ``"point"`` (the purpose
            point itself, as in the original), ``"route"`` (the point ``purpose_lookahead``
            metres ahead on the planned road route, like a sat-nav arrow: it says which way to
            turn at the next intersection; needs a backend that plans routes, the embedded world)
            or ``"auto"`` (route where the backend plans one, else point).
        purpose_lookahead: metres ahead on the route for ``purpose_mode="route"``.
        route_length: 0 (default): purpose points are drawn at random and chained. > 0: every
            reset plans a fixed route at least this many metres long through at least
            ``route_intersections`` intersections, starts the car at its beginning, and its
            intersections are the purpose points in order; ``info`` reports ``route_length``,
            ``route_covered`` and ``route_deviation`` (the evaluation protocols use it; needs
            a backend that plans routes, the embedded world).
        route_intersections: intersections (of three or more roads) a fixed route passes.
        max_speed: m/s that bound the ``speed`` observation.
        on_stuck: ``"teleport"`` (fade out, teleport, fade in, continue) or ``"truncate"``.
        stuck_window: seconds of game time over which the car must move ...
        stuck_distance: ... at least this many metres, else it is stuck.
        fade_frames: frames of fade-out and of fade-in around a teleport.
        reward_progress: reward per metre of progress along the route to the purpose point.
        reward_purpose: bonus for reaching a purpose point.
        penalty_collision: subtracted for each new collision.
        penalty_red_light: subtracted for each stop line crossed on red.
        penalty_off_road: subtracted for each frame the car's centre is off the road.
        penalty_stuck: subtracted when the car is found stuck.
        terminate_on_collision: end the episode (terminated) at the first collision.
        expert_in_info: put the backend expert's action in ``info["expert_action"]``.
        autopilot: on the game backend, turn on the NPC autopilot (it drives to every purpose
            point) and report its control values as ``info["expert_action"]``; the embedded
            world always has its expert.
        renderer: embedded world's renderer, ``"software"`` (CPU) or ``"gl"`` (EGL).
        bridge_host: address of the game bridge (loopback only).
        bridge_port: port of the game bridge (``None`` → the protocol's default).
        bridge_timeout: seconds ``backend="auto"`` waits for the bridge to answer.
    """

    backend: str = "auto"
    hood_size: tuple[int, int] = (90, 160)
    cinematic: bool = False
    cinematic_size: tuple[int, int] = (180, 320)
    action_mode: str = "pedal"
    frame_skip: int = 1
    town_seed: int | None = None
    town_grid: int = 4
    traffic: int = 0
    traffic_lights: bool = True
    pedestrians: int = 0
    weather: str = "clear"
    purpose_marker: bool = False
    purpose_radius: float = 10.0
    purpose_distance_scale: float = 300.0
    purpose_mode: str = "auto"
    purpose_lookahead: float = 25.0
    route_length: float = 0.0
    route_intersections: int = 6
    max_speed: float = 50.0
    on_stuck: str = "teleport"
    stuck_window: float = 8.0
    stuck_distance: float = 2.0
    fade_frames: int = 10
    reward_progress: float = 0.1
    reward_purpose: float = 5.0
    penalty_collision: float = 5.0
    penalty_red_light: float = 5.0
    penalty_off_road: float = 0.05
    penalty_stuck: float = 5.0
    terminate_on_collision: bool = False
    expert_in_info: bool = True
    autopilot: bool = False
    renderer: str = "software"
    bridge_host: str = "127.0.0.1"
    bridge_port: int | None = None
    bridge_timeout: float = 0.2

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        set_(self, "hood_size", _size("hood_size", self.hood_size))
        set_(self, "cinematic_size", _size("cinematic_size", self.cinematic_size))
        for name, allowed in (
            ("backend", BACKENDS),
            ("action_mode", ACTION_MODES),
            ("on_stuck", ON_STUCK),
            ("renderer", RENDERERS),
            ("purpose_mode", PURPOSE_MODES),
        ):
            if getattr(self, name) not in allowed:
                raise ValueError(f"{name}={getattr(self, name)!r} is not one of {allowed}")
        if self.weather not in (*WEATHERS, "random"):
            raise ValueError(f"weather={self.weather!r} is not one of {(*WEATHERS, 'random')}")
        for name in (
            "cinematic",
            "purpose_marker",
            "terminate_on_collision",
            "expert_in_info",
            "traffic_lights",
            "autopilot",
        ):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"{name} must be True or False, got {getattr(self, name)!r}")
        ints = {"frame_skip": 1, "town_grid": 2, "traffic": 0, "pedestrians": 0, "fade_frames": 1,
                "route_intersections": 0}
        for name, lo in ints.items():
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < lo:
                raise ValueError(f"{name} must be an integer >= {lo}, got {value!r}")
        if self.town_grid > 12:
            raise ValueError(f"town_grid must be <= 12, got {self.town_grid}")
        if self.town_seed is not None and (
            isinstance(self.town_seed, bool)
            or not isinstance(self.town_seed, int)
            or self.town_seed < 0
        ):
            raise ValueError(f"town_seed must be None or an integer >= 0, got {self.town_seed!r}")
        positive = (
            "purpose_radius",
            "purpose_distance_scale",
            "purpose_lookahead",
            "max_speed",
            "stuck_window",
            "bridge_timeout",
        )
        non_negative = (
            "route_length",
            "stuck_distance",
            "reward_progress",
            "reward_purpose",
            "penalty_collision",
            "penalty_red_light",
            "penalty_off_road",
            "penalty_stuck",
        )
        for name in positive + non_negative:
            value = getattr(self, name)
            ok = (
                isinstance(value, (int, float))
                and not isinstance(value, bool)
                and math.isfinite(value)
            )
            if not ok or value < 0 or (name in positive and value == 0):
                kind = "> 0" if name in positive else ">= 0"
                raise ValueError(f"{name} must be a finite number {kind}, got {value!r}")
        if self.bridge_host not in ("127.0.0.1", "localhost", "::1"):
            raise ValueError(
                f"bridge_host={self.bridge_host!r}: the game bridge only listens on loopback "
                "(127.0.0.1, localhost or ::1)"
            )

    @property
    def stuck_window_frames(self) -> int:
        """The stuck window in game frames."""
        return max(int(round(self.stuck_window * 30)), 2)

    @classmethod
    def from_kwargs(cls, **kwargs: Any) -> EnvConfig:
        """Build from ``gym.make`` keyword arguments, naming any unknown key."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(kwargs) - known)
        if unknown:
            raise ValueError(
                f"unknown GTA5Drive-v0 argument(s) {unknown}; valid ones are {sorted(known)}"
            )
        return cls(**kwargs)

    def replace(self, **changes: Any) -> EnvConfig:
        """A copy with ``changes`` applied (validated like a new config)."""
        current = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        unknown = sorted(set(changes) - set(current))
        if unknown:
            raise ValueError(f"unknown EnvConfig field(s) {unknown}")
        current.update(changes)
        return EnvConfig(**current)
