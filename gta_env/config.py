"""`EnvConfig`: every setting of `GTA5Drive-v0`, frozen and validated.

Keyword arguments of ``gym.make("GTA5Drive-v0", ...)`` map one-to-one onto these fields; an
unknown key or a bad value raises `ValueError` naming it. Every number is bounded
(:data:`INT_RANGES`, :data:`NUMBER_RANGES`): a value outside its range, or of the wrong type (a
float where an integer belongs, a string, a bool), is refused rather than converted.

The fields stay flat (``config.traffic``, ``config.bridge_port``: existing code and every
``gym.make`` keyword read them directly) but are grouped in sections, in this order: the
observation and action, the episode (towns, purpose, unstuck), the reward, the embedded world's
living town (town size, traffic, lights, pedestrians, weather, renderer) and the game bridge
(``bridge_*``, ``autopilot``). :data:`SECTIONS` names each section's fields.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from gta_env.fields import check_int, check_number
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
SEED_MAX = 2**63 - 1
"""The largest town seed (a seed is any non-negative 64-bit integer)."""

INT_RANGES: dict[str, tuple[int, int]] = {
    "frame_skip": (1, 300),  # up to 10 s of game time per step
    "town_grid": (2, 12),
    "traffic": (0, 200),
    "pedestrians": (0, 500),
    "fade_frames": (1, 300),
    "route_intersections": (0, 100),
}
"""Inclusive ``(min, max)`` of every integer field (``town_seed``: 0 to :data:`SEED_MAX`,
``bridge_port``: 1 to 65535)."""

NUMBER_RANGES: dict[str, tuple[float, float, bool]] = {
    # name: (min, max, whether min itself is excluded)
    "purpose_radius": (0.0, 1000.0, True),
    "purpose_distance_scale": (0.0, 100_000.0, True),
    "purpose_lookahead": (0.0, 1000.0, True),
    "route_length": (0.0, 100_000.0, False),
    "max_speed": (0.0, 200.0, True),
    "stuck_window": (0.0, 600.0, True),
    "stuck_distance": (0.0, 1000.0, False),
    "reward_progress": (0.0, 1e6, False),
    "reward_purpose": (0.0, 1e6, False),
    "penalty_collision": (0.0, 1e6, False),
    "penalty_red_light": (0.0, 1e6, False),
    "penalty_off_road": (0.0, 1e6, False),
    "penalty_stuck": (0.0, 1e6, False),
    "bridge_timeout": (0.0, 60.0, True),
}
"""Range of every real-valued field (seconds, metres, m/s, reward units)."""

SECTIONS: dict[str, tuple[str, ...]] = {
    "observation and action": (
        "backend",
        "hood_size",
        "cinematic",
        "cinematic_size",
        "action_mode",
        "frame_skip",
        "max_speed",
        "expert_in_info",
    ),
    "episode": (
        "town_seed",
        "purpose_marker",
        "purpose_radius",
        "purpose_distance_scale",
        "purpose_mode",
        "purpose_lookahead",
        "route_length",
        "route_intersections",
        "on_stuck",
        "stuck_window",
        "stuck_distance",
        "fade_frames",
        "terminate_on_collision",
    ),
    "reward": (
        "reward_progress",
        "reward_purpose",
        "penalty_collision",
        "penalty_red_light",
        "penalty_off_road",
        "penalty_stuck",
    ),
    "embedded world": (
        "town_grid",
        "traffic",
        "traffic_lights",
        "pedestrians",
        "weather",
        "renderer",
    ),
    "game bridge": ("bridge_host", "bridge_port", "bridge_timeout", "autopilot"),
}
"""The config's fields by section (every field exactly once)."""


def _size(name: str, value: Any) -> tuple[int, int]:
    if isinstance(value, str):
        if value not in CAMERA_PRESETS:
            raise ValueError(
                f"{name}={value!r} is not a camera preset; choose from {sorted(CAMERA_PRESETS)} "
                "or give (height, width)"
            )
        return CAMERA_PRESETS[value]
    try:
        h, w = value
    except (TypeError, ValueError):
        raise ValueError(
            f"{name} must be (height, width) or a preset name, got {value!r}"
        ) from None
    check_int(f"{name} height", h, minimum=16, maximum=2160)
    check_int(f"{name} width", w, minimum=16, maximum=3840)
    return int(h), int(w)


@dataclass(frozen=True)
class EnvConfig:
    """Settings of `GTA5DriveEnv`. See the env's docstring for what each one does.

    Fields come in the sections of :data:`SECTIONS`; numbers are bounded by
    :data:`INT_RANGES` and :data:`NUMBER_RANGES` (``town_seed`` in [0, 2**63 - 1],
    ``bridge_port`` in [1, 65535]); a wrong type or a value out of range raises ``ValueError``
    naming the field.

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
        for name, (lo, hi) in INT_RANGES.items():
            check_int(name, getattr(self, name), minimum=lo, maximum=hi)
        check_int("town_seed", self.town_seed, minimum=0, maximum=SEED_MAX, optional=True)
        check_int("bridge_port", self.bridge_port, minimum=1, maximum=65535, optional=True)
        for name, (low, high, open_low) in NUMBER_RANGES.items():
            check_number(
                name,
                getattr(self, name),
                minimum=None if open_low else low,
                above=low if open_low else None,
                maximum=high,
            )
        for name in ("backend", "action_mode", "on_stuck", "renderer", "purpose_mode", "weather"):
            if not isinstance(getattr(self, name), str):
                raise ValueError(f"{name} must be a string, got {getattr(self, name)!r}")
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
