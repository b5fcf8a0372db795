"""Traffic: cars that drive the road graph on their own lanes and keep the rules.

Each traffic car follows a random walk over the road graph (never a U-turn) along the
right-hand lanes, with the same speed profile rules as the autopilot (slower in curves and
intersections). It keeps its distance to whatever is ahead in its lane (other traffic or the
player), stops at red lights (and at amber when it can), yields to walkers on zebra crossings,
and crosses an intersection only when it holds that intersection: the others stop at the stop
line. A car blocked for a long time is respawned out of the player's sight, so traffic never
deadlocks. Bodies are kinematic Bullet boxes, so the player can hit them and the autopilot's
rays see them. Everything is driven by the town's seeded generator: deterministic.

All cars are simulated together: their paths are resampled every 0.5 m into one padded array,
so positions, speed limits, gaps to other cars and stops for lights and zebras are numpy
operations over every car at once; only intersection turn-taking is per car.
"""

from __future__ import annotations

import math

import numpy as np
from panda3d.core import NodePath

from gta_env.game import FRAME_DT
from gta_env.sim.junctions import FRONT, STOP_MARGIN, JunctionLayout, StopTable
from gta_env.sim.lamps import CarLights
from gta_env.sim.physics import Physics
from gta_env.sim.route import Crossing, Route, build_route
from gta_env.sim.scene import Lighting, car_mesh
from gta_env.sim.town import Town

CAR_HALF = (0.9, 2.15, 0.7)
_AHEAD = np.arange(2.5, 27.5, 2.0)  # where a car looks for others in its lane, metres
_PROBES = np.append(_AHEAD, 0.0)
"""Arc lengths past a car sampled each step: the look-ahead points, then the car itself (its
speed limit); one more, a speed-dependent distance ahead, is added per car."""
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

    A car asks for its next intersection when its centre is 9 m from the stop line before it
    (only the first car of a queue is that close: a car further back that held the intersection
    while stuck behind one that waits would deadlock it) and holds it until 3 m past the exit;
    it waits at the stop line. A car whose light is red does not ask (and gives up what it held
    there). It may enter unless a holder coming from another road has a path through
    the intersection that comes within 3.5 m of its own (a conflict); cars from the same road
    queue behind each other and keep their distance on their own. First come, first served: a
    car also yields to conflicting cars that have been waiting longer, so nobody starves.
    """

    ASK_DISTANCE = 9.0
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

    def negotiate(
        self, owner: int, crossings: list[Crossing], s: float, *, allowed: bool = True
    ) -> float | None:
        """Update ``owner``'s holdings at arc length ``s``; where to stop (None: go on).

        ``allowed=False`` (a red light before the next intersection): the car neither asks nor
        holds; the light stops it.
        """
        upcoming = next((c for c in crossings if c.leave + self.RELEASE_AFTER >= s), None)
        for node in [n for n, owners in self._held.items() if owner in owners]:
            if upcoming is None or node != upcoming.node or not allowed:
                self._release(owner, node)
        for node in [n for n, waiting in self._waiting.items() if owner in waiting]:
            if upcoming is None or node != upcoming.node or not allowed:
                self._stop_waiting(owner, node)
        if upcoming is None or not allowed:
            return None
        if owner in self._held.get(upcoming.node, {}):
            return None
        if upcoming.hold - s > self.ASK_DISTANCE:
            return None  # still far away
        if s > upcoming.enter:
            # Inside already (e.g. a new route began in the intersection): never stop in the
            # middle; hold it so that others wait.
            self._held.setdefault(upcoming.node, {})[owner] = upcoming
            self._stop_waiting(owner, upcoming.node)
            return None
        if self.may_enter(owner, upcoming):
            self._held.setdefault(upcoming.node, {})[owner] = upcoming
            self._stop_waiting(owner, upcoming.node)
            return None
        waiting = self._waiting.setdefault(upcoming.node, {})
        if owner not in waiting:
            self._ticket += 1
            waiting[owner] = (self._ticket, upcoming)
        # Wait at the stop line; a car already past it waits at the intersection's edge.
        return upcoming.hold if s + FRONT <= upcoming.hold + 0.5 else upcoming.enter

    def forget(self, owner: int) -> None:
        """Drop everything ``owner`` holds or waits for (it left the road: a respawn)."""
        for node in [n for n, owners in self._held.items() if owner in owners]:
            self._release(owner, node)
        for node in [n for n, waiting in self._waiting.items() if owner in waiting]:
            self._stop_waiting(owner, node)

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


DS = 0.5
"""Spacing of the resampled traffic paths, metres."""
_POSE_PROBES = np.array([0.0, 1.0])
"""Arc lengths past a car where its path is sampled for its pose: position and heading."""
BLOCKED_RESPAWN_S = 60.0
"""A car that has not moved for this long, though no red light holds it, is respawned."""
RESPAWN_HIDDEN_M = 60.0
"""A respawned car appears at least this far from the player (or behind it)."""


class Traffic:
    """All traffic cars of a town, simulated together.

    Args:
        town: the town.
        physics: its physics world (bodies are added to it).
        root: scene node the cars' meshes hang under.
        count: number of cars.
        rng: generator for spawn spots, colours and routes.
        keep_clear: points (e.g. the player) no car may spawn within 15 m of.
        layout: stop lines, zebras and lights the cars obey (None: none).
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
        layout: JunctionLayout | None = None,
    ) -> None:
        self.town = town
        self.rng = rng
        self.layout = layout
        self.turns = IntersectionTurns()
        self.nodes: list[NodePath] = []
        self.routes: list[Route] = []
        self.lights: list[CarLights] = []
        """Head and tail lamps of every car (they glow at night: :meth:`set_light_level`)."""
        light = Lighting(town.sun, town.sun_color, town.ambient)
        taken = list(keep_clear)
        s0: list[float] = []
        for i in range(count):
            spot = self._free_spot(taken)
            if spot is None:
                break
            directed, point = spot
            taken.append((float(point[0]), float(point[1])))
            node = physics.add_dynamic_box("traffic_car", CAR_HALF, actor=i)
            color = _COLORS[int(rng.integers(len(_COLORS)))]
            visual = node.attachNewNode(car_mesh(color, light, f"traffic{i}"))
            self.lights.append(CarLights(visual, light, beam=False))
            route = self._route_from(directed)
            route.reset_hint(0)
            _, s, _ = route.project(*point)
            self.nodes.append(node)
            self.routes.append(route)
            s0.append(s)
        n = len(self.routes)
        self.s = np.array(s0, np.float64)
        self.speed = np.zeros(n)
        self.cruise = rng.uniform(8.0, 11.0, n)
        self.blocked = np.zeros(n)
        """Seconds each car has stood still with no red light holding it."""
        self.respawns = 0
        self._paths = np.zeros((n, 2, 3))
        """Every car's route resampled every `DS` metres: x, y and the speed limit there."""
        self._lengths = np.zeros(n)
        self._rows = np.arange(n)
        self._last = np.zeros(n, np.int64)
        self._last_f = np.zeros((n, 1))
        self._last_i = np.zeros((n, 1), np.int64)
        self._row_start = np.zeros((n, 1), np.int64)
        self._stop_s = np.full((n, 1), np.inf)
        self._stop_ref = np.zeros((n, 1), np.int64)
        self._stops: StopTable | None = None
        """Built from `_stop_s`/`_stop_ref` when first needed after a route changed."""
        for k in range(n):
            self._load_path(k)
        self._positions = np.zeros((n, 2))
        self._headings = np.zeros(n)
        self._placed = np.full((n, 3), np.nan)
        """The pose each car's node was last given (x, y, heading in degrees)."""
        self._update_poses()

    def set_light_level(self, level: float) -> None:
        """Lamp brightness of every car: 0 by day, up to 1 at night."""
        for lights in self.lights:
            lights.set_level(level)

    @property
    def count(self) -> int:
        """Number of traffic cars."""
        return len(self.routes)

    def positions(self) -> np.ndarray:
        """(N, 2) positions of the traffic cars (a copy)."""
        return self._positions.copy()

    def velocities(self) -> np.ndarray:
        """(N, 2) velocities of the traffic cars, m/s."""
        fwd = np.concatenate((-np.sin(self._headings)[:, None], np.cos(self._headings)[:, None]), 1)
        return fwd * self.speed[:, None]

    def near(self, x: float, y: float, radius: float) -> bool:
        """Whether any traffic car is within ``radius`` metres of ``(x, y)``."""
        pos = self._positions
        return bool(len(pos)) and bool(np.min(np.hypot(pos[:, 0] - x, pos[:, 1] - y)) < radius)

    def step(
        self,
        player: tuple[float, float],
        player_heading: float,
        dt: float = FRAME_DT,
        *,
        states: np.ndarray | None = None,
        occupied: np.ndarray | None = None,
    ) -> None:
        """Advance every car by ``dt`` seconds.

        Args:
            player: the player's position; its heading is ``player_heading``.
            states: light state per approach of :attr:`layout` (None: no lights).
            occupied: per zebra, whether a walker is on it (None: no walkers).
        """
        n = self.count
        if n == 0:
            return
        s, v = self.s, self.speed
        rows = self._rows
        # Every car (and the player) as a segment from its rear axle to its front axle, so a
        # car turning away still blocks the lane with its tail.
        # x and y are kept apart: (N, K, M) arrays are much cheaper to work on than
        # (N, K, M, 2) ones, and the arithmetic is the same.
        half = CAR_HALF[1] - CAR_HALF[0]
        head = np.concatenate((self._headings, (player_heading,)))
        fx, fy = -np.sin(head) * half, np.cos(head) * half
        px = np.concatenate((self._positions[:, 0], (player[0],)))
        py = np.concatenate((self._positions[:, 1], (player[1],)))
        ax, ay = px - fx, py - fy  # (M,)
        abx, aby = (px + fx) - ax, (py + fy) - ay
        # One sampling pass: the look-ahead points (positions), then the speed limits here and
        # where the car will be in about a second.
        at = np.empty((n, len(_PROBES) + 1))
        at[:, :-1] = s[:, None] + _PROBES
        at[:, -1] = s + v + 2.0
        probed = self._sample(self._paths, at)  # (N, K + 2, 3)
        look = len(_AHEAD)
        qx, qy = probed[:, :look, 0, None], probed[:, :look, 1, None]  # (N, K, 1)
        relx, rely = qx - ax, qy - ay  # (N, K, M)
        t = (relx * abx + rely * aby) / np.maximum(abx * abx + aby * aby, 1e-9)
        t = np.minimum(np.maximum(t, 0.0), 1.0)
        d = np.hypot(qx - (ax + t * abx), qy - (ay + t * aby))
        d[rows, :, rows] = np.inf  # a car is not in its own way
        hit = np.logical_or.reduce(d < 2.1, axis=2)  # (N, K): any segment within reach
        gap = np.where(np.logical_or.reduce(hit, axis=1), _AHEAD[hit.argmax(axis=1)], np.inf)

        target = np.minimum(np.minimum(probed[:, look, 2], probed[:, look + 1, 2]), self.cruise)
        target = np.minimum(target, np.sqrt(2 * 3.0 * np.maximum(gap - 6.0, 0.0)))
        held_by_light = np.zeros(n, bool)
        if self.layout is not None and len(self.layout):
            occ = occupied if occupied is not None else np.zeros(len(self.layout), bool)
            st = states if states is not None else np.zeros(len(self.layout), np.int64)
            if self._stops is None:
                self._stops = StopTable(self._stop_s, self._stop_ref, self.layout.signalised)
            stop_at = self._stops.stop_at(s, v, st, occ)
            # A red (or stoppable amber) line closer than the next intersection's stop point.
            held_by_light = np.isfinite(stop_at) & (stop_at - s < IntersectionTurns.ASK_DISTANCE)
            target = np.minimum(target, np.sqrt(2 * 3.0 * np.maximum(stop_at - s, 0.0)))
        # Turn-taking is per car: plain floats here (indexing numpy arrays one element at a
        # time costs more than the arithmetic).
        held = held_by_light.tolist()
        for k, s_k in enumerate(s.tolist()):
            stop = self.turns.negotiate(k, self.routes[k].crossings, s_k, allowed=not held[k])
            if stop is not None:
                room = stop - FRONT - STOP_MARGIN - s_k
                target[k] = min(target[k], math.sqrt(2 * 3.0 * max(room, 0.0)))
        accel = np.minimum(np.maximum((target - v) / dt, -6.0), 2.0)
        self.speed = v = np.maximum(v + accel * dt, 0.0)
        self.s = s = s + v * dt
        still = v < 0.2
        self.blocked = np.where(still & ~held_by_light, self.blocked + dt, 0.0)
        for car in (self._lengths - s < 60.0).nonzero()[0].tolist():
            self._extend(car)
        for car in (self.blocked > BLOCKED_RESPAWN_S).nonzero()[0].tolist():
            self._respawn(car, player)
        self._update_poses()

    # -- internals -------------------------------------------------------------------------------
    def _sample(self, table: np.ndarray, s: np.ndarray) -> np.ndarray:
        """Rows of ``table`` (N, L, C) at arc lengths ``s`` (N, K), linearly interpolated."""
        f = np.minimum(np.maximum(s / DS, 0.0), self._last_f)
        i0 = np.minimum(f.astype(np.int64), self._last_i)
        w = f - i0
        # One flat index into the rows (cheaper than a 2-D fancy index; same elements).
        flat = table.reshape(-1, table.shape[2])
        at = i0 + self._row_start
        lo, hi = flat[at], flat[at + 1]
        return lo + (hi - lo) * w[..., None]

    def _load_path(self, k: int) -> None:
        """Resample car ``k``'s route into the padded tables (growing them when needed)."""
        route = self.routes[k]
        grid = np.arange(0.0, route.length + DS, DS)
        pts = route.points_at(grid)
        lim = np.interp(np.clip(grid, 0.0, route.length), route.s, route.speed_limit)
        length = len(grid)
        if length + 2 > self._paths.shape[1]:
            grown = np.zeros((len(self._paths), length + 200, 3))
            grown[:, : self._paths.shape[1]] = self._paths
            self._paths = grown
        self._paths[k, :length, :2] = pts
        self._paths[k, :length, 2] = lim
        self._paths[k, length:] = self._paths[k, length - 1]
        self._lengths[k] = route.length
        self._last[k] = length - 1
        self._last_f = self._last[:, None].astype(np.float64)
        self._last_i = np.maximum(self._last[:, None] - 1, 0)
        self._row_start = (np.arange(len(self._paths)) * self._paths.shape[1])[:, None]
        if self.layout is not None:
            stop_s, stop_ref = self.layout.route_stops(route)
            width = max(len(stop_s), self._stop_s.shape[1])
            if width > self._stop_s.shape[1]:
                grown_s = np.full((len(self._stop_s), width), np.inf)
                grown_s[:, : self._stop_s.shape[1]] = self._stop_s
                grown_r = np.zeros((len(self._stop_s), width), np.int64)
                grown_r[:, : self._stop_ref.shape[1]] = self._stop_ref
                self._stop_s, self._stop_ref = grown_s, grown_r
            self._stop_s[k] = np.inf
            self._stop_s[k, : len(stop_s)] = stop_s
            self._stop_ref[k] = 0
            self._stop_ref[k, : len(stop_ref)] = stop_ref
            self._stops = None

    def _update_poses(self) -> None:
        s = self.s
        both = self._sample(self._paths, s[:, None] + _POSE_PROBES)
        p, q = both[:, 0, :2], both[:, 1, :2]
        heading = np.arctan2(-(q[:, 0] - p[:, 0]), q[:, 1] - p[:, 1])
        self._positions = p
        self._headings = heading
        pose = np.concatenate((p, np.degrees(heading)[:, None]), axis=1)
        # Only cars that moved are placed again: a pose change costs Bullet a transform update
        # and the scene graph its bounds, and cars queued at a light stand still for seconds.
        moved = np.logical_or.reduce(pose != self._placed, axis=1).nonzero()[0]
        for k, (x, y, deg) in zip(moved.tolist(), pose[moved].tolist(), strict=True):
            self.nodes[k].setPosHpr(x, y, 0.0, deg, 0.0, 0.0)
        self._placed = pose

    def _route_from(self, directed: tuple[int, bool]) -> Route:
        walk = random_walk(self.town, directed, 25, self.rng)
        route = build_route(self.town, walk, -1)
        route.plan_speed(cruise=11.0, lateral_accel=2.4, decel=3.0, junction_speed=6.0)
        # Traffic is kinematic: it takes the tightest turns at a walking pace, never slower,
        # so it never holds an intersection for long.
        route.speed_limit = np.maximum(route.speed_limit, 4.0)
        return route

    def _extend(self, k: int) -> None:
        route = self.routes[k]
        x, y = self._positions[k]
        route.reset_hint(max(int(np.searchsorted(route.s, self.s[k])) - 5, 0))
        index, _, _ = route.project(x, y)
        new = self._route_from(route.directed_at(index))
        new.reset_hint(0)
        _, self.s[k], _ = new.project(x, y)
        self.routes[k] = new
        self._load_path(k)

    def _respawn(self, k: int, player: tuple[float, float]) -> None:
        """Move a car that has been blocked too long to a free spot the player cannot see."""
        others = [tuple(p) for i, p in enumerate(self._positions) if i != k]
        for _ in range(20):
            spot = self._free_spot([*others, player])
            if spot is None:
                return
            directed, point = spot
            if np.hypot(point[0] - player[0], point[1] - player[1]) < RESPAWN_HIDDEN_M:
                continue
            self.turns.forget(k)
            route = self._route_from(directed)
            route.reset_hint(0)
            _, self.s[k], _ = route.project(*point)
            self.routes[k] = route
            self.speed[k] = 0.0
            self.blocked[k] = 0.0
            self.respawns += 1
            self._load_path(k)
            return

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
