"""The built-in expert driver: the embedded world's stand-in for GTA5's NPC drivers.

* Route planning: Dijkstra on the road graph (:meth:`Town.shortest_route`), lanes joined into a
  :class:`~gta_env.sim.route.Route` with a speed profile.
* Path tracking: pure pursuit with a speed-dependent look-ahead.
* Speed control: follow the profile (slower in curves and intersections, braking early enough),
  feed-forward for drag plus a proportional term.
* Proximity sensing: rays cast along the path ahead (not straight ahead, so curves are covered)
  stop the car behind anything standing in its lane.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from gta_env.game import Controls
from gta_env.sim.physics import CarSpec
from gta_env.sim.route import Route

FULL_BRAKE_DECEL = 10.0
"""Deceleration of the simulated car at full brake, m/s² (measured: ~11 from 12 m/s)."""


@dataclass(frozen=True)
class AutopilotConfig:
    """Driving style of the autopilot.

    Attributes:
        cruise_speed: speed on straight roads, m/s.
        lateral_accel: comfortable lateral acceleration in curves, m/s².
        decel: planned braking deceleration, m/s².
        junction_speed: speed limit inside intersections, m/s.
        sensor_range: how far ahead along the path obstacles are looked for, metres.
        stop_gap: distance kept to an obstacle when stopped behind it, metres.
    """

    cruise_speed: float = 13.0
    lateral_accel: float = 2.6
    decel: float = 3.0
    junction_speed: float = 7.0
    sensor_range: float = 30.0
    stop_gap: float = 5.0


class Autopilot:
    """Computes :class:`Controls` that follow a route. Stateless between calls, apart from
    :attr:`target_speed`, the speed the last :meth:`act` aimed at (what a learner that predicts
    a target speed instead of pedals is taught)."""

    def __init__(self, spec: CarSpec, config: AutopilotConfig | None = None) -> None:
        self.spec = spec
        self.config = config or AutopilotConfig()
        self.target_speed = 0.0

    def prepare(self, route: Route) -> None:
        """Give a fresh route its speed profile for this driving style."""
        c = self.config
        route.plan_speed(
            cruise=c.cruise_speed,
            lateral_accel=c.lateral_accel,
            decel=c.decel,
            junction_speed=c.junction_speed,
        )

    def act(
        self,
        route: Route,
        *,
        position: tuple[float, float],
        heading: float,
        speed: float,
        s: float,
        obstacle_ahead: Callable[[Route, float, float], float] | None = None,
    ) -> Controls:
        """Controls for the car at ``position``/``heading``/``speed``, ``s`` metres along route.

        Args:
            obstacle_ahead: ``f(route, s, range) -> metres`` to the first obstacle on the path
                (``inf`` if none).
        """
        c = self.config
        v = max(speed, 0.0)
        lookahead = min(max(3.5 + 0.45 * v, 5.0), 14.0)
        target = route.point_at(s + lookahead)
        dx, dy = target[0] - position[0], target[1] - position[1]
        cos_h, sin_h = np.cos(heading), np.sin(heading)
        right = (cos_h, sin_h)
        forward = (-sin_h, cos_h)
        x_r = dx * right[0] + dy * right[1]
        y_f = dx * forward[0] + dy * forward[1]
        dist2 = max(x_r * x_r + y_f * y_f, 1e-6)
        delta = np.arctan2(2.0 * self.spec.wheel_base * x_r, dist2)
        steering = min(max(float(np.degrees(delta)) / self.spec.max_steer_deg, -1.0), 1.0)

        # Look at the limit a little ahead: the car needs time to respond.
        v_target = min(route.limit_at(s + 0.6 * v + 1.0), route.limit_at(s))
        gap = float("inf")
        if obstacle_ahead is not None:
            gap = obstacle_ahead(route, s, c.sensor_range) - c.stop_gap
            v_target = min(v_target, float(np.sqrt(2.0 * c.decel * max(gap, 0.0))))
            if gap <= 0.0:
                v_target = 0.0
        self.target_speed = float(v_target)
        spec = self.spec
        hold = (spec.drag * v * v + spec.rolling) / spec.engine_force
        err = v_target - v
        if v_target < 0.05:
            return Controls(0.0, 1.0 if v > 0.05 or err < 0 else 0.6, steering)
        throttle = float(min(max(hold + 0.45 * err, 0.0), 1.0))
        brake = float(min(max(-0.25 * err - 0.05, 0.0), 1.0))
        # Feed-forward for a stop point ahead (a red light, a car, a walker): brake with the
        # deceleration that stops the car there, so the proportional term never lags behind.
        needed = v * v / (2.0 * max(gap, 0.25))
        if needed > 0.8 * c.decel:
            brake = max(brake, float(min(max(needed / FULL_BRAKE_DECEL, 0.0), 1.0)))
        if brake > 0.0:
            throttle = 0.0
        return Controls(throttle, brake, steering)
