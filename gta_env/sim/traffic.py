"""Traffic: cars that drive the road graph on their own lanes.

Each traffic car follows a random walk over the road graph (never a U-turn) along the
right-hand lanes, with the same speed profile rules as the autopilot (slower in curves and
intersections). It keeps its distance to whatever is ahead in its lane (other traffic or the
player) and crosses an intersection only when it holds that intersection: one car at a time,
the others stop before it. Bodies are kinematic Bullet boxes, so the player can hit them and the
autopilot's rays see them. Everything is driven by the town's seeded generator: deterministic.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from panda3d.core import NodePath

from gta_env.game import FRAME_DT
from gta_env.sim.physics import Physics
from gta_env.sim.route import Crossing, Route, build_route
from gta_env.sim.scene import Lighting, car_mesh
from gta_env.sim.town import Town

CAR_HALF = (0.9, 2.15, 0.7)
_AHEAD = np.arange(2.5, 27.5, 2.0)  # where a car looks for others in its lane, metres
_COLORS = [
    (30, 60, 150),
    (200, 200, 205),
    (40, 40, 45),
    (20, 110, 60),
    (220, 180, 40),
    (120, 80, 160),
    (230, 120, 30),
]


def random_walk(
    town: Town, start: tuple[int, bool], length: int, rng: np.random.Generator
) -> list[tuple[int, bool]]:
    """``length`` directed roads from ``start``, each continuing the last without a U-turn."""
    path = [start]
    for _ in range(length - 1):
        road, forward = path[-1]
        head = town.roads[road].b if forward else town.roads[road].a
        options = [r for r, _ in town.adjacency[head] if r != road]
        nxt = options[int(rng.integers(len(options)))]
        path.append((nxt, town.roads[nxt].a == head))
    return path


class IntersectionTurns:
    """Who may be inside which intersection.

    A car asks for its next intersection when it is 12 m from the entrance and holds it until
    3 m past the exit. It may enter unless a holder coming from another road has a path through
    the intersection that comes within 3.5 m of its own (a conflict); cars from the same road
    queue behind each other and keep their distance on their own. First come, first served: a
    car also yields to conflicting cars that have been waiting longer, so nobody starves.
    """

    ASK_DISTANCE = 12.0
    RELEASE_AFTER = 3.0
    CONFLICT_DISTANCE = 3.5

    def __init__(self) -> None:
        self._held: dict[int, dict[int, Crossing]] = {}
        self._waiting: dict[int, dict[int, tuple[int, Crossing]]] = {}
        self._ticket = 0

    def holders(self, node: int) -> set[int]:
        """Owners inside or about to enter ``node``."""
        return set(self._held.get(node, {}))

    def may_enter(self, owner: int, crossing: Crossing) -> bool:
        """Whether ``owner`` may enter ``crossing`` now: no conflicting holder, and no
        conflicting car that has waited longer."""
        node = crossing.node
        mine = self._waiting.get(node, {}).get(owner, (self._ticket + 1, crossing))[0]
        others = list(self._held.get(node, {}).items()) + [
            (o, c) for o, (t, c) in self._waiting.get(node, {}).items() if t < mine
        ]
        for other, held in others:
            if other == owner or held.approach == crossing.approach:
                continue
            a, b = crossing.path, held.path
            d = np.hypot(a[:, None, 0] - b[None, :, 0], a[:, None, 1] - b[None, :, 1])
            if d.min() < self.CONFLICT_DISTANCE:
                return False
        return True

    def negotiate(self, owner: int, crossings: list[Crossing], s: float) -> float | None:
        """Update ``owner``'s holdings at arc length ``s``; where to stop (None: go on)."""
        upcoming = next((c for c in crossings if c.leave + self.RELEASE_AFTER >= s), None)
        for node in [n for n, owners in self._held.items() if owner in owners]:
            if upcoming is None or node != upcoming.node:
                self._release(owner, node)
        for node in [n for n, waiting in self._waiting.items() if owner in waiting]:
            if upcoming is None or node != upcoming.node:
                self._stop_waiting(owner, node)
        if upcoming is None:
            return None
        if owner in self._held.get(upcoming.node, {}):
            return None
        if s > upcoming.enter or upcoming.enter - s > self.ASK_DISTANCE:
            return None  # inside already (never stop in the middle), or still far away
        if self.may_enter(owner, upcoming):
            self._held.setdefault(upcoming.node, {})[owner] = upcoming
            self._stop_waiting(owner, upcoming.node)
            return None
        waiting = self._waiting.setdefault(upcoming.node, {})
        if owner not in waiting:
            self._ticket += 1
            waiting[owner] = (self._ticket, upcoming)
        return upcoming.enter

    def _stop_waiting(self, owner: int, node: int) -> None:
        waiting = self._waiting.get(node, {})
        waiting.pop(owner, None)
        if not waiting:
            self._waiting.pop(node, None)

    def _release(self, owner: int, node: int) -> None:
        owners = self._held[node]
        del owners[owner]
        if not owners:
            del self._held[node]


@dataclass
class TrafficCar:
    """One traffic car: its path, where it is on it, and its body."""

    index: int
    route: Route
    s: float
    speed: float
    cruise: float
    node: NodePath


class Traffic:
    """All traffic cars of a town.

    Args:
        town: the town.
        physics: its physics world (bodies are added to it).
        root: scene node the cars' meshes hang under.
        count: number of cars.
        rng: generator for spawn spots, colours and routes.
        keep_clear: points (e.g. the player) no car may spawn within 15 m of.
    """

    def __init__(
        self,
        *,
        town: Town,
        physics: Physics,
        root: NodePath,
        count: int,
        rng: np.random.Generator,
        keep_clear: list[tuple[float, float]],
    ) -> None:
        self.town = town
        self.rng = rng
        self.cars: list[TrafficCar] = []
        self.turns = IntersectionTurns()
        light = Lighting(town.sun, town.sun_color, town.ambient)
        taken = list(keep_clear)
        for i in range(count):
            spot = self._free_spot(taken)
            if spot is None:
                break
            directed, point = spot
            taken.append((float(point[0]), float(point[1])))
            node = physics.add_dynamic_box("traffic_car", CAR_HALF)
            color = _COLORS[int(rng.integers(len(_COLORS)))]
            node.attachNewNode(car_mesh(color, light, f"traffic{i}"))
            route = self._route_from(directed)
            route.reset_hint(0)
            _, s, _ = route.project(*point)
            car = TrafficCar(i, route, s, 0.0, float(rng.uniform(8.0, 11.0)), node)
            self._place(car)
            self.cars.append(car)
        self._positions = np.array([c.route.point_at(c.s) for c in self.cars]).reshape(-1, 2)
        self._headings = np.radians([c.node.getH() for c in self.cars])

    def positions(self) -> np.ndarray:
        """(N, 2) positions of the traffic cars (a copy)."""
        return self._positions.copy()

    def near(self, x: float, y: float, radius: float) -> bool:
        """Whether any traffic car is within ``radius`` metres of ``(x, y)``."""
        pos = self._positions
        return bool(len(pos)) and bool(np.min(np.hypot(pos[:, 0] - x, pos[:, 1] - y)) < radius)

    def step(
        self, player: tuple[float, float], player_heading: float, dt: float = FRAME_DT
    ) -> None:
        """Advance every car by ``dt`` seconds, given the player's position and heading."""
        # Every car as a segment from its rear axle to its front axle, so a car turning away
        # still blocks the lane with its tail.
        pos = np.vstack([self._positions, np.asarray(player)[None]])
        head = np.append(self._headings, player_heading)
        fwd = np.stack([-np.sin(head), np.cos(head)], axis=1) * (CAR_HALF[1] - CAR_HALF[0])
        segments = np.stack([pos - fwd, pos + fwd], axis=1)
        near = np.hypot(pos[:, None, 0] - pos[None, :, 0], pos[:, None, 1] - pos[None, :, 1]) < 32.0
        np.fill_diagonal(near, False)
        for k, car in enumerate(self.cars):
            target = min(car.route.limit_at(car.s), car.route.limit_at(car.s + car.speed + 2.0))
            # Only cars within reach of the 27 m look-ahead can be in the way.
            gap = self._gap_ahead(car, segments[near[k]]) if near[k].any() else float("inf")
            target = min(target, float(np.sqrt(2 * 3.0 * max(gap - 6.0, 0.0))))
            stop_at = self._crossing_stop(car)
            if stop_at is not None:
                target = min(target, float(np.sqrt(2 * 3.0 * max(stop_at - car.s - 1.0, 0.0))))
            accel = np.clip((target - car.speed) / dt, -6.0, 2.0)
            car.speed = max(car.speed + accel * dt, 0.0)
            car.s += car.speed * dt
            if car.route.length - car.s < 60.0:
                self._extend(car)
            self._place(car)
            self._positions[k] = car.route.point_at(car.s)
            self._headings[k] = np.radians(car.node.getH())

    # -- internals -------------------------------------------------------------------------------
    def _route_from(self, directed: tuple[int, bool]) -> Route:
        walk = random_walk(self.town, directed, 25, self.rng)
        route = build_route(self.town, walk, -1)
        route.plan_speed(cruise=11.0, lateral_accel=2.4, decel=3.0, junction_speed=6.0)
        # Traffic is kinematic: it takes the tightest turns at a walking pace, never slower,
        # so it never holds an intersection for long.
        route.speed_limit = np.maximum(route.speed_limit, 4.0)
        return route

    def _extend(self, car: TrafficCar) -> None:
        x, y = car.route.point_at(car.s)
        index, _, _ = car.route.project(x, y)
        car.route = self._route_from(car.route.directed_at(index))
        car.route.reset_hint(0)
        _, car.s, _ = car.route.project(x, y)

    def _place(self, car: TrafficCar) -> None:
        p = car.route.point_at(car.s)
        q = car.route.point_at(car.s + 1.0)
        heading = np.degrees(np.arctan2(-(q[0] - p[0]), q[1] - p[1]))
        car.node.setPosHpr(float(p[0]), float(p[1]), 0.0, float(heading), 0.0, 0.0)

    def _gap_ahead(self, car: TrafficCar, segments: np.ndarray) -> float:
        """Metres along the path to the nearest car standing in it (inf if none within 25 m).

        ``segments`` is (M, 2, 2): each other car's axis from rear to front.
        """
        pts = car.route.points_at(car.s + _AHEAD)  # (P, 2)
        a, b = segments[:, 0], segments[:, 1]  # (M, 2)
        ab = b - a
        rel = pts[:, None, :] - a[None]  # (P, M, 2)
        t = np.clip((rel * ab[None]).sum(-1) / np.maximum((ab * ab).sum(-1), 1e-9), 0.0, 1.0)
        closest = a[None] + t[..., None] * ab[None]
        d = np.hypot(*(pts[:, None, :] - closest).transpose(2, 0, 1))
        hit = np.nonzero((d < 2.1).any(axis=1))[0]
        return float(_AHEAD[hit[0]]) if len(hit) else float("inf")

    def _crossing_stop(self, car: TrafficCar) -> float | None:
        """Where the car must stop for an intersection it may not enter yet (None: go)."""
        return self.turns.negotiate(car.index, car.route.crossings, car.s)

    def _free_spot(
        self, taken: list[tuple[float, float]]
    ) -> tuple[tuple[int, bool], np.ndarray] | None:
        town = self.town
        margin = town.junction_radius + 8.0
        for _ in range(100):
            road = int(self.rng.integers(len(town.roads)))
            forward = bool(self.rng.integers(2))
            lane = town.lane_polyline(road, forward)
            s = np.concatenate([[0.0], np.linalg.norm(np.diff(lane, axis=0), axis=1).cumsum()])
            if s[-1] < 2 * margin:
                continue
            k = int(np.searchsorted(s, self.rng.uniform(margin, s[-1] - margin)))
            p = lane[k]
            if taken and min(np.hypot(p[0] - x, p[1] - y) for x, y in taken) < 15.0:
                continue
            return (road, forward), p
        return None
