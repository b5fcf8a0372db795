"""Routes: the lane-level path from the car to a purpose point, and progress along it.

A route is a polyline along the right-hand lanes of a sequence of directed roads, joined through
intersections by quadratic Bézier turns. It carries a speed profile (slow for curves and
intersections, with braking distance) that the autopilot follows, and it measures progress —
metres left to the purpose point — that the reward is built from.
"""

from __future__ import annotations

import bisect
from typing import NamedTuple

import numpy as np

from gta_env.sim.town import Town, polyline_length

HOLD_BEFORE = 3.0
"""Metres before a turn starts where a car waits for its turn: the stop line, which stands
before the zebra crossing (:mod:`gta_env.sim.junctions`)."""


class Crossing(NamedTuple):
    """An intersection a route passes: where it enters and leaves it, and from which road."""

    enter: float
    leave: float
    node: int
    approach: int
    path: np.ndarray
    """Points of the route inside the intersection (for conflict checks)."""

    @property
    def hold(self) -> float:
        """Arc length of the stop line before the intersection, where a car waits."""
        return self.enter - HOLD_BEFORE


class Route:
    """A drivable path with arc length, junction flags and a speed profile.

    Args:
        points: (N, 2) path vertices.
        junction: (N,) bool, True inside an intersection.
        edges: (N,) index into ``directed`` of the road each vertex belongs to.
        directed: the directed roads ``(road index, forward)`` the route follows.
        target_node: the intersection the route ends at (the purpose point).
    """

    def __init__(
        self,
        *,
        points: np.ndarray,
        junction: np.ndarray,
        edges: np.ndarray,
        directed: list[tuple[int, bool]],
        target_node: int,
    ) -> None:
        self.points = points
        self.junction = junction
        self.edges = edges
        self.directed = directed
        self.target_node = target_node
        self.s = polyline_length(points)
        self._s_list: list[float] = self.s.tolist()
        # Per segment, for `project` (asked every frame): its start, its direction vector and
        # that vector's squared length, worked out once.
        ab = points[1:] - points[:-1]
        self._ax, self._ay = points[:-1, 0].copy(), points[:-1, 1].copy()
        self._ab = ab
        self._abx, self._aby = ab[:, 0].copy(), ab[:, 1].copy()
        self._ab2 = np.maximum((ab**2).sum(1), 1e-9)
        self.length = float(self.s[-1])
        self._hint = 0
        self.speed_limit = np.zeros(len(points))
        self.crossings: list[Crossing] = []
        """Intersections on the way, in order."""

    def plan_speed(
        self, *, cruise: float, lateral_accel: float, decel: float, junction_speed: float
    ) -> None:
        """Fill :attr:`speed_limit`: curvature and junction caps, then braking distance."""
        d = np.diff(self.points, axis=0)
        theta = np.unwrap(np.arctan2(d[:, 1], d[:, 0]))
        ds = np.maximum(np.linalg.norm(d, axis=1), 1e-3)
        kappa = np.zeros(len(self.points))
        kappa[1:-1] = np.abs(np.diff(theta)) / (0.5 * (ds[1:] + ds[:-1]))
        # Curvature over ~6 m windows: single-vertex kinks are not real curves.
        kernel = np.ones(3) / 3
        kappa = np.convolve(kappa, kernel, mode="same")
        limit = np.minimum(cruise, np.sqrt(lateral_accel / np.maximum(kappa, 1e-4)))
        limit = np.where(self.junction, np.minimum(limit, junction_speed), limit)
        for i in range(len(limit) - 2, -1, -1):
            limit[i] = min(limit[i], np.sqrt(limit[i + 1] ** 2 + 2 * decel * ds[i]))
        self.speed_limit = limit

    def project(self, x: float, y: float) -> tuple[int, float, float]:
        """Nearest point on the route near the last projection.

        Returns:
            ``(segment index, arc length s, distance from the route)``.
        """
        lo = max(self._hint - 10, 0)
        hi = min(self._hint + 80, len(self.points) - 1)
        if hi <= lo:
            return len(self.points) - 1, self.length, float(np.hypot(*(self.points[-1] - (x, y))))
        ax, ay = self._ax[lo:hi], self._ay[lo:hi]
        abx, aby = self._abx[lo:hi], self._aby[lo:hi]
        t = np.minimum(np.maximum(((x - ax) * abx + (y - ay) * aby) / self._ab2[lo:hi], 0.0), 1.0)
        dist = np.hypot((ax + t * abx) - x, (ay + t * aby) - y)
        k = int(dist.argmin())
        self._hint = lo + k
        seg = np.linalg.norm(self._ab[lo + k])
        return lo + k, float(self.s[lo + k] + t[k] * seg), float(dist[k])

    def point_at(self, s: float) -> np.ndarray:
        """Position at arc length ``s`` (clamped to the route)."""
        # Scalar bisect + lerp: several times faster than np.interp for one value.
        s = min(max(s, 0.0), self.length)
        i = min(max(bisect.bisect_right(self._s_list, s) - 1, 0), len(self._s_list) - 2)
        s0, s1 = self._s_list[i], self._s_list[i + 1]
        t = (s - s0) / (s1 - s0) if s1 > s0 else 0.0
        p0, p1 = self.points[i], self.points[i + 1]
        return p0 + t * (p1 - p0)

    def points_lerp(self, s: np.ndarray) -> np.ndarray:
        """Positions (N, 2) at arc lengths ``s`` (N,): :meth:`point_at` for many at once, the
        same arithmetic (so the same points bit for bit)."""
        s = np.minimum(np.maximum(s, 0.0), self.length)
        last = len(self.s) - 2
        i = np.minimum(np.maximum(self.s.searchsorted(s, side="right") - 1, 0), last)
        s0, s1 = self.s[i], self.s[i + 1]
        span = s1 - s0
        t = np.where(span > 0, (s - s0) / np.where(span > 0, span, 1.0), 0.0)
        p0, p1 = self.points[i], self.points[i + 1]
        return p0 + t[:, None] * (p1 - p0)

    def points_at(self, s: np.ndarray) -> np.ndarray:
        """Positions (N, 2) at arc lengths ``s`` (N,), clamped to the route."""
        s = np.clip(s, 0.0, self.length)
        return np.stack(
            [np.interp(s, self.s, self.points[:, 0]), np.interp(s, self.s, self.points[:, 1])], 1
        )

    def limit_at(self, s: float) -> float:
        """Speed limit at arc length ``s``."""
        return float(np.interp(s, self.s, self.speed_limit))

    def directed_at(self, index: int) -> tuple[int, bool]:
        """The directed road under route vertex ``index``."""
        return self.directed[int(self.edges[min(index, len(self.edges) - 1)])]

    def reset_hint(self, index: int = 0) -> None:
        """Restart the projection window (after a teleport or a re-plan)."""
        self._hint = index


def _turn(p0: np.ndarray, t0: np.ndarray, p2: np.ndarray, t2: np.ndarray, n: int) -> np.ndarray:
    """Quadratic Bézier from ``p0`` (heading ``t0``) to ``p2`` (heading ``t2``)."""
    m = np.array([t0, -t2]).T
    if abs(np.linalg.det(m)) < 1e-3:
        p1 = 0.5 * (p0 + p2)
    else:
        a, _ = np.linalg.solve(m, p2 - p0)
        p1 = p0 + a * t0 if 0 < a < 3 * np.linalg.norm(p2 - p0) else 0.5 * (p0 + p2)
    t = np.linspace(0, 1, n)[:, None]
    return (1 - t) ** 2 * p0 + 2 * (1 - t) * t * p1 + t**2 * p2


def _trim(points: np.ndarray, start: float, end: float) -> np.ndarray:
    s = polyline_length(points)
    keep = (s >= start) & (s <= s[-1] - end)
    return points[keep]


def build_route(town: Town, directed: list[tuple[int, bool]], target_node: int) -> Route:
    """Join the right-hand lanes of ``directed`` roads into one :class:`Route`."""
    # Turns start 1.5 m before the intersection's edge.
    trim = town.junction_radius + 1.5
    pieces: list[np.ndarray] = []
    for i, (road, forward) in enumerate(directed):
        lane = town.lane_polyline(road, forward)
        start = 0.0 if i == 0 else trim
        end = 0.0 if i == len(directed) - 1 else trim
        piece = _trim(lane, start, end)
        if len(piece) < 2:  # very short road: keep its middle
            mid = len(lane) // 2
            piece = lane[max(mid - 1, 0) : mid + 1]
        pieces.append(piece)
    points = [pieces[0]]
    junction = [np.zeros(len(pieces[0]), bool)]
    edges = [np.zeros(len(pieces[0]), int)]
    for i in range(1, len(pieces)):
        a, b = points[-1], pieces[i]
        t0 = a[-1] - a[-2]
        t2 = b[1] - b[0]
        turn = _turn(a[-1], t0 / np.linalg.norm(t0), b[0], t2 / np.linalg.norm(t2), 9)[1:-1]
        points += [turn, b]
        junction += [np.ones(len(turn), bool), np.zeros(len(b), bool)]
        edges += [np.full(len(turn), i), np.full(len(b), i)]
    pts = np.concatenate(points)
    # Drop repeated vertices so every segment has a length.
    keep = np.concatenate([[True], np.linalg.norm(np.diff(pts, axis=0), axis=1) > 1e-6])
    route = Route(
        points=pts[keep],
        junction=np.concatenate(junction)[keep],
        edges=np.concatenate(edges)[keep],
        directed=list(directed),
        target_node=target_node,
    )
    for i in range(1, len(directed)):
        inside = np.nonzero(route.junction & (route.edges == i))[0]
        if len(inside) == 0:
            continue
        road, forward = directed[i - 1]
        node = town.roads[road].b if forward else town.roads[road].a
        enter = route.s[max(inside[0] - 1, 0)]
        leave = route.s[min(inside[-1] + 1, len(route.s) - 1)]
        path = route.points[max(inside[0] - 1, 0) : inside[-1] + 2]
        route.crossings.append(Crossing(float(enter), float(leave), int(node), int(road), path))
    return route


def nearest_directed_road(town: Town, x: float, y: float, heading: float) -> tuple[int, bool]:
    """The road nearest ``(x, y)``, with the direction closest to ``heading``."""
    best, best_d = (0, True), np.inf
    forward_vec = np.array([-np.sin(heading), np.cos(heading)])
    for i, road in enumerate(town.roads):
        d = np.hypot(road.points[:, 0] - x, road.points[:, 1] - y)
        k = int(np.argmin(d))
        if d[k] < best_d:
            k2 = min(k + 1, len(road.points) - 1)
            k1 = k2 - 1
            tangent = road.points[k2] - road.points[k1]
            best, best_d = (i, bool(np.dot(tangent, forward_vec) >= 0)), float(d[k])
    return best
