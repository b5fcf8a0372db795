"""The `Game` protocol: what the environment needs from a driving backend.

`GTA5DriveEnv` owns the Gymnasium contract (spaces, reward, purpose vector, unstuck, episode
semantics); a backend owns a world, a car in it, cameras and an expert driver. Two backends satisfy
this protocol: the embedded world (`gta_env.sim.SimGame`) and the real game
(`gta_env.gta5.GTA5Game`). A backend is always passed in, never looked up globally, so two
environments in one process never share state.

Conventions shared by every backend:

* World frame: metres, x east, y north, z up; heading in radians, 0 = facing +y (north),
  positive counter-clockwise.
* One :meth:`Game.step` advances exactly one frame of 1/30 s of game time.
* Controls are :class:`Controls` (throttle and brake in [0, 1], steering in [-1, 1], positive =
  right), already clipped by the environment.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

import numpy as np

FRAME_DT = 1.0 / 30.0
"""Seconds of game time per frame: the original's sampling period."""

CAMERA_NAMES = ("hood", "cinematic")


@dataclass(frozen=True)
class Controls:
    """Low-level car controls for one frame.

    Attributes:
        throttle: accelerator pedal in [0, 1].
        brake: brake pedal in [0, 1].
        steering: steering in [-1, 1]; positive turns right.
    """

    throttle: float
    brake: float
    steering: float

    def __post_init__(self) -> None:
        for name, lo in (("throttle", 0.0), ("brake", 0.0), ("steering", -1.0)):
            value = getattr(self, name)
            if not np.isfinite(value) or not lo <= value <= 1.0:
                raise ValueError(f"Controls.{name} must be finite and in [{lo}, 1], got {value!r}")

    @classmethod
    def from_pedal(cls, throttle_brake: float, steering: float) -> Controls:
        """Build from the 2-output convention (throttle > 0, brake < 0)."""
        return cls(max(throttle_brake, 0.0), max(-throttle_brake, 0.0), steering)

    def as_pedal(self) -> np.ndarray:
        """The 2-output convention ``[throttle_brake, steering]`` as float32."""
        return np.array([self.throttle - self.brake, self.steering], dtype=np.float32)


@dataclass(frozen=True)
class CollisionEvent:
    """The car touched something this frame.

    Attributes:
        kind: ``"vehicle"`` (traffic, parked cars), ``"pedestrian"`` or ``"static"``
            (buildings, poles, trees, signal poles, walls) — the categories the driving score
            penalises differently.
        other: what was hit, e.g. ``"building"``, ``"pole"``, ``"tree"``, ``"parked_car"``,
            ``"traffic_car"``, ``"wall"``.
        impulse: magnitude of the contact, when the backend knows it (else 0).
        actor: which one of its kind was hit (a traffic car's or walker's index), so that
            scoring can tell two cars from one car hit twice; -1 for static bodies and where
            the backend cannot tell.
    """

    kind: str
    other: str
    impulse: float = 0.0
    actor: int = -1


@dataclass(frozen=True)
class Telemetry:
    """The car's state after a frame.

    Attributes:
        position: ``(x, y)`` in metres.
        heading: radians, 0 = +y, counter-clockwise positive.
        speed: forward speed in m/s (>= 0 when driving forward).
        on_road: whether the car's centre is on the drivable road surface.
        purpose: ``(x, y)`` of the current purpose point.
        route_remaining: metres left to the purpose point along the planned route (straight-line
            distance where the backend has no route).
        collisions: contacts that started this frame.
        frame: frame counter since the town was loaded.
        traffic_light: state of the light governing the car's lane ahead (``"red"``,
            ``"amber"``, ``"green"``), or None where no signalised stop line is ahead.
        stop_line_distance: metres from the car's front to that stop line (``inf`` if none).
        infractions: traffic-rule infractions this frame, e.g. ``("red_light",)``.
        waiting: the car stands for a reason the traffic rules give (a red light, a
            pedestrian on a zebra, a car ahead, an intersection it must give way at); the
            unstuck check does not count such a wait.
        route_length: metres of the fixed route (0: none; see `EnvConfig.route_length`).
        route_covered: metres of the fixed route covered so far, in order (never decreases).
        route_deviation: metres from the car to the fixed route (0 without one).
    """

    position: tuple[float, float]
    heading: float
    speed: float
    on_road: bool
    purpose: tuple[float, float]
    route_remaining: float
    collisions: tuple[CollisionEvent, ...] = field(default_factory=tuple)
    frame: int = 0
    traffic_light: str | None = None
    stop_line_distance: float = float("inf")
    infractions: tuple[str, ...] = ()
    waiting: bool = False
    route_length: float = 0.0
    route_covered: float = 0.0
    route_deviation: float = 0.0


@runtime_checkable
class Game(Protocol):
    """A driving backend. See the module docstring for the conventions."""

    name: str
    """Short backend name reported in ``info["backend"]``: ``"sim"`` or ``"gta5"``."""

    def load(self, seed: int) -> None:
        """Load (or generate) the town for ``seed`` and place the car at a start spot."""

    def step(self, controls: Controls) -> Telemetry:
        """Apply ``controls`` for one frame (1/30 s) and return the new telemetry."""

    def telemetry(self) -> Telemetry:
        """The current telemetry without advancing time."""

    def render(self, cameras: tuple[str, ...]) -> dict[str, np.ndarray]:
        """Frames (uint8, H×W×3) of the named cameras, in the backend's configured sizes."""

    def new_purpose(self, rng: np.random.Generator) -> tuple[float, float]:
        """Pick the next purpose point (reachable by road) and plan the route to it."""

    def route_point(self, ahead: float) -> tuple[float, float] | None:
        """The point ``ahead`` metres further along the planned route (None: no route known)."""

    def fix_route(
        self, rng: np.random.Generator, *, min_length: float, min_intersections: int
    ) -> float:
        """Plan a fixed route (at least ``min_length`` metres through ``min_intersections``
        intersections), put the car at rest at its start; later purpose points are its
        intersections in order. Returns the route's length. Optional: backends that cannot
        plan routes raise `NotImplementedError`."""

    def teleport(self, rng: np.random.Generator) -> None:
        """Move the car to a random free road spot, at rest, facing along its lane."""

    def set_weather(self, name: str, rng: np.random.Generator) -> str:
        """Set sky, light and fog: a preset name or ``"random"``; returns the name in effect."""

    def set_fade(self, level: float) -> None:
        """Screen fade: 0 = normal image, 1 = black (used around a teleport)."""

    def expert_action(self) -> Controls | None:
        """What the backend's expert driver (autopilot / NPC) would do now, or None."""

    def expert_target_speed(self) -> float | None:
        """The speed (m/s) the expert's controls aim at now, or None where the backend cannot
        say (GTA5's NPC AI)."""

    def close(self) -> None:
        """Release windows, buffers, sockets."""
